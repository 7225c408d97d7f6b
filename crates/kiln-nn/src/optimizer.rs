//! Optimizers, with Keras' defaults. Their updates are ops of the training graph.

use kiln_graph::UpdateOp;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// An optimizer and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Adam: Keras' defaults are `lr 1e-3, β₁ 0.9, β₂ 0.999, ε 1e-7`.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
    /// SGD with optional (Nesterov) momentum: Keras' defaults are `lr 0.01`, no momentum.
    Sgd { lr: f32, momentum: f32, nesterov: bool },
}

impl Optimizer {
    /// Adam with Keras' defaults.
    pub fn adam() -> Self {
        Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }

    /// Adam with learning rate `lr` and Keras' other defaults.
    pub fn adam_lr(lr: f32) -> Self {
        match Self::adam() {
            Optimizer::Adam {
                beta1, beta2, epsilon, ..
            } => Optimizer::Adam {
                lr,
                beta1,
                beta2,
                epsilon,
            },
            other => other,
        }
    }

    /// SGD with learning rate `lr`, no momentum.
    pub fn sgd(lr: f32) -> Self {
        Optimizer::Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
        }
    }

    /// SGD with momentum.
    pub fn sgd_momentum(lr: f32, momentum: f32, nesterov: bool) -> Self {
        Optimizer::Sgd { lr, momentum, nesterov }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f32 {
        match *self {
            Optimizer::Adam { lr, .. } | Optimizer::Sgd { lr, .. } => lr,
        }
    }

    /// Checks the hyper-parameters against the ranges Keras' optimizers accept (`compile` calls it):
    /// a finite, positive learning rate; Adam's `β₁`, `β₂` in [0, 1) and a positive `ε`; SGD's momentum
    /// in [0, 1] (keras/src/optimizers/sgd.py raises outside it).
    pub fn validate(&self) -> Result<()> {
        let lr = self.learning_rate();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::invalid(
                "optimizer",
                format!("learning rate {lr} is not a positive finite number (Keras' defaults: Adam 0.001, SGD 0.01)"),
            ));
        }
        match *self {
            Optimizer::Adam {
                beta1, beta2, epsilon, ..
            } => {
                for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(Error::invalid(
                            "Adam",
                            format!("{name} {b} is not in [0, 1) (Keras' defaults: beta1 0.9, beta2 0.999)"),
                        ));
                    }
                }
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(Error::invalid(
                        "Adam",
                        format!("epsilon {epsilon} is not a positive finite number (Keras' default: 1e-7)"),
                    ));
                }
            }
            Optimizer::Sgd { momentum, .. } => {
                if !(0.0..=1.0).contains(&momentum) {
                    return Err(Error::invalid("SGD", format!("momentum {momentum} is not in [0, 1]")));
                }
            }
        }
        Ok(())
    }

    /// Names of the state tensors kept per parameter.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Adam { .. } => &["adam_m", "adam_v"],
            Optimizer::Sgd { .. } => &["sgd_velocity"],
        }
    }

    /// The in-place update op.
    pub fn op(&self) -> UpdateOp {
        match *self {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                epsilon,
            } => UpdateOp::Adam {
                lr,
                beta1,
                beta2,
                epsilon,
            },
            Optimizer::Sgd { lr, momentum, nesterov } => UpdateOp::Sgd { lr, momentum, nesterov },
        }
    }

    /// Whether the update reads the step counter.
    pub fn uses_step(&self) -> bool {
        matches!(self, Optimizer::Adam { .. })
    }
}
