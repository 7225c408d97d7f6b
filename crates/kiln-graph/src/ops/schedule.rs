//! Learning-rate schedules, evaluated on the device from the step counter inside the training step,
//! as Keras 3's `LearningRateSchedule`s compute them
//! (keras/src/optimizers/schedules/learning_rate_schedule.py).
//!
//! Operands: `step [1]`, the 1-based update count the optimizers read; Keras evaluates a schedule
//! at `optimizer.iterations`, the updates *before* this one, so the rate is `f(step - 1)`.
//! `PiecewiseConstant` also takes its `table [2·pieces - 1]`: the boundaries, then the values.
//! The output is the rate, `[1]`.

use super::check::not_differentiable;
use super::{op_names, Backward, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScheduleOp {
    /// `initial · rate^(i / decay_steps)`, the exponent floored when `staircase`.
    ExponentialDecay {
        initial: f32,
        decay_steps: f32,
        decay_rate: f32,
        staircase: bool,
    },
    /// `values[0]` while `i ≤ boundaries[0]`, `values[k]` while `boundaries[k-1] < i ≤ boundaries[k]`,
    /// the last value past the last boundary; `pieces` values.
    PiecewiseConstant { pieces: usize },
    /// `(initial - end) · (1 - i / decay_steps)^power + end` with `i` capped at `decay_steps`, or with
    /// `cycle`, `decay_steps` stretched to the first multiple of it at or past `i` (1 at `i = 0`).
    PolynomialDecay {
        initial: f32,
        decay_steps: f32,
        end: f32,
        power: f32,
        cycle: bool,
    },
    /// `initial / (1 + rate · i / decay_steps)`, the quotient floored when `staircase`.
    InverseTimeDecay {
        initial: f32,
        decay_steps: f32,
        decay_rate: f32,
        staircase: bool,
    },
    /// A linear warmup from `initial` to `warmup_target` over `warmup_steps`, then a cosine from
    /// `warmup_target` down to `alpha` of it over `decay_steps`, constant after. Without a warmup:
    /// `warmup_steps` 0 and `warmup_target` equal to `initial`.
    CosineDecay {
        initial: f32,
        decay_steps: f32,
        alpha: f32,
        warmup_target: f32,
        warmup_steps: f32,
    },
    /// SGDR: cosine periods restarting at `initial · m_mul^k`, the `k`-th `t_mul^k · first_decay_steps`
    /// long, each decaying to `alpha` of its start.
    CosineDecayRestarts {
        initial: f32,
        first_decay_steps: f32,
        t_mul: f32,
        m_mul: f32,
        alpha: f32,
    },
}

op_names!(ScheduleOp {
    ExponentialDecay => "exponential_decay",
    PiecewiseConstant => "piecewise_constant",
    PolynomialDecay => "polynomial_decay",
    InverseTimeDecay => "inverse_time_decay",
    CosineDecay => "cosine_decay",
    CosineDecayRestarts => "cosine_decay_restarts",
});

impl ScheduleOp {
    /// The rate for 1-based step `step`, in f64: the CPU backend's kernel, and the host's view of
    /// the rate for logs. `table(i)` reads entry `i` of `PiecewiseConstant`'s boundaries-then-values
    /// operand (the other schedules never call it).
    pub fn rate(&self, step: f64, table: impl Fn(usize) -> f64) -> f64 {
        let i = (step - 1.0).max(0.0);
        let f = |x: f32| x as f64;
        match *self {
            ScheduleOp::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let p = i / f(decay_steps);
                f(initial) * f(decay_rate).powf(if staircase { p.floor() } else { p })
            }
            ScheduleOp::PiecewiseConstant { pieces } => {
                let k = (0..pieces - 1).take_while(|&b| i > table(b)).count();
                table(pieces - 1 + k)
            }
            ScheduleOp::PolynomialDecay {
                initial,
                decay_steps,
                end,
                power,
                cycle,
            } => {
                let (mut i, mut steps) = (i, f(decay_steps));
                if cycle {
                    steps *= if i == 0.0 { 1.0 } else { (i / steps).ceil() };
                } else {
                    i = i.min(steps);
                }
                (f(initial) - f(end)) * (1.0 - i / steps).powf(f(power)) + f(end)
            }
            ScheduleOp::InverseTimeDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let p = i / f(decay_steps);
                f(initial) / (1.0 + f(decay_rate) * if staircase { p.floor() } else { p })
            }
            ScheduleOp::CosineDecay {
                initial,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let cosine = |i: f64, from: f64| {
                    let fraction = i / f(decay_steps);
                    let decayed = 0.5 * (1.0 + (std::f64::consts::PI * fraction).cos());
                    from * ((1.0 - f(alpha)) * decayed + f(alpha))
                };
                // Without a warmup, `warmup_target` is `initial` and `warmup_steps` 0: the cosine
                // from `initial`, as Keras' `warmup_target=None` branch.
                let warmup = f(warmup_steps);
                let i = i.min(f(decay_steps) + warmup);
                if i < warmup {
                    (f(warmup_target) - f(initial)) * (i / warmup) + f(initial)
                } else {
                    cosine(i - warmup, f(warmup_target))
                }
            }
            ScheduleOp::CosineDecayRestarts {
                initial,
                first_decay_steps,
                t_mul,
                m_mul,
                alpha,
            } => {
                let mut fraction = i / f(first_decay_steps);
                let t_mul = f(t_mul);
                let restart = if t_mul == 1.0 {
                    fraction.floor()
                } else {
                    ((1.0 - fraction * (1.0 - t_mul)).ln() / t_mul.ln()).floor()
                };
                fraction = if t_mul == 1.0 {
                    fraction - restart
                } else {
                    (fraction - (1.0 - t_mul.powf(restart)) / (1.0 - t_mul)) / t_mul.powf(restart)
                };
                let decayed = 0.5 * f(m_mul).powf(restart) * (1.0 + (std::f64::consts::PI * fraction).cos());
                f(initial) * ((1.0 - f(alpha)) * decayed + f(alpha))
            }
        }
    }

    /// Checks the hyper-parameters Keras' constructors require: positive decay lengths, finite
    /// rates, at least one piece.
    fn validate(&self) -> Result<()> {
        use Must::{Finite, NonNegative, Positive};
        let checks: &[(&str, f32, Must)] = match *self {
            ScheduleOp::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                ..
            }
            | ScheduleOp::InverseTimeDecay {
                initial,
                decay_steps,
                decay_rate,
                ..
            } => &[
                ("initial_learning_rate", initial, Finite),
                ("decay_steps", decay_steps, Positive),
                ("decay_rate", decay_rate, Finite),
            ],
            ScheduleOp::PiecewiseConstant { pieces } => &[("pieces", pieces as f32, Positive)],
            ScheduleOp::PolynomialDecay {
                initial,
                decay_steps,
                end,
                power,
                ..
            } => &[
                ("initial_learning_rate", initial, Finite),
                ("decay_steps", decay_steps, Positive),
                ("end_learning_rate", end, Finite),
                ("power", power, Finite),
            ],
            ScheduleOp::CosineDecay {
                initial,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => &[
                ("initial_learning_rate", initial, Finite),
                ("decay_steps", decay_steps, Positive),
                ("alpha", alpha, Finite),
                ("warmup_target", warmup_target, Finite),
                ("warmup_steps", warmup_steps, NonNegative),
            ],
            ScheduleOp::CosineDecayRestarts {
                initial,
                first_decay_steps,
                t_mul,
                m_mul,
                alpha,
            } => &[
                ("initial_learning_rate", initial, Finite),
                ("first_decay_steps", first_decay_steps, Positive),
                ("t_mul", t_mul, Positive),
                ("m_mul", m_mul, Finite),
                ("alpha", alpha, Finite),
            ],
        };
        for &(what, v, must) in checks {
            let (ok, rule) = match must {
                Finite => (v.is_finite(), "finite"),
                Positive => (v.is_finite() && v > 0.0, "a positive finite number"),
                NonNegative => (v.is_finite() && v >= 0.0, "a finite number ≥ 0"),
            };
            if !ok {
                return Err(Error::invalid(self.name(), format!("{what} {v} is not {rule}")));
            }
        }
        Ok(())
    }
}

/// What a schedule's hyper-parameter must be.
#[derive(Clone, Copy)]
enum Must {
    Finite,
    Positive,
    NonNegative,
}

impl Family for ScheduleOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            ScheduleOp::PiecewiseConstant { .. } => 2,
            ScheduleOp::ExponentialDecay { .. }
            | ScheduleOp::PolynomialDecay { .. }
            | ScheduleOp::InverseTimeDecay { .. }
            | ScheduleOp::CosineDecay { .. }
            | ScheduleOp::CosineDecayRestarts { .. } => 1,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        self.validate()?;
        if s[0].numel() != 1 {
            return Err(Error::shape(self.name(), format!("step {}", s[0]), "[1]"));
        }
        if let ScheduleOp::PiecewiseConstant { pieces } = *self {
            if s[1].numel() != 2 * pieces - 1 {
                return Err(Error::shape(
                    self.name(),
                    format!("table {}", s[1]),
                    format!("[{}]: {} boundaries, then {pieces} values", 2 * pieces - 1, pieces - 1),
                ));
            }
        }
        Ok(Some(Shape::new([1])))
    }

    fn backward(&self, _: &mut Graph, _: &Backward) -> Result<Vec<Option<NodeId>>> {
        Err(not_differentiable(
            self.name(),
            "a learning rate is a function of the step count, which is data",
        ))
    }
}
