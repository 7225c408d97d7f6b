//! The plan inputs the host fills before every run, named in this one place: the model's inputs,
//! the labels, and the step counter that the optimizer's bias correction and every dropout mask
//! read.

use kiln_graph::{Graph, NodeId};

/// Names of the host-fed plan inputs.
pub(crate) struct Feed;

impl Feed {
    /// The labels of a training or evaluation batch.
    pub const LABELS: &'static str = "y";
    /// The 1-based update count, `[1]`.
    pub const STEP: &'static str = "step";

    /// Model input `i`.
    pub fn x(i: usize) -> String {
        format!("x{i}")
    }

    /// The step counter's graph input, created on first use and shared by every reader after.
    pub fn step(g: &mut Graph) -> NodeId {
        g.shared_input(Feed::STEP, [1])
    }
}
