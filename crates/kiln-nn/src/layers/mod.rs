//! Layers: each declares its parameters and adds its ops to a graph.

mod activation;
mod attention;
pub mod batch_norm;
mod concatenate;
mod conv1d;
mod conv2d;
mod dense;
mod depthwise;
pub mod dilated;
mod dot_attention;
mod dropout;
mod embedding;
pub mod layer_norm;
mod mean;
mod merge;
mod normalization;
mod padding;
mod pooling;
mod position;
mod prelu;
mod random_flip;
mod random_translation;
pub mod recurrent;
mod rescaling;
mod reshape;
mod time_distributed;
mod transpose;
mod upsampling;

pub use activation::ActivationLayer;
pub use attention::MultiHeadAttention;
pub use batch_norm::BatchNormalization;
pub use concatenate::Concatenate;
pub use conv1d::Conv1D;
pub use conv2d::{Conv2D, Padding};
pub use dense::Dense;
pub use depthwise::{DepthwiseConv2D, SeparableConv2D};
pub use dot_attention::Attention;
pub use dropout::{Dropout, SpatialDropout};
pub use embedding::Embedding;
pub use layer_norm::LayerNormalization;
pub use mean::{GlobalAveragePooling1D, GlobalAveragePooling2D, Mean};
pub use merge::{Add, Average, Maximum, Minimum, Multiply, Subtract};
pub use normalization::Normalization;
pub use padding::{Cropping1D, Cropping2D, ZeroPadding1D, ZeroPadding2D};
pub use pooling::{
    AveragePooling1D, AveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D,
};
pub use position::PositionEmbedding;
pub use prelu::PReLU;
pub use random_flip::{FlipMode, RandomFlip};
pub use random_translation::{FillMode, Interpolation, RandomTranslation};
pub use recurrent::{Bidirectional, GRU, LSTM};
pub use rescaling::Rescaling;
pub use reshape::{Flatten, Permute, RepeatVector, Reshape};
pub use time_distributed::TimeDistributed;
pub use transpose::{Conv1DTranspose, Conv2DTranspose};
pub use upsampling::{UpSampling1D, UpSampling2D};

use std::sync::Arc;

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use crate::{Activation, Init};
use crate::{Error, Result};

/// A layer as a model file holds it: Keras' `class_name` with the layer's `config`. Loading a
/// file whose `class_name` is none of these fails with serde's "unknown variant" naming it.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "class_name", content = "config")]
pub enum LayerConfig {
    Dense(Dense),
    Dropout(Dropout),
    Conv2D(Conv2D),
    MaxPooling2D(MaxPooling2D),
    Flatten(Flatten),
    Reshape(Reshape),
    Embedding(Embedding),
    Mean(Mean),
    GlobalAveragePooling1D(GlobalAveragePooling1D),
    GlobalAveragePooling2D(GlobalAveragePooling2D),
    Concatenate(Concatenate),
    Activation(ActivationLayer),
    BatchNormalization(BatchNormalization),
    Add(Add),
    Subtract(Subtract),
    Multiply(Multiply),
    Average(Average),
    Maximum(Maximum),
    Minimum(Minimum),
    Conv1D(Conv1D),
    MaxPooling1D(MaxPooling1D),
    AveragePooling1D(AveragePooling1D),
    AveragePooling2D(AveragePooling2D),
    GlobalMaxPooling1D(GlobalMaxPooling1D),
    GlobalMaxPooling2D(GlobalMaxPooling2D),
    DepthwiseConv2D(DepthwiseConv2D),
    SeparableConv2D(SeparableConv2D),
    Rescaling(Rescaling),
    RandomFlip(RandomFlip),
    RandomTranslation(RandomTranslation),
    LayerNormalization(LayerNormalization),
    LSTM(LSTM),
    GRU(GRU),
    Bidirectional(Bidirectional),
    MultiHeadAttention(MultiHeadAttention),
    PositionEmbedding(PositionEmbedding),
    TimeDistributed(TimeDistributed),
    Conv2DTranspose(Conv2DTranspose),
    Conv1DTranspose(Conv1DTranspose),
    UpSampling2D(UpSampling2D),
    UpSampling1D(UpSampling1D),
    ZeroPadding2D(ZeroPadding2D),
    ZeroPadding1D(ZeroPadding1D),
    Cropping2D(Cropping2D),
    Cropping1D(Cropping1D),
    RepeatVector(RepeatVector),
    Permute(Permute),
    SpatialDropout(SpatialDropout),
    Normalization(Normalization),
    Attention(Attention),
    PReLU(PReLU),
}

impl LayerConfig {
    /// Keras' class name of the layer (`Conv2D`), as `summary()` shows it and files record it.
    pub fn class_name(&self) -> &'static str {
        match self {
            LayerConfig::Dense(_) => "Dense",
            LayerConfig::Dropout(_) => "Dropout",
            LayerConfig::Conv2D(_) => "Conv2D",
            LayerConfig::MaxPooling2D(_) => "MaxPooling2D",
            LayerConfig::Flatten(_) => "Flatten",
            LayerConfig::Reshape(_) => "Reshape",
            LayerConfig::Embedding(_) => "Embedding",
            LayerConfig::Mean(_) => "Mean",
            LayerConfig::GlobalAveragePooling1D(_) => "GlobalAveragePooling1D",
            LayerConfig::GlobalAveragePooling2D(_) => "GlobalAveragePooling2D",
            LayerConfig::Concatenate(_) => "Concatenate",
            LayerConfig::Activation(_) => "Activation",
            LayerConfig::BatchNormalization(_) => "BatchNormalization",
            LayerConfig::Add(_) => "Add",
            LayerConfig::Subtract(_) => "Subtract",
            LayerConfig::Multiply(_) => "Multiply",
            LayerConfig::Average(_) => "Average",
            LayerConfig::Maximum(_) => "Maximum",
            LayerConfig::Minimum(_) => "Minimum",
            LayerConfig::Conv1D(_) => "Conv1D",
            LayerConfig::MaxPooling1D(_) => "MaxPooling1D",
            LayerConfig::AveragePooling1D(_) => "AveragePooling1D",
            LayerConfig::AveragePooling2D(_) => "AveragePooling2D",
            LayerConfig::GlobalMaxPooling1D(_) => "GlobalMaxPooling1D",
            LayerConfig::GlobalMaxPooling2D(_) => "GlobalMaxPooling2D",
            LayerConfig::DepthwiseConv2D(_) => "DepthwiseConv2D",
            LayerConfig::SeparableConv2D(_) => "SeparableConv2D",
            LayerConfig::Rescaling(_) => "Rescaling",
            LayerConfig::RandomFlip(_) => "RandomFlip",
            LayerConfig::RandomTranslation(_) => "RandomTranslation",
            LayerConfig::LayerNormalization(_) => "LayerNormalization",
            LayerConfig::LSTM(_) => "LSTM",
            LayerConfig::GRU(_) => "GRU",
            LayerConfig::Bidirectional(_) => "Bidirectional",
            LayerConfig::MultiHeadAttention(_) => "MultiHeadAttention",
            LayerConfig::PositionEmbedding(_) => "PositionEmbedding",
            LayerConfig::TimeDistributed(_) => "TimeDistributed",
            LayerConfig::Conv2DTranspose(_) => "Conv2DTranspose",
            LayerConfig::Conv1DTranspose(_) => "Conv1DTranspose",
            LayerConfig::UpSampling2D(_) => "UpSampling2D",
            LayerConfig::UpSampling1D(_) => "UpSampling1D",
            LayerConfig::ZeroPadding2D(_) => "ZeroPadding2D",
            LayerConfig::ZeroPadding1D(_) => "ZeroPadding1D",
            LayerConfig::Cropping2D(_) => "Cropping2D",
            LayerConfig::Cropping1D(_) => "Cropping1D",
            LayerConfig::RepeatVector(_) => "RepeatVector",
            LayerConfig::Permute(_) => "Permute",
            LayerConfig::SpatialDropout(l) => l.class_name(),
            LayerConfig::Normalization(_) => "Normalization",
            LayerConfig::Attention(_) => "Attention",
            LayerConfig::PReLU(_) => "PReLU",
        }
    }

    /// The layer this configuration describes.
    pub fn into_layer(self) -> Arc<dyn Layer> {
        match self {
            LayerConfig::Dense(l) => Arc::new(l),
            LayerConfig::Dropout(l) => Arc::new(l),
            LayerConfig::Conv2D(l) => Arc::new(l),
            LayerConfig::MaxPooling2D(l) => Arc::new(l),
            LayerConfig::Flatten(l) => Arc::new(l),
            LayerConfig::Reshape(l) => Arc::new(l),
            LayerConfig::Embedding(l) => Arc::new(l),
            LayerConfig::Mean(l) => Arc::new(l),
            LayerConfig::GlobalAveragePooling1D(l) => Arc::new(l),
            LayerConfig::GlobalAveragePooling2D(l) => Arc::new(l),
            LayerConfig::Concatenate(l) => Arc::new(l),
            LayerConfig::Activation(l) => Arc::new(l),
            LayerConfig::BatchNormalization(l) => Arc::new(l),
            LayerConfig::Add(l) => Arc::new(l),
            LayerConfig::Subtract(l) => Arc::new(l),
            LayerConfig::Multiply(l) => Arc::new(l),
            LayerConfig::Average(l) => Arc::new(l),
            LayerConfig::Maximum(l) => Arc::new(l),
            LayerConfig::Minimum(l) => Arc::new(l),
            LayerConfig::Conv1D(l) => Arc::new(l),
            LayerConfig::MaxPooling1D(l) => Arc::new(l),
            LayerConfig::AveragePooling1D(l) => Arc::new(l),
            LayerConfig::AveragePooling2D(l) => Arc::new(l),
            LayerConfig::GlobalMaxPooling1D(l) => Arc::new(l),
            LayerConfig::GlobalMaxPooling2D(l) => Arc::new(l),
            LayerConfig::DepthwiseConv2D(l) => Arc::new(l),
            LayerConfig::SeparableConv2D(l) => Arc::new(l),
            LayerConfig::Rescaling(l) => Arc::new(l),
            LayerConfig::RandomFlip(l) => Arc::new(l),
            LayerConfig::RandomTranslation(l) => Arc::new(l),
            LayerConfig::LayerNormalization(l) => Arc::new(l),
            LayerConfig::LSTM(l) => Arc::new(l),
            LayerConfig::GRU(l) => Arc::new(l),
            LayerConfig::Bidirectional(l) => Arc::new(l),
            LayerConfig::MultiHeadAttention(l) => Arc::new(l),
            LayerConfig::PositionEmbedding(l) => Arc::new(l),
            LayerConfig::TimeDistributed(l) => Arc::new(l),
            LayerConfig::Conv2DTranspose(l) => Arc::new(l),
            LayerConfig::Conv1DTranspose(l) => Arc::new(l),
            LayerConfig::UpSampling2D(l) => Arc::new(l),
            LayerConfig::UpSampling1D(l) => Arc::new(l),
            LayerConfig::ZeroPadding2D(l) => Arc::new(l),
            LayerConfig::ZeroPadding1D(l) => Arc::new(l),
            LayerConfig::Cropping2D(l) => Arc::new(l),
            LayerConfig::Cropping1D(l) => Arc::new(l),
            LayerConfig::RepeatVector(l) => Arc::new(l),
            LayerConfig::Permute(l) => Arc::new(l),
            LayerConfig::SpatialDropout(l) => Arc::new(l),
            LayerConfig::Normalization(l) => Arc::new(l),
            LayerConfig::Attention(l) => Arc::new(l),
            LayerConfig::PReLU(l) => Arc::new(l),
        }
    }
}

/// A parameter a layer owns.
#[derive(Clone, Debug)]
pub struct ParamDecl {
    /// Name within the layer, e.g. `kernel` or `bias`.
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
    /// `(fan_in, fan_out)` as Keras' `compute_fans` counts them, for the variance-scaling
    /// initialisers.
    pub fans: (usize, usize),
    /// Whether the optimizer trains it; a non-trainable tensor (BatchNormalization's moving
    /// statistics) is layer state that the layer's training graph updates itself, saved with the
    /// model and counted apart by `summary()`.
    pub trainable: bool,
    /// Values the parameter starts from in place of a draw from `init` (a preprocessing layer's
    /// adapted statistics).
    pub start: Option<Vec<f32>>,
}

impl ParamDecl {
    /// A trainable parameter.
    pub fn weight(name: &'static str, shape: Vec<usize>, init: Init, fans: (usize, usize)) -> Self {
        ParamDecl {
            name,
            shape,
            init,
            fans,
            trainable: true,
            start: None,
        }
    }
}

/// The builder methods of every layer with a kernel (Dense, Conv1D, Conv2D), over their fields
/// `activation`, `use_bias`, `kernel_initializer` and `bias_initializer`.
macro_rules! kernel_builders {
    () => {
        /// Sets the activation.
        pub fn activation(mut self, activation: crate::Activation) -> Self {
            self.activation = activation;
            self
        }

        /// Drops the bias.
        pub fn without_bias(mut self) -> Self {
            self.use_bias = false;
            self
        }

        /// How the kernel starts (Keras' `kernel_initializer`; glorot_uniform by default).
        pub fn kernel_initializer(mut self, init: crate::Init) -> Self {
            self.kernel_initializer = init;
            self
        }

        /// How the bias starts (Keras' `bias_initializer`; zeros by default).
        pub fn bias_initializer(mut self, init: crate::Init) -> Self {
            self.bias_initializer = init;
            self
        }
    };
}
pub(crate) use kernel_builders;

/// The builder methods of the convolutions (Conv1D, Conv2D and their transposes), over their fields
/// `padding`, `input_shape` and the strides field named here, of type `$strides`, with samples of
/// rank `$rank` (`[steps, channels]` or `[h, w, c]`).
macro_rules! window_builders {
    ($field:ident: $strides:ty, $rank:literal) => {
        /// Sets the strides (for a transposed convolution, the upsampling factor).
        pub fn strides(mut self, strides: $strides) -> Self {
            self.$field = strides;
            self
        }

        /// Sets the padding: `Valid` or `Same`, and `Causal` for Conv1D alone.
        pub fn padding(mut self, padding: crate::layers::Padding) -> Self {
            self.padding = padding;
            self
        }

        /// Keras' `input_shape` on a first layer: `(steps, channels)` or `(h, w, c)`.
        pub fn input_shape(mut self, shape: [usize; $rank]) -> Self {
            self.input_shape = Some(shape.to_vec());
            self
        }
    };
}
pub(crate) use window_builders;

/// The builder methods of the normalisation layers (BatchNormalization, LayerNormalization), over
/// their fields `epsilon`, `center`, `scale` and `input_shape`.
macro_rules! normalization_builders {
    () => {
        /// Added to the variance before the square root.
        pub fn epsilon(mut self, epsilon: f32) -> Self {
            self.epsilon = epsilon;
            self
        }

        /// Whether to learn the shift `beta` (Keras' `center`).
        pub fn center(mut self, on: bool) -> Self {
            self.center = on;
            self
        }

        /// Whether to learn the scale `gamma` (Keras' `scale`).
        pub fn scale(mut self, on: bool) -> Self {
            self.scale = on;
            self
        }

        /// The shape of one input sample, when this is a model's first layer.
        pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
            self.input_shape = Some(shape.into());
            self
        }
    };
}
pub(crate) use normalization_builders;

/// Serde defaults of the initialiser fields (files written before they existed).
pub(crate) fn glorot_uniform() -> Init {
    Init::GlorotUniform
}

pub(crate) fn zeros() -> Init {
    Init::Zeros
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

    /// The layer's configuration, as saved in a model file.
    fn config(&self) -> LayerConfig;

    /// The shape of one input sample, if the layer was told it (Keras' `input_shape`).
    fn input_shape(&self) -> Option<Vec<usize>> {
        None
    }

    /// The output sample shape for these input sample shapes, or an error saying what is wrong.
    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>>;

    /// The parameters the layer needs for these input sample shapes.
    fn params(&self, _inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        Vec::new()
    }

    /// The activation the layer ends in.
    fn activation(&self) -> Activation {
        Activation::Linear
    }

    /// Checks data fed from a model input to this layer (indices in range, say) before the device
    /// sees it: straight, or through layers that only move values ([`Layer::moves_values`]).
    fn check_input(&self, _x: &kiln_data::Tensor) -> Result<()> {
        Ok(())
    }

    /// True when the layer reads its input as integer indices (Embedding): it must be fed from a
    /// model input, whose values [`Layer::check_input`] can see, not from values a layer computed.
    fn reads_indices(&self) -> bool {
        false
    }

    /// Keras' `autocast`: under `mixed_float16`, whether the layer reads its trainable weights as
    /// f16 values. BatchNormalization, LayerNormalization and Embedding keep f32 weights, as in
    /// Keras (keras/src/layers/normalization/*.py, keras/src/layers/core/embedding.py).
    fn autocasts(&self) -> bool {
        true
    }

    /// True when the output holds the input's values unchanged, only rearranged (Reshape, Flatten,
    /// Concatenate), so a check of a model input still holds after it.
    fn moves_values(&self) -> bool {
        false
    }

    /// Adds the layer to `g`: `xs` are the batched inputs, `params` the nodes of the parameters
    /// declared by [`Layer::params`], in the same order; `training` is Keras' `call(..., training)`:
    /// true in a training step's graph (dropout drops only then), false for evaluation and prediction.
    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut>;

    /// As [`Layer::build`], given each input's mask (Keras' `call(..., mask=...)`): `[n, steps]` of
    /// 1 for a real step and 0 for padding, or `None`. The layers that read masks (recurrent
    /// layers, attention, average pooling over steps) override it; the others ignore them.
    fn build_masked(
        &self,
        g: &mut Graph,
        xs: &[NodeId],
        _masks: &[Option<NodeId>],
        params: &[NodeId],
        training: bool,
    ) -> Result<LayerOut> {
        self.build(g, xs, params, training)
    }

    /// Keras' `return_state`: the sample shapes of the further outputs the layer gives after its
    /// output, for inputs [`Layer::output_shape`] accepts (a recurrent layer's final state); none
    /// for most layers.
    fn state_shapes(&self, _inputs: &[Vec<usize>]) -> Vec<Vec<usize>> {
        Vec::new()
    }

    /// As [`Layer::build_masked`], with the further outputs [`Layer::state_shapes`] describes, in
    /// that order.
    fn build_states(
        &self,
        g: &mut Graph,
        xs: &[NodeId],
        masks: &[Option<NodeId>],
        params: &[NodeId],
        training: bool,
    ) -> Result<(LayerOut, Vec<NodeId>)> {
        Ok((self.build_masked(g, xs, masks, params, training)?, Vec::new()))
    }

    /// Keras' `supports_masking` for a layer that keeps the steps of its input (Dense, Dropout,
    /// LayerNormalization, merges): its output carries its inputs' mask on.
    fn passes_mask(&self) -> bool {
        false
    }

    /// The mask of the layer's output from its inputs' (Keras' `compute_mask`): by default, when
    /// [`Layer::passes_mask`], the inputs' masks joined (a step is real where every masked input
    /// has it real), else none.
    fn output_mask(&self, g: &mut Graph, _xs: &[NodeId], masks: &[Option<NodeId>]) -> Result<Option<NodeId>> {
        if !self.passes_mask() {
            return Ok(None);
        }
        let mut joined: Option<NodeId> = None;
        for &m in masks.iter().flatten() {
            joined = Some(match joined {
                None => m,
                Some(j) => g.mul(j, m)?,
            });
        }
        Ok(joined)
    }
}

/// `mask [n, steps]` spread over the features of `[n, steps, features]`.
pub(crate) fn spread_mask(g: &mut Graph, mask: NodeId, features: usize) -> Result<NodeId> {
    let axis = g.shape(mask)?.rank();
    Ok(g.push(kiln_graph::ReduceOp::Broadcast { axis, size: features }, &[mask])?)
}

/// The product of `dims`, or an error naming the layer when it overflows (a corrupt or hostile
/// model description, say).
pub(crate) fn checked_product(layer: &str, dims: &[usize]) -> Result<usize> {
    kiln_data::tensor::numel(dims).map_err(|e| Error::invalid(layer, e.to_string()))
}

/// The one input of a single-input layer, or an error naming the layer.
pub fn single<'a>(kind: &str, inputs: &'a [Vec<usize>]) -> Result<&'a [usize]> {
    match inputs {
        [one] => Ok(one),
        _ => Err(Error::invalid(kind, format!("takes one input, got {}", inputs.len()))),
    }
}

/// A layer's output that has no separate pre-activation value.
pub fn plain(output: NodeId) -> LayerOut {
    LayerOut {
        pre_activation: output,
        output,
    }
}

/// Applies `activation` to `z` in `g`.
pub fn activate(g: &mut Graph, z: NodeId, activation: Activation) -> Result<NodeId> {
    match activation.op() {
        Some(op) => Ok(g.unary(op, z)?),
        None => Ok(z),
    }
}
