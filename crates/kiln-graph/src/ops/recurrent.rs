//! Recurrences run whole in one step: an LSTM or a GRU over every time step of a batch of
//! sequences, and their backward passes through time.
//!
//! The input projection `x·kernel + bias` of all steps is an ordinary matmul before this op; the
//! op runs the sequential part, `z_t = xw_t + h_{t-1}·U` and the gates, and keeps every step's
//! gates and state so the backward pass can run without recomputing them. Keras' LSTM
//! (keras/src/layers/rnn/lstm.py): gates `i, f, c̃, o` in that order, `σ` for `i, f, o`, `tanh`
//! for `c̃` and the output: `c_t = f·c_{t-1} + i·c̃`, `h_t = o·tanh(c_t)`, state zero at the start.
//! Keras' GRU with `reset_after` (keras/src/layers/rnn/gru.py): gates `z, r, h̃`, with
//! `m = h_{t-1}·U + b_r` (the recurrent bias), `z = σ(xw_z + m_z)`, `r = σ(xw_r + m_r)`,
//! `h̃ = tanh(xw_h + r·m_h)`, `h_t = z·h_{t-1} + (1 - z)·h̃`.
//!
//! The state starts at zero, or, with `initial` (Keras' `initial_state`), at a further operand
//! `initial [n, k·units]`: `h₀` (and the LSTM's `c₀` after it). The backward op then takes the same
//! operand and returns one row more per sequence, after the steps: the gradient of the initial
//! state, which the recurrence carries past its first step.

use super::check::{not_differentiable, SECOND_ORDER};
use super::{op_names, Backward, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

/// The widest state the fused kernels hold in workgroup memory.
pub const MAX_UNITS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecurrentOp {
    /// Operands `xw [n, steps, 4·units]` (the input projection with its bias), `recurrent
    /// [units, 4·units]` and, with `initial`, `initial [n, 2·units]` (`h₀` then `c₀`); output
    /// `states [n, steps, 6·units]`: per step, the gates `i, f, c̃, o` after their activations,
    /// then `c_t` and `h_t`. With `reverse` the steps run from the last to the first (Keras'
    /// `go_backwards`), each stored at its own time index.
    Lstm { reverse: bool, initial: bool },
    /// Backward through time: operands `(states, recurrent, d_states[, initial])`, output `d_z
    /// [n, steps, 4·units]`, the gradient of each step's pre-activation `z_t` (and so of `xw`);
    /// with `initial`, `[n, steps + 1, 4·units]`, the last row of a sequence `(d h₀, d c₀, 0, 0)`.
    LstmGrad { reverse: bool, initial: bool },
    /// Operands `xw [n, steps, 3·units]` (the input projection with the input bias), `recurrent
    /// [units, 3·units]`, the recurrent bias `[3·units]` and, with `initial`, `h₀ [n, units]`;
    /// output `states [n, steps, 5·units]`: per step `z, r, h̃` after their activations, `m_h`
    /// (the candidate's recurrent term before the reset) and `h_t`. `reverse` as the LSTM's.
    Gru { reverse: bool, initial: bool },
    /// Backward through time: operands `(states, recurrent, d_states[, initial])`, output `[n,
    /// steps, 6·units]`: per step the gradient of `xw_t` (3·units), then of `m = h_{t-1}·U + b_r`
    /// (3·units), from which the recurrent kernel's and bias's gradients are summed; with
    /// `initial`, `[n, steps + 1, 6·units]`, the last row of a sequence `(d h₀, 0, …)`.
    GruGrad { reverse: bool, initial: bool },
}

op_names!(RecurrentOp {
    Lstm => "lstm",
    LstmGrad => "lstm_grad",
    Gru => "gru",
    GruGrad => "gru_grad",
});

impl RecurrentOp {
    /// Gate blocks of the recurrent kernel: 4 for the LSTM, 3 for the GRU.
    pub fn gates(&self) -> usize {
        match self {
            RecurrentOp::Lstm { .. } | RecurrentOp::LstmGrad { .. } => 4,
            RecurrentOp::Gru { .. } | RecurrentOp::GruGrad { .. } => 3,
        }
    }

    /// Values per step of the forward states: the LSTM's 6·units, the GRU's 5·units.
    pub fn state_width(&self) -> usize {
        match self {
            RecurrentOp::Lstm { .. } | RecurrentOp::LstmGrad { .. } => 6,
            RecurrentOp::Gru { .. } | RecurrentOp::GruGrad { .. } => 5,
        }
    }

    /// `(reverse, initial)`, which every variant carries.
    fn settings(&self) -> (bool, bool) {
        let (RecurrentOp::Lstm { reverse, initial }
        | RecurrentOp::LstmGrad { reverse, initial }
        | RecurrentOp::Gru { reverse, initial }
        | RecurrentOp::GruGrad { reverse, initial }) = *self;
        (reverse, initial)
    }

    /// Whether the state starts from an `initial` operand rather than zero.
    pub fn initial(&self) -> bool {
        self.settings().1
    }

    /// Whether the steps are read from the last to the first.
    pub fn reverse(&self) -> bool {
        self.settings().0
    }

    /// Values per sequence of the initial state, in units: the LSTM's `h₀, c₀`, the GRU's `h₀`.
    pub fn initial_width(&self) -> usize {
        match self {
            RecurrentOp::Lstm { .. } | RecurrentOp::LstmGrad { .. } => 2,
            RecurrentOp::Gru { .. } | RecurrentOp::GruGrad { .. } => 1,
        }
    }

    /// Where the `initial` operand sits among the operands.
    pub fn initial_at(&self) -> usize {
        match self {
            RecurrentOp::Lstm { .. } => 2,
            RecurrentOp::LstmGrad { .. } | RecurrentOp::Gru { .. } | RecurrentOp::GruGrad { .. } => 3,
        }
    }

    /// `(n, steps, units)` from the operand shapes, checked.
    pub fn dims(&self, s: &[&Shape]) -> Result<(usize, usize, usize)> {
        let name = self.name();
        let (xw_like, recurrent, gates) = (s[0], s[1], self.gates());
        let &[u, gates_u] = recurrent.dims() else {
            return Err(Error::shape(
                name,
                format!("recurrent {recurrent}"),
                format!("[units, {gates}·units]"),
            ));
        };
        // The first operand's values per step: the input projection forward, the states backward.
        let per_step = match self {
            RecurrentOp::Lstm { .. } | RecurrentOp::Gru { .. } => gates,
            RecurrentOp::LstmGrad { .. } | RecurrentOp::GruGrad { .. } => self.state_width(),
        };
        let ok = gates_u == gates * u && (1..=MAX_UNITS).contains(&u);
        let &[n, steps, width] = xw_like.dims() else {
            return Err(Error::shape(name, format!("{xw_like}"), "[n, steps, gates·units]"));
        };
        if !ok || width != per_step * u || n == 0 || steps == 0 || n > super::matmul::MAX_BATCH {
            return Err(Error::shape(
                name,
                crate::error::shapes_list(s),
                format!("[n ≤ 65535, steps, {per_step}·units] and [units, {gates}·units] with 1 ≤ units ≤ {MAX_UNITS}"),
            ));
        }
        Ok((n, steps, u))
    }
}

impl Family for RecurrentOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        self.initial_at() + usize::from(self.initial())
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let (n, steps, u) = self.dims(s)?;
        let states = self.state_width() * u;
        if self.initial() {
            let width = self.initial_width() * u;
            let given = s[self.initial_at()];
            if given.dims() != [n, width] {
                return Err(Error::shape(
                    self.name(),
                    format!("initial state {given}"),
                    format!("[{n}, {width}]"),
                ));
            }
        }
        Ok(Some(match self {
            RecurrentOp::Lstm { .. } => Shape::new([n, steps, states]),
            RecurrentOp::Gru { .. } => {
                if s[2].dims() != [3 * u] {
                    return Err(Error::shape(
                        self.name(),
                        format!("recurrent bias {}", s[2]),
                        format!("[{}]", 3 * u),
                    ));
                }
                Shape::new([n, steps, states])
            }
            RecurrentOp::LstmGrad { .. } | RecurrentOp::GruGrad { .. } => {
                if s[2].dims() != [n, steps, states] {
                    return Err(Error::shape(
                        self.name(),
                        format!("d_states {}", s[2]),
                        "the states' shape",
                    ));
                }
                let width = match self {
                    RecurrentOp::LstmGrad { .. } => 4 * u,
                    _ => 6 * u,
                };
                Shape::new([n, steps + usize::from(self.initial()), width])
            }
        }))
    }

    /// LSTM: `d xw = d z`; `d recurrent = Σ_t h_{t-1}ᵀ·d z_t`, one product over every step, with
    /// `h_{t-1}` the states' `h` shifted one step along the reading order (`h₀` first: zeros or
    /// the initial state). GRU: the gradient op gives `d xw` and `d m`; `d recurrent = Σ_t
    /// h_{t-1}ᵀ·d m_t`, `d b_r = Σ_t d m_t`. The initial state's gradient is the extra row the
    /// gradient op leaves after the steps.
    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let (n, steps, u) = self.dims(&[g.shape(at.x[0])?, g.shape(at.x[1])?])?;
        let (reverse, initial) = self.settings();
        let grad = match *self {
            RecurrentOp::Lstm { .. } => RecurrentOp::LstmGrad { reverse, initial },
            RecurrentOp::Gru { .. } => RecurrentOp::GruGrad { reverse, initial },
            RecurrentOp::LstmGrad { .. } | RecurrentOp::GruGrad { .. } => {
                return Err(not_differentiable(self.name(), SECOND_ORDER))
            }
        };
        let width = self.gates() * u;
        let init = initial.then(|| at.x[self.initial_at()]);
        let mut operands = vec![at.y, at.x[1], at.dy];
        operands.extend(init);
        let packed = g.push(grad, &operands)?;
        // With an initial state, the steps' rows and the initial state's row apart.
        let (d, d_initial) = match init {
            None => (packed, None),
            Some(_) => {
                let d = g.slice(packed, 1, 0, steps)?;
                let row = g.slice(packed, 1, steps, 1)?;
                let out_width = g.shape(packed)?.last();
                let row = g.reshape(row, [n, out_width])?;
                (d, Some(g.slice(row, 1, 0, self.initial_width() * u)?))
            }
        };
        let h_at = (self.state_width() - 1) * u;
        let previous = previous_states(g, at.y, init, (n, steps, u), h_at, reverse)?;
        let mut grads = if let RecurrentOp::Lstm { .. } = self {
            let dz_rows = g.reshape(d, [n * steps, width])?;
            let d_recurrent = g.matmul(previous, dz_rows, true, false)?;
            vec![Some(d), Some(d_recurrent)]
        } else {
            let d_xw = g.slice(d, 2, 0, width)?;
            let d_m = g.slice(d, 2, width, width)?;
            let d_m_rows = g.reshape(d_m, [n * steps, width])?;
            let d_recurrent = g.matmul(previous, d_m_rows, true, false)?;
            let d_bias = g.push(super::ReduceOp::Sum { axis: 0 }, &[d_m_rows])?;
            vec![Some(d_xw), Some(d_recurrent), Some(d_bias)]
        };
        if d_initial.is_some() {
            grads.push(d_initial);
        }
        Ok(grads)
    }
}

/// `h_{t-1}` of every step as `[n·steps, u]` rows: the states' `h` (at offset `h_at` of each
/// step) shifted one step along the reading order, `h₀` before the first step read — the
/// first `u` values of `initial [n, k·u]`, or zeros.
fn previous_states(
    g: &mut Graph,
    states: NodeId,
    initial: Option<NodeId>,
    (n, steps, u): (usize, usize, usize),
    h_at: usize,
    reverse: bool,
) -> Result<NodeId> {
    let h = g.slice(states, 2, h_at, u)?;
    let first = match initial {
        Some(init) => {
            let h0 = g.slice(init, 1, 0, u)?;
            g.reshape(h0, [n, 1, u])?
        }
        None => g.fill(0.0, [n, 1, u]),
    };
    let previous = if steps == 1 {
        first
    } else if reverse {
        let later = g.slice(h, 1, 1, steps - 1)?;
        g.concat(&[later, first], 1)?
    } else {
        let earlier = g.slice(h, 1, 0, steps - 1)?;
        g.concat(&[first, earlier], 1)?
    };
    g.reshape(previous, [n * steps, u])
}
