//! `Conv2DTranspose` and `Conv1DTranspose`, as Keras has them: the adjoint of a convolution, which
//! upsamples (an autoencoder's decoder, a U-Net's expanding path).
//!
//! A transposed convolution is the gradient of a convolution with respect to its input, so it is
//! built from the ops of one run backwards: each input pixel times the kernel gives one window's
//! worth of output (`x · kernelᵀ`, a matmul), and col2im sums the overlapping windows into the
//! output image. Its backward pass is then a convolution (im2col and matmuls), which autodiff
//! derives; no kernel of its own.
//!
//! Output sizes and padding as Keras' `deconv_output_length` (keras/src/utils/conv_utils.py via
//! keras/src/ops/operation_utils.py), checked against Keras 3.15.1 for kernels 1–5 and strides
//! 1–3: `same` gives `input · stride`, with the window placed as the matching forward `same`
//! convolution places it (padding `(kernel − stride) / 2` before, the rest after); `valid` gives
//! `(input − 1) · stride + max(kernel, stride)`.

use kiln_graph::{ConvOp, Graph, LayoutOp, NodeId, Shape, Window2d};
use serde::{Deserialize, Serialize};

use super::conv1d::as_sequence;
use super::conv2d::{epilogue, image};
use super::pooling::sequence;
use super::{checked_product, Layer, LayerConfig, LayerOut, Padding, ParamDecl};
use crate::{Activation, Init};
use crate::{Error, Result};

/// The forward convolution a transposed one is the adjoint of: its window over the output image
/// `[out_h, out_w, filters]`, whose grid of windows is the input `[in_h, in_w]`.
fn adjoint_window(
    layer: &str,
    (in_h, in_w): (usize, usize),
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
) -> Result<Window2d> {
    let (kh, kw) = kernel;
    let (sh, sw) = strides;
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return Err(Error::invalid(layer, "kernel sizes and strides must be at least 1"));
    }
    let same = match padding {
        Padding::Same => true,
        Padding::Valid => false,
        Padding::Causal => {
            return Err(Error::invalid(
                layer,
                "causal padding is for Conv1D, as in Keras; a transposed convolution takes valid or same",
            ))
        }
    };
    let length = |input: usize, k: usize, s: usize| {
        if same {
            input.checked_mul(s)
        } else {
            input
                .saturating_sub(1)
                .checked_mul(s)
                .and_then(|v| v.checked_add(k.max(s)))
        }
    };
    let (Some(out_h), Some(out_w)) = (length(in_h, kh, sh), length(in_w, kw, sw)) else {
        return Err(Error::invalid(layer, "the output size overflows"));
    };
    let w = Window2d::new(out_h, out_w, filters, kernel, strides, same)
        .map_err(|e| Error::invalid(layer, format!("{e} (input {in_h}×{in_w})")))?;
    // The forward convolution over the output must have exactly one window per input pixel.
    if (w.out_h, w.out_w) != (in_h, in_w) {
        return Err(Error::invalid(
            layer,
            format!("a {kh}×{kw} kernel with strides {sh}×{sw} does not tile a {in_h}×{in_w} input"),
        ));
    }
    Ok(w)
}

/// The kernel `[kh·kw·filters, channels]` of a transposed convolution from `channels` inputs: Keras'
/// `(kh, kw, filters, channels)` in its element order. Keras' `compute_fans` reads that shape as
/// any conv kernel's, so its fan-in counts the filters and its fan-out the input channels.
fn transposed_params(
    (kh, kw): (usize, usize),
    channels: usize,
    filters: usize,
    use_bias: bool,
    (kernel_init, bias_init): (Init, Init),
) -> Vec<ParamDecl> {
    let mut p = vec![ParamDecl::weight(
        "kernel",
        vec![kh * kw * filters, channels],
        kernel_init,
        (kh * kw * filters, kh * kw * channels),
    )];
    if use_bias {
        p.push(ParamDecl::weight("bias", vec![filters], bias_init, (0, 0)));
    }
    p
}

/// `activation(conv_transpose(x) + bias)` over the NHWC batch `x [n, in_h, in_w, c]` with the
/// adjoint window `w`: `[n, out_h, out_w, filters]`.
fn convolve_transposed(
    g: &mut Graph,
    x: NodeId,
    w: &Window2d,
    kernel: NodeId,
    bias: Option<NodeId>,
    activation: Activation,
) -> Result<LayerOut> {
    let dims = g.shape(x)?.dims().to_vec();
    let (n, channels) = (dims[0], dims[3]);
    let pixels = g.push(
        LayoutOp::Reshape {
            shape: Shape::new([n * w.out_h * w.out_w, channels]),
        },
        &[x],
    )?;
    // One window of output per input pixel, then the overlapping windows summed into the image.
    let windows = g.matmul(pixels, kernel, false, true)?;
    let summed = g.push(ConvOp::Col2Im { window: *w }, &[windows])?;
    let rows = g.push(
        LayoutOp::Reshape {
            shape: Shape::new([n * w.in_h * w.in_w, w.channels]),
        },
        &[summed],
    )?;
    epilogue(g, rows, bias, activation, Shape::new([n, w.in_h, w.in_w, w.channels]))
}

/// A 2-D transposed convolution, as Keras' `Conv2DTranspose(filters, kernel_size, strides,
/// padding, activation)` on NHWC images (no `output_padding` or `dilation_rate`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conv2DTranspose {
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    kernel_initializer: Init,
    bias_initializer: Init,
}

impl Conv2DTranspose {
    super::kernel_builders!();

    /// `filters` output channels from `kernel` windows, stride 1, valid padding, with a bias.
    pub fn new(filters: usize, kernel: (usize, usize)) -> Self {
        Conv2DTranspose {
            filters,
            kernel,
            strides: (1, 1),
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            input_shape: None,
            kernel_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
        }
    }

    super::window_builders!(strides: (usize, usize), 3);

    fn window(&self, input: &[usize]) -> Result<Window2d> {
        adjoint_window(
            "Conv2DTranspose",
            (input[0], input[1]),
            self.filters,
            self.kernel,
            self.strides,
            self.padding,
        )
    }
}

impl Layer for Conv2DTranspose {
    fn config(&self) -> LayerConfig {
        LayerConfig::Conv2DTranspose(self.clone())
    }

    fn kind(&self) -> &'static str {
        "conv2d_transpose"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("Conv2DTranspose", inputs)?;
        if self.filters == 0 {
            return Err(Error::invalid("Conv2DTranspose", "filters must be at least 1"));
        }
        let w = self.window(input)?;
        let (kh, kw) = self.kernel;
        checked_product("Conv2DTranspose", &[kh, kw, self.filters, input[2]])?;
        Ok(vec![w.in_h, w.in_w, self.filters])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|i| i.get(2)).copied().unwrap_or(0);
        let inits = (self.kernel_initializer, self.bias_initializer);
        transposed_params(self.kernel, c, self.filters, self.use_bias, inits)
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let w = self.window(&dims[1..])?;
        let bias = self.use_bias.then(|| params[1]);
        convolve_transposed(g, xs[0], &w, params[0], bias, self.activation)
    }
}

/// A 1-D transposed convolution, as Keras' `Conv1DTranspose(filters, kernel_size, strides,
/// padding, activation)` on sequences `[steps, channels]`: Conv2DTranspose over images one row
/// high. The kernel is Keras' `(k, filters, channels)`, `[k·filters, channels]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conv1DTranspose {
    filters: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    kernel_initializer: Init,
    bias_initializer: Init,
}

impl Conv1DTranspose {
    super::kernel_builders!();

    /// `filters` outputs per step from windows of `kernel` steps, stride 1, valid padding.
    pub fn new(filters: usize, kernel: usize) -> Self {
        Conv1DTranspose {
            filters,
            kernel,
            stride: 1,
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            input_shape: None,
            kernel_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
        }
    }

    super::window_builders!(stride: usize, 2);

    fn window(&self, steps: usize) -> Result<Window2d> {
        adjoint_window(
            "Conv1DTranspose",
            (1, steps),
            self.filters,
            (1, self.kernel),
            (1, self.stride),
            self.padding,
        )
    }
}

impl Layer for Conv1DTranspose {
    fn config(&self) -> LayerConfig {
        LayerConfig::Conv1DTranspose(self.clone())
    }

    fn kind(&self) -> &'static str {
        "conv1d_transpose"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = sequence("Conv1DTranspose", inputs)?;
        if self.filters == 0 {
            return Err(Error::invalid("Conv1DTranspose", "filters must be at least 1"));
        }
        let w = self.window(input[0])?;
        checked_product("Conv1DTranspose", &[self.kernel, self.filters, input[1]])?;
        Ok(vec![w.in_w, self.filters])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|i| i.get(1)).copied().unwrap_or(0);
        let inits = (self.kernel_initializer, self.bias_initializer);
        transposed_params((1, self.kernel), c, self.filters, self.use_bias, inits)
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let (n, steps, channels) = (dims[0], dims[1], dims[2]);
        let w = self.window(steps)?;
        let rows = g.push(
            LayoutOp::Reshape {
                shape: Shape::new([n, 1, steps, channels]),
            },
            &[xs[0]],
        )?;
        let bias = self.use_bias.then(|| params[1]);
        let out = convolve_transposed(g, rows, &w, params[0], bias, self.activation)?;
        as_sequence(g, out, Shape::new([n, w.in_w, self.filters]))
    }
}
