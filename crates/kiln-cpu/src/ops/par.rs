//! Element-by-element passes split across the pool's workers when they are large enough to pay
//! for it. Each element is computed exactly as on one thread, so the split never changes a result.

use rayon::prelude::*;

use crate::Real;

/// Elements per task: below this a pass runs on the calling worker (a task costs a few µs; a
/// 32Ki-element pass about as much).
pub const MIN: usize = 1 << 15;

/// `out[i] = f(x[i])`.
pub fn map<T: Real>(x: &[T], out: &mut [T], f: impl Fn(T) -> T + Sync) {
    let pass = |o: &mut [T], x: &[T]| o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
    if out.len() < 2 * MIN {
        return pass(out, x);
    }
    out.par_chunks_mut(MIN)
        .zip(x.par_chunks(MIN))
        .for_each(|(o, x)| pass(o, x));
}

/// `out[i] = f(a[i], b[i])`.
pub fn zip<T: Real>(a: &[T], b: &[T], out: &mut [T], f: impl Fn(T, T) -> T + Sync) {
    let pass = |o: &mut [T], a: &[T], b: &[T]| {
        o.iter_mut().zip(a).zip(b).for_each(|((o, &u), &v)| *o = f(u, v));
    };
    if out.len() < 2 * MIN {
        return pass(out, a, b);
    }
    out.par_chunks_mut(MIN)
        .zip(a.par_chunks(MIN).zip(b.par_chunks(MIN)))
        .for_each(|(o, (a, b))| pass(o, a, b));
}

/// `out[i] = f(i)`: for passes that draw from an element's index (uniform noise).
pub fn indexed<T: Real>(out: &mut [T], f: impl Fn(usize) -> T + Sync) {
    let pass = |start: usize, o: &mut [T]| o.iter_mut().enumerate().for_each(|(i, o)| *o = f(start + i));
    if out.len() < 2 * MIN {
        return pass(0, out);
    }
    out.par_chunks_mut(MIN).enumerate().for_each(|(c, o)| pass(c * MIN, o));
}

/// `out[i] = f(i, x[i])`: for passes that draw from an element's index (dropout's mask).
pub fn map_indexed<T: Real>(x: &[T], out: &mut [T], f: impl Fn(usize, T) -> T + Sync) {
    let pass = |start: usize, o: &mut [T], x: &[T]| {
        o.iter_mut()
            .zip(x)
            .enumerate()
            .for_each(|(i, (o, &v))| *o = f(start + i, v));
    };
    if out.len() < 2 * MIN {
        return pass(0, out, x);
    }
    out.par_chunks_mut(MIN)
        .zip(x.par_chunks(MIN))
        .enumerate()
        .for_each(|(c, (o, x))| pass(c * MIN, o, x));
}

/// `f(first_row, rows)` on runs of whole rows of `out` (`row` elements each), in parallel when the
/// op touches `work` elements or more in all (a reduction reads more than it writes): for ops
/// whose rows are independent (a lookup, a reduction per outer index).
pub fn rows<T: Real>(out: &mut [T], row: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let row = row.max(1);
    let count = out.len() / row;
    if work < 2 * MIN || count < 2 {
        return f(0, out);
    }
    let rows_per_task = MIN.div_ceil(work.div_ceil(count)).max(1);
    let per_task = rows_per_task * row;
    out.par_chunks_mut(per_task)
        .enumerate()
        .for_each(|(i, chunk)| f(i * rows_per_task, chunk));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_passes_compute_every_element_as_one_thread_does() {
        let n = 5 * MIN + 7;
        let x: Vec<f32> = (0..n).map(|i| (i % 1013) as f32 * 0.37 - 100.0).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 97) as f32 + 1.0).collect();
        let mut out = vec![0.0; n];
        map(&x, &mut out, |v| v.sin() * 3.0);
        assert!(out.iter().zip(&x).all(|(o, v)| *o == v.sin() * 3.0));
        zip(&x, &y, &mut out, |u, v| u / v);
        assert!(out.iter().zip(x.iter().zip(&y)).all(|(o, (u, v))| *o == u / v));
        // Indexed passes see each element's index in the whole tensor, across the split.
        map_indexed(&x, &mut out, |i, v| v + i as f32);
        assert!(out.iter().zip(&x).enumerate().all(|(i, (o, v))| *o == v + i as f32));
        indexed(&mut out, |i| i as f32);
        assert!(out.iter().enumerate().all(|(i, &o)| o == i as f32));
        // Rows of 1000 that do not divide the task size: each row sees its own index.
        let row = 1000;
        let mut rows_out = vec![0.0f32; 97 * row];
        let work = rows_out.len();
        rows(&mut rows_out, row, work, |first, block| {
            for (k, r) in block.chunks_exact_mut(row).enumerate() {
                r.fill((first + k) as f32);
            }
        });
        assert!(rows_out
            .chunks(row)
            .enumerate()
            .all(|(i, r)| r.iter().all(|&v| v == i as f32)));
    }
}
