//! Scaled dot-product attention, forward and backward ([`AttentionOp`] writes out the formulas).
//!
//! Each (sample, head) is a block of small matrices: its rows of `q` (times the scale), `k` and
//! `v` are gathered into contiguous scratch, the scores `S = (q·scale)·kᵀ` and the products with
//! the weights run through the GEMM crate, and the block's rows of the result are scattered back.
//! Samples are split across the pool's workers; nothing depends on the split.

use kiln_graph::{AttentionDims, AttentionOp};

use super::par;
use crate::executor::Args;
use crate::simd;
use crate::Real;

/// Runs one attention step.
pub fn compute<T: Real>(op: &AttentionOp, a: &Args<'_, T>, out: &mut [T]) {
    let dims = op.dims(&a.shapes()).expect("the graph checked the shapes");
    let heads = Heads::new(op, a, dims);
    match op {
        // Under `simd::wide`, with every kernel below inlined into it: the AVX2 build of the
        // exponentials, the dropout hash and the gathers.
        AttentionOp::Attention(_) => heads.each_head(out, |b, s, head, sample| {
            simd::wide(
                #[inline(always)]
                || heads.forward(b, s, head, sample),
            );
        }),
        AttentionOp::AttentionGrad(_) => {
            let (y, dy) = (a.x(op.context_len()), a.x(op.context_len() + 1));
            heads.each_head(out, |b, s, head, sample| {
                simd::wide(
                    #[inline(always)]
                    || heads.backward(b, s, head, (y, dy), sample),
                );
            });
        }
    }
}

/// Dropout of the weights: [`kiln_graph::keeps_from_key`] of each weight's element in the
/// `[n, heads, tq, tk]` tensor, counted from the batch's first sample.
struct Drop<T> {
    key: u32,
    offset: u32,
    threshold: u32,
    factor: T,
}

/// The operands of one attention op and its sizes.
struct Heads<'a, T> {
    q: &'a [T],
    k: &'a [T],
    v: &'a [T],
    keep: Option<&'a [T]>,
    drop: Option<Drop<T>>,
    scale: T,
    causal: bool,
    dims: AttentionDims,
}

/// One (sample, head)'s matrices, row-major and contiguous, and the result's rows.
struct Block<T> {
    /// `[tq, d]`: the query rows times the scale (Keras scales the query before the product).
    qs: Vec<T>,
    /// `[tk, d]`.
    k: Vec<T>,
    /// `[tk, dv]`.
    v: Vec<T>,
    /// `[tq, dv]`: the output's gradient rows.
    dy: Vec<T>,
    /// `[tq, tk]`: the scores, then the weights `P`.
    p: Vec<T>,
    /// `[tq, tk]`: the factor the product needs (`P·δ` or `G`).
    g: Vec<T>,
    /// `[tq, tk]`: `dP = dO·vᵀ`.
    dp: Vec<T>,
    /// `[tq, 3]`: each query row's `(m, l, D)`.
    stats: Vec<T>,
    /// `[tq, tk]`: dropout's `δ`.
    delta: Vec<T>,
    /// The block's rows of the result, `width` values each.
    out: Vec<T>,
}

impl<T: Real> Block<T> {
    fn new((_, tq, tk, _, d, dv): AttentionDims) -> Self {
        let zeros = |len: usize| vec![T::zero(); len];
        Block {
            qs: zeros(tq * d),
            k: zeros(tk * d),
            v: zeros(tk * dv),
            dy: zeros(tq * dv),
            p: zeros(tq * tk),
            g: zeros(tq * tk),
            dp: zeros(tq * tk),
            stats: zeros(tq * 3),
            delta: zeros(tq * tk),
            out: zeros(tq.max(tk) * d.max(dv).max(3)),
        }
    }
}

/// `c [m, n] = a [m, k] · b [k, n]`, each operand given by its (row, column) strides.
fn product<T: Real>((m, k, n): (usize, usize, usize), a: (&[T], usize, usize), b: (&[T], usize, usize), c: &mut [T]) {
    T::gemm(
        m,
        k,
        n,
        a.0,
        a.1 as isize,
        a.2 as isize,
        b.0,
        b.1 as isize,
        b.2 as isize,
        c,
    );
}

impl<'a, T: Real> Heads<'a, T> {
    fn new(op: &AttentionOp, a: &Args<'a, T>, dims: AttentionDims) -> Self {
        let at = op.attend();
        let (n, tq, tk, h, ..) = dims;
        let drop = op.draw_at().map(|i| {
            let [step, first, samples] = [0, 1, 2].map(|k| a.x(i)[k].to_f32() as u32);
            let elements = (n * h * tq * tk) as u32;
            Drop {
                key: kiln_graph::draw_key(at.seed, step),
                offset: kiln_graph::dropout_element(0, elements, first, samples),
                threshold: kiln_graph::dropout_threshold(at.rate),
                factor: T::of(1.0 / (1.0 - at.rate)),
            }
        });
        Heads {
            q: a.x(0),
            k: a.x(1),
            v: a.x(2),
            keep: op.keep_at().map(|i| a.x(i)),
            drop,
            scale: T::of(at.scale),
            causal: at.causal,
            dims,
        }
    }

    /// The start of row `(s, t, head)` of a `[n, steps, heads, width]` tensor.
    #[inline(always)]
    fn at(&self, steps: usize, (s, t, head): (usize, usize, usize), width: usize) -> usize {
        ((s * steps + t) * self.dims.3 + head) * width
    }

    /// Copies the (sample, head) rows of `x [n, steps, heads, width]` into `into [steps, width]`,
    /// times `scale` where given.
    #[inline(always)]
    fn gather(
        &self,
        x: &[T],
        (s, head): (usize, usize),
        (steps, width): (usize, usize),
        scale: Option<T>,
        into: &mut [T],
    ) {
        for (t, row) in into.chunks_exact_mut(width).enumerate() {
            let from = &x[self.at(steps, (s, t, head), width)..][..width];
            match scale {
                Some(c) => row.iter_mut().zip(from).for_each(|(o, &x)| *o = x * c),
                None => row.copy_from_slice(from),
            }
        }
    }

    /// Runs `f(block, s, head, sample)` for every (sample, head), the samples split across the
    /// pool's workers: `sample` is sample `s`'s part of `out`, which `f` fills head by head.
    fn each_head(&self, out: &mut [T], f: impl Fn(&mut Block<T>, usize, usize, &mut [T]) + Sync) {
        let (n, tq, tk, h, d, dv) = self.dims;
        let per_sample = out.len() / n;
        let work = n * h * tq * tk * (d + dv);
        par::rows(out, per_sample, work, |first, samples| {
            let mut block = Block::new(self.dims);
            for (k, sample) in samples.chunks_exact_mut(per_sample).enumerate() {
                for head in 0..h {
                    f(&mut block, first + k, head, sample);
                }
            }
        });
    }

    /// `rows [steps, width]` of one head, to their places in `into [steps, heads, width]`.
    #[inline(always)]
    fn scatter(&self, rows: &[T], head: usize, width: usize, into: &mut [T]) {
        let h = self.dims.3;
        for (t, row) in rows.chunks_exact(width).take(into.len() / (h * width)).enumerate() {
            let to = (t * h + head) * width;
            into[to..to + width].copy_from_slice(row);
        }
    }

    /// The block's scores `S = (q·scale)·kᵀ` into `b.p`, from `q` and `k` gathered.
    #[inline(always)]
    fn scores(&self, b: &mut Block<T>, s: usize, head: usize) {
        let (_, tq, tk, _, d, _) = self.dims;
        self.gather(self.q, (s, head), (tq, d), Some(self.scale), &mut b.qs);
        self.gather(self.k, (s, head), (tk, d), None, &mut b.k);
        product((tq, d, tk), (&b.qs, d, 1), (&b.k, 1, d), &mut b.p);
    }

    /// Query `i`'s scores of keys it may not attend to set to -∞, so that their exponentials
    /// are exactly 0 and every later pass over the row is branch-free.
    #[inline(always)]
    fn mask_row(&self, scores: &mut [T], s: usize, i: usize) {
        let (_, tq, tk, ..) = self.dims;
        if self.causal {
            scores[i + 1..].fill(T::neg_infinity());
        }
        if let Some(keep) = self.keep {
            let keep = &keep[(s * tq + i) * tk..][..tk];
            for (x, &k) in scores.iter_mut().zip(keep) {
                if k == T::zero() {
                    *x = T::neg_infinity();
                }
            }
        }
    }

    /// A masked row of scores turned into its exponentials `exp(s - m)` (in their own pass,
    /// which vectorises), and `(m, l)`: the largest allowed score and the sum of
    /// the exponentials in order; `(0, 0)` and a row of zeros when nothing is allowed.
    #[inline(always)]
    fn exponentials(row: &mut [T]) -> (T, T) {
        let m = row.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
        if m == T::neg_infinity() {
            row.fill(T::zero());
            return (T::zero(), T::zero());
        }
        for x in row.iter_mut() {
            *x = (*x - m).exp_nonpositive();
        }
        (m, row.iter().fold(T::zero(), |l, &e| l + e))
    }

    /// The scores in `b.p` masked and turned into the weights `P`; each row's `(m, l)` into
    /// `b.stats`.
    #[inline(always)]
    fn weights(&self, b: &mut Block<T>, s: usize) {
        let tk = self.dims.2;
        for (i, (row, stats)) in b.p.chunks_exact_mut(tk).zip(b.stats.chunks_exact_mut(3)).enumerate() {
            self.mask_row(row, s, i);
            let (m, l) = Self::exponentials(row);
            stats[0] = m;
            stats[1] = l;
            if l != T::zero() {
                for x in row.iter_mut() {
                    *x = *x / l;
                }
            }
        }
    }

    /// `b.delta = δ` of the block's weights: dropout's factor where a weight is kept, 0 where
    /// it is dropped; false (and nothing written) without dropout.
    #[inline(always)]
    fn dropout_mask(&self, s: usize, head: usize, delta: &mut [T]) -> bool {
        let (_, tq, tk, h, ..) = self.dims;
        let Some(d) = &self.drop else { return false };
        let first = ((((s * h + head) * tq) * tk) as u32).wrapping_add(d.offset);
        let (key, threshold, factor) = (d.key, d.threshold, d.factor);
        for (e, o) in delta.iter_mut().enumerate() {
            let keep = kiln_graph::keeps_from_key(key, first.wrapping_add(e as u32), threshold);
            *o = if keep { factor } else { T::zero() };
        }
        true
    }

    /// `into = x·δ` (`x` itself without dropout).
    #[inline(always)]
    fn dropped(x: &[T], delta: Option<&[T]>, into: &mut [T]) {
        match delta {
            Some(delta) => {
                for ((o, &x), &m) in into.iter_mut().zip(x).zip(delta) {
                    *o = x * m;
                }
            }
            None => into.copy_from_slice(x),
        }
    }

    /// `O = (P·δ)·v`.
    #[inline(always)]
    fn forward(&self, b: &mut Block<T>, s: usize, head: usize, sample: &mut [T]) {
        let (_, tq, tk, _, _, dv) = self.dims;
        self.scores(b, s, head);
        self.weights(b, s);
        let delta = self.dropout_mask(s, head, &mut b.delta).then_some(&b.delta[..]);
        Self::dropped(&b.p, delta, &mut b.g);
        self.gather(self.v, (s, head), (tk, dv), None, &mut b.v);
        product((tq, tk, dv), (&b.g, tk, 1), (&b.v, dv, 1), &mut b.out);
        self.scatter(&b.out, head, dv, sample);
    }

    /// The packed gradients of one (sample, head): `dq = scale·G·k`, `dk = Gᵀ·(q·scale)`,
    /// `dv = (P·δ)ᵀ·dO` and the rows' `(m, l, D)`.
    #[inline(always)]
    fn backward(&self, b: &mut Block<T>, s: usize, head: usize, (y, dy): (&[T], &[T]), sample: &mut [T]) {
        let (_, tq, tk, _, d, dv) = self.dims;
        let [q_len, k_len, v_len, _] = AttentionOp::grad_parts(self.dims);
        let (dq_out, rest) = sample.split_at_mut(q_len);
        let (dk_out, rest) = rest.split_at_mut(k_len);
        let (dv_out, rows_out) = rest.split_at_mut(v_len);
        self.scores(b, s, head);
        self.weights(b, s);
        for (i, stats) in b.stats.chunks_exact_mut(3).enumerate() {
            let at = self.at(tq, (s, i, head), dv);
            stats[2] = y[at..at + dv]
                .iter()
                .zip(&dy[at..at + dv])
                .fold(T::zero(), |acc, (&a, &b)| acc + a * b);
        }
        self.scatter(&b.stats, head, 3, rows_out);
        self.gather(self.v, (s, head), (tk, dv), None, &mut b.v);
        self.gather(dy, (s, head), (tq, dv), None, &mut b.dy);
        // dv = (P·δ)ᵀ·dO.
        let delta = self.dropout_mask(s, head, &mut b.delta).then_some(&b.delta[..]);
        Self::dropped(&b.p, delta, &mut b.g);
        product((tk, tq, dv), (&b.g, 1, tk), (&b.dy, dv, 1), &mut b.out);
        self.scatter(&b.out, head, dv, dv_out);
        // G = P·(δ·dP - D) with dP = dO·vᵀ, the dropout mask applied to dP as to the weights.
        product((tq, dv, tk), (&b.dy, dv, 1), (&b.v, 1, dv), &mut b.dp);
        Self::dropped(&b.dp, delta, &mut b.g);
        for ((g, p), stats) in
            b.g.chunks_exact_mut(tk)
                .zip(b.p.chunks_exact(tk))
                .zip(b.stats.chunks_exact(3))
        {
            for (g, &p) in g.iter_mut().zip(p) {
                *g = p * (*g - stats[2]);
            }
        }
        product((tq, tk, d), (&b.g, tk, 1), (&b.k, d, 1), &mut b.out);
        for o in &mut b.out[..tq * d] {
            *o = *o * self.scale;
        }
        self.scatter(&b.out, head, d, dq_out);
        product((tk, tq, d), (&b.g, 1, tk), (&b.qs, d, 1), &mut b.out);
        self.scatter(&b.out, head, d, dk_out);
    }
}
