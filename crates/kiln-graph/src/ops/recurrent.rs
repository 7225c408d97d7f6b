//! Recurrences run whole in one step: an LSTM over every time step of a batch of sequences, and
//! its backward pass through time.
//!
//! The input projection `x·kernel + bias` of all steps is an ordinary matmul before this op; the
//! op runs the sequential part, `z_t = xw_t + h_{t-1}·U` and the gates, and keeps every step's
//! gates and state so the backward pass can run without recomputing them. Keras' LSTM
//! (keras/src/layers/rnn/lstm.py): gates `i, f, c̃, o` in that order, `σ` for `i, f, o`, `tanh`
//! for `c̃` and the output: `c_t = f·c_{t-1} + i·c̃`, `h_t = o·tanh(c_t)`, state zero at the start.

use super::check::{not_differentiable, SECOND_ORDER};
use super::{op_names, Backward, Family, LayoutOp};
use crate::{Error, Graph, NodeId, Result, Shape};

/// The widest state the fused kernels hold in workgroup memory.
pub const MAX_UNITS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecurrentOp {
    /// Operands `xw [n, steps, 4·units]` (the input projection with its bias) and
    /// `recurrent [units, 4·units]`; output `states [n, steps, 6·units]`: per step, the gates
    /// `i, f, c̃, o` after their activations, then `c_t` and `h_t`. With `reverse` the steps run from
    /// the last to the first (Keras' `go_backwards`), each stored at its own time index.
    Lstm { reverse: bool },
    /// Backward through time: operands `(states, recurrent, d_states)`, output `d_z [n, steps,
    /// 4·units]`, the gradient of each step's pre-activation `z_t` (and so of `xw`).
    LstmGrad { reverse: bool },
}

op_names!(RecurrentOp {
    Lstm => "lstm",
    LstmGrad => "lstm_grad",
});

impl RecurrentOp {
    /// `(n, steps, units)` from the operand shapes, checked.
    pub fn dims(&self, s: &[&Shape]) -> Result<(usize, usize, usize)> {
        let name = self.name();
        let (xw_like, recurrent) = (s[0], s[1]);
        let &[u, four_u] = recurrent.dims() else {
            return Err(Error::shape(name, format!("recurrent {recurrent}"), "[units, 4·units]"));
        };
        let gates = match self {
            RecurrentOp::Lstm { .. } => 4,
            RecurrentOp::LstmGrad { .. } => 6,
        };
        let ok = four_u == 4 * u && (1..=MAX_UNITS).contains(&u);
        let &[n, steps, width] = xw_like.dims() else {
            return Err(Error::shape(name, format!("{xw_like}"), "[n, steps, gates·units]"));
        };
        if !ok || width != gates * u || n == 0 || steps == 0 || n > super::matmul::MAX_BATCH {
            return Err(Error::shape(
                name,
                crate::error::shapes_list(s),
                format!("[n ≤ 65535, steps, {gates}·units] and [units, 4·units] with 1 ≤ units ≤ {MAX_UNITS}"),
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
        match self {
            RecurrentOp::Lstm { .. } => 2,
            RecurrentOp::LstmGrad { .. } => 3,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let (n, steps, u) = self.dims(s)?;
        Ok(Some(match self {
            RecurrentOp::Lstm { .. } => Shape::new([n, steps, 6 * u]),
            RecurrentOp::LstmGrad { .. } => {
                if s[2].dims() != [n, steps, 6 * u] {
                    return Err(Error::shape(
                        self.name(),
                        format!("d_states {}", s[2]),
                        "the states' shape",
                    ));
                }
                Shape::new([n, steps, 4 * u])
            }
        }))
    }

    /// `d xw = d z`; `d recurrent = Σ_t h_{t-1}ᵀ·d z_t`, one product over every step, with
    /// `h_{t-1}` the states' `h` shifted one step along the reading order (zeros first).
    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let RecurrentOp::Lstm { reverse } = *self else {
            return Err(not_differentiable(self.name(), SECOND_ORDER));
        };
        let (n, steps, u) = self.dims(&[g.shape(at.x[0])?, g.shape(at.x[1])?])?;
        let dz = g.push(RecurrentOp::LstmGrad { reverse }, &[at.y, at.x[1], at.dy])?;
        let h = g.push(
            LayoutOp::Slice {
                axis: 2,
                start: 5 * u,
                len: u,
            },
            &[at.y],
        )?;
        let zeros = g.fill(0.0, [n, 1, u]);
        let previous = if steps == 1 {
            zeros
        } else if reverse {
            let later = g.push(
                LayoutOp::Slice {
                    axis: 1,
                    start: 1,
                    len: steps - 1,
                },
                &[h],
            )?;
            g.push(LayoutOp::Concat { axis: 1 }, &[later, zeros])?
        } else {
            let earlier = g.push(
                LayoutOp::Slice {
                    axis: 1,
                    start: 0,
                    len: steps - 1,
                },
                &[h],
            )?;
            g.push(LayoutOp::Concat { axis: 1 }, &[zeros, earlier])?
        };
        let previous = g.reshape(previous, [n * steps, u])?;
        let dz_rows = g.reshape(dz, [n * steps, 4 * u])?;
        let d_recurrent = g.matmul(previous, dz_rows, true, false)?;
        Ok(vec![Some(dz), Some(d_recurrent)])
    }
}
