//! Reductions over one axis, viewed as `[outer, len, inner]`, and their adjoint, broadcast:
//! `d sum/dx = broadcast(dy)`, `d mean/dx = broadcast(dy)/len`, `d broadcast/dx = sum(dy)`.

use kiln_graph::{roc_threshold, ReduceOp};

use super::par;
use crate::executor::Args;
use crate::Real;

/// Runs one reduction step.
pub fn compute<T: Real>(op: &ReduceOp, a: &Args<'_, T>, out: &mut [T]) {
    let v = op.view(a.shape(0), a.out_shape());
    let (dims, scale) = ((v.outer, v.len, v.inner), T::of(op.scale(v)));
    match op {
        ReduceOp::Sum { .. } | ReduceOp::Mean { .. } => sum(a.x(0), dims, scale, out),
        ReduceOp::Broadcast { .. } => broadcast(a.x(0), dims, out),
        ReduceOp::ArgMax => argmax(a.x(0), v.len, out),
        ReduceOp::Dot => out[0] = a.x(0).iter().zip(a.x(1)).map(|(&p, &q)| p * q).sum(),
        ReduceOp::CountAbove { .. } => count_above(a.x(0), a.x(1), (v.outer, v.len), v.inner, out),
    }
}

/// Rows a block sums before its partial sum joins the total. A sum of `len` values in order
/// gathers rounding error in proportion to `len`; summed in blocks it grows with
/// `BLOCK + len / BLOCK`. BatchNormalization's moments and gradients, and a conv bias's gradient,
/// sum over batch × height × width (25,088 rows for 32 images of 28×28), where the in-order f32
/// sum kept about four digits: enough that the gradient of a conv bias feeding a
/// BatchNormalization (zero, but for rounding) took full-size Adam steps, and small conv-kernel
/// gradients changed sign, against Keras' float64 run of the same step (`tests/keras_replay.rs`).
/// `shaders/reduce.wgsl` sums in the same blocks (its `SUM_BLOCK`), so both backends add in one order.
const BLOCK: usize = 128;

/// Columns summed at once through a block, in a fixed-size partial sum on the stack.
const TILE: usize = 64;

/// `out[o, i] = scale · Σ_l x[o, l, i]`, summed in blocks of [`BLOCK`] rows along `l`. Rows of
/// `inner` are added whole, so the reads run along memory whatever the axis.
pub fn sum<T: Real>(x: &[T], (outer, len, inner): (usize, usize, usize), scale: T, out: &mut [T]) {
    debug_assert_eq!(out.len(), outer * inner);
    let inner = inner.max(1);
    par::rows(out, inner, x.len(), |first, accs| {
        for (k, acc) in accs.chunks_exact_mut(inner).enumerate() {
            let o = first + k;
            let x = &x[o * len * inner..(o + 1) * len * inner];
            if inner == 1 {
                // A reduction over the last axis (LayerNormalization's moments): one contiguous row.
                let total = x
                    .chunks(BLOCK)
                    .fold(T::zero(), |t, b| t + b.iter().fold(T::zero(), |s, &v| s + v));
                acc[0] = total * scale;
            } else {
                sum_rows(x, inner, acc);
                acc.iter_mut().for_each(|a| *a = *a * scale);
            }
        }
    });
}

/// `acc[i] = Σ_l x[l, i]` over the rows of `x` (each `inner` long), a tile of columns at a time.
fn sum_rows<T: Real>(x: &[T], inner: usize, acc: &mut [T]) {
    for c0 in (0..inner).step_by(TILE) {
        let width = TILE.min(inner - c0);
        let total = &mut acc[c0..c0 + width];
        total.fill(T::zero());
        for block in x.chunks(BLOCK * inner) {
            let mut part = [T::zero(); TILE];
            for row in block.chunks_exact(inner) {
                for (p, &v) in part.iter_mut().zip(&row[c0..c0 + width]) {
                    *p = *p + v;
                }
            }
            for (t, &p) in total.iter_mut().zip(&part) {
                *t = *t + p;
            }
        }
    }
}

/// `out[o, l, i] = x[o, i]`.
pub fn broadcast<T: Real>(x: &[T], (_outer, len, inner): (usize, usize, usize), out: &mut [T]) {
    let inner = inner.max(1);
    let work = out.len();
    par::rows(out, len * inner, work, |first, block| {
        for (k, copies) in block.chunks_exact_mut(len * inner).enumerate() {
            let o = first + k;
            if inner == 1 {
                copies.fill(x[o]);
                continue;
            }
            for copy in copies.chunks_exact_mut(inner) {
                copy.copy_from_slice(&x[o * inner..(o + 1) * inner]);
            }
        }
    });
}

/// Index of the first largest element of each row of length `n`.
pub fn argmax<T: Real>(x: &[T], n: usize, out: &mut [T]) {
    for (row, o) in x.chunks(n.max(1)).zip(out.iter_mut()) {
        let mut best = 0;
        for j in 1..row.len() {
            if row[j] > row[best] {
                best = j;
            }
        }
        *o = T::of(best as f32);
    }
}

/// ROC counts: `out[c, j, t]` counts the rows whose label `j` is positive (`c = 0`, label > 0.5) or
/// negative (`c = 1`) and whose score `j` is above threshold `t`.
pub fn count_above<T: Real>(scores: &[T], labels: &[T], (rows, k): (usize, usize), thresholds: usize, out: &mut [T]) {
    for j in 0..k {
        for t in 0..thresholds {
            let theta = T::of(roc_threshold(t, thresholds));
            let (mut pos, mut neg) = (T::zero(), T::zero());
            for r in 0..rows {
                if scores[r * k + j] > theta {
                    if labels[r * k + j] > T::of(0.5) {
                        pos = pos + T::one();
                    } else {
                        neg = neg + T::one();
                    }
                }
            }
            out[j * thresholds + t] = pos;
            out[(k + j) * thresholds + t] = neg;
        }
    }
}
