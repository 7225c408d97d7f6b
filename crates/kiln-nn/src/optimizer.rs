//! Optimizers, with Keras 3's defaults and update rules (keras/src/optimizers/<name>.py). Their
//! updates are ops of the training graph ([`UpdateOp`], whose docs give each rule).

use kiln_graph::{ElementwiseOp, Graph, NodeId, ReduceOp, UpdateOp};

use crate::{Error, LearningRate, Result};
use serde::{Deserialize, Serialize};

/// An optimizer and its hyper-parameters. Build one with the constructors, which take Keras'
/// defaults, and adjust it with [`Optimizer::with_learning_rate`], [`Optimizer::with_weight_decay`]
/// and [`Optimizer::with_amsgrad`].
///
/// `weight_decay` is Keras' decoupled decay on every optimizer: before each update,
/// `p -= p · weight_decay · lr` (`BaseOptimizer._apply_weight_decay`); 0 turns it off.
/// Gradient clipping as Keras' optimizers apply it (`BaseOptimizer._clip_gradients`), inside the
/// training step, before the weight decay and the update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Clipping {
    #[default]
    None,
    /// `clipnorm`: `g · c / max(‖g‖, c)` per gradient.
    Norm(f32),
    /// `global_clipnorm`: every `g · c / max(‖G‖, c)` with `‖G‖` the norm of all gradients together.
    GlobalNorm(f32),
    /// `clipvalue`: `clip(g, -c, c)`.
    Value(f32),
}

impl Clipping {
    /// The gradients `grads` clipped, as graph ops (so clipping stays inside the one-submit step).
    pub fn apply(self, g: &mut Graph, grads: Vec<NodeId>) -> Result<Vec<NodeId>> {
        let squared_norm = |g: &mut Graph, x: NodeId| g.push(ReduceOp::Dot, &[x, x]);
        let rescale = |g: &mut Graph, x: NodeId, factor: NodeId| g.push(ElementwiseOp::ScaleByScalar, &[x, factor]);
        Ok(match self {
            Clipping::None => grads,
            Clipping::Value(limit) => grads
                .into_iter()
                .map(|x| {
                    g.unary(
                        ElementwiseOp::Clip {
                            min: -limit,
                            max: limit,
                        },
                        x,
                    )
                })
                .collect::<kiln_graph::Result<_>>()?,
            Clipping::Norm(max_norm) => grads
                .into_iter()
                .map(|x| {
                    let s = squared_norm(g, x)?;
                    let factor = g.unary(ElementwiseOp::ClipNormFactor { max_norm }, s)?;
                    rescale(g, x, factor)
                })
                .collect::<kiln_graph::Result<_>>()?,
            Clipping::GlobalNorm(max_norm) => {
                let mut total = None;
                for &x in &grads {
                    let s = squared_norm(g, x)?;
                    total = Some(match total {
                        None => s,
                        Some(t) => g.add(t, s)?,
                    });
                }
                let Some(total) = total else { return Ok(grads) };
                let factor = g.unary(ElementwiseOp::ClipNormFactor { max_norm }, total)?;
                grads
                    .into_iter()
                    .map(|x| rescale(g, x, factor))
                    .collect::<kiln_graph::Result<_>>()?
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Adam: Keras' defaults are `lr 1e-3, β₁ 0.9, β₂ 0.999, ε 1e-7`, no AMSGrad. With a weight decay
    /// this is AdamW.
    Adam {
        lr: LearningRate,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        #[serde(default)]
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
        #[serde(default)]
        amsgrad: bool,
    },
    /// SGD with optional (Nesterov) momentum: Keras' defaults are `lr 0.01`, no momentum.
    Sgd {
        lr: LearningRate,
        momentum: f32,
        nesterov: bool,
        #[serde(default)]
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
    },
    /// RMSprop: Keras' defaults are `lr 1e-3, ρ 0.9, momentum 0, ε 1e-7`, not centered.
    RmsProp {
        lr: LearningRate,
        rho: f32,
        momentum: f32,
        epsilon: f32,
        centered: bool,
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
    },
    /// Adagrad: Keras' defaults are `lr 1e-3, initial_accumulator_value 0.1, ε 1e-7`.
    Adagrad {
        lr: LearningRate,
        initial_accumulator_value: f32,
        epsilon: f32,
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
    },
    /// Nadam: Keras' defaults are `lr 1e-3, β₁ 0.9, β₂ 0.999, ε 1e-7`.
    Nadam {
        lr: LearningRate,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
    },
    /// Adamax: Keras' defaults are `lr 1e-3, β₁ 0.9, β₂ 0.999, ε 1e-7`.
    Adamax {
        lr: LearningRate,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
    },
    /// Lion: Keras' defaults are `lr 1e-3, β₁ 0.9, β₂ 0.99`.
    Lion {
        lr: LearningRate,
        beta1: f32,
        beta2: f32,
        weight_decay: f32,
        #[serde(default)]
        clipping: Clipping,
    },
}

/// `body` over the learning rate, weight decay and clipping that every optimizer variant holds
/// (bound by reference, as `self` is), listing the variants once for reading and for setting.
macro_rules! common_fields {
    ($self:expr, |$lr:ident, $wd:ident, $clip:ident| $body:expr) => {
        match $self {
            Optimizer::Adam {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            }
            | Optimizer::Sgd {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            }
            | Optimizer::RmsProp {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            }
            | Optimizer::Adagrad {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            }
            | Optimizer::Nadam {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            }
            | Optimizer::Adamax {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            }
            | Optimizer::Lion {
                lr: $lr,
                weight_decay: $wd,
                clipping: $clip,
                ..
            } => $body,
        }
    };
}

impl Optimizer {
    /// Adam with Keras' defaults.
    pub fn adam() -> Self {
        Optimizer::Adam {
            lr: LearningRate::Constant(1e-3),
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
            clipping: Clipping::None,
            amsgrad: false,
        }
    }

    /// Adam with learning rate `lr` and Keras' other defaults.
    pub fn adam_lr(lr: f32) -> Self {
        Self::adam().with_learning_rate(lr)
    }

    /// AdamW with Keras' defaults: Adam with a decoupled weight decay of 0.004.
    pub fn adamw() -> Self {
        Self::adam().with_weight_decay(0.004)
    }

    /// SGD with learning rate `lr`, no momentum.
    pub fn sgd(lr: f32) -> Self {
        Self::sgd_momentum(lr, 0.0, false)
    }

    /// SGD with momentum.
    pub fn sgd_momentum(lr: f32, momentum: f32, nesterov: bool) -> Self {
        Optimizer::Sgd {
            lr: lr.into(),
            momentum,
            nesterov,
            weight_decay: 0.0,
            clipping: Clipping::None,
        }
    }

    /// RMSprop with Keras' defaults.
    pub fn rmsprop() -> Self {
        Optimizer::RmsProp {
            lr: LearningRate::Constant(1e-3),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            weight_decay: 0.0,
            clipping: Clipping::None,
        }
    }

    /// RMSprop with Keras' defaults but `momentum` and `centered`.
    pub fn rmsprop_with(momentum: f32, centered: bool) -> Self {
        match Self::rmsprop() {
            Optimizer::RmsProp {
                lr,
                rho,
                epsilon,
                weight_decay,
                ..
            } => Optimizer::RmsProp {
                lr,
                rho,
                momentum,
                epsilon,
                centered,
                weight_decay,
                clipping: Clipping::None,
            },
            other => other,
        }
    }

    /// Adagrad with Keras' defaults.
    pub fn adagrad() -> Self {
        Optimizer::Adagrad {
            lr: LearningRate::Constant(1e-3),
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            weight_decay: 0.0,
            clipping: Clipping::None,
        }
    }

    /// Nadam with Keras' defaults.
    pub fn nadam() -> Self {
        Optimizer::Nadam {
            lr: LearningRate::Constant(1e-3),
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
            clipping: Clipping::None,
        }
    }

    /// Adamax with Keras' defaults.
    pub fn adamax() -> Self {
        Optimizer::Adamax {
            lr: LearningRate::Constant(1e-3),
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
            clipping: Clipping::None,
        }
    }

    /// Lion with Keras' defaults.
    pub fn lion() -> Self {
        Optimizer::Lion {
            lr: LearningRate::Constant(1e-3),
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.0,
            clipping: Clipping::None,
        }
    }

    /// The same optimizer with learning rate `rate`: a constant, or a [`crate::Schedule`].
    pub fn with_learning_rate(mut self, rate: impl Into<LearningRate>) -> Self {
        *self.fields().0 = rate.into();
        self
    }

    /// The same optimizer with Keras' decoupled weight decay `decay`.
    pub fn with_weight_decay(mut self, decay: f32) -> Self {
        *self.fields().1 = decay;
        self
    }

    /// Adam with AMSGrad (the update divides by the running maximum of `v`); other optimizers
    /// are returned unchanged, as Keras has the option on Adam and AdamW only.
    pub fn with_amsgrad(mut self, on: bool) -> Self {
        if let Optimizer::Adam { amsgrad, .. } = &mut self {
            *amsgrad = on;
        }
        self
    }

    /// The learning rate, weight decay and clipping every optimizer has, to set.
    fn fields(&mut self) -> (&mut LearningRate, &mut f32, &mut Clipping) {
        common_fields!(self, |lr, weight_decay, clipping| (lr, weight_decay, clipping))
    }

    /// The learning rate, weight decay and clipping every optimizer has, read.
    fn common(&self) -> (&LearningRate, f32, Clipping) {
        common_fields!(self, |lr, weight_decay, clipping| (lr, *weight_decay, *clipping))
    }

    /// How gradients are clipped before the update.
    pub fn clipping(&self) -> Clipping {
        self.common().2
    }

    /// Keras' `clipnorm`: each gradient rescaled to an L2 norm of at most `max_norm`. Keras allows
    /// one kind of clipping per optimizer; the last one set here applies.
    pub fn with_clipnorm(mut self, max_norm: f32) -> Self {
        *self.fields().2 = Clipping::Norm(max_norm);
        self
    }

    /// Keras' `global_clipnorm`: all gradients rescaled together so that their joint L2 norm is at
    /// most `max_norm`.
    pub fn with_global_clipnorm(mut self, max_norm: f32) -> Self {
        *self.fields().2 = Clipping::GlobalNorm(max_norm);
        self
    }

    /// Keras' `clipvalue`: each gradient element clamped to `[-limit, limit]`.
    pub fn with_clipvalue(mut self, limit: f32) -> Self {
        *self.fields().2 = Clipping::Value(limit);
        self
    }

    /// The learning rate: a constant or a schedule.
    pub fn learning_rate(&self) -> &LearningRate {
        self.common().0
    }

    /// Sets a constant learning rate (what `ReduceLROnPlateau` does between epochs).
    pub(crate) fn set_learning_rate(&mut self, rate: f32) {
        *self.fields().0 = LearningRate::Constant(rate);
    }

    /// The decoupled weight decay (0 when off).
    pub fn weight_decay(&self) -> f32 {
        self.common().1
    }

    /// Keras' name of the optimizer.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Adam { weight_decay, .. } if *weight_decay > 0.0 => "AdamW",
            Optimizer::Adam { .. } => "Adam",
            Optimizer::Sgd { .. } => "SGD",
            Optimizer::RmsProp { .. } => "RMSprop",
            Optimizer::Adagrad { .. } => "Adagrad",
            Optimizer::Nadam { .. } => "Nadam",
            Optimizer::Adamax { .. } => "Adamax",
            Optimizer::Lion { .. } => "Lion",
        }
    }

    /// Checks the hyper-parameters against the ranges Keras' optimizers accept (`compile` calls it):
    /// a finite, positive learning rate; a finite, non-negative weight decay; β's and ρ in [0, 1);
    /// a positive ε; momentum in [0, 1] (keras/src/optimizers/sgd.py raises outside it); a finite,
    /// non-negative initial accumulator.
    pub fn validate(&self) -> Result<()> {
        let name = self.name();
        self.learning_rate().validate(name)?;
        if let Clipping::Norm(c) | Clipping::GlobalNorm(c) | Clipping::Value(c) = self.clipping() {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid(
                    name,
                    format!("gradient clipping at {c}: the limit must be a positive finite number"),
                ));
            }
        }
        let decay = self.weight_decay();
        if !(decay.is_finite() && decay >= 0.0) {
            return Err(Error::invalid(
                name,
                format!("weight_decay {decay} is not a finite number ≥ 0 (AdamW's default: 0.004)"),
            ));
        }
        let unit = |what: &str, b: f32, default: &str| {
            if (0.0..1.0).contains(&b) {
                Ok(())
            } else {
                Err(Error::invalid(
                    name,
                    format!("{what} {b} is not in [0, 1) (Keras' default: {default})"),
                ))
            }
        };
        let positive = |what: &str, e: f32| {
            if e.is_finite() && e > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    name,
                    format!("{what} {e} is not a positive finite number (Keras' default: 1e-7)"),
                ))
            }
        };
        let momentum_ok = |m: f32| {
            if (0.0..=1.0).contains(&m) {
                Ok(())
            } else {
                Err(Error::invalid(name, format!("momentum {m} is not in [0, 1]")))
            }
        };
        match *self {
            Optimizer::Adam {
                beta1, beta2, epsilon, ..
            }
            | Optimizer::Nadam {
                beta1, beta2, epsilon, ..
            }
            | Optimizer::Adamax {
                beta1, beta2, epsilon, ..
            } => {
                unit("beta1", beta1, "0.9")?;
                unit("beta2", beta2, "0.999")?;
                positive("epsilon", epsilon)?;
            }
            Optimizer::Lion { beta1, beta2, .. } => {
                unit("beta1", beta1, "0.9")?;
                unit("beta2", beta2, "0.99")?;
            }
            Optimizer::Sgd { momentum, .. } => momentum_ok(momentum)?,
            Optimizer::RmsProp {
                rho, momentum, epsilon, ..
            } => {
                unit("rho", rho, "0.9")?;
                momentum_ok(momentum)?;
                positive("epsilon", epsilon)?;
            }
            Optimizer::Adagrad {
                initial_accumulator_value,
                epsilon,
                ..
            } => {
                if !(initial_accumulator_value.is_finite() && initial_accumulator_value >= 0.0) {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "initial_accumulator_value {initial_accumulator_value} is not a finite number ≥ 0 \
                             (Keras' default: 0.1)"
                        ),
                    ));
                }
                positive("epsilon", epsilon)?;
            }
        }
        Ok(())
    }

    /// Names of the state tensors kept per parameter, in the update op's operand order, each with
    /// the value it starts at.
    pub fn state(&self) -> Vec<(&'static str, f32)> {
        match *self {
            Optimizer::Adam { amsgrad, .. } => {
                let mut s = vec![("adam_m", 0.0), ("adam_v", 0.0)];
                if amsgrad {
                    s.push(("adam_v_hat", 0.0));
                }
                s
            }
            Optimizer::Sgd { .. } => vec![("sgd_velocity", 0.0)],
            Optimizer::RmsProp { momentum, centered, .. } => {
                let mut s = vec![("rmsprop_velocity", 0.0)];
                if momentum > 0.0 {
                    s.push(("rmsprop_momentum", 0.0));
                }
                if centered {
                    s.push(("rmsprop_average_gradient", 0.0));
                }
                s
            }
            Optimizer::Adagrad {
                initial_accumulator_value,
                ..
            } => vec![("adagrad_accumulator", initial_accumulator_value)],
            Optimizer::Nadam { .. } => vec![("nadam_m", 0.0), ("nadam_v", 0.0)],
            Optimizer::Adamax { .. } => vec![("adamax_m", 0.0), ("adamax_u", 0.0)],
            Optimizer::Lion { .. } => vec![("lion_m", 0.0)],
        }
    }

    /// The in-place update op.
    pub fn op(&self) -> UpdateOp {
        match *self {
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                amsgrad,
                ..
            } => UpdateOp::Adam {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                amsgrad,
            },
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => UpdateOp::Sgd {
                momentum,
                nesterov,
                weight_decay,
            },
            Optimizer::RmsProp {
                rho,
                momentum,
                epsilon,
                centered,
                weight_decay,
                ..
            } => UpdateOp::RmsProp {
                rho,
                momentum,
                epsilon,
                centered,
                weight_decay,
            },
            Optimizer::Adagrad {
                epsilon, weight_decay, ..
            } => UpdateOp::Adagrad { epsilon, weight_decay },
            Optimizer::Nadam {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..
            } => UpdateOp::Nadam {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            },
            Optimizer::Adamax {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..
            } => UpdateOp::Adamax {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            },
            Optimizer::Lion {
                beta1,
                beta2,
                weight_decay,
                ..
            } => UpdateOp::Lion {
                beta1,
                beta2,
                weight_decay,
            },
        }
    }

    /// Whether the training step reads the step counter: for the update's bias correction, or for
    /// a schedule.
    pub fn uses_step(&self) -> bool {
        self.op().uses_step() || matches!(self.learning_rate(), LearningRate::Schedule(_))
    }
}
