//! `TimeDistributed`, as Keras' wrapper (keras/src/layers/rnn/time_distributed.py): one layer
//! applied to every step of a sequence, with the same weights at every step.

use std::sync::Arc;

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{checked_product, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Activation, Error, Result};

/// Applies the wrapped single-input layer to each of the `steps` of `[steps, ..]` samples: the
/// batch and the steps are folded into one batch of `n·steps`, the layer runs once on it, and the
/// result is unfolded to `[steps, ..]`. The weights are the wrapped layer's, under this layer's
/// name. (`Dense` already applies to the last axis of a sequence; this is for the layers that
/// need whole samples per step, a `Conv2D` over the frames of a video, say.)
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimeDistributed {
    layer: Box<LayerConfig>,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl TimeDistributed {
    /// Wraps `layer`.
    pub fn new(layer: impl Layer + 'static) -> Self {
        TimeDistributed {
            layer: Box::new(layer.config()),
            input_shape: None,
        }
    }

    /// The shape of one input sample `[steps, ..]`, when this is a model's first layer.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }

    fn inner(&self) -> Arc<dyn Layer> {
        (*self.layer).clone().into_layer()
    }

    /// `(steps, one step's shape)` of a sample.
    fn split(inputs: &[Vec<usize>]) -> Result<(usize, Vec<usize>)> {
        let input = single("TimeDistributed", inputs)?;
        match input.split_first() {
            Some((&steps, step)) if !step.is_empty() && steps > 0 => Ok((steps, step.to_vec())),
            _ => Err(Error::invalid(
                "TimeDistributed",
                format!("expects samples [steps, ..] with at least one axis per step, got {input:?}"),
            )),
        }
    }
}

impl Layer for TimeDistributed {
    fn kind(&self) -> &'static str {
        "time_distributed"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::TimeDistributed(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let (steps, step) = Self::split(inputs)?;
        let inner = self.inner();
        if inner.reads_indices() {
            return Err(Error::invalid(
                "TimeDistributed",
                "cannot wrap a layer that reads token indices; apply it to the sequence directly",
            ));
        }
        let mut out = vec![steps];
        out.extend(inner.output_shape(&[step])?);
        checked_product("TimeDistributed", &out)?;
        Ok(out)
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        match Self::split(inputs) {
            Ok((_, step)) => self.inner().params(&[step]),
            Err(_) => Vec::new(),
        }
    }

    fn activation(&self) -> Activation {
        self.inner().activation()
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let (n, steps) = (dims[0], dims[1]);
        let mut folded = vec![n * steps];
        folded.extend(&dims[2..]);
        let x = g.reshape(xs[0], folded)?;
        let out = self.inner().build(g, &[x], params, training)?;
        let unfold = |g: &mut Graph, y: NodeId| -> Result<NodeId> {
            let mut dims = vec![n, steps];
            dims.extend(&g.shape(y)?.dims()[1..]);
            Ok(g.reshape(y, dims)?)
        };
        let output = unfold(g, out.output)?;
        let pre_activation = if out.pre_activation == out.output {
            output
        } else {
            unfold(g, out.pre_activation)?
        };
        Ok(LayerOut { pre_activation, output })
    }
}
