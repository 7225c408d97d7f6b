//! `DepthwiseConv2D` and `SeparableConv2D`, as Keras has them
//! (keras/src/layers/convolutional/depthwise_conv2d.py, separable_conv2d.py).
//!
//! A depthwise convolution filters each channel with its own windows (`depth_multiplier` of them):
//! the im2col rows of the input, viewed as `[positions, kh·kw, c]`, each channel repeated
//! `multiplier` times (output channel `c·multiplier + j`, Keras' order), times the kernel
//! `[kh·kw, c·multiplier]` spread over the positions, summed over the window. Composed from graph ops, so autodiff gives the backward (col2im for the
//! input, a sum over positions for the kernel). A separable convolution follows it with a 1×1
//! convolution (a matmul) across channels.

use kiln_graph::{ConvOp, Graph, LayoutOp, NodeId, ReduceOp, Shape, Window2d};
use serde::{Deserialize, Serialize};

use super::conv2d::{image, window_2d};
use super::{activate, checked_product, Layer, LayerConfig, LayerOut, Padding, ParamDecl};
use crate::{Activation, Init};
use crate::{Error, Result};

/// `Σ_window x · kernel` per channel and multiple over the NHWC batch `x`:
/// `[n·out_h·out_w, c·multiplier]`.
fn depthwise(g: &mut Graph, x: NodeId, w: Window2d, kernel: NodeId, multiplier: usize) -> Result<NodeId> {
    let n = g.shape(x)?.dims()[0];
    let (positions, taps, c) = (n * w.out_h * w.out_w, w.kh * w.kw, w.channels);
    let cols = g.push(ConvOp::Im2Col { window: w }, &[x])?;
    let mut cols = g.reshape(cols, [positions, taps, c])?;
    if multiplier > 1 {
        let repeated = g.push(
            ReduceOp::Broadcast {
                axis: 3,
                size: multiplier,
            },
            &[cols],
        )?;
        cols = g.reshape(repeated, [positions, taps, c * multiplier])?;
    }
    let spread = g.push(
        ReduceOp::Broadcast {
            axis: 0,
            size: positions,
        },
        &[kernel],
    )?;
    let products = g.mul(cols, spread)?;
    Ok(g.push(ReduceOp::Sum { axis: 1 }, &[products])?)
}

/// The settings both layers share: window, strides, padding, activation, bias.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Depthwise {
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    depthwise_initializer: Init,
    bias_initializer: Init,
    #[serde(default = "one")]
    depth_multiplier: usize,
}

/// Serde default of `depth_multiplier` (files written before it existed).
fn one() -> usize {
    1
}

impl Depthwise {
    fn new(kernel: (usize, usize)) -> Self {
        Depthwise {
            depth_multiplier: 1,
            kernel,
            strides: (1, 1),
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            input_shape: None,
            depthwise_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
        }
    }

    /// The depthwise kernel `[kh·kw, c·multiplier]`, with Keras' fans for its
    /// `(kh, kw, c, multiplier)` shape; `name` is Keras 3's: `kernel` in DepthwiseConv2D,
    /// `depthwise_kernel` in SeparableConv2D.
    fn kernel_decl(&self, name: &'static str, c: usize) -> ParamDecl {
        let ((kh, kw), m) = (self.kernel, self.depth_multiplier);
        ParamDecl::weight(
            name,
            vec![kh * kw, self.depth(c)],
            self.depthwise_initializer,
            (kh * kw * c, kh * kw * m),
        )
    }

    /// Channels out of the depthwise step (`window` has checked the product).
    fn depth(&self, c: usize) -> usize {
        c.saturating_mul(self.depth_multiplier)
    }

    fn window(&self, layer: &str, input: &[usize]) -> Result<Window2d> {
        let (kh, kw) = self.kernel;
        if self.depth_multiplier == 0 {
            return Err(Error::invalid(layer, "depth_multiplier must be at least 1"));
        }
        checked_product(layer, &[kh, kw, input[2], self.depth_multiplier])?;
        let w = window_2d(layer, input, self.kernel, self.strides, self.padding)?;
        checked_product(layer, &[w.out_h, w.out_w, kh, kw, input[2], self.depth_multiplier])?;
        Ok(w)
    }

    /// `activation(z + bias)` reshaped to `[n, out_h, out_w, width]`, keeping the pre-activation.
    fn finish(&self, g: &mut Graph, z: NodeId, bias: Option<NodeId>, out: Shape) -> Result<LayerOut> {
        let z = match bias {
            Some(b) => g.bias_add(z, b)?,
            None => z,
        };
        let y = activate(g, z, self.activation)?;
        let reshape = |g: &mut Graph, v| g.push(LayoutOp::Reshape { shape: out.clone() }, &[v]);
        let output = reshape(g, y)?;
        let pre_activation = if y == z { output } else { reshape(g, z)? };
        Ok(LayerOut { pre_activation, output })
    }
}

/// Builder methods both layers share.
macro_rules! depthwise_builders {
    () => {
        /// Sets the strides.
        pub fn strides(mut self, strides: (usize, usize)) -> Self {
            self.d.strides = strides;
            self
        }

        /// Sets the padding (`Valid` or `Same`).
        pub fn padding(mut self, padding: Padding) -> Self {
            self.d.padding = padding;
            self
        }

        /// Sets the activation.
        pub fn activation(mut self, activation: Activation) -> Self {
            self.d.activation = activation;
            self
        }

        /// Drops the bias.
        pub fn without_bias(mut self) -> Self {
            self.d.use_bias = false;
            self
        }

        /// Keras' `input_shape=(h, w, c)` on a first layer.
        pub fn input_shape(mut self, shape: [usize; 3]) -> Self {
            self.d.input_shape = Some(shape.to_vec());
            self
        }

        /// How the depthwise kernel starts (glorot_uniform by default).
        pub fn depthwise_initializer(mut self, init: Init) -> Self {
            self.d.depthwise_initializer = init;
            self
        }

        /// Windows per input channel (Keras' `depth_multiplier`, 1 by default): the depthwise
        /// step makes `channels · multiplier` channels, multiples of a channel side by side.
        pub fn depth_multiplier(mut self, multiplier: usize) -> Self {
            self.d.depth_multiplier = multiplier;
            self
        }
    };
}

/// Each channel convolved with its own `kh × kw` windows, as Keras'
/// `DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier)`: `[h, w, c]` →
/// `[oh, ow, c·depth_multiplier]`. Weights: `kernel` `[kh·kw, c·m]` (Keras 3's name and element
/// order for its `(kh, kw, c, m)` kernel), `bias` `[c·m]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DepthwiseConv2D {
    #[serde(flatten)]
    d: Depthwise,
}

impl DepthwiseConv2D {
    /// `kernel` windows, stride 1, valid padding, with a bias.
    pub fn new(kernel: (usize, usize)) -> Self {
        DepthwiseConv2D {
            d: Depthwise::new(kernel),
        }
    }

    depthwise_builders!();
}

impl Layer for DepthwiseConv2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::DepthwiseConv2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "depthwise_conv2d"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.d.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("DepthwiseConv2D", inputs)?;
        let w = self.d.window("DepthwiseConv2D", input)?;
        Ok(vec![w.out_h, w.out_w, self.d.depth(input[2])])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|i| i.get(2)).copied().unwrap_or(0);
        let mut p = vec![self.d.kernel_decl("kernel", c)];
        if self.d.use_bias {
            p.push(ParamDecl::weight(
                "bias",
                vec![self.d.depth(c)],
                self.d.bias_initializer,
                (0, 0),
            ));
        }
        p
    }

    fn activation(&self) -> Activation {
        self.d.activation
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let w = self.d.window("DepthwiseConv2D", &dims[1..])?;
        let z = depthwise(g, xs[0], w, params[0], self.d.depth_multiplier)?;
        let bias = self.d.use_bias.then(|| params[1]);
        let out = Shape::new([dims[0], w.out_h, w.out_w, self.d.depth(w.channels)]);
        self.d.finish(g, z, bias, out)
    }
}

/// A depthwise convolution followed by a 1×1 convolution to `filters` channels, as Keras'
/// `SeparableConv2D(filters, kernel_size, strides, padding, depth_multiplier)`. Weights:
/// `depthwise_kernel` `[kh·kw, c·m]`, `pointwise_kernel` `[c·m, filters]`, `bias` `[filters]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeparableConv2D {
    filters: usize,
    pointwise_initializer: Init,
    #[serde(flatten)]
    d: Depthwise,
}

impl SeparableConv2D {
    /// `filters` outputs per pixel from `kernel` windows, stride 1, valid padding, with a bias.
    pub fn new(filters: usize, kernel: (usize, usize)) -> Self {
        SeparableConv2D {
            filters,
            pointwise_initializer: Init::GlorotUniform,
            d: Depthwise::new(kernel),
        }
    }

    depthwise_builders!();

    /// How the pointwise kernel starts (glorot_uniform by default).
    pub fn pointwise_initializer(mut self, init: Init) -> Self {
        self.pointwise_initializer = init;
        self
    }
}

impl Layer for SeparableConv2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::SeparableConv2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "separable_conv2d"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.d.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("SeparableConv2D", inputs)?;
        if self.filters == 0 {
            return Err(Error::invalid("SeparableConv2D", "filters must be at least 1"));
        }
        checked_product(
            "SeparableConv2D",
            &[input[2], self.d.depth_multiplier.max(1), self.filters],
        )?;
        let w = self.d.window("SeparableConv2D", input)?;
        Ok(vec![w.out_h, w.out_w, self.filters])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|i| i.get(2)).copied().unwrap_or(0);
        let mut p = vec![
            self.d.kernel_decl("depthwise_kernel", c),
            ParamDecl::weight(
                "pointwise_kernel",
                vec![self.d.depth(c), self.filters],
                self.pointwise_initializer,
                (self.d.depth(c), self.filters),
            ),
        ];
        if self.d.use_bias {
            p.push(ParamDecl::weight(
                "bias",
                vec![self.filters],
                self.d.bias_initializer,
                (0, 0),
            ));
        }
        p
    }

    fn activation(&self) -> Activation {
        self.d.activation
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let w = self.d.window("SeparableConv2D", &dims[1..])?;
        let depth = depthwise(g, xs[0], w, params[0], self.d.depth_multiplier)?;
        let z = g.matmul(depth, params[1], false, false)?;
        let bias = self.d.use_bias.then(|| params[2]);
        self.d
            .finish(g, z, bias, Shape::new([dims[0], w.out_h, w.out_w, self.filters]))
    }
}
