//! Learning rates: a constant, or one of Keras 3's schedules
//! (keras/src/optimizers/schedules/learning_rate_schedule.py), which the device evaluates from the
//! step counter inside the training step ([`kiln_graph::ScheduleOp`] holds the formulas).

use kiln_graph::{Family, ScheduleOp, Shape};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// An optimizer's learning rate: a constant (which callbacks such as `ReduceLROnPlateau` may
/// change between epochs) or a [`Schedule`] of the step. `0.01.into()` gives a constant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LearningRate {
    Constant(f32),
    Schedule(Schedule),
}

impl From<f32> for LearningRate {
    fn from(rate: f32) -> Self {
        LearningRate::Constant(rate)
    }
}

impl From<Schedule> for LearningRate {
    fn from(schedule: Schedule) -> Self {
        LearningRate::Schedule(schedule)
    }
}

impl LearningRate {
    /// The rate of 1-based update `step` (the first update is step 1; Keras evaluates a schedule at
    /// `iterations = step - 1`).
    pub fn at(&self, step: u64) -> f64 {
        match self {
            LearningRate::Constant(rate) => *rate as f64,
            LearningRate::Schedule(s) => s.rate(step),
        }
    }

    /// Checks that every rate is usable: a positive, finite constant, or a well-formed schedule.
    pub fn validate(&self, optimizer: &str) -> Result<()> {
        match self {
            LearningRate::Constant(lr) if lr.is_finite() && *lr > 0.0 => Ok(()),
            LearningRate::Constant(lr) => Err(Error::invalid(
                optimizer,
                format!("learning rate {lr} is not a positive finite number (Keras' defaults: 0.001, SGD 0.01)"),
            )),
            LearningRate::Schedule(s) => s.validate(),
        }
    }
}

/// A learning-rate schedule with Keras' semantics and defaults. Build one with the constructors
/// and adjust it with the builder methods; each method applies to the schedules that have the
/// option and leaves the others unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// `initial · decay_rate^(i / decay_steps)`, the exponent floored with `staircase`.
    ExponentialDecay {
        initial_learning_rate: f32,
        decay_steps: f32,
        decay_rate: f32,
        staircase: bool,
    },
    /// `values[0]` up to and including step `boundaries[0]`, then `values[1]`, ...
    PiecewiseConstant { boundaries: Vec<f32>, values: Vec<f32> },
    /// From `initial` to `end_learning_rate` along `(1 - i / decay_steps)^power`, then constant (or,
    /// with `cycle`, over ever longer multiples of `decay_steps`).
    PolynomialDecay {
        initial_learning_rate: f32,
        decay_steps: f32,
        end_learning_rate: f32,
        power: f32,
        cycle: bool,
    },
    /// `initial / (1 + decay_rate · i / decay_steps)`, the quotient floored with `staircase`.
    InverseTimeDecay {
        initial_learning_rate: f32,
        decay_steps: f32,
        decay_rate: f32,
        staircase: bool,
    },
    /// An optional linear warmup to `warmup_target` over `warmup_steps`, then a half cosine down to
    /// `alpha` of the rate reached over `decay_steps`.
    CosineDecay {
        initial_learning_rate: f32,
        decay_steps: f32,
        alpha: f32,
        warmup_target: Option<f32>,
        warmup_steps: f32,
    },
    /// SGDR: cosine periods that restart, each `t_mul` times longer and starting `m_mul` times
    /// lower than the last.
    CosineDecayRestarts {
        initial_learning_rate: f32,
        first_decay_steps: f32,
        t_mul: f32,
        m_mul: f32,
        alpha: f32,
    },
}

impl Schedule {
    /// Keras' `ExponentialDecay(initial, decay_steps, decay_rate)`, not staircase.
    pub fn exponential_decay(initial: f32, decay_steps: usize, decay_rate: f32) -> Self {
        Schedule::ExponentialDecay {
            initial_learning_rate: initial,
            decay_steps: decay_steps as f32,
            decay_rate,
            staircase: false,
        }
    }

    /// Keras' `PiecewiseConstantDecay(boundaries, values)`: one more value than boundaries.
    pub fn piecewise_constant(boundaries: impl Into<Vec<f32>>, values: impl Into<Vec<f32>>) -> Self {
        Schedule::PiecewiseConstant {
            boundaries: boundaries.into(),
            values: values.into(),
        }
    }

    /// Keras' `PolynomialDecay(initial, decay_steps)`: to 1e-4, linearly, no cycle.
    pub fn polynomial_decay(initial: f32, decay_steps: usize) -> Self {
        Schedule::PolynomialDecay {
            initial_learning_rate: initial,
            decay_steps: decay_steps as f32,
            end_learning_rate: 1e-4,
            power: 1.0,
            cycle: false,
        }
    }

    /// Keras' `InverseTimeDecay(initial, decay_steps, decay_rate)`, not staircase.
    pub fn inverse_time_decay(initial: f32, decay_steps: usize, decay_rate: f32) -> Self {
        Schedule::InverseTimeDecay {
            initial_learning_rate: initial,
            decay_steps: decay_steps as f32,
            decay_rate,
            staircase: false,
        }
    }

    /// Keras' `CosineDecay(initial, decay_steps)`: down to 0, no warmup.
    pub fn cosine_decay(initial: f32, decay_steps: usize) -> Self {
        Schedule::CosineDecay {
            initial_learning_rate: initial,
            decay_steps: decay_steps as f32,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0.0,
        }
    }

    /// Keras' `CosineDecayRestarts(initial, first_decay_steps)`: `t_mul` 2, `m_mul` 1, `alpha` 0.
    pub fn cosine_decay_restarts(initial: f32, first_decay_steps: usize) -> Self {
        Schedule::CosineDecayRestarts {
            initial_learning_rate: initial,
            first_decay_steps: first_decay_steps as f32,
            t_mul: 2.0,
            m_mul: 1.0,
            alpha: 0.0,
        }
    }

    /// `staircase` for ExponentialDecay and InverseTimeDecay.
    pub fn staircase(mut self, on: bool) -> Self {
        if let Schedule::ExponentialDecay { staircase, .. } | Schedule::InverseTimeDecay { staircase, .. } = &mut self {
            *staircase = on;
        }
        self
    }

    /// `end_learning_rate`, `power` and `cycle` for PolynomialDecay.
    pub fn polynomial(mut self, end: f32, exponent: f32, cycles: bool) -> Self {
        if let Schedule::PolynomialDecay {
            end_learning_rate,
            power,
            cycle,
            ..
        } = &mut self
        {
            (*end_learning_rate, *power, *cycle) = (end, exponent, cycles);
        }
        self
    }

    /// `alpha` (the floor, as a fraction of the rate) for the cosine schedules.
    pub fn alpha(mut self, floor: f32) -> Self {
        if let Schedule::CosineDecay { alpha, .. } | Schedule::CosineDecayRestarts { alpha, .. } = &mut self {
            *alpha = floor;
        }
        self
    }

    /// A linear warmup to `target` over `steps` before CosineDecay's cosine.
    pub fn warmup(mut self, target: f32, steps: usize) -> Self {
        if let Schedule::CosineDecay {
            warmup_target,
            warmup_steps,
            ..
        } = &mut self
        {
            (*warmup_target, *warmup_steps) = (Some(target), steps as f32);
        }
        self
    }

    /// `t_mul` and `m_mul` for CosineDecayRestarts.
    pub fn restarts(mut self, period_factor: f32, rate_factor: f32) -> Self {
        if let Schedule::CosineDecayRestarts { t_mul, m_mul, .. } = &mut self {
            (*t_mul, *m_mul) = (period_factor, rate_factor);
        }
        self
    }

    /// The graph op computing this schedule, and for PiecewiseConstant its table (boundaries, then
    /// values).
    pub fn op(&self) -> (ScheduleOp, Option<Vec<f32>>) {
        match *self {
            Schedule::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => (
                ScheduleOp::ExponentialDecay {
                    initial: initial_learning_rate,
                    decay_steps,
                    decay_rate,
                    staircase,
                },
                None,
            ),
            Schedule::PiecewiseConstant {
                ref boundaries,
                ref values,
            } => (
                ScheduleOp::PiecewiseConstant { pieces: values.len() },
                Some(boundaries.iter().chain(values).copied().collect()),
            ),
            Schedule::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                cycle,
            } => (
                ScheduleOp::PolynomialDecay {
                    initial: initial_learning_rate,
                    decay_steps,
                    end: end_learning_rate,
                    power,
                    cycle,
                },
                None,
            ),
            Schedule::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => (
                ScheduleOp::InverseTimeDecay {
                    initial: initial_learning_rate,
                    decay_steps,
                    decay_rate,
                    staircase,
                },
                None,
            ),
            Schedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => (
                ScheduleOp::CosineDecay {
                    initial: initial_learning_rate,
                    decay_steps,
                    alpha,
                    warmup_target: warmup_target.unwrap_or(initial_learning_rate),
                    warmup_steps,
                },
                None,
            ),
            Schedule::CosineDecayRestarts {
                initial_learning_rate,
                first_decay_steps,
                t_mul,
                m_mul,
                alpha,
            } => (
                ScheduleOp::CosineDecayRestarts {
                    initial: initial_learning_rate,
                    first_decay_steps,
                    t_mul,
                    m_mul,
                    alpha,
                },
                None,
            ),
        }
    }

    /// The rate of 1-based update `step`, as the device computes it (in f64).
    pub fn rate(&self, step: u64) -> f64 {
        let (op, table) = self.op();
        let table = table.unwrap_or_default();
        op.rate(step as f64, |i| f64::from(table[i]))
    }

    /// Checks the schedule as Keras' constructors do, and what they leave to chance: a table of one
    /// more value than boundaries, ascending, all finite.
    pub fn validate(&self) -> Result<()> {
        if let Schedule::PiecewiseConstant { boundaries, values } = self {
            if values.len() != boundaries.len() + 1 {
                return Err(Error::invalid(
                    "PiecewiseConstantDecay",
                    format!(
                        "needs one more value than boundaries, got {} boundaries and {} values",
                        boundaries.len(),
                        values.len()
                    ),
                ));
            }
            if boundaries.iter().chain(values).any(|v| !v.is_finite()) || boundaries.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Error::invalid(
                    "PiecewiseConstantDecay",
                    format!("boundaries {boundaries:?} must be finite and ascending, values {values:?} finite"),
                ));
            }
        }
        let (op, table) = self.op();
        let step = Shape::new([1]);
        let table = table.map(|t| Shape::new([t.len()]));
        let shapes: Vec<&Shape> = std::iter::once(&step).chain(table.as_ref()).collect();
        op.output_shape(&shapes)?;
        Ok(())
    }
}
