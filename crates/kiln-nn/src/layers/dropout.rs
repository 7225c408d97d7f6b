//! Dropout, as Keras' `Dropout(rate)`, and `SpatialDropout1D`/`2D`, which drop whole channels.

use kiln_graph::{lowbias32, AttentionOp, ElementwiseOp, Graph, NodeId, Op, ReduceOp, StepOp};
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

/// Keras' `SpatialDropout1D(rate)` on sequences `[steps, channels]` and `SpatialDropout2D(rate)` on
/// NHWC images (keras/src/layers/regularization/spatial_dropout.py): during training, each channel
/// of each sample is dropped whole, at every step or pixel, with probability `rate`, the others
/// scaled by `1 / (1 - rate)` — neighbouring values of a channel are correlated, so dropping them
/// one by one would hardly regularise. Evaluation and prediction pass the inputs through.
///
/// The mask is Dropout's, drawn for `[n, channels]` and broadcast over the steps or pixels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpatialDropout {
    rate: f32,
    seed: u32,
    /// 1 for sequences (SpatialDropout1D), 2 for images (SpatialDropout2D).
    dims: usize,
}

impl SpatialDropout {
    /// Keras' `SpatialDropout1D(rate)`: drops whole channels of sequences `[steps, channels]`.
    pub fn one_d(rate: f32) -> Self {
        SpatialDropout { rate, seed: 0, dims: 1 }
    }

    /// Keras' `SpatialDropout2D(rate)`: drops whole channels of images `[h, w, channels]`.
    pub fn two_d(rate: f32) -> Self {
        SpatialDropout { rate, seed: 0, dims: 2 }
    }

    /// Seed of the masks (each dropout layer of a model already draws its own).
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }

    pub(crate) fn class_name(&self) -> &'static str {
        if self.dims == 1 {
            "SpatialDropout1D"
        } else {
            "SpatialDropout2D"
        }
    }
}

impl Layer for SpatialDropout {
    fn config(&self) -> LayerConfig {
        LayerConfig::SpatialDropout(self.clone())
    }

    fn kind(&self) -> &'static str {
        if self.dims == 1 {
            "spatial_dropout1d"
        } else {
            "spatial_dropout2d"
        }
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single(self.class_name(), inputs)?;
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(
                self.class_name(),
                format!(
                    "rate {} is not in [0, 1): it is the fraction of channels dropped",
                    self.rate
                ),
            ));
        }
        if !matches!(self.dims, 1 | 2) || input.len() != self.dims + 1 {
            return Err(Error::invalid(
                self.class_name(),
                format!(
                    "expects samples of rank {} (channels last), got {input:?}",
                    self.dims + 1
                ),
            ));
        }
        Ok(input.to_vec())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], training: bool) -> Result<LayerOut> {
        if !training || self.rate == 0.0 {
            return Ok(plain(xs[0]));
        }
        let dims = g.shape(xs[0])?.dims().to_vec();
        let (n, channels) = (dims[0], dims[dims.len() - 1]);
        let positions: usize = dims[1..dims.len() - 1].iter().product();
        let ones = g.fill(1.0, [n, channels]);
        let mask = dropout(g, ones, self.rate, self.seed)?;
        let spread = g.push(
            ReduceOp::Broadcast {
                axis: 1,
                size: positions,
            },
            &[mask],
        )?;
        let spread = g.reshape(spread, dims)?;
        Ok(plain(g.mul(xs[0], spread)?))
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
