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
