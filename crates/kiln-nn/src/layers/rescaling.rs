//! `Rescaling`, as Keras' preprocessing layer (keras/src/layers/preprocessing/rescaling.py):
//! `x · scale + offset`, in training and inference alike.

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{plain, single, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// Multiplies its input by `scale` and adds `offset` (`Rescaling(1/255)` maps pixels to [0, 1],
/// `Rescaling(1/127.5, -1)` to [-1, 1]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rescaling {
    scale: f32,
    offset: f32,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl Rescaling {
    /// `x · scale + offset`.
    pub fn new(scale: f32, offset: f32) -> Self {
        Rescaling {
            scale,
            offset,
            input_shape: None,
        }
    }

    /// The shape of one input sample, when this is a model's first layer.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }
}

impl Layer for Rescaling {
    fn kind(&self) -> &'static str {
        "rescaling"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Rescaling(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        if !(self.scale.is_finite() && self.offset.is_finite()) {
            return Err(Error::invalid(
                "Rescaling",
                format!("scale {} and offset {} must be finite", self.scale, self.offset),
            ));
        }
        Ok(single("rescaling", inputs)?.to_vec())
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let scaled = g.scale(xs[0], self.scale)?;
        if self.offset == 0.0 {
            return Ok(plain(scaled));
        }
        let offset = g.fill(self.offset, g.shape(scaled)?.clone());
        Ok(plain(g.add(scaled, offset)?))
    }
}
