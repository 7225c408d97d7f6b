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
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let row = (oy * w.out_w + ox) * w.kh * w.kw * c;
            for ky in 0..w.kh {
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
    out.fill(T::zero());
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let row = (oy * w.out_w + ox) * w.kh * w.kw * c;
            for ky in 0..w.kh {
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

/// For every window of one image, the input pixel (`y · in_w + x`) that holds the first maximum
/// of each channel, in row-major window order, or `None` for a window wholly in the padding.
/// `f(window, pixel per channel)` receives them; whole channel rows are compared at once.
fn window_maxima<T: Real>(x: &[T], w: &Window2d, mut f: impl FnMut(usize, Option<&[usize]>)) {
    let c = w.channels;
    let (mut best, mut at) = (vec![T::zero(); c], vec![0usize; c]);
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let mut any = false;
            for ky in 0..w.kh {
                for kx in 0..w.kw {
                    let Some((y, xx)) = source(w, oy, ox, ky, kx) else {
                        continue;
                    };
                    let pixel = y * w.in_w + xx;
                    let row = &x[pixel * c..(pixel + 1) * c];
                    if !any {
                        best.copy_from_slice(row);
                        at.fill(pixel);
                        any = true;
                        continue;
                    }
                    for ((b, a), &v) in best.iter_mut().zip(at.iter_mut()).zip(row) {
                        if v > *b {
                            *b = v;
                            *a = pixel;
                        }
                    }
                }
            }
            f(oy * w.out_w + ox, any.then_some(at.as_slice()));
        }
    }
}

/// Max over each window; padding never wins.
pub fn max_pool2d<T: Real>(x: &[T], w: &Window2d, out: &mut [T]) {
    let (image, pooled, _) = sizes(w);
    let c = w.channels;
    out.par_chunks_mut(pooled)
        .zip(x.par_chunks(image))
        .for_each(|(out, x)| {
            window_maxima(x, w, |win, at| {
                let o = &mut out[win * c..(win + 1) * c];
                match at {
                    Some(at) => o
                        .iter_mut()
                        .zip(at)
                        .enumerate()
                        .for_each(|(ch, (o, &p))| *o = x[p * c + ch]),
                    None => o.fill(T::zero()),
                }
            });
        });
}

/// `dx`: each window's `dy` added to the pixel that won it.
pub fn max_pool2d_grad<T: Real>(x: &[T], dy: &[T], w: &Window2d, out: &mut [T]) {
    let (image, pooled, _) = sizes(w);
    let c = w.channels;
    out.par_chunks_mut(image)
        .zip(x.par_chunks(image))
        .zip(dy.par_chunks(pooled))
        .for_each(|((out, x), dy)| {
            out.fill(T::zero());
            window_maxima(x, w, |win, at| {
                for (ch, &p) in at.into_iter().flatten().enumerate() {
                    let i = p * c + ch;
                    out[i] = out[i] + dy[win * c + ch];
                }
            });
        });
}
