//! Windows over NHWC images: im2col and its adjoint col2im (a convolution is im2col followed by a
//! matmul), and max pooling with its gradient.

use super::check::{not_differentiable, same, SECOND_ORDER};
use super::{op_names, Backward, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

/// Where a 2-D window (convolution kernel or pooling window) goes over an NHWC image: the input's
/// height, width and channels, the window and stride, the padding before the first row and
/// column, and the output's height and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Window2d {
    /// The geometry of a `kh × kw` window with strides `(sh, sw)` over `in_h × in_w × channels`,
    /// `same` padding (output `ceil(in / stride)`, padding split as TensorFlow does) or `valid` (no
    /// padding; the window must fit).
    pub fn new(
        in_h: usize,
        in_w: usize,
        channels: usize,
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        same: bool,
    ) -> Result<Self> {
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(Error::invalid("window", "kernel and stride sizes must be at least 1"));
        }
        // With "same" padding a window may overhang the input (a 2×2 pool of a 1×1 map), but one more
        // than twice the input's size reads nothing but padding past it: a corrupt or mistyped size,
        // which would otherwise loop over its whole area per output.
        if same && (kh > in_h.max(1).saturating_mul(2) || kw > in_w.max(1).saturating_mul(2)) {
            return Err(Error::shape(
                "window",
                format!("a {kh}×{kw} window over a {in_h}×{in_w} input"),
                "a window at most twice the input's size along each axis",
            ));
        }
        let (out_h, out_w, pad_top, pad_left) = if same {
            let (oh, ow) = (in_h.div_ceil(sh), in_w.div_ceil(sw));
            // Checked: sizes can come from a model file.
            let span = |o: usize, s: usize, k: usize| o.saturating_sub(1).checked_mul(s).and_then(|v| v.checked_add(k));
            let (Some(span_h), Some(span_w)) = (span(oh, sh, kh), span(ow, sw, kw)) else {
                return Err(Error::invalid("window", "kernel and stride sizes overflow"));
            };
            let pad_h = span_h.saturating_sub(in_h);
            let pad_w = span_w.saturating_sub(in_w);
            (oh, ow, pad_h / 2, pad_w / 2)
        } else {
            if kh > in_h || kw > in_w {
                return Err(Error::shape(
                    "window",
                    format!("a {kh}×{kw} window over a {in_h}×{in_w} input with valid padding"),
                    "a window no larger than the input (or padding \"same\")",
                ));
            }
            ((in_h - kh) / sh + 1, (in_w - kw) / sw + 1, 0, 0)
        };
        // Every size must fit the u32 a kernel indexes with, and one image's window columns must be
        // countable (im2col allocates them).
        let cols = [out_h, out_w, kh, kw, channels]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= u32::MAX as usize);
        let image = [in_h, in_w, channels]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= u32::MAX as usize);
        if cols.is_none() || image.is_none() || [sh, sw].iter().any(|&s| s > u32::MAX as usize) {
            return Err(Error::invalid(
                "window",
                format!(
                    "a {kh}×{kw} window with strides {sh}×{sw} over a {in_h}×{in_w}×{channels} input is too large \
                     to index"
                ),
            ));
        }
        Ok(Window2d {
            in_h,
            in_w,
            channels,
            kh,
            kw,
            sh,
            sw,
            pad_top,
            pad_left,
            out_h,
            out_w,
        })
    }

    /// A window padded by `pad_left` zeros before the first column only, and not at all
    /// vertically: Keras' `causal` padding of a 1-D convolution (`pad_left = k - 1`), whose output
    /// at position t sees inputs up to t alone.
    pub fn left_padded(
        in_h: usize,
        in_w: usize,
        channels: usize,
        kernel: (usize, usize),
        strides: (usize, usize),
        pad_left: usize,
    ) -> Result<Self> {
        let wide = in_w
            .checked_add(pad_left)
            .ok_or_else(|| Error::invalid("window", "padding overflows"))?;
        let mut w = Window2d::new(in_h, wide, channels, kernel, strides, false)?;
        w.in_w = in_w;
        w.pad_left = pad_left;
        Ok(w)
    }

    /// Floats in one window (one im2col row).
    pub fn patch(&self) -> usize {
        self.kh * self.kw * self.channels
    }

    /// The NHWC shape of `n` output images.
    pub fn out_image(&self, n: usize) -> Shape {
        Shape::new([n, self.out_h, self.out_w, self.channels])
    }

    /// Whether windows never overlap (stride at least the window), so each input pixel has at most
    /// one window.
    pub fn disjoint(&self) -> bool {
        self.sh >= self.kh && self.sw >= self.kw
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvOp {
    /// Windows of an NHWC image as rows: operand `x [n, in_h, in_w, c]`, output
    /// `[n·out_h·out_w, kh·kw·c]`, zeros where a window hangs over the padding.
    Im2Col { window: Window2d },
    /// The adjoint of `Im2Col`: operand `cols [n·out_h·out_w, kh·kw·c]`, output `[n, in_h, in_w, c]`
    /// where each pixel sums the column entries it was copied to.
    Col2Im { window: Window2d },
    /// Max over each window: operand `x [n, in_h, in_w, c]`, output `[n, out_h, out_w, c]`; padding
    /// never wins.
    MaxPool2d { window: Window2d },
    /// Gradient of `MaxPool2d`: operands `(x, dy)`, output shaped like `x`; each window's gradient
    /// goes to its first maximum in row-major window order.
    MaxPool2dGrad { window: Window2d },
}

impl ConvOp {
    /// The window geometry every variant carries.
    pub fn window(&self) -> &Window2d {
        match self {
            ConvOp::Im2Col { window }
            | ConvOp::Col2Im { window }
            | ConvOp::MaxPool2d { window }
            | ConvOp::MaxPool2dGrad { window } => window,
        }
    }

    /// Checks that `x` is a batch of the window's NHWC images; returns the batch size.
    fn images(&self, x: &Shape) -> Result<usize> {
        let (w, d) = (self.window(), x.dims());
        if x.rank() != 4 || d[1] != w.in_h || d[2] != w.in_w || d[3] != w.channels {
            return Err(Error::shape(
                self.name(),
                x.to_string(),
                format!("[n, {}, {}, {}] (NHWC)", w.in_h, w.in_w, w.channels),
            ));
        }
        Ok(d[0])
    }
}

op_names!(ConvOp {
    Im2Col => "im2col",
    Col2Im => "col2im",
    MaxPool2d => "max_pool2d",
    MaxPool2dGrad => "max_pool2d_grad",
});

impl Family for ConvOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            ConvOp::Im2Col { .. } | ConvOp::Col2Im { .. } | ConvOp::MaxPool2d { .. } => 1,
            ConvOp::MaxPool2dGrad { .. } => 2,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let w = self.window();
        let out = match self {
            ConvOp::Im2Col { .. } => Shape::new([self.images(s[0])? * w.out_h * w.out_w, w.patch()]),
            ConvOp::MaxPool2d { .. } => w.out_image(self.images(s[0])?),
            ConvOp::MaxPool2dGrad { .. } => {
                same(self.name(), s[1], &w.out_image(self.images(s[0])?))?;
                s[0].clone()
            }
            ConvOp::Col2Im { .. } => {
                let (cols, per) = (s[0], w.out_h * w.out_w);
                if cols.rank() != 2 || cols.dims()[1] != w.patch() || !cols.dims()[0].is_multiple_of(per) {
                    return Err(Error::shape(
                        self.name(),
                        cols.to_string(),
                        format!("[n·{per}, {}]", w.patch()),
                    ));
                }
                Shape::new([cols.dims()[0] / per, w.in_h, w.in_w, w.channels])
            }
        };
        Ok(Some(out))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let (x, dy) = (at.x, at.dy);
        let d = match *self {
            ConvOp::Im2Col { window } => g.push(ConvOp::Col2Im { window }, &[dy])?,
            ConvOp::Col2Im { window } => g.push(ConvOp::Im2Col { window }, &[dy])?,
            ConvOp::MaxPool2d { window } => g.push(ConvOp::MaxPool2dGrad { window }, &[x[0], dy])?,
            ConvOp::MaxPool2dGrad { .. } => return Err(not_differentiable(self.name(), SECOND_ORDER)),
        };
        Ok(vec![Some(d)])
    }
}
