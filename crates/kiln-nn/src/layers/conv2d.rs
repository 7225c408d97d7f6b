//! `Conv2D` on channels-last (NHWC) images, as Keras has it, and the convolution Conv1D shares.
//!
//! A convolution is im2col (windows as rows) times the kernel viewed as a `[kh·kw·c, filters]`
//! matrix, so the scheduler fuses its bias and activation into the matmul epilogue and the GPU
//! runs it on the same matmul kernels as `Dense`.

use kiln_graph::{ConvOp, Graph, LayoutOp, NodeId, Shape, Window2d};
use serde::{Deserialize, Serialize};

use super::dilated::Dilated;
use super::{activate, checked_product, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Activation, Init};
use crate::{Error, Result};

/// Keras' `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Padding {
    /// No padding: the window must fit inside the input.
    #[default]
    Valid,
    /// Pad so the output is `ceil(input / stride)` along each axis.
    Same,
    /// Pad `kernel - 1` zeros before the sequence only, so no output sees a later input (Conv1D
    /// alone, as in Keras).
    Causal,
}

/// The `[h, w, c]` of a layer's one input, or an error naming the layer.
pub(super) fn image<'a>(layer: &str, inputs: &'a [Vec<usize>]) -> Result<&'a [usize]> {
    let input = single(layer, inputs)?;
    if input.len() != 3 {
        return Err(Error::invalid(
            layer,
            format!("expects images [height, width, channels] (NHWC), got samples {input:?}"),
        ));
    }
    Ok(input)
}

/// Serde default of `dilation` (files written before it existed).
fn no_dilation() -> (usize, usize) {
    (1, 1)
}

/// The error of a 2-D layer given causal padding.
fn causal_refused(layer: &str) -> Error {
    Error::invalid(
        layer,
        "causal padding is for 1-D layers (Conv1D), as in Keras; use valid or same",
    )
}

/// The window of a 2-D layer over `input` `[h, w, c]`; causal padding is Conv1D's alone.
pub(super) fn window_2d(
    layer: &str,
    input: &[usize],
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
) -> Result<Window2d> {
    let same = match padding {
        Padding::Valid => false,
        Padding::Same => true,
        Padding::Causal => return Err(causal_refused(layer)),
    };
    Window2d::new(input[0], input[1], input[2], kernel, strides, same)
        .map_err(|e| Error::invalid(layer, format!("{e} (input {input:?})")))
}

/// A 2-D convolution, as Keras' `Conv2D(filters, kernel_size, strides, padding, activation)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conv2D {
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    #[serde(default = "no_dilation")]
    dilation: (usize, usize),
    activation: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    #[serde(default = "super::glorot_uniform")]
    kernel_initializer: Init,
    #[serde(default = "super::zeros")]
    bias_initializer: Init,
}

impl Conv2D {
    super::kernel_builders!();

    /// `filters` outputs per pixel from `kernel` windows, stride 1, valid padding, with a bias.
    pub fn new(filters: usize, kernel: (usize, usize)) -> Self {
        Conv2D {
            filters,
            kernel,
            strides: (1, 1),
            padding: Padding::Valid,
            dilation: (1, 1),
            activation: Activation::Linear,
            use_bias: true,
            input_shape: None,
            kernel_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
        }
    }

    super::window_builders!(strides: (usize, usize), 3);

    /// Taps `rate` apart (Keras' `dilation_rate`; stride 1 only).
    pub fn dilation_rate(mut self, rate: (usize, usize)) -> Self {
        self.dilation = rate;
        self
    }

    fn window(&self, input: &[usize]) -> Result<Windows> {
        if self.padding == Padding::Causal {
            return Err(causal_refused("Conv2D"));
        }
        Windows::of("Conv2D", input, self.kernel, self.strides, self.dilation, self.padding)
    }
}

impl Layer for Conv2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::Conv2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("Conv2D", inputs)?;
        if self.filters == 0 {
            return Err(Error::invalid("Conv2D", "filters must be at least 1"));
        }
        let (out_h, out_w) = self.window(input)?.out();
        // The kernel's shape and fans (see `params`) must be representable.
        let (kh, kw) = self.kernel;
        checked_product("Conv2D", &[kh, kw, input[2].max(self.filters)])?;
        Ok(vec![out_h, out_w, self.filters])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|i| i.get(2)).copied().unwrap_or(0);
        let (kh, kw) = self.kernel;
        // Keras' fans of a conv kernel count the receptive field on both sides.
        let mut p = vec![ParamDecl::weight(
            "kernel",
            vec![kh * kw * c, self.filters],
            self.kernel_initializer,
            (kh * kw * c, kh * kw * self.filters),
        )];
        if self.use_bias {
            p.push(ParamDecl::weight(
                "bias",
                vec![self.filters],
                self.bias_initializer,
                (0, 0),
            ));
        }
        p
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let w = self.window(&dims[1..])?;
        let bias = self.use_bias.then(|| params[1]);
        convolve(g, xs[0], &w, params[0], bias, self.activation)
    }
}

/// Where a convolution's windows go: the im2col op's geometry, or taps spread by a dilation rate.
#[derive(Clone, Copy, Debug)]
pub(super) enum Windows {
    Dense(Window2d),
    Dilated(Dilated),
}

impl Windows {
    /// The output's height and width.
    pub(super) fn out(&self) -> (usize, usize) {
        match self {
            Windows::Dense(w) => (w.out_h, w.out_w),
            Windows::Dilated(d) => (d.out_h, d.out_w),
        }
    }

    /// The window columns of the NHWC batch `x`, `[n·out_h·out_w, kh·kw·c]`.
    fn columns(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        match self {
            Windows::Dense(w) => Ok(g.push(ConvOp::Im2Col { window: *w }, &[x])?),
            Windows::Dilated(d) => d.columns(g, x),
        }
    }

    /// The windows of a convolution over `input` `[h, w, c]`: im2col's without dilation; Keras
    /// refuses strides above 1 with a dilation rate above 1, and so does this.
    pub(super) fn of(
        layer: &str,
        input: &[usize],
        kernel: (usize, usize),
        strides: (usize, usize),
        dilation: (usize, usize),
        padding: Padding,
    ) -> Result<Self> {
        if dilation == (1, 1) {
            return Ok(Windows::Dense(match padding {
                Padding::Causal => Window2d::left_padded(
                    input[0],
                    input[1],
                    input[2],
                    kernel,
                    strides,
                    kernel.1.saturating_sub(1),
                )
                .map_err(|e| Error::invalid(layer, format!("{e} (input {input:?})")))?,
                Padding::Valid | Padding::Same => window_2d(layer, input, kernel, strides, padding)?,
            }));
        }
        if strides != (1, 1) {
            return Err(Error::invalid(
                layer,
                format!(
                    "strides {strides:?} with dilation_rate {dilation:?}: a dilated convolution takes stride 1 \
                     (Keras refuses the combination too)"
                ),
            ));
        }
        Ok(Windows::Dilated(Dilated::new(
            layer,
            (input[0], input[1], input[2]),
            kernel,
            dilation,
            padding,
        )?))
    }
}

/// `activation(columns(x) · kernel + bias)` over the NHWC batch `x` with windows `w`, reshaped to
/// the output images `[n, out_h, out_w, filters]`, with the pre-activation reshaped alike (the
/// logits of a convolutional output layer). Conv1D runs through here with images one row high.
pub(super) fn convolve(
    g: &mut Graph,
    x: NodeId,
    w: &Windows,
    kernel: NodeId,
    bias: Option<NodeId>,
    activation: Activation,
) -> Result<LayerOut> {
    let n = g.shape(x)?.dims()[0];
    let filters = g.shape(kernel)?.last();
    let cols = w.columns(g, x)?;
    let z = g.matmul(cols, kernel, false, false)?;
    let (out_h, out_w) = w.out();
    epilogue(g, z, bias, activation, Shape::new([n, out_h, out_w, filters]))
}

/// `activation(z + bias)` over the rows `z [n·h·w, filters]` of a convolution's output, reshaped to
/// the output images `image`, with the pre-activation reshaped alike. The bias is added while `z` is
/// still a matrix, where the scheduler fuses it (and the activation) into the producing matmul.
pub(super) fn epilogue(
    g: &mut Graph,
    mut z: NodeId,
    bias: Option<NodeId>,
    activation: Activation,
    image: Shape,
) -> Result<LayerOut> {
    if let Some(bias) = bias {
        z = g.bias_add(z, bias)?;
    }
    let y = activate(g, z, activation)?;
    let pre_activation = if y == z {
        None
    } else {
        Some(g.push(LayoutOp::Reshape { shape: image.clone() }, &[z])?)
    };
    let output = g.push(LayoutOp::Reshape { shape: image }, &[y])?;
    Ok(LayerOut {
        pre_activation: pre_activation.unwrap_or(output),
        output,
    })
}
