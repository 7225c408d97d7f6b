//! Keras' `mixed_float16` dtype policy and the dynamic loss scaling that comes with it
//! (keras/src/dtype_policies/dtype_policy.py, keras/src/optimizers/loss_scale_optimizer.py).
//!
//! Under the policy, every value that crosses from one layer to the next is an f16 value, and each
//! layer reads its weights as f16 values (BatchNormalization, LayerNormalization and Embedding keep
//! theirs in f32, as Keras' `autocast=False` there); what a layer computes inside — matmul
//! accumulation, normalisation statistics, softmax — stays f32, and the master weights and the
//! optimizer's state are f32. The model's output layer computes in f32, as Keras' guide tells its
//! users to ask for (`dtype="float32"` on the last layer), so the loss never sees f16 logits.
//!
//! f16 values are made by [`ElementwiseOp::RoundF16`]: each rounds to the value f16 storage would
//! hold, and its backward rounds the gradient the same way, so gradients underflow and overflow
//! where real f16 gradients do. Storage stays f32: the policy has f16's numerics on every backend,
//! not yet its memory and bandwidth.
//!
//! The loss is multiplied by a scale before the backward pass and the gradients divided by it
//! after, so small gradients survive f16; when a scaled gradient overflows, the step is skipped
//! (the optimizer's `apply` operand is 0: no parameter, moment or update count changes) and the
//! scale halves; after `growth_steps` finite steps in a row it doubles. All of it is graph ops on
//! three persistent `[1]` tensors, inside the one submit of a training step.

use kiln_graph::{
    ElementwiseOp, Graph, NodeId, PersistentId, PersistentKind, PersistentSpec, ReduceOp, Shape, UpdateOp,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The precision a model computes in (Keras' `DTypePolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DTypePolicy {
    /// Everything f32.
    #[default]
    Float32,
    /// f16 activations and weights as layers read them, f32 accumulation, master weights and
    /// optimizer state, with dynamic loss scaling (Keras' `"mixed_float16"`).
    MixedFloat16,
}

impl DTypePolicy {
    /// Keras' name for the policy.
    pub fn name(self) -> &'static str {
        match self {
            DTypePolicy::Float32 => "float32",
            DTypePolicy::MixedFloat16 => "mixed_float16",
        }
    }

    /// The policy Keras names `name`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "float32" => Ok(DTypePolicy::Float32),
            "mixed_float16" => Ok(DTypePolicy::MixedFloat16),
            other => Err(Error::invalid(
                "dtype policy",
                format!("unknown policy `{other}`; Kiln has `float32` and `mixed_float16`"),
            )),
        }
    }

    /// Whether layers exchange f16 values.
    pub(crate) fn rounds(self) -> bool {
        match self {
            DTypePolicy::Float32 => false,
            DTypePolicy::MixedFloat16 => true,
        }
    }
}

/// Dynamic loss scaling's settings, Keras' `LossScaleOptimizer` arguments.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// The scale training starts at (Keras: 2¹⁵).
    pub initial: f32,
    /// Finite steps in a row after which the scale doubles (Keras: 2000).
    pub growth_steps: u32,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            initial: 32768.0,
            growth_steps: 2000,
        }
    }
}

impl LossScale {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.initial.is_finite() && self.initial > 0.0) {
            return Err(Error::invalid(
                "loss scale",
                format!("initial scale {} is not a positive finite number", self.initial),
            ));
        }
        if self.growth_steps == 0 {
            return Err(Error::invalid("loss scale", "growth_steps must be at least 1"));
        }
        Ok(())
    }
}

/// The loss scale's persistent tensors in a compiled model.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScaleState {
    pub settings: LossScale,
    /// The current scale, `[1]`.
    pub scale: PersistentId,
    /// Finite steps since the scale last changed, `[1]`.
    pub counter: PersistentId,
    /// Updates applied (skipped steps not counted): the optimizer's iterations, `[1]`.
    pub iterations: PersistentId,
}

impl ScaleState {
    /// Adds the three tensors to `specs` (saved with the optimizer's state, under Keras' names).
    pub fn declare(settings: LossScale, specs: &mut Vec<PersistentSpec>) -> Self {
        let mut add = |name: &str| {
            specs.push(PersistentSpec {
                name: format!("loss_scale_optimizer/{name}"),
                shape: Shape::new([1]),
                kind: PersistentKind::OptimizerState,
            });
            PersistentId(specs.len() - 1)
        };
        ScaleState {
            settings,
            scale: add("dynamic_scale"),
            counter: add("step_counter"),
            iterations: add("iterations"),
        }
    }

    /// `loss · scale`, the value the backward pass starts from.
    pub fn scaled(&self, g: &mut Graph, loss: NodeId) -> Result<NodeId> {
        let scale = g.persistent(self.scale);
        Ok(g.push(ElementwiseOp::ScaleByScalar, &[loss, scale])?)
    }

    /// The gradients of the scaled loss divided by the scale, and the step's `apply` flag: 1 when
    /// every gradient is finite, 0 when one overflowed (Keras' `check_finite`).
    pub fn unscale(&self, g: &mut Graph, grads: Vec<NodeId>) -> Result<(Vec<NodeId>, NodeId)> {
        let one = g.constant(&[1.0], [1])?;
        let scale = g.persistent(self.scale);
        let inverse = g.div(one, scale)?;
        let mut overflowed = None;
        let mut unscaled = Vec::with_capacity(grads.len());
        for grad in grads {
            // One reduction per gradient over its flat view (a reshape aliases, costing nothing),
            // rather than one per axis.
            let bad = g.unary(ElementwiseOp::NonFinite, grad)?;
            let numel = g.shape(bad)?.numel();
            let bad = g.reshape(bad, [numel])?;
            let bad = g.unary(ReduceOp::Sum { axis: 0 }, bad)?;
            overflowed = Some(match overflowed {
                None => bad,
                Some(total) => g.add(total, bad)?,
            });
            unscaled.push(g.push(ElementwiseOp::ScaleByScalar, &[grad, inverse])?);
        }
        let apply = match overflowed {
            Some(count) => {
                let count = g.reshape(count, [1])?;
                let any = g.unary(ElementwiseOp::Greater { threshold: 0.5 }, count)?;
                g.sub(one, any)?
            }
            None => one,
        };
        Ok((unscaled, apply))
    }

    /// The 1-based update count the optimizer and a schedule read: applied updates + 1.
    pub fn step(&self, g: &mut Graph) -> Result<NodeId> {
        let iterations = g.persistent(self.iterations);
        let one = g.constant(&[1.0], [1])?;
        Ok(g.add(iterations, one)?)
    }

    /// Moves the scale on after the step, in place (pushed after every reader of the three
    /// tensors): a skipped step halves it and restarts the count; the `growth_steps`-th finite step
    /// in a row doubles it and restarts the count; any other finite step counts one.
    pub fn advance(&self, g: &mut Graph, apply: NodeId) -> Result<()> {
        let (scale, counter, iterations) = (
            g.persistent(self.scale),
            g.persistent(self.counter),
            g.persistent(self.iterations),
        );
        let one = g.constant(&[1.0], [1])?;
        let last = g.constant(&[(self.settings.growth_steps - 1) as f32], [1])?;
        let at_last = g.push(ElementwiseOp::Equal, &[counter, last])?;
        let grow = g.mul(apply, at_last)?;
        // counter' = apply · (counter + 1) · (1 - grow)
        let next = g.add(counter, one)?;
        let next = g.mul(next, apply)?;
        let keep = g.sub(one, grow)?;
        let next_counter = g.mul(next, keep)?;
        // scale' = scale · (½ + ½·apply + grow): ½ skipped, 1 counted, 2 grown.
        let factor = g.scale(apply, 0.5)?;
        let half = g.constant(&[0.5], [1])?;
        let factor = g.add(factor, half)?;
        let factor = g.add(factor, grow)?;
        let next_scale = g.mul(scale, factor)?;
        let assign = UpdateOp::MovingAverage { momentum: 0.0 };
        g.push(assign, &[counter, next_counter])?;
        g.push(assign, &[scale, next_scale])?;
        g.push(UpdateOp::AccumulateSum, &[iterations, apply])?;
        Ok(())
    }
}
