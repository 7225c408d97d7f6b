//! `UpSampling1D` and `UpSampling2D`, as Keras has them with its default `nearest` interpolation:
//! each step (pixel) repeated `size` times along its axis (keras/src/layers/reshaping/
//! up_sampling1d.py, up_sampling2d.py).
//!
//! Repeating a value along a new axis is a broadcast, so `[n, h, w, c]` becomes
//! `[n, h, sh, w, sw, c]` by two broadcasts and the output is that tensor read as
//! `[n, h·sh, w·sw, c]`; the backward pass sums each block back (the broadcast's adjoint).

use kiln_graph::{Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::conv2d::image;
use super::pooling::sequence;
use super::{checked_product, plain, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// The size `len · factor` of an upsampled axis, or an error naming the layer.
fn upsampled(layer: &str, len: usize, factor: usize) -> Result<usize> {
    if factor == 0 {
        return Err(Error::invalid(layer, "size must be at least 1"));
    }
    len.checked_mul(factor)
        .ok_or_else(|| Error::invalid(layer, format!("{len} × {factor} overflows")))
}

/// `x [n, a, b, c]` with each element of axis 1 repeated `repeat` times in place: `[n, a·repeat, b, c]`.
fn repeat_rows(g: &mut Graph, x: NodeId, repeat: usize) -> Result<NodeId> {
    let d = g.shape(x)?.dims().to_vec();
    let spread = g.push(ReduceOp::Broadcast { axis: 2, size: repeat }, &[x])?;
    Ok(g.reshape(spread, [d[0], d[1] * repeat, d[2], d[3]])?)
}

/// Keras' `UpSampling2D(size=(sh, sw))` on NHWC images: every pixel becomes an `sh × sw` block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpSampling2D {
    size: (usize, usize),
}

impl UpSampling2D {
    /// Repeats rows `size.0` times and columns `size.1` times (Keras' default is `(2, 2)`).
    pub fn new(size: (usize, usize)) -> Self {
        UpSampling2D { size }
    }
}

impl Layer for UpSampling2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::UpSampling2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "up_sampling2d"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("UpSampling2D", inputs)?;
        let h = upsampled("UpSampling2D", input[0], self.size.0)?;
        let w = upsampled("UpSampling2D", input[1], self.size.1)?;
        checked_product("UpSampling2D", &[h, w, input[2]])?;
        Ok(vec![h, w, input[2]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let d = g.shape(xs[0])?.dims().to_vec();
        let (n, h, w, c) = (d[0], d[1], d[2], d[3]);
        let (sh, sw) = self.size;
        // Columns first, [n·h, w, 1, c] → [n·h, w·sw, 1, c]; then rows, [n, h, 1, w·sw·c] →
        // [n, h·sh, 1, w·sw·c], which is the output image's memory.
        let pixels = g.reshape(xs[0], [n * h, w, 1, c])?;
        let wide = repeat_rows(g, pixels, sw)?;
        let rows = g.reshape(wide, [n, h, 1, w * sw * c])?;
        let tall = repeat_rows(g, rows, sh)?;
        Ok(plain(g.reshape(tall, [n, h * sh, w * sw, c])?))
    }
}

/// Keras' `UpSampling1D(size)` on sequences `[steps, channels]`: every step repeated `size` times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpSampling1D {
    size: usize,
}

impl UpSampling1D {
    /// Repeats each step `size` times (Keras' default is 2).
    pub fn new(size: usize) -> Self {
        UpSampling1D { size }
    }
}

impl Layer for UpSampling1D {
    fn config(&self) -> LayerConfig {
        LayerConfig::UpSampling1D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "up_sampling1d"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = sequence("UpSampling1D", inputs)?;
        let steps = upsampled("UpSampling1D", input[0], self.size)?;
        checked_product("UpSampling1D", &[steps, input[1]])?;
        Ok(vec![steps, input[1]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let d = g.shape(xs[0])?.dims().to_vec();
        let (n, steps, c) = (d[0], d[1], d[2]);
        let rows = g.reshape(xs[0], [n, steps, 1, c])?;
        let tall = repeat_rows(g, rows, self.size)?;
        Ok(plain(g.reshape(tall, [n, steps * self.size, c])?))
    }
}
