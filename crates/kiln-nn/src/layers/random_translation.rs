//! `RandomTranslation`, as Keras' preprocessing layer (keras/src/layers/preprocessing/
//! image_preprocessing/random_translation.py): while training, each image is shifted by a random
//! amount — up and down by `uniform(height_lower, height_upper) · height` pixels, left and right by
//! `uniform(width_lower, width_upper) · width` — sampled with bilinear (or nearest) interpolation,
//! the uncovered border filled by `fill_mode`; evaluation and prediction pass images through.
//!
//! Keras' transform reads output pixel `(y, x)` from input coordinates `(y - dy, x - dx)`
//! (`affine_transform` with `[1, 0, -dx, 0, 1, -dy]`), and its `map_coordinates` interpolates on
//! the input extended by the fill mode (keras/src/backend/numpy/image.py: `reflect` is numpy's
//! `symmetric`, `(d c b a | a b c d | d c b a)`; `wrap`; `nearest`, the edge pixel; `constant`,
//! `fill_value`). A shift is the same for every pixel of an image, so the transform separates
//! into rows and columns: `out = A · X · Bᵀ` per image and channel, where `A [h, h]` and `B [w, w]`
//! hold each output row's (column's) interpolation weights over the input rows (columns). The
//! layer builds `A` and `B` on the device from the drawn shifts and applies them as batched
//! matrix products, so its gradient (with respect to the images) is the products' own.
//!
//! The shifts are [`kiln_graph::ElementwiseOp::Uniform`] draws hashed from the layer's seed, the
//! step and the sample, so the CPU and the GPU shift the same images alike, and every step anew.

use kiln_graph::{lowbias32, ElementwiseOp, Graph, LayoutOp, LossOp, NodeId, ReduceOp, Shape};
use serde::{Deserialize, Serialize};

use super::conv2d::image;
use super::{plain, Layer, LayerConfig, LayerOut};
use crate::feeds::Feed;
use crate::{Error, Result};

/// How [`RandomTranslation`] fills what a shift uncovers (Keras' `fill_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FillMode {
    /// `(d c b a | a b c d | d c b a)`: mirrored about the edge of the last pixel (Keras' default).
    /// (Keras' torch backend substitutes its `mirror`, `(c d c b | a b c d | c b a b)`.)
    Reflect,
    /// `(a b c d | a b c d | a b c d)`.
    Wrap,
    /// `(k k k k | a b c d | k k k k)` with `k` the layer's `fill_value`.
    Constant,
    /// `(a a a a | a b c d | d d d d)`.
    Nearest,
}

/// How [`RandomTranslation`] samples between pixels (Keras' `interpolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interpolation {
    /// Weighs the two nearest pixels of each axis by closeness (Keras' default).
    Bilinear,
    /// Takes the nearest pixel.
    Nearest,
}

/// Shifts each training image at random (see the module documentation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RandomTranslation {
    height: (f32, f32),
    width: (f32, f32),
    fill_mode: FillMode,
    interpolation: Interpolation,
    fill_value: f32,
    seed: u32,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl RandomTranslation {
    /// Keras' `RandomTranslation(height_factor, width_factor)`: shifts of up to `±height_factor`
    /// of the height and `±width_factor` of the width (each in `[-1, 1]`; the sign is ignored, as
    /// Keras ignores it), reflected at the borders, bilinear.
    pub fn new(height_factor: f32, width_factor: f32) -> Self {
        RandomTranslation {
            height: (-height_factor.abs(), height_factor.abs()),
            width: (-width_factor.abs(), width_factor.abs()),
            fill_mode: FillMode::Reflect,
            interpolation: Interpolation::Bilinear,
            fill_value: 0.0,
            seed: 0,
            input_shape: None,
        }
    }

    /// Keras' `height_factor=(lower, upper)`: vertical shifts between `lower` and `upper` of the
    /// height (negative is up).
    pub fn height_range(mut self, lower: f32, upper: f32) -> Self {
        self.height = (lower.min(upper), lower.max(upper));
        self
    }

    /// Keras' `width_factor=(lower, upper)`: horizontal shifts between `lower` and `upper` of the
    /// width (negative is left).
    pub fn width_range(mut self, lower: f32, upper: f32) -> Self {
        self.width = (lower.min(upper), lower.max(upper));
        self
    }

    /// What fills the uncovered border.
    pub fn fill_mode(mut self, mode: FillMode) -> Self {
        self.fill_mode = mode;
        self
    }

    /// The value [`FillMode::Constant`] fills with (Keras' `fill_value`, 0 by default).
    pub fn fill_value(mut self, value: f32) -> Self {
        self.fill_value = value;
        self
    }

    /// How pixels between the input's are sampled.
    pub fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }

    /// Seed of the shifts.
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }

    /// Keras' `input_shape=(h, w, c)` on a first layer.
    pub fn input_shape(mut self, shape: [usize; 3]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    fn validate(&self) -> Result<()> {
        for (name, (lower, upper)) in [("height_factor", self.height), ("width_factor", self.width)] {
            if !(-1.0..=1.0).contains(&lower) || !(-1.0..=1.0).contains(&upper) {
                return Err(Error::invalid(
                    "RandomTranslation",
                    format!("{name} ({lower}, {upper}) is not within [-1, 1] (a fraction of the image)"),
                ));
            }
        }
        if !self.fill_value.is_finite() {
            return Err(Error::invalid(
                "RandomTranslation",
                format!("fill_value {} is not finite", self.fill_value),
            ));
        }
        Ok(())
    }
}

/// `x` broadcast over a new leading axis of `n`: `[n, ..x]`.
fn repeat(g: &mut Graph, x: NodeId, n: usize) -> Result<NodeId> {
    let shape = g.shape(x)?.clone();
    let flat = g.reshape(x, [shape.numel()])?;
    let rows = g.push(ReduceOp::Broadcast { axis: 0, size: n }, &[flat])?;
    let mut dims = vec![n];
    dims.extend(shape.dims());
    Ok(g.reshape(rows, dims)?)
}

/// A constant `[n, size, size]` with entry `[i, j] = f(i, j)` for every image.
fn grid(g: &mut Graph, n: usize, size: usize, f: impl Fn(usize, usize) -> f32) -> Result<NodeId> {
    let values: Vec<f32> = (0..size * size).map(|e| f(e / size, e % size)).collect();
    let c = g.constant(&values, [size, size])?;
    repeat(g, c, n)
}

/// Each image's interpolation matrix along one axis of `size` pixels shifted by `shift [n]`:
/// `[n, size, size]`, entry `[i, j]` the weight output pixel `i` gives input pixel `j`.
///
/// Output `i` reads coordinate `c = i - shift`; on the input extended by the fill mode, an
/// extended index `k` holds input pixel `R(k)`. The weight of `j` is then the interpolation
/// kernel summed over the `k` with `R(k) = j`: the tent `max(0, 1 - |c - k|)` (bilinear) or the
/// box `|c - k| ≤ ½` (nearest). Shifts are at most `size`, so `c ∈ [-size, 2·size)` and a few
/// preimages of each `j` cover every case; the edge mode clamps `c` instead.
fn axis_matrix(
    g: &mut Graph,
    shift: NodeId,
    n: usize,
    size: usize,
    fill: FillMode,
    interpolation: Interpolation,
) -> Result<NodeId> {
    let s = g.push(
        ReduceOp::Broadcast {
            axis: 1,
            size: size * size,
        },
        &[shift],
    )?;
    let s = g.reshape(s, [n, size, size])?;
    let rows = grid(g, n, size, |i, _| i as f32)?;
    let mut c = g.sub(rows, s)?;
    // Each preimage of pixel j is `sign·j + offset`.
    let sz = size as f32;
    let preimages: &[(f32, f32)] = match fill {
        FillMode::Constant => &[(1.0, 0.0)],
        FillMode::Nearest => {
            c = g.clip(c, 0.0, sz - 1.0)?;
            &[(1.0, 0.0)]
        }
        FillMode::Reflect => &[(1.0, 0.0), (-1.0, -1.0), (-1.0, 2.0 * sz - 1.0), (1.0, 2.0 * sz)],
        FillMode::Wrap => &[(1.0, 0.0), (1.0, -sz), (1.0, sz), (1.0, 2.0 * sz)],
    };
    let mut weights: Option<NodeId> = None;
    for &(sign, offset) in preimages {
        let k = grid(g, n, size, |_, j| sign * j as f32 + offset)?;
        let distance = g.binary(LossOp::AbsoluteError, c, k)?;
        let w = match interpolation {
            Interpolation::Bilinear => {
                let near = g.scale(distance, -1.0)?;
                let ones = g.fill(1.0, Shape::new([n, size, size]));
                let tent = g.add(ones, near)?;
                g.clip(tent, 0.0, f32::MAX)?
            }
            Interpolation::Nearest => {
                let far = g.unary(ElementwiseOp::Greater { threshold: 0.5 }, distance)?;
                let ones = g.fill(1.0, Shape::new([n, size, size]));
                g.sub(ones, far)?
            }
        };
        weights = Some(match weights {
            Some(sum) => g.add(sum, w)?,
            None => w,
        });
    }
    Ok(weights.expect("every fill mode has a preimage"))
}

impl RandomTranslation {
    /// `x [n, h, w, c]` shifted down by `dy [n]` rows and right by `dx [n]` columns (any real
    /// amounts up to the image's size) with this layer's fill mode and interpolation: what
    /// training applies with drawn shifts, open to graphs that choose their own.
    pub fn translate(&self, g: &mut Graph, x: NodeId, dy: NodeId, dx: NodeId) -> Result<NodeId> {
        let [n, h, w, c]: [usize; 4] = g
            .shape(x)?
            .dims()
            .try_into()
            .map_err(|_| Error::invalid("RandomTranslation", "expects NHWC images"))?;
        let a = axis_matrix(g, dy, n, h, self.fill_mode, self.interpolation)?;
        let b = axis_matrix(g, dx, n, w, self.fill_mode, self.interpolation)?;
        // Rows: A [n, h, h] · X [n, h, w·c].
        let rows = g.reshape(x, [n, h, w * c])?;
        let y = g.matmul(a, rows, false, false)?;
        // Columns: B [n, w, w] · Yᵀ [n, w, h·c], with the width axis brought forward and back.
        let y = g.reshape(y, [n, h, w, c])?;
        let y = g.push(LayoutOp::SwapAxes { axis: 1 }, &[y])?;
        let y = g.reshape(y, [n, w, h * c])?;
        let z = g.matmul(b, y, false, false)?;
        let z = g.reshape(z, [n, w, h, c])?;
        let mut out = g.push(LayoutOp::SwapAxes { axis: 1 }, &[z])?;
        if self.fill_mode == FillMode::Constant && self.fill_value != 0.0 {
            // What fell outside weighs 1 - (row weights inside)·(column weights inside).
            let inside_rows = g.push(ReduceOp::Sum { axis: 2 }, &[a])?;
            let inside_cols = g.push(ReduceOp::Sum { axis: 2 }, &[b])?;
            let inside_rows = g.reshape(inside_rows, [n, h, 1])?;
            let inside_cols = g.reshape(inside_cols, [n, 1, w])?;
            let inside = g.matmul(inside_rows, inside_cols, false, false)?;
            let inside = g.reshape(inside, [n * h * w])?;
            let inside = g.push(ReduceOp::Broadcast { axis: 1, size: c }, &[inside])?;
            let inside = g.reshape(inside, [n, h, w, c])?;
            let ones = g.fill(1.0, Shape::new([n, h, w, c]));
            let outside = g.sub(ones, inside)?;
            let fill = g.scale(outside, self.fill_value)?;
            out = g.add(out, fill)?;
        }
        Ok(out)
    }
}

impl Layer for RandomTranslation {
    fn kind(&self) -> &'static str {
        "random_translation"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::RandomTranslation(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        self.validate()?;
        Ok(image("RandomTranslation", inputs)?.to_vec())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], training: bool) -> Result<LayerOut> {
        if !training {
            return Ok(plain(xs[0]));
        }
        let [n, h, w, _]: [usize; 4] = g
            .shape(xs[0])?
            .dims()
            .try_into()
            .map_err(|_| Error::invalid("RandomTranslation", "expects NHWC images"))?;
        // Each random layer of a graph mixes its position into the seed.
        let seed = super::dropout::graph_seed(g, self.seed, 0x27d4_eb2f);
        let draw = Feed::draw(g);
        let shift = |g: &mut Graph, (lower, upper): (f32, f32), size: usize, seed: u32| {
            let op = ElementwiseOp::Uniform {
                low: lower * size as f32,
                high: upper * size as f32,
                seed,
                shape: Shape::new([n]),
            };
            g.push(op, &[draw])
        };
        let dy = shift(g, self.height, h, seed)?;
        let dx = shift(g, self.width, w, lowbias32(seed ^ 0x1656_67b1))?;
        Ok(plain(self.translate(g, xs[0], dy, dx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_outside_the_image_are_refused() {
        let err = RandomTranslation::new(1.5, 0.1)
            .output_shape(&[vec![4, 4, 1]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("height_factor") && err.contains("[-1, 1]"), "{err}");
        assert!(RandomTranslation::new(0.2, 0.3).output_shape(&[vec![4, 4, 1]]).is_ok());
    }
}
