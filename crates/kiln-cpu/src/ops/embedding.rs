//! Embedding lookup and its gradient.
//!
//! Forward: `out[p, :] = table[idx[p], :]`. Backward: `dtable[v, :] = Σ_{p: idx[p] = v} dy[p, :]`,
//! summed in position order so every run, and both backends, add in the same order.

use kiln_graph::EmbeddingOp;

use super::par;
use crate::executor::Args;
use crate::Real;

/// Runs one embedding step.
pub fn compute<T: Real>(op: &EmbeddingOp, a: &Args<'_, T>, out: &mut [T]) {
    match op {
        EmbeddingOp::Lookup => embedding(a.x(0), a.x(1), a.shape(0).dims()[1], out),
        EmbeddingOp::Grad { vocab } => embedding_grad(a.x(0), a.x(1), *vocab, a.shape(1).last(), out),
        EmbeddingOp::LookupMean => embedding_mean(a.x(0), a.x(1), a.shape(0).dims()[1], a.shape(1).dims()[1], out),
    }
}

/// Index `p` as a row of a `vocab`-row table, clamped (the host rejects bad indices first).
fn row<T: Real>(i: T, vocab: usize) -> usize {
    // Non-negative, so adding ½ and truncating rounds to nearest (without a libm `roundf` call
    // per position on x86-64's baseline); NaN truncates to 0.
    ((i.to_f32().max(0.0) + 0.5) as usize).min(vocab - 1)
}

/// `out[p, :] = table[idx[p], :]` with rows of `dim`.
pub fn embedding<T: Real>(table: &[T], idx: &[T], dim: usize, out: &mut [T]) {
    let vocab = table.len() / dim.max(1);
    let work = out.len();
    par::rows(out, dim, work, |first, rows| {
        for (k, o) in rows.chunks_mut(dim.max(1)).enumerate() {
            let v = row(idx[first + k], vocab);
            o.copy_from_slice(&table[v * dim..(v + 1) * dim]);
        }
    });
}

/// `out[s, :] = (Σ_t table[idx[s, t], :]) · (1 / steps)`: the lookup and the mean over the steps
/// in one pass, summed in step order and scaled as `ReduceOp::Mean` does, without the
/// `[n, steps, dim]` lookup in between.
pub fn embedding_mean<T: Real>(table: &[T], idx: &[T], dim: usize, steps: usize, out: &mut [T]) {
    let vocab = table.len() / dim.max(1);
    let scale = T::of(1.0 / steps as f32);
    let work = out.len() * steps;
    par::rows(out, dim, work, |first, rows| {
        crate::simd::wide(|| {
            for (k, o) in rows.chunks_mut(dim.max(1)).enumerate() {
                let tokens = &idx[(first + k) * steps..(first + k + 1) * steps];
                mean_of_rows(table, tokens, vocab, dim, scale, o);
            }
        })
    });
}

/// Columns summed at once: a block of accumulators stays in registers across the steps instead
/// of a row of them in memory (measured: the in-memory row was half of a bag-of-tokens predict).
const MEAN_BLOCK: usize = 16;

/// One sample's row of [`embedding_mean`]: block by block of `MEAN_BLOCK` columns, each step's
/// table row added in order, then scaled.
#[inline(always)]
fn mean_of_rows<T: Real>(table: &[T], tokens: &[T], vocab: usize, dim: usize, scale: T, out: &mut [T]) {
    let mut start = 0;
    while start < dim {
        let width = MEAN_BLOCK.min(dim - start);
        let mut acc = [T::zero(); MEAN_BLOCK];
        if width == MEAN_BLOCK {
            // A whole block: fixed-size arrays, so the accumulators live in registers.
            for &i in tokens {
                let from = row(i, vocab) * dim + start;
                let block: &[T; MEAN_BLOCK] = table[from..from + MEAN_BLOCK].try_into().expect("a whole block");
                for c in 0..MEAN_BLOCK {
                    acc[c] = acc[c] + block[c];
                }
            }
        } else {
            for &i in tokens {
                let from = row(i, vocab) * dim + start;
                for (a, &t) in acc[..width].iter_mut().zip(&table[from..from + width]) {
                    *a = *a + t;
                }
            }
        }
        for (o, &a) in out[start..start + width].iter_mut().zip(&acc[..width]) {
            *o = a * scale;
        }
        start += width;
    }
}

/// `out[v, :] = Σ_{p: idx[p] = v} dy[p, :]`.
pub fn embedding_grad<T: Real>(idx: &[T], dy: &[T], vocab: usize, dim: usize, out: &mut [T]) {
    out.fill(T::zero());
    for (p, &i) in idx.iter().enumerate() {
        let v = row(i, vocab);
        for d in 0..dim {
            out[v * dim + d] = out[v * dim + d] + dy[p * dim + d];
        }
    }
}
