//! Recurrent layers, as Keras 3 defines them: `LSTM` (keras/src/layers/rnn/lstm.py), `GRU`
//! (keras/src/layers/rnn/gru.py) and the `Bidirectional` wrapper (keras/src/layers/rnn/
//! bidirectional.py).
//!
//! The recurrence is unrolled into the static graph: the input projection `x · kernel + bias` of
//! every step is one matrix product over the whole sequence, then each step adds `h · recurrent`
//! and applies its gates with existing ops. Autodiff differentiates the unrolled steps like any
//! other graph (backpropagation through time), a training step stays one submit, and the
//! scheduler fuses each step's gate arithmetic. Weights are laid out and named as Keras stores
//! them: `kernel [features, gates·units]`, `recurrent_kernel [units, gates·units]`, `bias`,
//! gates in Keras' order (LSTM: input, forget, cell, output; GRU: update, reset, candidate).
//!
//! States, as Keras' RNN layers take and give them (keras/src/layers/rnn/rnn.py): applied to
//! `[sequence, h₀(, c₀)]` a layer starts from that state instead of zeros (Keras'
//! `initial_state`), and with `return_state` it returns `[output, h_T(, c_T)]`, the state after
//! the last step read (under a mask, the state of the last real step, carried over the padding).
//! The LSTM's states are `h` then `c`, the GRU's `h`; `Bidirectional` takes and returns the
//! forward layer's then the backward layer's.

use kiln_graph::{Graph, NodeId, RecurrentOp};
use serde::{Deserialize, Serialize};

use super::{activate, checked_product, plain, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Activation, Error, Init, Result};

/// The longest sequence a recurrent layer unrolls: each step adds about twenty ops to the graph
/// (and as many to its backward pass).
pub const MAX_STEPS: usize = 4096;

/// The settings LSTM and GRU share, with Keras' names and defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recurrent {
    units: usize,
    activation: Activation,
    recurrent_activation: Activation,
    use_bias: bool,
    return_sequences: bool,
    go_backwards: bool,
    kernel_initializer: Init,
    recurrent_initializer: Init,
    bias_initializer: Init,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
    #[serde(default)]
    dropout: f32,
    #[serde(default)]
    recurrent_dropout: f32,
    #[serde(default)]
    return_state: bool,
}

impl Recurrent {
    fn new(units: usize) -> Self {
        Recurrent {
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            return_sequences: false,
            go_backwards: false,
            kernel_initializer: Init::GlorotUniform,
            recurrent_initializer: Init::Orthogonal { gain: 1.0 },
            bias_initializer: Init::Zeros,
            input_shape: None,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            return_state: false,
        }
    }

    /// The dropout masks of one run over `x [n, steps, features]` while training, drawn once per
    /// sequence and kept for every step, as Keras' `DropoutRNNCell` does
    /// (keras/src/layers/rnn/dropout_rnn_cell.py). Without recurrent dropout one mask covers the
    /// input (Keras' `implementation=2`); with it Keras switches to `implementation=1`, where each
    /// of the `gates` gates has its own mask on the input and on the state
    /// (keras/src/layers/rnn/lstm.py and gru.py, `call`).
    fn masks(&self, g: &mut Graph, x: NodeId, training: bool, gates: usize) -> Result<Masks> {
        if !training || (self.dropout == 0.0 && self.recurrent_dropout == 0.0) {
            return Ok(Masks::default());
        }
        let &[n, steps, features] = g.shape(x)?.dims() else {
            return Err(Error::invalid("recurrent dropout", "expects a batch of sequences"));
        };
        let per_gate = if self.recurrent_dropout > 0.0 { gates } else { 1 };
        let mut masks = Masks::default();
        if self.dropout > 0.0 {
            for _ in 0..per_gate {
                let ones = g.fill(1.0, [n, features]);
                let mask = super::dropout::dropout(g, ones, self.dropout, 0)?;
                let mask = g.push(kiln_graph::ReduceOp::Broadcast { axis: 1, size: steps }, &[mask])?;
                masks.input.push(mask);
            }
        }
        if self.recurrent_dropout > 0.0 {
            for _ in 0..gates {
                let ones = g.fill(1.0, [n, self.units]);
                masks
                    .recurrent
                    .push(super::dropout::dropout(g, ones, self.recurrent_dropout, 0)?);
            }
        }
        Ok(masks)
    }

    /// `[steps, features]` of a sample, or an error naming `class`. `inputs` is the sequence
    /// alone or the sequence and `states` initial states of `[units]` each.
    fn sequence(&self, class: &str, inputs: &[Vec<usize>], states: usize) -> Result<(usize, usize)> {
        let (input, initial) = match inputs {
            [one] => (one, &[][..]),
            [one, rest @ ..] if rest.len() == states => (one, rest),
            _ => {
                return Err(Error::invalid(
                    class,
                    format!(
                        "takes a sequence, or a sequence and its {states} initial state{} (Keras' \
                         `initial_state`), got {} inputs",
                        if states == 1 { "" } else { "s" },
                        inputs.len()
                    ),
                ))
            }
        };
        if let Some(bad) = initial.iter().find(|s| s[..] != [self.units]) {
            return Err(Error::invalid(
                class,
                format!(
                    "an initial state has samples {bad:?}, but the layer's state is [{}] (its units)",
                    self.units
                ),
            ));
        }
        let &[steps, features] = &input[..] else {
            return Err(Error::invalid(
                class,
                format!("expects samples [time steps, features], got {input:?}"),
            ));
        };
        for (name, rate) in [("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::invalid(
                    class,
                    format!("{name} {rate} is not in [0, 1): it is the fraction of units dropped"),
                ));
            }
        }
        if self.units == 0 || steps == 0 || features == 0 {
            return Err(Error::invalid(
                class,
                format!(
                    "needs units, time steps and features ≥ 1 (units {}, input {input:?})",
                    self.units
                ),
            ));
        }
        if steps > MAX_STEPS {
            return Err(Error::invalid(
                class,
                format!(
                    "{steps} time steps: the recurrence is unrolled into the graph, which takes at most \
                     {MAX_STEPS} steps; cut the sequences into windows or downsample them"
                ),
            ));
        }
        checked_product(class, &[features.max(self.units), self.units, 4])?;
        checked_product(class, &[steps, self.units, 2])?;
        Ok((steps, features))
    }

    /// The output's mask: the input's, when every step is returned (Keras' RNN `compute_mask`).
    fn sequence_mask(&self, masks: &[Option<NodeId>]) -> Option<NodeId> {
        masks.first().copied().flatten().filter(|_| self.return_sequences)
    }

    /// Keras' default activations and a state that fits the fused kernels' workgroup memory.
    fn fusable(&self) -> bool {
        self.activation == Activation::Tanh
            && self.recurrent_activation == Activation::Sigmoid
            && self.units <= kiln_graph::ops::recurrent::MAX_UNITS
    }

    fn output_shape(&self, steps: usize) -> Vec<usize> {
        if self.return_sequences {
            vec![steps, self.units]
        } else {
            vec![self.units]
        }
    }

    /// The sample shapes of the `count` states the layer returns after its output, with
    /// `return_state`.
    fn state_shapes(&self, count: usize) -> Vec<Vec<usize>> {
        if self.return_state {
            vec![vec![self.units]; count]
        } else {
            Vec::new()
        }
    }
}

/// The builder methods LSTM and GRU share, over their `rnn: Recurrent` field.
macro_rules! recurrent_builders {
    () => {
        /// The activation of the cell state and the output (Keras' `activation`, tanh).
        pub fn activation(mut self, activation: Activation) -> Self {
            self.rnn.activation = activation;
            self
        }

        /// The gates' activation (Keras' `recurrent_activation`, sigmoid).
        pub fn recurrent_activation(mut self, activation: Activation) -> Self {
            self.rnn.recurrent_activation = activation;
            self
        }

        /// Drops the biases.
        pub fn without_bias(mut self) -> Self {
            self.rnn.use_bias = false;
            self
        }

        /// The fraction of input features dropped while training (Keras' `dropout`): one mask
        /// per sequence, the same at every step (one per gate with recurrent dropout on).
        pub fn dropout(mut self, rate: f32) -> Self {
            self.rnn.dropout = rate;
            self
        }

        /// The fraction of the state's units dropped from each step's recurrent product while
        /// training (Keras' `recurrent_dropout`): one mask per gate and sequence, the same at
        /// every step. A training step then unrolls the recurrence (as Keras' cuDNN path
        /// falls back to the generic loop); inference keeps the fused step.
        pub fn recurrent_dropout(mut self, rate: f32) -> Self {
            self.rnn.recurrent_dropout = rate;
            self
        }

        /// Outputs every step's state `[steps, units]`, not only the last `[units]`.
        pub fn return_sequences(mut self, on: bool) -> Self {
            self.rnn.return_sequences = on;
            self
        }

        /// Keras' `return_state`: the layer gives its output and then its final state — the
        /// LSTM's `h` and `c`, the GRU's `h` — as further outputs, which the functional API's
        /// [`crate::Call::call_states`] returns (a `Sequential` model passes on the output alone).
        pub fn return_state(mut self, on: bool) -> Self {
            self.rnn.return_state = on;
            self
        }

        /// Reads the sequence from its last step to its first; a returned sequence is in that
        /// (reversed) order, as Keras returns it.
        pub fn go_backwards(mut self, on: bool) -> Self {
            self.rnn.go_backwards = on;
            self
        }

        /// How the input kernel starts (glorot_uniform).
        pub fn kernel_initializer(mut self, init: Init) -> Self {
            self.rnn.kernel_initializer = init;
            self
        }

        /// How the recurrent kernel starts (orthogonal).
        pub fn recurrent_initializer(mut self, init: Init) -> Self {
            self.rnn.recurrent_initializer = init;
            self
        }

        /// How the bias starts (zeros).
        pub fn bias_initializer(mut self, init: Init) -> Self {
            self.rnn.bias_initializer = init;
            self
        }

        /// Keras' `input_shape=(steps, features)` on a first layer.
        pub fn input_shape(mut self, shape: [usize; 2]) -> Self {
            self.rnn.input_shape = Some(shape.to_vec());
            self
        }
    };
}

/// Long short-term memory (Hochreiter & Schmidhuber, 1997) as Keras' `LSTM` computes a step:
/// `z = x·kernel + h·recurrent_kernel + bias` cut into `i, f, c̃, o`;
/// `c' = σ(f)·c + σ(i)·tanh(c̃)`, `h' = σ(o)·tanh(c')` (σ the recurrent activation, tanh the
/// activation); state starts at zero. With `unit_forget_bias` (the default) the forget gate's
/// bias starts at one.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LSTM {
    #[serde(flatten)]
    rnn: Recurrent,
    unit_forget_bias: bool,
    #[serde(default)]
    unroll: bool,
}

impl LSTM {
    /// `units` of state, Keras' defaults otherwise.
    pub fn new(units: usize) -> Self {
        LSTM {
            rnn: Recurrent::new(units),
            unit_forget_bias: true,
            unroll: false,
        }
    }

    recurrent_builders!();

    /// Keras' `unroll`: build every time step into the graph instead of running the whole
    /// recurrence as one fused step. Off by default; the fused step needs Keras' default
    /// activations, at most 256 units and no mask, and the layer unrolls by itself otherwise.
    pub fn unroll(mut self, on: bool) -> Self {
        self.unroll = on;
        self
    }

    /// Whether the forget gate's bias starts at one (Keras' `unit_forget_bias`, on); on, it
    /// overrides the bias initializer as Keras does.
    pub fn unit_forget_bias(mut self, on: bool) -> Self {
        self.unit_forget_bias = on;
        self
    }
}

/// Gated recurrent unit (Cho et al., 2014) as Keras' `GRU` computes a step: `z, r` the update and
/// reset gates of `x·kernel + h·recurrent_kernel` (plus biases), the candidate
/// `h̃ = tanh(x·W_h + r ⊙ (h·U_h + b_rh))` (`reset_after`, Keras 3's default; before: `(r ⊙ h)·U_h`),
/// and `h' = z ⊙ h + (1 - z) ⊙ h̃`. With `reset_after` the bias is `[2, 3·units]`: the input
/// bias, then the recurrent one.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GRU {
    #[serde(flatten)]
    rnn: Recurrent,
    reset_after: bool,
    #[serde(default)]
    unroll: bool,
}

impl GRU {
    /// `units` of state, Keras' defaults otherwise (`reset_after`).
    pub fn new(units: usize) -> Self {
        GRU {
            rnn: Recurrent::new(units),
            reset_after: true,
            unroll: false,
        }
    }

    recurrent_builders!();

    /// Keras' `unroll`: build every time step into the graph instead of running the whole
    /// recurrence as one fused step. Off by default; the fused step needs `reset_after`, Keras'
    /// default activations, at most 256 units and no mask, and the layer unrolls by itself
    /// otherwise.
    pub fn unroll(mut self, on: bool) -> Self {
        self.unroll = on;
        self
    }

    /// Applies the reset gate after the recurrent product (Keras 3's default, and cuDNN's) or
    /// before it (the original GRU).
    pub fn reset_after(mut self, on: bool) -> Self {
        self.reset_after = on;
        self
    }
}

/// A recurrent cell: its gates, weights and one step.
trait Cell {
    fn rnn(&self) -> &Recurrent;

    /// Keras' class name.
    fn class(&self) -> &'static str;

    /// Gate blocks in the kernels' columns.
    fn gates(&self) -> usize;

    /// Tensors of state, `[n, units]` each: the LSTM's `h, c`, the GRU's `h`.
    fn state_count(&self) -> usize;

    /// The bias shape, and how it starts.
    fn bias(&self) -> (Vec<usize>, Init);

    /// The bias added to the whole sequence's input projection (with the GRU's recurrent bias
    /// held back for the step).
    fn input_bias(&self, g: &mut Graph, bias: NodeId) -> Result<NodeId>;

    /// The op that runs the whole recurrence as one fused step (see [`RecurrentOp`]), where this
    /// configuration has one.
    fn fused(&self, _reverse: bool, _initial: bool) -> Option<RecurrentOp> {
        None
    }

    /// The recurrent bias the fused GRU adds inside each step (`[3·units]`), where the cell has
    /// one.
    fn recurrent_bias(&self, _g: &mut Graph, _w: &Weights) -> Result<Option<NodeId>> {
        Ok(None)
    }

    /// One step from the input projection `xw [n, gates·units]` and the state (none at the
    /// first step: zeros); returns the new state, whose first entry is the output `h`.
    fn step(&self, g: &mut Graph, xw: NodeId, state: Option<&[NodeId]>, w: &Weights) -> Result<Vec<NodeId>>;

    fn params(&self, features: usize) -> Vec<ParamDecl> {
        let rnn = self.rnn();
        let (units, gates) = (rnn.units, self.gates());
        let mut p = vec![
            ParamDecl::weight(
                "kernel",
                vec![features, gates * units],
                rnn.kernel_initializer,
                (features, gates * units),
            ),
            ParamDecl::weight(
                "recurrent_kernel",
                vec![units, gates * units],
                rnn.recurrent_initializer,
                (units, gates * units),
            ),
        ];
        if rnn.use_bias {
            let (shape, init) = self.bias();
            p.push(ParamDecl::weight("bias", shape, init, (0, 0)));
        }
        p
    }
}

/// A run's dropout masks (see [`Recurrent::masks`]); empty outside training.
#[derive(Default)]
struct Masks {
    /// On the input `[n, steps, features]`: none, one for every gate, or one per gate.
    input: Vec<NodeId>,
    /// On the state `[n, units]`, one per gate (recurrent dropout), or none.
    recurrent: Vec<NodeId>,
}

/// The weight nodes of one recurrent layer, with the dropout masks of the run they serve.
struct Weights {
    kernel: NodeId,
    recurrent: NodeId,
    bias: Option<NodeId>,
    masks: Masks,
}

impl Weights {
    fn of(params: &[NodeId], masks: Masks) -> Self {
        Weights {
            kernel: params[0],
            recurrent: params[1],
            bias: params.get(2).copied(),
            masks,
        }
    }

    /// `h` as gate `k`'s recurrent product reads it: with that gate's recurrent dropout mask.
    fn state_for(&self, g: &mut Graph, h: NodeId, k: usize) -> Result<NodeId> {
        match self.masks.recurrent.get(k) {
            Some(&m) => Ok(g.mul(h, m)?),
            None => Ok(h),
        }
    }

    /// `h · recurrent_kernel` over gate blocks `gates` (of `units` columns): one product, or with
    /// recurrent dropout one per gate, each on its own masked `h`, side by side.
    fn times_recurrent(&self, g: &mut Graph, h: NodeId, gates: std::ops::Range<usize>, units: usize) -> Result<NodeId> {
        let all = g.shape(self.recurrent)?.last() == gates.len() * units;
        if self.masks.recurrent.is_empty() {
            let u = if all {
                self.recurrent
            } else {
                g.slice(self.recurrent, 1, gates.start * units, gates.len() * units)?
            };
            return Ok(g.matmul(h, u, false, false)?);
        }
        let mut parts = Vec::with_capacity(gates.len());
        for k in gates {
            let hk = self.state_for(g, h, k)?;
            let uk = g.slice(self.recurrent, 1, k * units, units)?;
            parts.push(g.matmul(hk, uk, false, false)?);
        }
        Ok(g.concat(&parts, 1)?)
    }
}

/// Gate block `k` (of `units` columns) of `z [n, gates·units]`.
fn gate(g: &mut Graph, z: NodeId, k: usize, units: usize) -> Result<NodeId> {
    Ok(g.slice(z, 1, k * units, units)?)
}

impl Cell for LSTM {
    fn rnn(&self) -> &Recurrent {
        &self.rnn
    }

    /// With Keras' default activations, a state that fits the kernel's workgroup memory, and not
    /// asked to unroll.
    fn fused(&self, reverse: bool, initial: bool) -> Option<RecurrentOp> {
        (!self.unroll && self.rnn.fusable()).then_some(RecurrentOp::Lstm { reverse, initial })
    }

    fn class(&self) -> &'static str {
        "LSTM"
    }

    fn gates(&self) -> usize {
        4
    }

    fn state_count(&self) -> usize {
        2
    }

    fn bias(&self) -> (Vec<usize>, Init) {
        let init = if self.unit_forget_bias {
            Init::UnitForgetBias
        } else {
            self.rnn.bias_initializer
        };
        (vec![4 * self.rnn.units], init)
    }

    fn input_bias(&self, _g: &mut Graph, bias: NodeId) -> Result<NodeId> {
        Ok(bias)
    }

    fn step(&self, g: &mut Graph, xw: NodeId, state: Option<&[NodeId]>, w: &Weights) -> Result<Vec<NodeId>> {
        let (units, act, rec) = (self.rnn.units, self.rnn.activation, self.rnn.recurrent_activation);
        let z = match state {
            Some(s) => {
                let hu = w.times_recurrent(g, s[0], 0..4, units)?;
                g.add(xw, hu)?
            }
            None => xw,
        };
        let i = gate(g, z, 0, units)?;
        let i = activate(g, i, rec)?;
        let cand = gate(g, z, 2, units)?;
        let cand = activate(g, cand, act)?;
        let mut c = g.mul(i, cand)?;
        if let Some(s) = state {
            let f = gate(g, z, 1, units)?;
            let f = activate(g, f, rec)?;
            let kept = g.mul(f, s[1])?;
            c = g.add(kept, c)?;
        }
        let o = gate(g, z, 3, units)?;
        let o = activate(g, o, rec)?;
        let squashed = activate(g, c, act)?;
        Ok(vec![g.mul(o, squashed)?, c])
    }
}

impl Cell for GRU {
    fn rnn(&self) -> &Recurrent {
        &self.rnn
    }

    /// As the LSTM's, with the reset applied after the recurrent product (Keras' default).
    fn fused(&self, reverse: bool, initial: bool) -> Option<RecurrentOp> {
        (!self.unroll && self.reset_after && self.rnn.fusable()).then_some(RecurrentOp::Gru { reverse, initial })
    }

    /// The bias's second row; zeros without a bias.
    fn recurrent_bias(&self, g: &mut Graph, w: &Weights) -> Result<Option<NodeId>> {
        let width = 3 * self.rnn.units;
        Ok(Some(match w.bias {
            Some(b) if self.reset_after => {
                let row = g.slice(b, 0, 1, 1)?;
                g.reshape(row, [width])?
            }
            _ => g.fill(0.0, [width]),
        }))
    }

    fn class(&self) -> &'static str {
        "GRU"
    }

    fn gates(&self) -> usize {
        3
    }

    fn state_count(&self) -> usize {
        1
    }

    fn bias(&self) -> (Vec<usize>, Init) {
        let width = 3 * self.rnn.units;
        let shape = if self.reset_after { vec![2, width] } else { vec![width] };
        (shape, self.rnn.bias_initializer)
    }

    fn input_bias(&self, g: &mut Graph, bias: NodeId) -> Result<NodeId> {
        if !self.reset_after {
            return Ok(bias);
        }
        let width = 3 * self.rnn.units;
        let row = g.slice(bias, 0, 0, 1)?;
        Ok(g.reshape(row, [width])?)
    }

    fn step(&self, g: &mut Graph, xw: NodeId, state: Option<&[NodeId]>, w: &Weights) -> Result<Vec<NodeId>> {
        let (units, act, rec) = (self.rnn.units, self.rnn.activation, self.rnn.recurrent_activation);
        let n = g.shape(xw)?.dims()[0];
        let recurrent_bias = match (self.reset_after, w.bias) {
            (true, Some(_)) => self.recurrent_bias(g, w)?,
            _ => None,
        };
        // `h·U` (the first two blocks only, before the reset, without reset_after) plus the
        // recurrent bias; at the first step h is zero, leaving the bias alone.
        let inner = match (state, self.reset_after) {
            (Some(s), true) => Some(w.times_recurrent(g, s[0], 0..3, units)?),
            (Some(s), false) => Some(w.times_recurrent(g, s[0], 0..2, units)?),
            (None, _) => None,
        };
        let inner = match (inner, recurrent_bias) {
            (Some(m), Some(b)) => Some(g.bias_add(m, b)?),
            (Some(m), None) => Some(m),
            (None, Some(b)) => Some(g.push(kiln_graph::ReduceOp::Broadcast { axis: 0, size: n }, &[b])?),
            (None, None) => None,
        };
        let gate_of = |g: &mut Graph, k: usize| -> Result<NodeId> {
            let x = gate(g, xw, k, units)?;
            match inner {
                Some(m) => {
                    let r = gate(g, m, k, units)?;
                    Ok(g.add(x, r)?)
                }
                None => Ok(x),
            }
        };
        let z = gate_of(g, 0)?;
        let z = activate(g, z, rec)?;
        let r = gate_of(g, 1)?;
        let r = activate(g, r, rec)?;
        let x_h = gate(g, xw, 2, units)?;
        let recurrent_h = match (state, self.reset_after, inner) {
            (_, true, Some(m)) => {
                let m_h = gate(g, m, 2, units)?;
                Some(g.mul(r, m_h)?)
            }
            (Some(s), false, _) => {
                let u_h = g.slice(w.recurrent, 1, 2 * units, units)?;
                let h = w.state_for(g, s[0], 2)?;
                let reset = g.mul(r, h)?;
                Some(g.matmul(reset, u_h, false, false)?)
            }
            _ => None,
        };
        let hh = match recurrent_h {
            Some(rh) => g.add(x_h, rh)?,
            None => x_h,
        };
        let hh = activate(g, hh, act)?;
        // h' = z·h + (1 - z)·h̃ = h̃ + z·(h - h̃).
        let h = match state {
            Some(s) => {
                let diff = g.sub(s[0], hh)?;
                let moved = g.mul(z, diff)?;
                g.add(hh, moved)?
            }
            None => {
                let moved = g.mul(z, hh)?;
                g.sub(hh, moved)?
            }
        };
        Ok(vec![h])
    }
}

/// Runs `cell` over `x [n, steps, features]`, the steps in reverse when `reverse`, from the
/// `initial` state (zeros when `None`); returns each step's output `[n, units]` in the order the
/// steps ran, and the state after the last.
///
/// With a `mask [n, steps]`, a padded step leaves the state as it was and repeats the previous
/// output (the state's `h`: zeros, or the initial `h₀`, before the first real step), as Keras'
/// `rnn` loop does with a mask (keras/src/backend/*/rnn.py, `zero_output_for_mask` off):
/// `s' = s + m·(step(s) - s)`.
fn unroll(
    g: &mut Graph,
    cell: &dyn Cell,
    x: NodeId,
    w: &Weights,
    reverse: bool,
    mask: Option<NodeId>,
    initial: Option<&[NodeId]>,
) -> Result<(Vec<NodeId>, Vec<NodeId>)> {
    let (xw, n, steps) = project(g, cell, x, w)?;
    let width = cell.gates() * cell.rnn().units;
    let mut state: Option<Vec<NodeId>> = initial.map(<[NodeId]>::to_vec);
    let mut outputs = Vec::with_capacity(steps);
    let order: Box<dyn Iterator<Item = usize>> = if reverse {
        Box::new((0..steps).rev())
    } else {
        Box::new(0..steps)
    };
    for t in order {
        let at = g.slice(xw, 1, t, 1)?;
        let at = g.reshape(at, [n, width])?;
        let mut next = cell.step(g, at, state.as_deref(), w)?;
        if let Some(mask) = mask {
            let units = cell.rnn().units;
            let m = g.slice(mask, 1, t, 1)?;
            let m = g.reshape(m, [n])?;
            let m = super::spread_mask(g, m, units)?;
            for (k, s) in next.iter_mut().enumerate() {
                *s = match state.as_deref() {
                    Some(prev) => {
                        let change = g.sub(*s, prev[k])?;
                        let kept = g.mul(m, change)?;
                        g.add(prev[k], kept)?
                    }
                    None => g.mul(m, *s)?,
                };
            }
        }
        outputs.push(next[0]);
        state = Some(next);
    }
    Ok((outputs, state.expect("a sequence has a step")))
}

/// The input projection of every step in one product: `(x·kernel + bias [n, steps, gates·units],
/// n, steps)`.
fn project(g: &mut Graph, cell: &dyn Cell, x: NodeId, w: &Weights) -> Result<(NodeId, usize, usize)> {
    let &[n, steps, features] = g.shape(x)?.dims() else {
        return Err(Error::invalid(
            cell.class(),
            "expects a batch of sequences [n, steps, features]",
        ));
    };
    let (units, gates) = (cell.rnn().units, cell.gates());
    let width = gates * units;
    let mut xw = match w.masks.input[..] {
        [] => {
            let rows = g.reshape(x, [n * steps, features])?;
            g.matmul(rows, w.kernel, false, false)?
        }
        [mask] => {
            let dropped = g.mul(x, mask)?;
            let rows = g.reshape(dropped, [n * steps, features])?;
            g.matmul(rows, w.kernel, false, false)?
        }
        ref per_gate => {
            // Keras' implementation 1: gate k reads the input through its own mask.
            let mut parts = Vec::with_capacity(gates);
            for (k, &mask) in per_gate.iter().enumerate() {
                let dropped = g.mul(x, mask)?;
                let rows = g.reshape(dropped, [n * steps, features])?;
                let kernel = g.slice(w.kernel, 1, k * units, units)?;
                parts.push(g.matmul(rows, kernel, false, false)?);
            }
            g.concat(&parts, 1)?
        }
    };
    if let Some(b) = w.bias {
        let b = cell.input_bias(g, b)?;
        xw = g.bias_add(xw, b)?;
    }
    Ok((g.reshape(xw, [n, steps, width])?, n, steps))
}

/// A recurrence's outputs: each step's `[n, units]` in reading order and the final state
/// (unrolled), or the fused op's `states` with every step's `h` as `[n, steps, units]` at its own
/// time index.
enum Steps {
    Read {
        outputs: Vec<NodeId>,
        last: Vec<NodeId>,
        reverse: bool,
    },
    Timed {
        states: NodeId,
        op: RecurrentOp,
        h: NodeId,
        reverse: bool,
    },
}

/// Which way a returned sequence runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Time,
    Reversed,
}

/// Runs `cell` over `x` from the `initial` state (zeros when `None`): as one fused step where
/// the cell has a kernel for this configuration (an LSTM or a `reset_after` GRU, without a mask
/// or recurrent dropout), else unrolled into the graph.
fn run(
    g: &mut Graph,
    cell: &dyn Cell,
    x: NodeId,
    w: &Weights,
    reverse: bool,
    mask: Option<NodeId>,
    initial: Option<&[NodeId]>,
) -> Result<Steps> {
    // One workgroup per sequence on the GPU: a batch past a dispatch dimension unrolls.
    let fits = g
        .shape(x)?
        .dims()
        .first()
        .is_some_and(|&n| n <= kiln_graph::ops::matmul::MAX_BATCH);
    if let Some(op) = cell
        .fused(reverse, initial.is_some())
        .filter(|_| mask.is_none() && fits && w.masks.recurrent.is_empty())
    {
        let (xw, _, _) = project(g, cell, x, w)?;
        let mut operands = vec![xw, w.recurrent];
        operands.extend(cell.recurrent_bias(g, w)?);
        if let Some(parts) = initial {
            // The kernels read the state as one `[n, k·units]` operand: h₀ then c₀.
            operands.push(if let [one] = parts { *one } else { g.concat(parts, 1)? });
        }
        let states = g.push(op, &operands)?;
        let u = cell.rnn().units;
        // h is the last value of each step's states.
        let h = g.slice(states, 2, (op.state_width() - 1) * u, u)?;
        return Ok(Steps::Timed { states, op, h, reverse });
    }
    let (outputs, last) = unroll(g, cell, x, w, reverse, mask, initial)?;
    Ok(Steps::Read { outputs, last, reverse })
}

impl Steps {
    /// The order the steps were read in.
    fn reading(&self) -> Order {
        let (Steps::Read { reverse, .. } | Steps::Timed { reverse, .. }) = *self;
        if reverse {
            Order::Reversed
        } else {
            Order::Time
        }
    }

    /// The output of the step read last, `[n, units]`.
    fn last(&self, g: &mut Graph) -> Result<NodeId> {
        match *self {
            Steps::Read { ref outputs, .. } => Ok(*outputs.last().expect("a sequence has a step")),
            Steps::Timed { h, reverse, .. } => {
                let [n, steps, units]: [usize; 3] = g.shape(h)?.dims().try_into().expect("[n, steps, units]");
                let at = g.slice(h, 1, if reverse { 0 } else { steps - 1 }, 1)?;
                Ok(g.reshape(at, [n, units])?)
            }
        }
    }

    /// The state after the step read last, `[n, units]` each: its `h` ([`Steps::last`]) and the
    /// LSTM's `c`.
    fn final_state(&self, g: &mut Graph) -> Result<Vec<NodeId>> {
        let mut state = vec![self.last(g)?];
        match *self {
            Steps::Read { ref last, .. } => state.extend(last.get(1).copied()),
            // The LSTM's c sits just before its h in each step's states.
            Steps::Timed {
                states, op, reverse, ..
            } if op.initial_width() == 2 => {
                let [n, steps, width]: [usize; 3] = g.shape(states)?.dims().try_into().expect("[n, steps, width]");
                let units = width / op.state_width();
                let step = g.slice(states, 1, if reverse { 0 } else { steps - 1 }, 1)?;
                let c = g.slice(step, 2, width - 2 * units, units)?;
                state.push(g.reshape(c, [n, units])?);
            }
            Steps::Timed { .. } => {}
        }
        Ok(state)
    }

    /// Every step's output `[n, steps, units]`, in `order`.
    fn sequence(&self, g: &mut Graph, order: Order) -> Result<NodeId> {
        let (mut parts, given) = match *self {
            Steps::Timed { h, .. } if order == Order::Time => return Ok(h),
            Steps::Timed { h, .. } => {
                let steps = g.shape(h)?.dims()[1];
                let parts = (0..steps)
                    .map(|t| g.slice(h, 1, t, 1))
                    .collect::<kiln_graph::Result<Vec<_>>>()?;
                (parts, Order::Time)
            }
            Steps::Read { ref outputs, .. } => {
                let [n, units]: [usize; 2] = g.shape(outputs[0])?.dims().try_into().expect("[n, units]");
                let parts = outputs
                    .iter()
                    .map(|&h| g.reshape(h, [n, 1, units]))
                    .collect::<kiln_graph::Result<Vec<_>>>()?;
                (parts, self.reading())
            }
        };
        if given != order {
            parts.reverse();
        }
        Ok(g.concat(&parts, 1)?)
    }

    /// The layer's output: the last step's, or every step's in reading order (Keras returns a
    /// `go_backwards` sequence reversed).
    fn output(&self, g: &mut Graph, sequences: bool) -> Result<NodeId> {
        if sequences {
            self.sequence(g, self.reading())
        } else {
            self.last(g)
        }
    }
}

/// The layer impl of a recurrent cell.
macro_rules! recurrent_layer {
    ($ty:ident, $kind:literal) => {
        impl Layer for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn config(&self) -> LayerConfig {
                LayerConfig::$ty(self.clone())
            }

            fn input_shape(&self) -> Option<Vec<usize>> {
                self.rnn.input_shape.clone()
            }

            fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
                let (steps, _) = self.rnn.sequence(self.class(), inputs, self.state_count())?;
                Ok(self.rnn.output_shape(steps))
            }

            fn state_shapes(&self, _inputs: &[Vec<usize>]) -> Vec<Vec<usize>> {
                self.rnn.state_shapes(self.state_count())
            }

            fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
                let features = inputs.first().and_then(|s| s.last()).copied().unwrap_or(0);
                Cell::params(self, features)
            }

            fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut> {
                self.build_masked(g, xs, &[], params, training)
            }

            fn build_masked(
                &self,
                g: &mut Graph,
                xs: &[NodeId],
                masks: &[Option<NodeId>],
                params: &[NodeId],
                training: bool,
            ) -> Result<LayerOut> {
                Ok(self.build_states(g, xs, masks, params, training)?.0)
            }

            fn build_states(
                &self,
                g: &mut Graph,
                xs: &[NodeId],
                masks: &[Option<NodeId>],
                params: &[NodeId],
                training: bool,
            ) -> Result<(LayerOut, Vec<NodeId>)> {
                let mask = masks.first().copied().flatten();
                let masks = self.rnn.masks(g, xs[0], training, self.gates())?;
                let initial = (xs.len() > 1).then(|| &xs[1..]);
                let steps = run(
                    g,
                    self,
                    xs[0],
                    &Weights::of(params, masks),
                    self.rnn.go_backwards,
                    mask,
                    initial,
                )?;
                let output = plain(steps.output(g, self.rnn.return_sequences)?);
                let states = if self.rnn.return_state {
                    steps.final_state(g)?
                } else {
                    Vec::new()
                };
                Ok((output, states))
            }

            fn output_mask(&self, _g: &mut Graph, _xs: &[NodeId], masks: &[Option<NodeId>]) -> Result<Option<NodeId>> {
                Ok(self.rnn.sequence_mask(masks))
            }
        }
    };
}

recurrent_layer!(LSTM, "lstm");
recurrent_layer!(GRU, "gru");

/// `x [n, steps, features]` through `layer` (an [`LSTM`] or a [`GRU`]) with these weights, in
/// Keras' layout: the layer's output, built on its own (for tests, and for layers composed from
/// a recurrence).
pub fn recurrence(
    g: &mut Graph,
    layer: &Wrapped,
    x: NodeId,
    kernel: NodeId,
    recurrent: NodeId,
    bias: Option<NodeId>,
) -> Result<NodeId> {
    let (output, _) = recurrence_with_state(g, layer, x, &[], [kernel, recurrent], bias)?;
    Ok(output)
}

/// As [`recurrence`], from the `initial` state (`h₀` and the LSTM's `c₀`, `[n, units]` each; none
/// for zeros): the layer's output and its final state (the LSTM's `h` and `c`, the GRU's `h`).
pub fn recurrence_with_state(
    g: &mut Graph,
    layer: &Wrapped,
    x: NodeId,
    initial: &[NodeId],
    [kernel, recurrent]: [NodeId; 2],
    bias: Option<NodeId>,
) -> Result<(NodeId, Vec<NodeId>)> {
    let (cell, w) = (
        layer.cell(),
        Weights {
            kernel,
            recurrent,
            bias,
            masks: Masks::default(),
        },
    );
    let initial = (!initial.is_empty()).then_some(initial);
    let steps = run(g, cell, x, &w, cell.rnn().go_backwards, None, initial)?;
    Ok((steps.output(g, cell.rnn().return_sequences)?, steps.final_state(g)?))
}

/// The recurrent layers [`Bidirectional`] can wrap.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "class_name", content = "config")]
pub enum Wrapped {
    LSTM(LSTM),
    GRU(GRU),
}

impl From<LSTM> for Wrapped {
    fn from(l: LSTM) -> Self {
        Wrapped::LSTM(l)
    }
}

impl From<GRU> for Wrapped {
    fn from(l: GRU) -> Self {
        Wrapped::GRU(l)
    }
}

impl Wrapped {
    fn cell(&self) -> &dyn Cell {
        match self {
            Wrapped::LSTM(l) => l,
            Wrapped::GRU(l) => l,
        }
    }
}

/// Keras' `Bidirectional` with `merge_mode="concat"`: the wrapped layer reads the sequence
/// forwards, a copy with its own weights reads it backwards (`go_backwards` flipped), and their
/// outputs are joined on the last axis, the forward one first. With `return_sequences` the
/// backward outputs are put back in time order first, so step `t` joins both readings of `t`.
/// Weights: the forward layer's, then the backward one's, named `forward_…` and `backward_…`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bidirectional {
    layer: Wrapped,
}

impl Bidirectional {
    /// Wraps an [`LSTM`] or a [`GRU`].
    pub fn new(layer: impl Into<Wrapped>) -> Self {
        Bidirectional { layer: layer.into() }
    }
}

/// `forward_…` / `backward_…` names of the wrapped layer's weights.
fn directed(name: &'static str, forward: bool) -> &'static str {
    match (name, forward) {
        ("kernel", true) => "forward_kernel",
        ("recurrent_kernel", true) => "forward_recurrent_kernel",
        ("bias", true) => "forward_bias",
        ("kernel", false) => "backward_kernel",
        ("recurrent_kernel", false) => "backward_recurrent_kernel",
        ("bias", false) => "backward_bias",
        (other, _) => other,
    }
}

impl Layer for Bidirectional {
    fn kind(&self) -> &'static str {
        "bidirectional"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Bidirectional(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.layer.cell().rnn().input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let cell = self.layer.cell();
        let (steps, _) = cell.rnn().sequence("Bidirectional", inputs, 2 * cell.state_count())?;
        let mut out = cell.rnn().output_shape(steps);
        *out.last_mut().expect("an output has an axis") *= 2;
        Ok(out)
    }

    fn state_shapes(&self, _inputs: &[Vec<usize>]) -> Vec<Vec<usize>> {
        let cell = self.layer.cell();
        cell.rnn().state_shapes(2 * cell.state_count())
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let features = inputs.first().and_then(|s| s.last()).copied().unwrap_or(0);
        let one = self.layer.cell().params(features);
        let named = |forward: bool| {
            one.iter().cloned().map(move |mut p| {
                p.name = directed(p.name, forward);
                p
            })
        };
        named(true).chain(named(false)).collect()
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut> {
        self.build_masked(g, xs, &[], params, training)
    }

    fn output_mask(&self, _g: &mut Graph, _xs: &[NodeId], masks: &[Option<NodeId>]) -> Result<Option<NodeId>> {
        Ok(self.layer.cell().rnn().sequence_mask(masks))
    }

    fn build_masked(
        &self,
        g: &mut Graph,
        xs: &[NodeId],
        masks: &[Option<NodeId>],
        params: &[NodeId],
        training: bool,
    ) -> Result<LayerOut> {
        Ok(self.build_states(g, xs, masks, params, training)?.0)
    }

    /// Keras' `Bidirectional.call`: the initial states' first half starts the forward layer, the
    /// second half the backward one, and the returned states are the forward layer's then the
    /// backward layer's.
    fn build_states(
        &self,
        g: &mut Graph,
        xs: &[NodeId],
        masks: &[Option<NodeId>],
        params: &[NodeId],
        training: bool,
    ) -> Result<(LayerOut, Vec<NodeId>)> {
        let cell = self.layer.cell();
        let rnn = cell.rnn();
        let half = params.len() / 2;
        let mask = masks.first().copied().flatten();
        let (fw_initial, bw_initial) = match &xs[1..] {
            [] => (None, None),
            states => {
                let (fw, bw) = states.split_at(states.len() / 2);
                (Some(fw), Some(bw))
            }
        };
        // Each direction draws its own dropout masks, as Keras' two copies of the layer do.
        let (fw, bw) = (
            rnn.masks(g, xs[0], training, cell.gates())?,
            rnn.masks(g, xs[0], training, cell.gates())?,
        );
        let forward = run(
            g,
            cell,
            xs[0],
            &Weights::of(&params[..half], fw),
            rnn.go_backwards,
            mask,
            fw_initial,
        )?;
        let backward = run(
            g,
            cell,
            xs[0],
            &Weights::of(&params[half..], bw),
            !rnn.go_backwards,
            mask,
            bw_initial,
        )?;
        let mut states = Vec::new();
        if rnn.return_state {
            states.extend(forward.final_state(g)?);
            states.extend(backward.final_state(g)?);
        }
        let (forward, backward) = if rnn.return_sequences {
            // Keras flips the backward layer's returned sequence: the opposite of its reading order.
            let flipped = match backward.reading() {
                Order::Time => Order::Reversed,
                Order::Reversed => Order::Time,
            };
            (forward.output(g, true)?, backward.sequence(g, flipped)?)
        } else {
            (forward.last(g)?, backward.last(g)?)
        };
        let axis = g.shape(forward)?.rank() - 1;
        Ok((plain(g.concat(&[forward, backward], axis)?), states))
    }
}
