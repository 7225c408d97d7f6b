//! Dilated convolution windows (Keras' `dilation_rate`): a `k`-tap window whose taps are `d` apart.
//!
//! Keras allows dilation only with stride 1, so the window columns are composed from graph ops
//! rather than a kernel of their own: the zero-padded input sliced once per tap (a shifted view of
//! the output's size) and the slices concatenated along the channels, in im2col's column order
//! `(ky, kx, c)`. Autodiff then gives the backward through the slices and concatenations.

use kiln_graph::{Graph, LayoutOp, NodeId, Shape};

use super::Padding;
use crate::{Error, Result};

/// Where a dilated window goes over an NHWC image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dilated {
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub kernel: (usize, usize),
    pub dilation: (usize, usize),
    /// Zeros before and after the rows, before and after the columns.
    pub pads: [usize; 4],
    pub out_h: usize,
    pub out_w: usize,
}

impl Dilated {
    /// The geometry of `kernel` taps `dilation` apart over `[h, w, c]` with stride 1: `valid` (no
    /// padding), `same` (output the input's size; the `(k - 1)·d` zeros split as TensorFlow does,
    /// the smaller half before) or `causal` (all of them before the columns: Conv1D's).
    pub fn new(
        layer: &str,
        (in_h, in_w, channels): (usize, usize, usize),
        kernel: (usize, usize),
        dilation: (usize, usize),
        padding: Padding,
    ) -> Result<Self> {
        let (kh, kw) = kernel;
        let (dh, dw) = dilation;
        if kh == 0 || kw == 0 || dh == 0 || dw == 0 {
            return Err(Error::invalid(
                layer,
                "kernel sizes and dilation rates must be at least 1",
            ));
        }
        let span = |k: usize, d: usize| (k - 1).checked_mul(d);
        let (Some(span_h), Some(span_w)) = (span(kh, dh), span(kw, dw)) else {
            return Err(Error::invalid(layer, "the dilated window's size overflows"));
        };
        // As with undilated windows, a padded window may reach past the input but not beyond twice
        // its size: past that it reads padding alone (a mistyped or hostile size).
        let too_wide = |span: usize, len: usize| span > len.max(1).saturating_mul(2);
        if span_h.max(span_w) > u32::MAX as usize || too_wide(span_h, in_h) || too_wide(span_w, in_w) {
            return Err(Error::shape(
                layer,
                format!("a {kh}×{kw} window dilated {dh}×{dw} over a {in_h}×{in_w} input"),
                "a dilated window spanning at most twice the input along each axis",
            ));
        }
        let pads = match padding {
            Padding::Valid => [0; 4],
            Padding::Same => [span_h / 2, span_h - span_h / 2, span_w / 2, span_w - span_w / 2],
            Padding::Causal => [0, 0, span_w, 0],
        };
        let (high, wide) = (
            in_h.saturating_add(pads[0] + pads[1]),
            in_w.saturating_add(pads[2] + pads[3]),
        );
        if span_h >= high || span_w >= wide || high.max(wide) == usize::MAX {
            return Err(Error::shape(
                layer,
                format!("a {kh}×{kw} window dilated {dh}×{dw} over a {in_h}×{in_w} input with {padding:?} padding"),
                "a dilated window no larger than the (padded) input",
            ));
        }
        Ok(Dilated {
            in_h,
            in_w,
            channels,
            kernel,
            dilation,
            pads,
            out_h: high - span_h,
            out_w: wide - span_w,
        })
    }

    /// The window columns of the NHWC batch `x`: `[n·out_h·out_w, kh·kw·c]`, as im2col lays them.
    pub fn columns(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        let n = g.shape(x)?.dims()[0];
        let c = self.channels;
        let [top, bottom, left, right] = self.pads;
        let mut padded = x;
        for (axis, before, after) in [(1, top, bottom), (2, left, right)] {
            for (amount, first) in [(before, true), (after, false)] {
                if amount == 0 {
                    continue;
                }
                let mut dims = g.shape(padded)?.dims().to_vec();
                dims[axis] = amount;
                let zeros = g.fill(0.0, Shape::new(dims));
                let pair = if first { [zeros, padded] } else { [padded, zeros] };
                padded = g.push(LayoutOp::Concat { axis }, &pair)?;
            }
        }
        let (kh, kw) = self.kernel;
        let (dh, dw) = self.dilation;
        let mut taps = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            let rows = g.slice(padded, 1, ky * dh, self.out_h)?;
            for kx in 0..kw {
                taps.push(g.slice(rows, 2, kx * dw, self.out_w)?);
            }
        }
        let columns = g.concat(&taps, 3)?;
        Ok(g.reshape(columns, [n * self.out_h * self.out_w, kh * kw * c])?)
    }
}
