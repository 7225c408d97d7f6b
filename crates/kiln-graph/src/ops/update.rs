//! In-place updates of persistent tensors: the optimizers' steps and the metric accumulators. These
//! are the only ops with no output; the scheduler checks that each runs after every other reader of
//! what it writes.

use super::check::{not_differentiable, same};
use super::{op_names, Backward, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

/// An in-place update. The optimizers follow Keras 3's `update_step` (keras/src/optimizers/<name>.py);
/// each first applies Keras' decoupled weight decay, `p -= p · weight_decay · lr`
/// (`BaseOptimizer._apply_weight_decay`), when `weight_decay` is not 0.
///
/// Operands are `(param, state..., grad, lr[, step], apply)`: the parameter and the optimizer's
/// state tensors (updated in place, in [`UpdateOp::state_count`] order), the gradient, the learning
/// rate as a `[1]` tensor (fed by the host, or computed from the step by a [`crate::ScheduleOp`]),
/// for the optimizers whose update depends on the 1-based update count, that count as a `[1]`
/// tensor, and last `apply [1]`: the update happens where it is non-zero and leaves the parameter
/// and its state untouched where it is 0 — a step whose loss-scaled gradients overflowed, skipped
/// as Keras' `LossScaleOptimizer` skips it (PyTorch's fused optimizers take their `found_inf` the
/// same way).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateOp {
    /// Adam, state `(m, v[, v_hat])`: `v_hat` (the running maximum of `v`) only with `amsgrad`.
    /// AdamW is Adam with a weight decay.
    Adam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        weight_decay: f32,
        amsgrad: bool,
    },
    /// Nadam (Adam with Nesterov momentum and Keras' 0.96 momentum schedule), state `(m, v)`.
    Nadam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        weight_decay: f32,
    },
    /// Adamax (the infinity-norm Adam), state `(m, u)`.
    Adamax {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        weight_decay: f32,
    },
    /// SGD with (optionally Nesterov) momentum, state `(velocity)`.
    Sgd {
        momentum: f32,
        nesterov: bool,
        weight_decay: f32,
    },
    /// RMSprop, state `(velocity[, momentum][, average_gradient])`: the momentum buffer only when
    /// `momentum > 0`, the average gradient only when `centered`, as Keras creates them.
    RmsProp {
        rho: f32,
        momentum: f32,
        epsilon: f32,
        centered: bool,
        weight_decay: f32,
    },
    /// Adagrad, state `(accumulator)` (Keras starts it at `initial_accumulator_value`, 0.1).
    Adagrad { epsilon: f32, weight_decay: f32 },
    /// Lion (sign of an interpolated momentum), state `(m)`.
    Lion { beta1: f32, beta2: f32, weight_decay: f32 },
    /// `acc[j] += Σ_r x[r·m + j]` where `m` is the accumulator's element count (a scalar accumulator
    /// sums all of `x`), in place on `acc`; operands `(acc, x)`.
    AccumulateSum,
    /// `avg = avg·momentum + x·(1 - momentum)` element by element, in place on `avg`; operands
    /// `(avg, x)` of one shape. BatchNormalization's moving statistics
    /// (keras/src/layers/normalization/batch_normalization.py).
    MovingAverage { momentum: f32 },
}

op_names!(UpdateOp {
    Adam => "adam_update",
    Nadam => "nadam_update",
    Adamax => "adamax_update",
    Sgd => "sgd_update",
    RmsProp => "rmsprop_update",
    Adagrad => "adagrad_update",
    Lion => "lion_update",
    AccumulateSum => "accumulate_sum",
    MovingAverage => "moving_average",
});

impl UpdateOp {
    /// How many optimizer state tensors follow the parameter (0 for the accumulator).
    pub fn state_count(&self) -> usize {
        match *self {
            UpdateOp::Adam { amsgrad, .. } => 2 + usize::from(amsgrad),
            UpdateOp::Nadam { .. } | UpdateOp::Adamax { .. } => 2,
            UpdateOp::RmsProp { momentum, centered, .. } => 1 + usize::from(momentum > 0.0) + usize::from(centered),
            UpdateOp::Sgd { .. } | UpdateOp::Adagrad { .. } | UpdateOp::Lion { .. } => 1,
            UpdateOp::AccumulateSum | UpdateOp::MovingAverage { .. } => 0,
        }
    }

    /// Whether the update reads the 1-based update count (bias corrections, Nadam's schedule).
    pub fn uses_step(&self) -> bool {
        match self {
            UpdateOp::Adam { .. } | UpdateOp::Nadam { .. } | UpdateOp::Adamax { .. } => true,
            UpdateOp::Sgd { .. }
            | UpdateOp::RmsProp { .. }
            | UpdateOp::Adagrad { .. }
            | UpdateOp::Lion { .. }
            | UpdateOp::AccumulateSum
            | UpdateOp::MovingAverage { .. } => false,
        }
    }

    /// Whether the update is an optimizer's (reads a gradient and the learning rate), not a
    /// statistic's (the accumulator, a moving average).
    pub fn is_optimizer(&self) -> bool {
        match self {
            UpdateOp::Adam { .. }
            | UpdateOp::Nadam { .. }
            | UpdateOp::Adamax { .. }
            | UpdateOp::Sgd { .. }
            | UpdateOp::RmsProp { .. }
            | UpdateOp::Adagrad { .. }
            | UpdateOp::Lion { .. } => true,
            UpdateOp::AccumulateSum | UpdateOp::MovingAverage { .. } => false,
        }
    }

    /// The operand index of the gradient (of `x` for the accumulator); the learning rate follows
    /// it, then the step.
    pub fn grad_operand(&self) -> usize {
        1 + self.state_count()
    }

    /// The operand index of an optimizer's `apply` flag (its last operand).
    pub fn apply_operand(&self) -> usize {
        self.grad_operand() + 2 + usize::from(self.uses_step())
    }
}

impl Family for UpdateOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        // The statistics read only `x`; an optimizer also reads the learning rate and the flag.
        let lr_and_apply = 2 * usize::from(self.is_optimizer());
        self.grad_operand() + 1 + lr_and_apply + usize::from(self.uses_step())
    }

    fn mutated_operands(&self) -> &'static [usize] {
        // The parameter and its state (the statistic alone for the accumulator and moving average).
        &[0, 1, 2, 3][..self.state_count() + 1]
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        if let UpdateOp::AccumulateSum = self {
            let m = s[0].numel();
            if m == 0 || !s[1].numel().is_multiple_of(m) {
                return Err(Error::shape(
                    name,
                    format!("accumulator {}, values {}", s[0], s[1]),
                    "values in whole rows of the accumulator's size",
                ));
            }
            return Ok(None);
        }
        if let UpdateOp::MovingAverage { momentum } = *self {
            if !(0.0..=1.0).contains(&momentum) {
                return Err(Error::invalid(name, format!("momentum {momentum} is not in [0, 1]")));
            }
            return same(name, s[0], s[1]).map(|_| None);
        }
        let grad = self.grad_operand();
        for t in &s[1..=grad] {
            same(name, s[0], t)?;
        }
        if s[grad + 1].numel() != 1 {
            return Err(Error::shape(
                name,
                format!("learning rate {}", s[grad + 1]),
                "a one-element learning rate",
            ));
        }
        if self.uses_step() && s[grad + 2].numel() != 1 {
            return Err(Error::shape(
                name,
                format!("step {}", s[grad + 2]),
                "a one-element step counter",
            ));
        }
        if s[self.apply_operand()].numel() != 1 {
            return Err(Error::shape(
                name,
                format!("apply flag {}", s[self.apply_operand()]),
                "a one-element flag",
            ));
        }
        Ok(None)
    }

    fn backward(&self, _: &mut Graph, _: &Backward) -> Result<Vec<Option<NodeId>>> {
        Err(not_differentiable(
            self.name(),
            "it is an in-place update with no output",
        ))
    }
}
