//! In-place updates of persistent tensors: the optimizers' steps and the metric accumulators. These
//! are the only ops with no output; the scheduler checks that each runs after every other reader of
//! what it writes.

use super::check::{not_differentiable, same};
use super::{op_names, Backward, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateOp {
    /// Adam in Keras' form, in place on `(param, m, v)`; operands `(param, m, v, grad, step[1])`
    /// where `step` is the 1-based update count.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
    /// SGD with (optionally Nesterov) momentum, in place on `(param, velocity)`; operands
    /// `(param, velocity, grad)`.
    Sgd { lr: f32, momentum: f32, nesterov: bool },
    /// `acc[j] += Σ_r x[r·m + j]` where `m` is the accumulator's element count (a scalar accumulator
    /// sums all of `x`), in place on `acc`; operands `(acc, x)`.
    AccumulateSum,
}

op_names!(UpdateOp {
    Adam => "adam_update",
    Sgd => "sgd_update",
    AccumulateSum => "accumulate_sum",
});

impl Family for UpdateOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            UpdateOp::Adam { .. } => 5,
            UpdateOp::Sgd { .. } => 3,
            UpdateOp::AccumulateSum => 2,
        }
    }

    fn mutated_operands(&self) -> &'static [usize] {
        match self {
            UpdateOp::Adam { .. } => &[0, 1, 2],
            UpdateOp::Sgd { .. } => &[0, 1],
            UpdateOp::AccumulateSum => &[0],
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        match self {
            UpdateOp::Adam { .. } => {
                for m in &s[1..4] {
                    same(name, s[0], m)?;
                }
                if s[4].numel() != 1 {
                    return Err(Error::shape(
                        name,
                        format!("step {}", s[4]),
                        "a one-element step counter",
                    ));
                }
            }
            UpdateOp::Sgd { .. } => {
                same(name, s[0], s[1])?;
                same(name, s[0], s[2])?;
            }
            UpdateOp::AccumulateSum => {
                let m = s[0].numel();
                if m == 0 || !s[1].numel().is_multiple_of(m) {
                    return Err(Error::shape(
                        name,
                        format!("accumulator {}, values {}", s[0], s[1]),
                        "values in whole rows of the accumulator's size",
                    ));
                }
            }
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
