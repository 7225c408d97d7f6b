//! `ZeroPadding1D`/`2D` and `Cropping1D`/`2D`, as Keras has them (keras/src/layers/reshaping/
//! zero_padding{1,2}d.py, cropping{1,2}d.py): rows and columns of zeros added around each sample,
//! or removed from its edges. A U-Net pads or crops one path to join it with another.
//!
//! Both are built from the layout ops: padding joins zeros before and after along an axis
//! (concat, whose adjoint slices the gradient back out), cropping slices (whose adjoint concat
//! puts the gradient back between zeros).

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::conv2d::image;
use super::pooling::sequence;
use super::{checked_product, plain, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// `x` with `before` and `after` zero entries joined along `axis`.
fn pad_axis(g: &mut Graph, x: NodeId, axis: usize, (before, after): (usize, usize)) -> Result<NodeId> {
    let dims = g.shape(x)?.dims().to_vec();
    let mut parts = Vec::with_capacity(3);
    let zeros = |len: usize, g: &mut Graph| {
        let mut d = dims.clone();
        d[axis] = len;
        g.fill(0.0, d)
    };
    if before > 0 {
        parts.push(zeros(before, g));
    }
    parts.push(x);
    if after > 0 {
        parts.push(zeros(after, g));
    }
    Ok(g.concat(&parts, axis)?)
}

/// `x` without `before` entries at the start and `after` at the end of `axis`.
fn crop_axis(g: &mut Graph, x: NodeId, axis: usize, (before, after): (usize, usize)) -> Result<NodeId> {
    if before == 0 && after == 0 {
        return Ok(x);
    }
    let len = g.shape(x)?.dims()[axis] - before - after;
    Ok(g.slice(x, axis, before, len)?)
}

/// `len` plus `before` and `after`, or an error naming the layer.
fn padded(layer: &str, len: usize, (before, after): (usize, usize)) -> Result<usize> {
    len.checked_add(before)
        .and_then(|l| l.checked_add(after))
        .ok_or_else(|| Error::invalid(layer, "the padded size overflows"))
}

/// `len` less `before` and `after`, or an error naming the layer when nothing would be left.
fn cropped(layer: &str, len: usize, (before, after): (usize, usize)) -> Result<usize> {
    before
        .checked_add(after)
        .and_then(|c| len.checked_sub(c))
        .filter(|&l| l > 0)
        .ok_or_else(|| {
            Error::invalid(
                layer,
                format!("cropping {before} and {after} from an axis of {len} leaves nothing"),
            )
        })
}

/// Keras' `ZeroPadding2D(padding=((top, bottom), (left, right)))` on NHWC images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZeroPadding2D {
    padding: ((usize, usize), (usize, usize)),
}

impl ZeroPadding2D {
    /// `(top, bottom)` rows and `(left, right)` columns of zeros.
    pub fn new(padding: ((usize, usize), (usize, usize))) -> Self {
        ZeroPadding2D { padding }
    }

    /// `h` rows above and below, `w` columns left and right (Keras' `padding=(h, w)`; its default is
    /// `(1, 1)`).
    pub fn symmetric((h, w): (usize, usize)) -> Self {
        ZeroPadding2D::new(((h, h), (w, w)))
    }
}

impl Layer for ZeroPadding2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::ZeroPadding2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "zero_padding2d"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("ZeroPadding2D", inputs)?;
        let h = padded("ZeroPadding2D", input[0], self.padding.0)?;
        let w = padded("ZeroPadding2D", input[1], self.padding.1)?;
        checked_product("ZeroPadding2D", &[h, w, input[2]])?;
        Ok(vec![h, w, input[2]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let rows = pad_axis(g, xs[0], 1, self.padding.0)?;
        Ok(plain(pad_axis(g, rows, 2, self.padding.1)?))
    }
}

/// Keras' `ZeroPadding1D(padding=(left, right))` on sequences `[steps, channels]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZeroPadding1D {
    padding: (usize, usize),
}

impl ZeroPadding1D {
    /// `left` zero steps before the sequence and `right` after it (Keras' default is `(1, 1)`).
    pub fn new(padding: (usize, usize)) -> Self {
        ZeroPadding1D { padding }
    }
}

impl Layer for ZeroPadding1D {
    fn config(&self) -> LayerConfig {
        LayerConfig::ZeroPadding1D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "zero_padding1d"
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = sequence("ZeroPadding1D", inputs)?;
        let steps = padded("ZeroPadding1D", input[0], self.padding)?;
        checked_product("ZeroPadding1D", &[steps, input[1]])?;
        Ok(vec![steps, input[1]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(plain(pad_axis(g, xs[0], 1, self.padding)?))
    }
}

/// Keras' `Cropping2D(cropping=((top, bottom), (left, right)))` on NHWC images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cropping2D {
    cropping: ((usize, usize), (usize, usize)),
}

impl Cropping2D {
    /// Drops `(top, bottom)` rows and `(left, right)` columns.
    pub fn new(cropping: ((usize, usize), (usize, usize))) -> Self {
        Cropping2D { cropping }
    }

    /// Drops `h` rows at the top and the bottom, `w` columns at the left and the right (Keras'
    /// `cropping=(h, w)`).
    pub fn symmetric((h, w): (usize, usize)) -> Self {
        Cropping2D::new(((h, h), (w, w)))
    }
}

impl Layer for Cropping2D {
    fn config(&self) -> LayerConfig {
        LayerConfig::Cropping2D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "cropping2d"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = image("Cropping2D", inputs)?;
        let h = cropped("Cropping2D", input[0], self.cropping.0)?;
        let w = cropped("Cropping2D", input[1], self.cropping.1)?;
        Ok(vec![h, w, input[2]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let rows = crop_axis(g, xs[0], 1, self.cropping.0)?;
        Ok(plain(crop_axis(g, rows, 2, self.cropping.1)?))
    }
}

/// Keras' `Cropping1D(cropping=(start, end))` on sequences `[steps, channels]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cropping1D {
    cropping: (usize, usize),
}

impl Cropping1D {
    /// Drops `start` steps at the start of the sequence and `end` at its end.
    pub fn new(cropping: (usize, usize)) -> Self {
        Cropping1D { cropping }
    }
}

impl Layer for Cropping1D {
    fn config(&self) -> LayerConfig {
        LayerConfig::Cropping1D(self.clone())
    }

    fn kind(&self) -> &'static str {
        "cropping1d"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = sequence("Cropping1D", inputs)?;
        Ok(vec![cropped("Cropping1D", input[0], self.cropping)?, input[1]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(plain(crop_axis(g, xs[0], 1, self.cropping)?))
    }
}
