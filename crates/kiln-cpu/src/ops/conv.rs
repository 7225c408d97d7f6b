//! Image ops on NHWC tensors. Convolution is `im2col` followed by a matmul; its input gradient is
//! `col2im` of the column gradient. Max-pooling routes each window's gradient to the window's
//! first maximum (row-major window order), which is how ties are broken on both backends.
//!
//! `im2col`: `cols[(n, oy, ox), (ky, kx, c)] = x[n, oy·sh + ky - pad_top, ox·sw + kx - pad_left, c]`
//! (0 in the padding). `col2im` is its adjoint: each pixel sums the column entries it was copied
//! to, in a fixed order.
//!
//! Images are independent, so each op runs one image per rayon task; within an image the order of
//! every sum is the serial one, so results do not depend on the thread count.

use kiln_graph::{ConvOp, Window2d};
use rayon::prelude::*;

use crate::executor::Args;
use crate::Real;

/// Runs one window step.
pub fn compute<T: Real>(op: &ConvOp, a: &Args<'_, T>, out: &mut [T]) {
    match op {
        ConvOp::Im2Col { window } => im2col(a.x(0), window, out),
        ConvOp::Col2Im { window } => col2im(a.x(0), window, out),
        ConvOp::MaxPool2d { window } => max_pool2d(a.x(0), window, out),
        ConvOp::MaxPool2dGrad { window } => max_pool2d_grad(a.x(0), a.x(1), window, out),
    }
}

/// The input row and column a window position reads, if inside the image.
fn source(w: &Window2d, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let y = (oy * w.sh + ky).checked_sub(w.pad_top)?;
    let x = (ox * w.sw + kx).checked_sub(w.pad_left)?;
    (y < w.in_h && x < w.in_w).then_some((y, x))
}

/// The input pixel of the first tap of row `ky` of window `(oy, ox)` when the whole row lies
/// inside the image: its `kw` taps are then neighbouring pixels (whatever the stride), so the
/// row's `kw · channels` floats are consecutive in the input.
fn whole_row(w: &Window2d, oy: usize, ox: usize, ky: usize) -> Option<usize> {
    let x = (ox * w.sw).checked_sub(w.pad_left)?;
    let y = (oy * w.sh + ky).checked_sub(w.pad_top)?;
    (y < w.in_h && x + w.kw <= w.in_w).then_some(y * w.in_w + x)
}

/// Elements of one input image, one output image, and one image's columns.
fn sizes(w: &Window2d) -> (usize, usize, usize) {
    (
        w.in_h * w.in_w * w.channels,
        w.out_h * w.out_w * w.channels,
        w.out_h * w.out_w * w.kh * w.kw * w.channels,
    )
}

/// Windows as rows; see the module docs.
pub fn im2col<T: Real>(x: &[T], w: &Window2d, out: &mut [T]) {
    let (image, _, cols) = sizes(w);
    out.par_chunks_mut(cols)
        .zip(x.par_chunks(image))
        .for_each(|(out, x)| im2col_image(x, w, out));
}

fn im2col_image<T: Real>(x: &[T], w: &Window2d, out: &mut [T]) {
    let c = w.channels;
    let span = w.kw * c;
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let row = (oy * w.out_w + ox) * w.kh * span;
            for ky in 0..w.kh {
                // A window row wholly inside the image: one copy, not kw.
                if let Some(pixel) = whole_row(w, oy, ox, ky) {
                    let (src, dst) = (pixel * c, row + ky * span);
                    out[dst..dst + span].copy_from_slice(&x[src..src + span]);
                    continue;
                }
                for kx in 0..w.kw {
                    let dst = row + (ky * w.kw + kx) * c;
                    match source(w, oy, ox, ky, kx) {
                        Some((y, xx)) => {
                            let src = (y * w.in_w + xx) * c;
                            out[dst..dst + c].copy_from_slice(&x[src..src + c]);
                        }
                        None => out[dst..dst + c].fill(T::zero()),
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: every pixel sums the column entries that copied it.
pub fn col2im<T: Real>(cols: &[T], w: &Window2d, out: &mut [T]) {
    let (image, _, width) = sizes(w);
    out.par_chunks_mut(image)
        .zip(cols.par_chunks(width))
        .for_each(|(out, cols)| col2im_image(cols, w, out));
}

fn col2im_image<T: Real>(cols: &[T], w: &Window2d, out: &mut [T]) {
    let c = w.channels;
    let span = w.kw * c;
    out.fill(T::zero());
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let row = (oy * w.out_w + ox) * w.kh * span;
            for ky in 0..w.kh {
                // A window row wholly inside the image: one pass over its floats, each added in
                // the same order as tap by tap.
                if let Some(pixel) = whole_row(w, oy, ox, ky) {
                    let (dst, src) = (pixel * c, row + ky * span);
                    for (o, &v) in out[dst..dst + span].iter_mut().zip(&cols[src..src + span]) {
                        *o = *o + v;
                    }
                    continue;
                }
                for kx in 0..w.kw {
                    if let Some((y, x)) = source(w, oy, ox, ky, kx) {
                        let dst = (y * w.in_w + x) * c;
                        let src = row + (ky * w.kw + kx) * c;
                        for (o, &v) in out[dst..dst + c].iter_mut().zip(&cols[src..src + c]) {
                            *o = *o + v;
                        }
                    }
                }
            }
        }
    }
}

/// The taps of window `(oy, ox)` inside the image, in row-major window order, as input pixels
/// (`y · in_w + x`).
fn taps(w: &Window2d, oy: usize, ox: usize) -> impl Iterator<Item = usize> + '_ {
    (0..w.kh)
        .flat_map(move |ky| (0..w.kw).map(move |kx| (ky, kx)))
        .filter_map(move |(ky, kx)| source(w, oy, ox, ky, kx).map(|(y, x)| y * w.in_w + x))
}

/// Each channel's maximum over window `(oy, ox)` of one image into `best`, comparing whole channel
/// rows at once (a compare-and-select the compiler vectorises): the first tap seeds it and a later
/// tap replaces it only when strictly greater, so NaN in a later tap never wins. `false` for a
/// window wholly in the padding.
fn window_max<T: Real>(x: &[T], w: &Window2d, (oy, ox): (usize, usize), best: &mut [T]) -> bool {
    let c = best.len();
    let mut any = false;
    for pixel in taps(w, oy, ox) {
        let row = &x[pixel * c..][..c];
        if any {
            best.iter_mut()
                .zip(row)
                .for_each(|(b, &v)| *b = if v > *b { v } else { *b });
        } else {
            best.copy_from_slice(row);
            any = true;
        }
    }
    any
}

/// Max over each window; padding never wins.
pub fn max_pool2d<T: Real>(x: &[T], w: &Window2d, out: &mut [T]) {
    let (image, pooled, _) = sizes(w);
    let c = w.channels.max(1);
    out.par_chunks_mut(pooled)
        .zip(x.par_chunks(image))
        .for_each(|(out, x)| {
            for (win, o) in out.chunks_exact_mut(c).enumerate() {
                if !window_max(x, w, (win / w.out_w, win % w.out_w), o) {
                    o.fill(T::zero());
                }
            }
        });
}

/// `dx`: each window's `dy` added to the pixel that won it: per channel, the first tap in window
/// order whose value equals the window's maximum (the first tap when the maximum is NaN, as the
/// forward comparison keeps it). Whole channel rows at once, as in the forward pass.
pub fn max_pool2d_grad<T: Real>(x: &[T], dy: &[T], w: &Window2d, out: &mut [T]) {
    let (image, pooled, _) = sizes(w);
    let c = w.channels.max(1);
    out.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .zip(dy.par_chunks(pooled))
        .for_each(|((out, x), dy)| {
            out.fill(T::zero());
            let (mut best, mut open) = (vec![T::zero(); c], vec![true; c]);
            for (win, d) in dy.chunks_exact(c).enumerate() {
                let (oy, ox) = (win / w.out_w, win % w.out_w);
                if !window_max(x, w, (oy, ox), &mut best) {
                    continue;
                }
                open.fill(true);
                for pixel in taps(w, oy, ox) {
                    let (row, o) = (&x[pixel * c..][..c], &mut out[pixel * c..][..c]);
                    for ((((o, &v), &m), &g), open) in o.iter_mut().zip(row).zip(&best).zip(d).zip(open.iter_mut()) {
                        let hit = *open & (v == m || m.is_nan());
                        *o = if hit { *o + g } else { *o };
                        *open &= !hit;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 2×2 image, one 2×2 window, three channels: a tie, a NaN in the first tap, a NaN later.
    #[test]
    fn pooling_takes_the_first_maximum_and_routes_its_gradient_there() {
        let w = Window2d {
            in_h: 2,
            in_w: 2,
            channels: 3,
            kh: 2,
            kw: 2,
            sh: 2,
            sw: 2,
            pad_top: 0,
            pad_left: 0,
            out_h: 1,
            out_w: 1,
        };
        let nan = f32::NAN;
        // Pixels in row-major order, channels innermost.
        let x = [1.0, nan, 4.0, 3.0, 5.0, nan, 3.0, 6.0, 4.0, 2.0, 7.0, 1.0];
        let mut pooled = [0.0f32; 3];
        max_pool2d(&x, &w, &mut pooled);
        assert_eq!(pooled[0], 3.0);
        assert!(
            pooled[1].is_nan(),
            "a NaN first tap is kept, as the GPU kernel's comparison keeps it"
        );
        assert_eq!(pooled[2], 4.0, "a later NaN never wins");
        let mut dx = [0.0f32; 12];
        max_pool2d_grad(&x, &[10.0, 20.0, 30.0], &w, &mut dx);
        assert_eq!(dx, [0.0, 20.0, 30.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
