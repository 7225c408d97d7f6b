//! Dropout, as Keras' `Dropout(rate)`.

use kiln_graph::{lowbias32, AttentionOp, ElementwiseOp, Graph, NodeId, Op, StepOp};
use serde::{Deserialize, Serialize};

use super::{plain, single, Layer, LayerConfig, LayerOut};
use crate::feeds::Feed;
use crate::{Error, Result};

/// During training, zeroes each input with probability `rate` and scales the others by
/// `1 / (1 - rate)`; evaluation and prediction pass the inputs through unchanged. The mask is
/// drawn on the device from the seed and the step counter, identically on every backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dropout {
    rate: f32,
    seed: u32,
}

impl Dropout {
    /// Drops a fraction `rate` in [0, 1) of the inputs while training.
    pub fn new(rate: f32) -> Self {
        Dropout { rate, seed: 0 }
    }

    /// Seed of the masks (each dropout layer of a model already draws its own).
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }
}

impl Layer for Dropout {
    fn config(&self) -> LayerConfig {
        LayerConfig::Dropout(self.clone())
    }

    fn kind(&self) -> &'static str {
        "dropout"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(
                "Dropout",
                format!(
                    "rate {} is not in [0, 1): it is the fraction of inputs dropped",
                    self.rate
                ),
            ));
        }
        Ok(single("dropout", inputs)?.to_vec())
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], training: bool) -> Result<LayerOut> {
        if !training || self.rate == 0.0 {
            return Ok(plain(xs[0]));
        }
        Ok(plain(dropout(g, xs[0], self.rate, self.seed)?))
    }
}

/// `x` with a fraction `rate` of its values dropped and the rest scaled by `1 / (1 - rate)`: a
/// training graph's dropout, its mask a hash of `seed`, the step and the element.
pub(crate) fn dropout(g: &mut Graph, x: NodeId, rate: f32, seed: u32) -> Result<NodeId> {
    let seed = graph_seed(g, seed, DROPOUT_SALT);
    let draw = Feed::draw(g);
    Ok(g.push(ElementwiseOp::Dropout { rate, seed }, &[x, draw])?)
}

/// The salt of dropout masks' seeds (attention's dropout among them).
pub(crate) const DROPOUT_SALT: u32 = 0x9e37_79b9;

/// The seed of a random op about to join `g`: a layer's `seed` mixed with how many random ops
/// (dropout masks, attention's among them, and uniform draws) the graph already holds and a per-kind `salt`, so that no two
/// random layers of a graph draw alike.
pub(crate) fn graph_seed(g: &Graph, seed: u32, salt: u32) -> u32 {
    let earlier = g
        .nodes()
        .iter()
        .filter(|n| match &n.op {
            Op::Step(StepOp::Elementwise(ElementwiseOp::Dropout { .. } | ElementwiseOp::Uniform { .. })) => true,
            Op::Step(StepOp::Attention(AttentionOp::Attention(attend))) => attend.rate > 0.0,
            _ => false,
        })
        .count() as u32;
    seed ^ lowbias32(earlier.wrapping_add(salt))
}
