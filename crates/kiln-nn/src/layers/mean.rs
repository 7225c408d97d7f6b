//! `Mean`: the mean over one axis, as a layer (seed 003's `tf.reduce_mean(x, axis=1)`).

use kiln_graph::{Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::{plain, single, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// Mean over `axis`, counted as Keras counts it: axis 0 is the batch, so `Mean::over(1)` averages
/// the first axis of each sample.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mean {
    axis: usize,
}

impl Mean {
    /// The mean over `axis` (at least 1; the batch axis cannot be averaged away).
    pub fn over(axis: usize) -> Self {
        Mean { axis }
    }
}

impl Layer for Mean {
    fn config(&self) -> LayerConfig {
        LayerConfig::Mean(self.clone())
    }

    fn kind(&self) -> &'static str {
        "mean"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Mean", inputs)?;
        if self.axis == 0 || self.axis > input.len() {
            return Err(Error::invalid(
                "Mean",
                format!(
                    "axis {} is not a sample axis of samples shaped {input:?} (axes 1..={})",
                    self.axis,
                    input.len()
                ),
            ));
        }
        let mut out = input.to_vec();
        out.remove(self.axis - 1);
        Ok(out)
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(plain(g.push(ReduceOp::Mean { axis: self.axis }, &[xs[0]])?))
    }
}

/// Keras' `GlobalAveragePooling1D`: the mean over the steps of `[steps, features]` samples.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GlobalAveragePooling1D;

impl GlobalAveragePooling1D {
    /// The pooling layer.
    pub fn new() -> Self {
        GlobalAveragePooling1D
    }
}

impl Layer for GlobalAveragePooling1D {
    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalAveragePooling1D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "global_average_pooling1d"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("GlobalAveragePooling1D", inputs)?;
        if input.len() != 2 {
            return Err(Error::invalid(
                "GlobalAveragePooling1D",
                format!("expects samples of [steps, features], got {input:?}"),
            ));
        }
        Ok(vec![input[1]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(plain(g.push(ReduceOp::Mean { axis: 1 }, &[xs[0]])?))
    }

    /// With a mask, the mean over the real steps only: `Σ x·m / Σ m` (keras/src/layers/pooling/
    /// global_average_pooling1d.py). A sample with no real step averages to zeros, where Keras
    /// divides by zero.
    fn build_masked(
        &self,
        g: &mut Graph,
        xs: &[NodeId],
        masks: &[Option<NodeId>],
        params: &[NodeId],
        training: bool,
    ) -> Result<LayerOut> {
        let Some(Some(mask)) = masks.first().copied() else {
            return self.build(g, xs, params, training);
        };
        let features = g.shape(xs[0])?.last();
        let spread = super::spread_mask(g, mask, features)?;
        let kept = g.mul(xs[0], spread)?;
        let sum = g.push(ReduceOp::Sum { axis: 1 }, &[kept])?;
        let count = g.push(ReduceOp::Sum { axis: 1 }, &[mask])?;
        let count = g.unary(
            kiln_graph::ElementwiseOp::Clip {
                min: 1.0,
                max: f32::MAX,
            },
            count,
        )?;
        let count = g.push(
            ReduceOp::Broadcast {
                axis: 1,
                size: features,
            },
            &[count],
        )?;
        Ok(plain(g.div(sum, count)?))
    }
}

/// Keras' `GlobalAveragePooling2D`: the mean over the height and width of `[h, w, channels]`
/// images.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GlobalAveragePooling2D;

impl GlobalAveragePooling2D {
    /// The pooling layer.
    pub fn new() -> Self {
        GlobalAveragePooling2D
    }
}

impl Layer for GlobalAveragePooling2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalAveragePooling2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "global_average_pooling2d"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("GlobalAveragePooling2D", inputs)?;
        if input.len() != 3 {
            return Err(Error::invalid(
                "GlobalAveragePooling2D",
                format!("expects images [height, width, channels], got {input:?}"),
            ));
        }
        Ok(vec![input[2]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        // Height, then width (which has become axis 1).
        let rows = g.push(ReduceOp::Mean { axis: 1 }, &[xs[0]])?;
        Ok(plain(g.push(ReduceOp::Mean { axis: 1 }, &[rows])?))
    }
}
