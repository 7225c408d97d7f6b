//! The plan inputs the host fills before every run, named in this one place: the model's inputs,
//! the labels, the step counter that the optimizer's bias correction reads, and the draw every
//! dropout mask is hashed from.

use kiln_graph::{Graph, NodeId};

use crate::{LearningRate, Result};

/// Names of the host-fed plan inputs.
pub(crate) struct Feed;

impl Feed {
    /// The labels of a training or evaluation batch.
    pub const LABELS: &'static str = "y";
    /// The 1-based update count, `[1]`.
    pub const STEP: &'static str = "step";
    /// Per-sample loss weights of a training batch, `[batch]` (`fit`'s `sample_weight` or
    /// `class_weight`).
    pub const SAMPLE_WEIGHT: &'static str = "sample_weight";
    /// A constant learning rate, `[1]` (a schedule computes its rate from the step instead).
    pub const LEARNING_RATE: &'static str = "learning_rate";
    /// What a training step's random masks are drawn from, `[3]`: the step counter, the index of
    /// the plan's first sample in the whole batch, and the plan's samples (see
    /// [`kiln_graph::ElementwiseOp::Dropout`]; a data-parallel replica's shard starts past 0).
    pub const DRAW: &'static str = "draw";

    /// Model input `i`.
    pub fn x(i: usize) -> String {
        format!("x{i}")
    }

    /// The averaged gradient of trainable parameter `j` that a data-parallel update plan takes.
    pub fn gradient(j: usize) -> String {
        format!("gradient{j}")
    }

    /// The step counter's graph input, created on first use and shared by every reader after.
    pub fn step(g: &mut Graph) -> NodeId {
        g.shared_input(Feed::STEP, [1])
    }

    /// The draw's graph input, shared like the step's.
    pub fn draw(g: &mut Graph) -> NodeId {
        g.shared_input(Feed::DRAW, [3])
    }

    /// The learning rate for the optimizer's updates: the fed constant, or `schedule`'s rate
    /// computed on the device from `step` (the fed step counter where it is `None`).
    pub fn learning_rate(g: &mut Graph, rate: &LearningRate, step: Option<NodeId>) -> Result<NodeId> {
        match rate {
            LearningRate::Constant(_) => Ok(g.shared_input(Feed::LEARNING_RATE, [1])),
            LearningRate::Schedule(schedule) => {
                let step = step.unwrap_or_else(|| Feed::step(g));
                let (op, table) = schedule.op();
                let mut operands = vec![step];
                if let Some(table) = table {
                    operands.push(g.constant(&table, [table.len()])?);
                }
                Ok(g.push(op, &operands)?)
            }
        }
    }
}

/// The values the host feeds every training step: the step counter, the constant learning rate
/// (ignored by plans whose rate comes from a schedule) and the dropout draw.
#[derive(Clone, Copy)]
pub(crate) struct StepFeeds {
    step: [f32; 1],
    lr: [f32; 1],
    draw: [f32; 3],
}

impl StepFeeds {
    /// The feeds of 1-based update `step` at learning rate `lr`, for a plan over a whole batch of
    /// `samples`.
    pub fn new(step: u64, lr: f64, samples: usize) -> Self {
        StepFeeds {
            step: [step as f32],
            lr: [lr as f32],
            draw: [step as f32, 0.0, samples as f32],
        }
    }

    /// The same step's feeds for a plan over `samples` samples of the batch from sample `first` on.
    pub fn shard(mut self, first: usize, samples: usize) -> Self {
        self.draw[1..].copy_from_slice(&[first as f32, samples as f32]);
        self
    }

    /// Appends the feeds.
    pub fn add_to<'a>(&'a self, feeds: &mut Vec<(&'a str, &'a [f32])>) {
        feeds.push((Feed::STEP, &self.step));
        feeds.push((Feed::LEARNING_RATE, &self.lr));
        feeds.push((Feed::DRAW, &self.draw));
    }
}
