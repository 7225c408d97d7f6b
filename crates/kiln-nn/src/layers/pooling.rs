//! Pooling layers, as Keras has them (keras/src/layers/pooling/): max and average over windows of
//! 1-D sequences `[steps, channels]` and 2-D images `[h, w, channels]`, and the global max. A 1-D
//! layer runs as the 2-D one over images one row high. Max pooling is the `MaxPool2d` op; average
//! pooling sums each window's im2col row and divides by the number of cells inside the input
//! (padding does not count, as TensorFlow's `avg_pool` with "same" padding).

use kiln_graph::{ConvOp, Graph, NodeId, ReduceOp, Window2d};
use serde::{Deserialize, Serialize};

use super::conv2d::{image, window_2d};
use super::{plain, single, Layer, LayerConfig, LayerOut, Padding};
use crate::{Error, Result};

/// What a window reduces to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reduce {
    Max,
    Average,
}

/// The `[steps, channels]` of a 1-D layer's one input, or an error naming the layer.
pub(super) fn sequence<'a>(layer: &str, inputs: &'a [Vec<usize>]) -> Result<&'a [usize]> {
    let input = single(layer, inputs)?;
    if input.len() != 2 {
        return Err(Error::invalid(
            layer,
            format!("expects sequences [steps, channels], got samples {input:?}"),
        ));
    }
    Ok(input)
}

/// Pools the NHWC batch `x` over windows `w`: `[n, out_h, out_w, c]`.
fn pool(g: &mut Graph, x: NodeId, w: Window2d, reduce: Reduce) -> Result<NodeId> {
    if reduce == Reduce::Max {
        return Ok(g.push(ConvOp::MaxPool2d { window: w }, &[x])?);
    }
    let n = g.shape(x)?.dims()[0];
    let (positions, c) = (w.out_h * w.out_w, w.channels);
    let cols = g.push(ConvOp::Im2Col { window: w }, &[x])?;
    let cells = g.reshape(cols, [n * positions, w.kh * w.kw, c])?;
    let sums = g.push(ReduceOp::Sum { axis: 1 }, &[cells])?;
    // 1 / (cells of each window inside the input), per output position, spread over the batch
    // and the channels.
    let inside = |o: usize, k: usize, s: usize, pad: usize, len: usize| {
        let start = (o * s) as i64 - pad as i64;
        let (lo, hi) = (start.max(0), (start + k as i64).min(len as i64));
        (hi - lo).max(1) as f32
    };
    let reciprocals: Vec<f32> = (0..positions)
        .map(|p| {
            let (oy, ox) = (p / w.out_w, p % w.out_w);
            1.0 / (inside(oy, w.kh, w.sh, w.pad_top, w.in_h) * inside(ox, w.kw, w.sw, w.pad_left, w.in_w))
        })
        .collect();
    let r = g.constant(&reciprocals, [positions])?;
    let r = g.push(ReduceOp::Broadcast { axis: 0, size: n }, &[r])?;
    let r = g.reshape(r, [n * positions])?;
    let r = g.push(ReduceOp::Broadcast { axis: 1, size: c }, &[r])?;
    let mean = g.mul(sums, r)?;
    Ok(g.reshape(mean, [n, w.out_h, w.out_w, c])?)
}

/// Window geometry of a pooling layer: pool size, strides (the pool size when not given) and
/// padding.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Geometry2d {
    pool: (usize, usize),
    strides: Option<(usize, usize)>,
    padding: Padding,
}

impl Geometry2d {
    fn window(&self, layer: &str, input: &[usize]) -> Result<Window2d> {
        window_2d(layer, input, self.pool, self.strides.unwrap_or(self.pool), self.padding)
    }
}

/// One 2-D pooling layer per Keras class.
macro_rules! pooling_2d {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $reduce:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub struct $name(Geometry2d);

        impl $name {
            /// `pool` windows, stride = pool, valid padding.
            pub fn new(pool: (usize, usize)) -> Self {
                $name(Geometry2d {
                    pool,
                    strides: None,
                    padding: Padding::Valid,
                })
            }

            /// Sets the strides.
            pub fn strides(mut self, strides: (usize, usize)) -> Self {
                self.0.strides = Some(strides);
                self
            }

            /// Sets the padding.
            pub fn padding(mut self, padding: Padding) -> Self {
                self.0.padding = padding;
                self
            }
        }

        impl Layer for $name {
            fn config(&self) -> LayerConfig {
                LayerConfig::$name(self.clone())
            }

            fn kind(&self) -> &'static str {
                $kind
            }

            fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
                let input = image(stringify!($name), inputs)?;
                let w = self.0.window(stringify!($name), input)?;
                Ok(vec![w.out_h, w.out_w, input[2]])
            }

            fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
                let dims = g.shape(xs[0])?.dims().to_vec();
                let w = self.0.window(stringify!($name), &dims[1..])?;
                Ok(plain(pool(g, xs[0], w, $reduce)?))
            }
        }
    };
}

/// One 1-D pooling layer per Keras class: the 2-D pooling of images one row high.
macro_rules! pooling_1d {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $reduce:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub struct $name(Geometry2d);

        impl $name {
            /// Windows of `pool` steps, stride = pool, valid padding.
            pub fn new(pool: usize) -> Self {
                $name(Geometry2d {
                    pool: (1, pool),
                    strides: None,
                    padding: Padding::Valid,
                })
            }

            /// Sets the stride.
            pub fn strides(mut self, stride: usize) -> Self {
                self.0.strides = Some((1, stride));
                self
            }

            /// Sets the padding.
            pub fn padding(mut self, padding: Padding) -> Self {
                self.0.padding = padding;
                self
            }
        }

        impl Layer for $name {
            fn config(&self) -> LayerConfig {
                LayerConfig::$name(self.clone())
            }

            fn kind(&self) -> &'static str {
                $kind
            }

            fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
                let input = sequence(stringify!($name), inputs)?;
                let w = self.0.window(stringify!($name), &[1, input[0], input[1]])?;
                Ok(vec![w.out_w, input[1]])
            }

            fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
                let dims = g.shape(xs[0])?.dims().to_vec();
                let w = self.0.window(stringify!($name), &[1, dims[1], dims[2]])?;
                let rows = g.reshape(xs[0], [dims[0], 1, dims[1], dims[2]])?;
                let pooled = pool(g, rows, w, $reduce)?;
                Ok(plain(g.reshape(pooled, [dims[0], w.out_w, dims[2]])?))
            }
        }
    };
}

pooling_2d!(
    /// Max over windows, as Keras' `MaxPooling2D(pool_size, strides, padding)`; strides default to
    /// the pool size.
    MaxPooling2D,
    "max_pooling2d",
    Reduce::Max
);
pooling_2d!(
    /// Mean over windows, as Keras' `AveragePooling2D`; with "same" padding a window's mean is
    /// over its cells inside the image.
    AveragePooling2D,
    "average_pooling2d",
    Reduce::Average
);
pooling_1d!(
    /// Max over windows of steps, as Keras' `MaxPooling1D(pool_size, strides, padding)`.
    MaxPooling1D,
    "max_pooling1d",
    Reduce::Max
);
pooling_1d!(
    /// Mean over windows of steps, as Keras' `AveragePooling1D`.
    AveragePooling1D,
    "average_pooling1d",
    Reduce::Average
);

/// The max over every step of each channel, as Keras' `GlobalMaxPooling1D`: `[steps, c]` → `[c]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GlobalMaxPooling1D;

impl GlobalMaxPooling1D {
    pub fn new() -> Self {
        GlobalMaxPooling1D
    }
}

impl Layer for GlobalMaxPooling1D {
    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalMaxPooling1D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "global_max_pooling1d"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = sequence("GlobalMaxPooling1D", inputs)?;
        Ok(vec![input[1]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        global_max(g, xs[0], [dims[0], 1, dims[1], dims[2]])
    }
}

/// The max over every pixel of each channel, as Keras' `GlobalMaxPooling2D`: `[h, w, c]` → `[c]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GlobalMaxPooling2D;

impl GlobalMaxPooling2D {
    pub fn new() -> Self {
        GlobalMaxPooling2D
    }
}

impl Layer for GlobalMaxPooling2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalMaxPooling2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "global_max_pooling2d"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("GlobalMaxPooling2D", inputs)?;
        Ok(vec![input[2]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims: [usize; 4] = g
            .shape(xs[0])?
            .dims()
            .try_into()
            .map_err(|_| Error::invalid("GlobalMaxPooling2D", "expects NHWC images"))?;
        global_max(g, xs[0], dims)
    }
}

/// The max of each channel over a whole NHWC image (one window covering it): `[n, c]`.
fn global_max(g: &mut Graph, x: NodeId, [n, h, w, c]: [usize; 4]) -> Result<LayerOut> {
    let images = g.reshape(x, [n, h, w, c])?;
    let window = Window2d::new(h, w, c, (h, w), (h, w), false)
        .map_err(|e| Error::invalid("global max pooling", format!("{e} (input {h}×{w}×{c})")))?;
    let pooled = g.push(ConvOp::MaxPool2d { window }, &[images])?;
    Ok(plain(g.reshape(pooled, [n, c])?))
}
