//! Image ops on NHWC tensors. Convolution is `im2col` followed by a matmul; its input gradient is
//! `col2im` of the column gradient. Max-pooling routes each window's gradient to the window's
//! first maximum (row-major window order), which is how ties are broken on both backends.
//!
//! `im2col`: `cols[(n, oy, ox), (ky, kx, c)] = x[n, oy·sh + ky - pad_top, ox·sw + kx - pad_left, c]`
//! (0 in the padding). `col2im` is its adjoint: each pixel sums the column entries it was copied
//! to, gathered per pixel so the order of the sum is fixed.

use kiln_graph::Window2d;

use crate::Real;

/// The input row and column a window position reads, if inside the image.
fn source(w: &Window2d, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let y = (oy * w.sh + ky).checked_sub(w.pad_top)?;
    let x = (ox * w.sw + kx).checked_sub(w.pad_left)?;
    (y < w.in_h && x < w.in_w).then_some((y, x))
}

/// Windows as rows; see the module docs.
pub fn im2col<T: Real>(x: &[T], w: &Window2d, n: usize, out: &mut [T]) {
    let cols = w.kh * w.kw * w.channels;
    for b in 0..n {
        for oy in 0..w.out_h {
            for ox in 0..w.out_w {
                let row = ((b * w.out_h + oy) * w.out_w + ox) * cols;
                for ky in 0..w.kh {
                    for kx in 0..w.kw {
                        let dst = row + (ky * w.kw + kx) * w.channels;
                        match source(w, oy, ox, ky, kx) {
                            Some((y, xx)) => {
                                let src = ((b * w.in_h + y) * w.in_w + xx) * w.channels;
                                out[dst..dst + w.channels].copy_from_slice(&x[src..src + w.channels]);
                            }
                            None => out[dst..dst + w.channels].fill(T::zero()),
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: every pixel gathers the column entries that copied it.
pub fn col2im<T: Real>(cols: &[T], w: &Window2d, n: usize, out: &mut [T]) {
    let width = w.kh * w.kw * w.channels;
    out.fill(T::zero());
    for b in 0..n {
        for oy in 0..w.out_h {
            for ox in 0..w.out_w {
                let row = ((b * w.out_h + oy) * w.out_w + ox) * width;
                for ky in 0..w.kh {
                    for kx in 0..w.kw {
                        if let Some((y, x)) = source(w, oy, ox, ky, kx) {
                            let dst = ((b * w.in_h + y) * w.in_w + x) * w.channels;
                            let src = row + (ky * w.kw + kx) * w.channels;
                            for c in 0..w.channels {
                                out[dst + c] = out[dst + c] + cols[src + c];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The first maximum of window `(b, oy, ox)` in channel `c`, as an input pixel `(y, x)`.
fn argmax<T: Real>(x: &[T], w: &Window2d, b: usize, oy: usize, ox: usize, c: usize) -> Option<(usize, usize)> {
    let mut best: Option<((usize, usize), T)> = None;
    for ky in 0..w.kh {
        for kx in 0..w.kw {
            if let Some((y, xx)) = source(w, oy, ox, ky, kx) {
                let v = x[((b * w.in_h + y) * w.in_w + xx) * w.channels + c];
                if best.is_none_or(|(_, m)| v > m) {
                    best = Some(((y, xx), v));
                }
            }
        }
    }
    best.map(|(p, _)| p)
}

/// Max over each window; padding never wins.
pub fn max_pool2d<T: Real>(x: &[T], w: &Window2d, n: usize, out: &mut [T]) {
    for b in 0..n {
        for oy in 0..w.out_h {
            for ox in 0..w.out_w {
                for c in 0..w.channels {
                    let o = ((b * w.out_h + oy) * w.out_w + ox) * w.channels + c;
                    out[o] = match argmax(x, w, b, oy, ox, c) {
                        Some((y, xx)) => x[((b * w.in_h + y) * w.in_w + xx) * w.channels + c],
                        None => T::zero(),
                    };
                }
            }
        }
    }
}

/// `dx`: each window's `dy` added to the pixel that won it.
pub fn max_pool2d_grad<T: Real>(x: &[T], dy: &[T], w: &Window2d, n: usize, out: &mut [T]) {
    out.fill(T::zero());
    for b in 0..n {
        for oy in 0..w.out_h {
            for ox in 0..w.out_w {
                for c in 0..w.channels {
                    if let Some((y, xx)) = argmax(x, w, b, oy, ox, c) {
                        let i = ((b * w.in_h + y) * w.in_w + xx) * w.channels + c;
                        out[i] = out[i] + dy[((b * w.out_h + oy) * w.out_w + ox) * w.channels + c];
                    }
                }
            }
        }
    }
}
