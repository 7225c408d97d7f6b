//! `Dense`: `activation(x · kernel + bias)`, over the last axis of its input.

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{activate, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Activation, Init};
use crate::{Error, Result};

/// A fully connected layer, as Keras' `Dense`: glorot-uniform kernel, zero bias.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dense {
    units: usize,
    activation: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    #[serde(default = "super::glorot_uniform")]
    kernel_initializer: Init,
    #[serde(default = "super::zeros")]
    bias_initializer: Init,
}

impl Dense {
    super::kernel_builders!();

    /// `units` outputs, linear activation, with a bias.
    pub fn new(units: usize) -> Self {
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            input_shape: None,
            kernel_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
        }
    }

    /// Keras' `input_shape=(dim,)` on a first layer.
    pub fn input_dim(mut self, dim: usize) -> Self {
        self.input_shape = Some(vec![dim]);
        self
    }

    /// Number of outputs.
    pub fn units(&self) -> usize {
        self.units
    }
}

impl Layer for Dense {
    fn config(&self) -> LayerConfig {
        LayerConfig::Dense(self.clone())
    }

    fn kind(&self) -> &'static str {
        "dense"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Dense", inputs)?;
        if self.units == 0 {
            return Err(Error::invalid("Dense", "units must be at least 1"));
        }
        let Some((&features, leading)) = input.split_last() else {
            return Err(Error::invalid(
                "Dense",
                "expects samples with a feature axis, got a scalar per sample",
            ));
        };
        if features == 0 {
            return Err(Error::invalid("Dense", format!("input {input:?} has no features")));
        }
        // On a sequence (or any higher rank) Dense applies to the last axis, as Keras' does.
        let mut out = leading.to_vec();
        out.push(self.units);
        super::checked_product("Dense", &out)?;
        Ok(out)
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let fan_in = inputs.first().and_then(|i| i.last()).copied().unwrap_or(0);
        let mut p = vec![ParamDecl::weight(
            "kernel",
            vec![fan_in, self.units],
            self.kernel_initializer,
            (fan_in, self.units),
        )];
        if self.use_bias {
            p.push(ParamDecl::weight(
                "bias",
                vec![self.units],
                self.bias_initializer,
                (0, 0),
            ));
        }
        p
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let shape = g.shape(xs[0])?.clone();
        let features = shape.last();
        // `[n, .., features]` as rows of features, and the product back to `[n, .., units]`.
        let rows = if shape.rank() == 2 {
            xs[0]
        } else {
            g.reshape(xs[0], [shape.numel() / features.max(1), features])?
        };
        let mut z = g.matmul(rows, params[0], false, false)?;
        if self.use_bias {
            z = g.bias_add(z, params[1])?;
        }
        if shape.rank() != 2 {
            let mut dims = shape.dims().to_vec();
            *dims.last_mut().expect("a feature axis") = self.units;
            z = g.reshape(z, dims)?;
        }
        Ok(LayerOut {
            pre_activation: z,
            output: activate(g, z, self.activation)?,
        })
    }
}
