//! Keras' `Activation` layer: an activation on its own, after a layer that has none (the
//! Conv → BatchNormalization → ReLU pattern).

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{activate, single, Layer, LayerConfig, LayerOut};
use crate::{Activation, Result};

/// Applies `activation` to its input, whatever its shape (Keras' `layers.Activation`). As the
/// output layer it counts as the model's output activation: a softmax here gives losses and
/// metrics the logits beneath it, as a `Dense(.., softmax)` does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActivationLayer {
    activation: Activation,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        ActivationLayer {
            activation,
            input_shape: None,
        }
    }

    /// The shape of one input sample, when this is a model's first layer.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }

    /// Samples of `dim` features, when this is a model's first layer.
    pub fn input_dim(self, dim: usize) -> Self {
        self.input_shape([dim])
    }
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        "activation"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Activation(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        self.activation.validate("Activation")?;
        Ok(single("activation", inputs)?.to_vec())
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(LayerOut {
            pre_activation: xs[0],
            output: activate(g, xs[0], self.activation)?,
        })
    }
}
