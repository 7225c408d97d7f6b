//! A whole LSTM or GRU over a batch of sequences, forward and backward through time (see
//! [`RecurrentOp`] for the operands and the states' layout).
//!
//! Forward, per step in reading order: `z = xw_t + h·U`, then `i, f, o = σ(z_·)`, `c̃ = tanh(z_c)`,
//! `c = f·c + i·c̃`, `h = o·tanh(c)`. Backward, per step in the opposite order, with `dh`, `dc`
//! carried from the step read after it:
//! `dh = dh_t + dh'`, `dc = dc_t + dh·o·(1 - tanh²c) + dc'`, then the gates' gradients through
//! their activations, `dc' = dc·f` and `dh' = dz·Uᵀ` for the step before.
//!
//! Sequences are independent: the batch is cut into one block of sequences per thread, and each
//! block runs its recurrence with one matrix product per step over its sequences.
//!
//! With an initial state (`initial [n, k·u]`), the forward pass starts from it instead of zeros,
//! and the backward pass reads it as the state before the first step and writes the gradient
//! it carries past that step (`d h₀`, and the LSTM's `d c₀`) in one more row per sequence.

use kiln_graph::{Epilogue, RecurrentOp};
use rayon::prelude::*;

use super::activation::sigmoid_scalar;
use super::matmul::matmul;
use crate::executor::Args;
use crate::simd;
use crate::Real;

/// Runs one recurrent step.
pub fn compute<T: Real>(op: &RecurrentOp, a: &Args<'_, T>, out: &mut [T]) {
    let dims = op.dims(&a.shapes()).expect("the graph checked the shapes");
    let initial = op.initial().then(|| a.x(op.initial_at()));
    let reverse = op.reverse();
    match *op {
        RecurrentOp::Lstm { .. } => lstm(a.x(0), a.x(1), initial, dims, reverse, out),
        RecurrentOp::LstmGrad { .. } => lstm_grad(a.x(0), a.x(1), a.x(2), initial, dims, reverse, out),
        RecurrentOp::Gru { .. } => gru(a.x(0), a.x(1), a.x(2), initial, dims, reverse, out),
        RecurrentOp::GruGrad { .. } => gru_grad(a.x(0), a.x(1), a.x(2), initial, dims, reverse, out),
    }
}

/// The state before the first step of `n` sequences: `initial`'s values (`k·u` per sequence, the
/// part at `from`, `u` long), or zeros.
fn starting<T: Real>(initial: Option<&[T]>, n: usize, (k, from): (usize, usize), u: usize) -> Vec<T> {
    match initial {
        Some(init) => init
            .chunks_exact(k * u)
            .take(n)
            .flat_map(|row| row[from * u..][..u].iter().copied())
            .collect(),
        None => vec![T::zero(); n * u],
    }
}

/// Sequences per block: the batch spread over the threads.
fn block(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// The time indices in reading order.
fn order(steps: usize, reverse: bool) -> impl Iterator<Item = usize> {
    (0..steps).map(move |k| if reverse { steps - 1 - k } else { k })
}

/// `states [n, steps, 6u]` of an LSTM over `xw [n, steps, 4u]` with recurrent kernel `rec [u, 4u]`,
/// from `initial [n, 2u]` (`h₀, c₀`) or zeros.
pub fn lstm<T: Real>(
    xw: &[T],
    rec: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    states: &mut [T],
) {
    forward_blocks(
        xw,
        initial,
        states,
        (n, steps, u),
        (4, 6, 2),
        #[inline(always)]
        |x, init, count, out| lstm_block(x, rec, init, (count, steps, u), reverse, out),
    );
}

/// Runs a forward recurrence's `run(xw, initial, sequences, states)` on blocks of whole
/// sequences in parallel, under [`simd::wide`]: `xw` holds `widths.0·u` values per step, the
/// states `widths.1·u`, the initial state `widths.2·u` per sequence.
fn forward_blocks<T: Real>(
    xw: &[T],
    initial: Option<&[T]>,
    states: &mut [T],
    (n, steps, u): (usize, usize, usize),
    (in_w, out_w, init_w): (usize, usize, usize),
    run: impl Fn(&[T], Option<&[T]>, usize, &mut [T]) + Sync,
) {
    let (per, row) = (block(n), steps * out_w * u);
    states
        .par_chunks_mut(per * row)
        .zip(xw.par_chunks(per * steps * in_w * u))
        .enumerate()
        .for_each(|(b, (out, x))| {
            let count = out.len() / row;
            simd::wide(
                #[inline(always)]
                || run(x, block_of(initial, (b * per, count), init_w * u), count, out),
            )
        });
}

/// The initial states (`width` values per sequence) of the `count` sequences from `first` on.
fn block_of<T>(initial: Option<&[T]>, (first, count): (usize, usize), width: usize) -> Option<&[T]> {
    initial.map(|i| &i[first * width..][..count * width])
}

/// Runs a backward recurrence's `run(states, d_states, initial, sequences, out)` on blocks of
/// whole sequences in parallel, under [`simd::wide`]: the states and their gradient hold
/// `widths.0·u` values per step, the output `widths.1·u` (one row more per sequence with an
/// initial state, which holds `widths.2·u` values per sequence).
fn backward_blocks<T: Real>(
    states: &[T],
    d_states: &[T],
    initial: Option<&[T]>,
    out: &mut [T],
    (n, steps, u): (usize, usize, usize),
    (state_w, out_w, init_w): (usize, usize, usize),
    run: impl Fn(&[T], &[T], Option<&[T]>, usize, &mut [T]) + Sync,
) {
    let (per, row) = (block(n), steps * state_w * u);
    let out_rows = steps + usize::from(initial.is_some());
    out.par_chunks_mut(per * out_rows * out_w * u)
        .zip(states.par_chunks(per * row).zip(d_states.par_chunks(per * row)))
        .enumerate()
        .for_each(|(b, (out, (st, ds)))| {
            let count = st.len() / row;
            simd::wide(
                #[inline(always)]
                || run(st, ds, block_of(initial, (b * per, count), init_w * u), count, out),
            )
        });
}

/// `Uᵀ [gates·u, u]` of a recurrent kernel `[u, gates·u]`, laid out once per backward pass: the
/// GEMM would otherwise repack the transposed U at every step (measured: most of the LSTM
/// backward's time).
fn transposed<T: Real>(rec: &[T], u: usize) -> Vec<T> {
    let width = rec.len() / u.max(1);
    let mut rec_t = vec![T::zero(); rec.len()];
    for (r, row) in rec.chunks_exact(width).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            rec_t[c * u + r] = v;
        }
    }
    rec_t
}

/// [`lstm`] over one block of `n` sequences (inlined into [`simd::wide`]'s AVX2 build).
#[inline(always)]
fn lstm_block<T: Real>(
    xw: &[T],
    rec: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    states: &mut [T],
) {
    let (mut h, mut c, mut z) = (
        starting(initial, n, (2, 0), u),
        starting(initial, n, (2, 1), u),
        vec![T::zero(); n * 4 * u],
    );
    for t in order(steps, reverse) {
        matmul(&h, rec, None, &mut z, (n, u, 4 * u), false, false, Epilogue::Linear);
        // Whole gate rows at a time (each loop a straight pass over slices, which vectorises).
        for s in 0..n {
            let x = &xw[(s * steps + t) * 4 * u..][..4 * u];
            let out = &mut states[(s * steps + t) * 6 * u..][..6 * u];
            let (gates, rest) = out.split_at_mut(4 * u);
            let (cells, hidden) = rest.split_at_mut(u);
            for ((g, &zv), &xv) in gates.iter_mut().zip(&z[s * 4 * u..][..4 * u]).zip(x) {
                *g = zv + xv;
            }
            let (i_f, rest) = gates.split_at_mut(2 * u);
            let (cand, o) = rest.split_at_mut(u);
            i_f.iter_mut().for_each(|g| *g = sigmoid_scalar(*g));
            o.iter_mut().for_each(|g| *g = sigmoid_scalar(*g));
            cand.iter_mut().for_each(|g| *g = g.tanh_vec());
            let (i, f) = i_f.split_at(u);
            let (c_s, h_s) = (&mut c[s * u..][..u], &mut h[s * u..][..u]);
            for ((((cell, &c_prev), &f), &i), &cand) in cells.iter_mut().zip(&*c_s).zip(f).zip(i).zip(&*cand) {
                *cell = f * c_prev + i * cand;
            }
            for ((hv, &o), &cell) in hidden.iter_mut().zip(&*o).zip(&*cells) {
                *hv = o * cell.tanh_vec();
            }
            c_s.copy_from_slice(cells);
            h_s.copy_from_slice(hidden);
        }
    }
}

/// `dz [n, steps, 4u]` from the forward `states`, `rec` and the gradient `d_states` of the states;
/// with `initial [n, 2u]`, `[n, steps + 1, 4u]`, each sequence's last row `(d h₀, d c₀, 0, 0)`.
pub fn lstm_grad<T: Real>(
    states: &[T],
    rec: &[T],
    d_states: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    dz: &mut [T],
) {
    backward_blocks(
        states,
        d_states,
        initial,
        dz,
        (n, steps, u),
        (6, 4, 2),
        #[inline(always)]
        |st, ds, init, count, out| lstm_grad_block(st, rec, ds, init, (count, steps, u), reverse, out),
    );
}

/// Writes the gradient carried past the first step into each sequence's extra row of `out`
/// (`rows` rows of `width` per sequence): `parts` side by side from the row's start, the rest zero.
fn initial_rows<T: Real>(out: &mut [T], (rows, width): (usize, usize), u: usize, parts: &[&[T]]) {
    for (s, seq) in out.chunks_exact_mut(rows * width).enumerate() {
        let row = &mut seq[(rows - 1) * width..];
        row.fill(T::zero());
        for (k, part) in parts.iter().enumerate() {
            row[k * u..][..u].copy_from_slice(&part[s * u..][..u]);
        }
    }
}

/// [`lstm_grad`] over one block of `n` sequences (inlined into [`simd::wide`]'s AVX2 build).
#[inline(always)]
fn lstm_grad_block<T: Real>(
    states: &[T],
    rec: &[T],
    d_states: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    dz: &mut [T],
) {
    let one = T::one();
    let (mut dh_next, mut dc_next) = (vec![T::zero(); n * u], vec![T::zero(); n * u]);
    let mut dz_t = vec![T::zero(); n * 4 * u];
    let c0 = starting(initial, n, (2, 1), u);
    // Rows per sequence of the output: one more for the initial state's gradient.
    let rows = steps + usize::from(initial.is_some());
    let rec_t = transposed(rec, u);
    let read: Vec<usize> = order(steps, reverse).collect();
    for (k_step, &t) in read.iter().enumerate().rev() {
        // The step read before this one holds c_{t-1}; none for the first step read.
        let before = k_step.checked_sub(1).map(|k| read[k]);
        for s in 0..n {
            let at = |time: usize| (s * steps + time) * 6 * u;
            let (st, ds) = (&states[at(t)..][..6 * u], &d_states[at(t)..][..6 * u]);
            // Every operand as a slice of `u`, so the pass over the units is straight-line code
            // over equal-length slices, which vectorises.
            let gate = |g: usize| &st[g * u..(g + 1) * u];
            let (i, f, cand, o, cell) = (gate(0), gate(1), gate(2), gate(3), gate(4));
            let c_prev = match before {
                Some(b) => &states[at(b) + 4 * u..][..u],
                None => &c0[s * u..][..u],
            };
            let (dh_in, dc_out) = (&dh_next[s * u..][..u], &mut dc_next[s * u..][..u]);
            let row = &mut dz_t[s * 4 * u..][..4 * u];
            let (d_if, d_co) = row.split_at_mut(2 * u);
            let (d_i, d_f) = d_if.split_at_mut(u);
            let (d_cand, d_o) = d_co.split_at_mut(u);
            for k in 0..u {
                let squashed = cell[k].tanh_vec();
                let dh = ds[5 * u + k] + dh_in[k];
                let dc = ds[4 * u + k] + dh * o[k] * (one - squashed * squashed) + dc_out[k];
                d_i[k] = (ds[k] + dc * cand[k]) * i[k] * (one - i[k]);
                d_f[k] = (ds[u + k] + dc * c_prev[k]) * f[k] * (one - f[k]);
                d_cand[k] = (ds[2 * u + k] + dc * i[k]) * (one - cand[k] * cand[k]);
                d_o[k] = (ds[3 * u + k] + dh * squashed) * o[k] * (one - o[k]);
                dc_out[k] = dc * f[k];
            }
            dz[(s * rows + t) * 4 * u..][..4 * u].copy_from_slice(row);
        }
        // dh' = dz·Uᵀ for the step read before.
        matmul(
            &dz_t,
            &rec_t,
            None,
            &mut dh_next,
            (n, 4 * u, u),
            false,
            false,
            Epilogue::Linear,
        );
    }
    if initial.is_some() {
        initial_rows(dz, (rows, 4 * u), u, &[&dh_next, &dc_next]);
    }
}

/// `states [n, steps, 5u]` of a GRU (`reset_after`) over `xw [n, steps, 3u]` with recurrent kernel
/// `rec [u, 3u]` and recurrent bias `b_r [3u]`, from `initial [n, u]` (`h₀`) or zeros. Per step in
/// reading order: `m = h·U + b_r`, `z = σ(xw_z + m_z)`, `r = σ(xw_r + m_r)`,
/// `h̃ = tanh(xw_h + r·m_h)`, `h = h̃ + z·(h_prev - h̃)`.
pub fn gru<T: Real>(
    xw: &[T],
    rec: &[T],
    bias: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    states: &mut [T],
) {
    forward_blocks(
        xw,
        initial,
        states,
        (n, steps, u),
        (3, 5, 1),
        #[inline(always)]
        |x, init, count, out| gru_block(x, rec, bias, init, (count, steps, u), reverse, out),
    );
}

/// [`gru`] over one block of `n` sequences (inlined into [`simd::wide`]'s AVX2 build).
#[inline(always)]
fn gru_block<T: Real>(
    xw: &[T],
    rec: &[T],
    bias: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    states: &mut [T],
) {
    let (mut h, mut m) = (starting(initial, n, (1, 0), u), vec![T::zero(); n * 3 * u]);
    for t in order(steps, reverse) {
        matmul(
            &h,
            rec,
            Some(bias),
            &mut m,
            (n, u, 3 * u),
            false,
            false,
            Epilogue::Linear,
        );
        for s in 0..n {
            let x = &xw[(s * steps + t) * 3 * u..][..3 * u];
            let m_s = &m[s * 3 * u..][..3 * u];
            let out = &mut states[(s * steps + t) * 5 * u..][..5 * u];
            let (z_r, rest) = out.split_at_mut(2 * u);
            let (cand, rest) = rest.split_at_mut(u);
            let (m_h, hidden) = rest.split_at_mut(u);
            for ((g, &mv), &xv) in z_r.iter_mut().zip(&m_s[..2 * u]).zip(&x[..2 * u]) {
                *g = sigmoid_scalar(xv + mv);
            }
            m_h.copy_from_slice(&m_s[2 * u..]);
            let (z, r) = z_r.split_at(u);
            for (((c, &xv), &r), &mv) in cand.iter_mut().zip(&x[2 * u..]).zip(r).zip(&*m_h) {
                *c = (xv + r * mv).tanh_vec();
            }
            let h_s = &mut h[s * u..][..u];
            for (((hv, &prev), &z), &c) in hidden.iter_mut().zip(&*h_s).zip(z).zip(&*cand) {
                *hv = c + z * (prev - c);
            }
            h_s.copy_from_slice(hidden);
        }
    }
}

/// `[n, steps, 6u]` — each step's `d xw` then `d m` — from the forward `states`, `rec` and the
/// gradient `d_states` of the states. Per step in the opposite order, with `dh'` carried from the
/// step read after it: `dh = dh_t + dh'`, `dz = (dz_t + dh·(h_prev - h̃))·z(1 - z)`,
/// `da = (dh̃_t + dh·(1 - z))·(1 - h̃²)` (the candidate's pre-activation), `dr = (dr_t + da·m_h)·r(1 - r)`,
/// `d xw = (dz, dr, da)`, `d m = (dz, dr, dm_h_t + da·r)`, and for the step before
/// `dh' = dh·z + d m·Uᵀ`. With `initial [n, u]`, one row more per sequence: `(d h₀, 0, …)`.
pub fn gru_grad<T: Real>(
    states: &[T],
    rec: &[T],
    d_states: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    out: &mut [T],
) {
    backward_blocks(
        states,
        d_states,
        initial,
        out,
        (n, steps, u),
        (5, 6, 1),
        #[inline(always)]
        |st, ds, init, count, out| gru_grad_block(st, rec, ds, init, (count, steps, u), reverse, out),
    );
}

/// [`gru_grad`] over one block of `n` sequences (inlined into [`simd::wide`]'s AVX2 build).
#[inline(always)]
fn gru_grad_block<T: Real>(
    states: &[T],
    rec: &[T],
    d_states: &[T],
    initial: Option<&[T]>,
    (n, steps, u): (usize, usize, usize),
    reverse: bool,
    out: &mut [T],
) {
    let one = T::one();
    let (mut dh_next, mut dm) = (vec![T::zero(); n * u], vec![T::zero(); n * 3 * u]);
    let mut carried = vec![T::zero(); n * u];
    let h0 = starting(initial, n, (1, 0), u);
    let rows = steps + usize::from(initial.is_some());
    let rec_t = transposed(rec, u);
    let read: Vec<usize> = order(steps, reverse).collect();
    for (k_step, &t) in read.iter().enumerate().rev() {
        let before = k_step.checked_sub(1).map(|k| read[k]);
        for s in 0..n {
            let at = |time: usize| (s * steps + time) * 5 * u;
            let (st, ds) = (&states[at(t)..][..5 * u], &d_states[at(t)..][..5 * u]);
            let gate = |g: usize| &st[g * u..(g + 1) * u];
            let (z, r, cand, m_h) = (gate(0), gate(1), gate(2), gate(3));
            let h_prev = match before {
                Some(b) => &states[at(b) + 4 * u..][..u],
                None => &h0[s * u..][..u],
            };
            let dh_in = &dh_next[s * u..][..u];
            let keep = &mut carried[s * u..][..u];
            let dm_s = &mut dm[s * 3 * u..][..3 * u];
            let d_xw = &mut out[(s * rows + t) * 6 * u..][..3 * u];
            for k in 0..u {
                let dh = ds[4 * u + k] + dh_in[k];
                let dz = (ds[k] + dh * (h_prev[k] - cand[k])) * z[k] * (one - z[k]);
                let da = (ds[2 * u + k] + dh * (one - z[k])) * (one - cand[k] * cand[k]);
                let dr = (ds[u + k] + da * m_h[k]) * r[k] * (one - r[k]);
                d_xw[k] = dz;
                d_xw[u + k] = dr;
                d_xw[2 * u + k] = da;
                dm_s[k] = dz;
                dm_s[u + k] = dr;
                dm_s[2 * u + k] = ds[3 * u + k] + da * r[k];
                keep[k] = dh * z[k];
            }
            out[(s * rows + t) * 6 * u + 3 * u..][..3 * u].copy_from_slice(dm_s);
        }
        // dh' = dh·z + d m·Uᵀ for the step read before.
        matmul(
            &dm,
            &rec_t,
            None,
            &mut dh_next,
            (n, 3 * u, u),
            false,
            false,
            Epilogue::Linear,
        );
        for (d, &c) in dh_next.iter_mut().zip(&carried) {
            *d = *d + c;
        }
    }
    if initial.is_some() {
        initial_rows(out, (rows, 6 * u), u, &[&dh_next]);
    }
}
