//! Layers: each declares its parameters and adds its ops to a graph.

mod dense;

pub use dense::Dense;

use kiln_graph::{Graph, NodeId, Result};

use crate::{Activation, Init};

/// A parameter a layer owns.
#[derive(Clone, Debug)]
pub struct ParamDecl {
    /// Name within the layer, e.g. `kernel` or `bias`.
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
}

/// What a layer adds to a graph.
#[derive(Clone, Copy, Debug)]
pub struct LayerOut {
    /// The value before the layer's activation (the logits of an output layer).
    pub pre_activation: NodeId,
    /// The layer's output.
    pub output: NodeId,
}

/// A layer of a model. Shapes here are per sample: the batch axis is added by the model.
pub trait Layer: std::fmt::Debug + Send + Sync {
    /// Keras' class-like name, used for default layer names (`dense`, `dense_1`, ...).
    fn kind(&self) -> &'static str;

    /// The shape of one input sample, if the layer was told it (Keras' `input_shape`).
    fn input_shape(&self) -> Option<Vec<usize>> {
        None
    }

    /// The output sample shape for this input sample shape, or an error naming the layer.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// The parameters the layer needs for this input sample shape.
    fn params(&self, input: &[usize]) -> Vec<ParamDecl>;

    /// The activation the layer ends in.
    fn activation(&self) -> Activation;

    /// Adds the layer to `g`: `x` is the batched input, `params` the nodes of the parameters
    /// declared by [`Layer::params`], in the same order.
    fn build(&self, g: &mut Graph, x: NodeId, params: &[NodeId]) -> Result<LayerOut>;
}

/// Applies `activation` to `z` in `g`.
pub fn activate(g: &mut Graph, z: NodeId, activation: Activation) -> Result<NodeId> {
    use kiln_graph::Op;
    match activation {
        Activation::Linear => Ok(z),
        Activation::Relu => g.unary(Op::Relu, z),
        Activation::Sigmoid => g.unary(Op::Sigmoid, z),
        Activation::Softmax => g.unary(Op::Softmax, z),
    }
}
