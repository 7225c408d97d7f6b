//! Learning-rate schedule kernels (schedule.wgsl): one invocation computes the rate for this step.

use kiln_graph::ScheduleOp;

use super::{Io, Kernel};
use crate::shaders::{ScheduleParams, Shader};

pub(super) fn kernel(op: &ScheduleOp, io: &Io) -> Kernel {
    let rate = |params| Kernel::new(Shader::Schedule, "learning_rate", params, io.with_out(&[0]), [1, 1, 1]);
    match *op {
        ScheduleOp::ExponentialDecay {
            initial,
            decay_steps,
            decay_rate,
            staircase,
        } => rate(ScheduleParams {
            kind: 0,
            flag: u32::from(staircase),
            initial,
            steps: decay_steps,
            rate: decay_rate,
            ..Default::default()
        }),
        ScheduleOp::PolynomialDecay {
            initial,
            decay_steps,
            end,
            power,
            cycle,
        } => rate(ScheduleParams {
            kind: 1,
            flag: u32::from(cycle),
            initial,
            steps: decay_steps,
            end,
            power,
            ..Default::default()
        }),
        ScheduleOp::InverseTimeDecay {
            initial,
            decay_steps,
            decay_rate,
            staircase,
        } => rate(ScheduleParams {
            kind: 2,
            flag: u32::from(staircase),
            initial,
            steps: decay_steps,
            rate: decay_rate,
            ..Default::default()
        }),
        ScheduleOp::CosineDecay {
            initial,
            decay_steps,
            alpha,
            warmup_target,
            warmup_steps,
        } => rate(ScheduleParams {
            kind: 3,
            initial,
            steps: decay_steps,
            alpha,
            warmup_target,
            warmup: warmup_steps,
            ..Default::default()
        }),
        ScheduleOp::CosineDecayRestarts {
            initial,
            first_decay_steps,
            t_mul,
            m_mul,
            alpha,
        } => rate(ScheduleParams {
            kind: 4,
            initial,
            steps: first_decay_steps,
            t_mul,
            m_mul,
            alpha,
            ..Default::default()
        }),
        ScheduleOp::PiecewiseConstant { pieces } => {
            let params = ScheduleParams {
                pieces: pieces as u32,
                ..Default::default()
            };
            Kernel::new(
                Shader::Schedule,
                "piecewise_constant",
                params,
                io.with_out(&[0, 1]),
                [1, 1, 1],
            )
        }
    }
}
