//! `Conv1D` over sequences `[steps, channels]` (NWC), as Keras has it: the 2-D convolution of
//! images one row high, so it shares Conv2D's im2col, matmul and fused epilogue.

use kiln_graph::{Graph, LayoutOp, NodeId, Shape};
use serde::{Deserialize, Serialize};

use super::conv2d::{convolve, Windows};
use super::pooling::sequence;
use super::{checked_product, Layer, LayerConfig, LayerOut, Padding, ParamDecl};
use crate::{Activation, Init};
use crate::{Error, Result};

/// A 1-D convolution, as Keras' `Conv1D(filters, kernel_size, strides, padding, activation)`:
/// `valid` (no padding), `same` (output `ceil(steps / stride)`) or `causal` (`kernel - 1` zeros
/// before the sequence, so step t sees inputs up to t alone). The kernel is `[k·c, filters]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conv1D {
    filters: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    dilation: usize,
    activation: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    kernel_initializer: Init,
    bias_initializer: Init,
}

impl Conv1D {
    super::kernel_builders!();

    /// `filters` outputs per step from windows of `kernel` steps, stride 1, valid padding.
    pub fn new(filters: usize, kernel: usize) -> Self {
        Conv1D {
            filters,
            kernel,
            stride: 1,
            padding: Padding::Valid,
            dilation: 1,
            activation: Activation::Linear,
            use_bias: true,
            input_shape: None,
            kernel_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
        }
    }

    super::window_builders!(stride: usize, 2);

    /// Taps `rate` steps apart (Keras' `dilation_rate`; stride 1 only): with causal padding, the
    /// WaveNet-style stack of growing receptive fields.
    pub fn dilation_rate(mut self, rate: usize) -> Self {
        self.dilation = rate;
        self
    }

    /// The windows over `[steps, channels]`, as a one-row image.
    fn window(&self, input: &[usize]) -> Result<Windows> {
        Windows::of(
            "Conv1D",
            &[1, input[0], input[1]],
            (1, self.kernel),
            (1, self.stride),
            (1, self.dilation),
            self.padding,
        )
    }
}

impl Layer for Conv1D {
    fn config(&self) -> LayerConfig {
        LayerConfig::Conv1D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "conv1d"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = sequence("Conv1D", inputs)?;
        if self.filters == 0 {
            return Err(Error::invalid("Conv1D", "filters must be at least 1"));
        }
        let (_, out_w) = self.window(input)?.out();
        checked_product("Conv1D", &[self.kernel, input[1].max(self.filters)])?;
        Ok(vec![out_w, self.filters])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let c = inputs.first().and_then(|i| i.get(1)).copied().unwrap_or(0);
        let k = self.kernel;
        let mut p = vec![ParamDecl::weight(
            "kernel",
            vec![k * c, self.filters],
            self.kernel_initializer,
            (k * c, k * self.filters),
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
        let (n, steps, channels) = (dims[0], dims[1], dims[2]);
        let w = self.window(&[steps, channels])?;
        let rows = g.push(
            LayoutOp::Reshape {
                shape: Shape::new([n, 1, steps, channels]),
            },
            &[xs[0]],
        )?;
        let bias = self.use_bias.then(|| params[1]);
        let out = convolve(g, rows, &w, params[0], bias, self.activation)?;
        as_sequence(g, out, Shape::new([n, w.out().1, self.filters]))
    }
}

/// The output of a convolution over images one row high, `[n, 1, steps, filters]`, as the sequences
/// `sequence` `[n, steps, filters]`, its pre-activation alike.
pub(super) fn as_sequence(g: &mut Graph, out: LayerOut, sequence: Shape) -> Result<LayerOut> {
    let flat = |g: &mut Graph, v: NodeId| {
        g.push(
            LayoutOp::Reshape {
                shape: sequence.clone(),
            },
            &[v],
        )
    };
    let output = flat(g, out.output)?;
    let pre_activation = if out.pre_activation == out.output {
        output
    } else {
        flat(g, out.pre_activation)?
    };
    Ok(LayerOut { pre_activation, output })
}
