//! Scaled dot-product attention in one step, and its backward pass in one.
//!
//! Keras' `MultiHeadAttention._compute_attention` (keras/src/layers/attention/multi_head_attention.py)
//! is `softmax(mask(q·scale · kᵀ))`, weights dropped, times `v`, per (sample, head). Built from the
//! general ops that is a dozen steps per layer and as many again backward: head transposes, two
//! batched products, the mask arithmetic, the softmax, the dropout. The fused op reads the
//! projections where the projection matmuls leave them (`[n, steps, heads, d]`) and writes the
//! heads where the output projection reads them (`[n, tq, heads, dv]`), so no transpose runs.
//!
//! With `s_ij = Σ_c (q_ic·scale)·k_jc` (Keras scales the query before the product), `a_ij` whether
//! query `i` may attend to key `j` (`j ≤ i` when causal; `keep_ij = 1` when masked), `m_i` the
//! row's largest allowed score and `l_i = Σ_{j allowed} exp(s_ij - m_i)`:
//! `P_ij = a_ij·exp(s_ij - m_i) / l_i` (a row with nothing allowed is all zero: Keras adds -1e9 to
//! the masked scores and multiplies the softmax by the mask, which gives the same weights in f32),
//! `W_ij = P_ij·δ_ij` with `δ_ij` dropout's `1/(1-rate)` or 0, and `O_i = Σ_j W_ij·v_j`.
//!
//! Backward (flash attention's recomputation): with `D_i = dO_i·O_i = Σ_j P_ij·δ_ij·dP_ij`,
//! `dP_ij = dO_i·v_j` and `G_ij = P_ij·(δ_ij·dP_ij - D_i)` (the softmax's gradient):
//! `dq_i = scale·Σ_j G_ij·k_j`, `dk_j = Σ_i G_ij·(q_i·scale)`, `dv_j = Σ_i W_ij·dO_i`. The
//! scores are recomputed from `q` and `k`: no `[n, heads, tq, tk]` tensor is ever stored, so
//! memory grows with the sequence, not with its square. The three gradients come out of one
//! step packed per sample (see [`AttentionOp::AttentionGrad`]) and are sliced apart.

use super::check::{not_differentiable, SECOND_ORDER};
use super::{op_names, Backward, Family};
use crate::error::shapes_list;
use crate::{Error, Graph, NodeId, Result, Shape};

/// What every attention op of one layer shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attend {
    /// The query's scale, `1/√key_dim` in Keras.
    pub scale: f32,
    /// Query `i` attends to keys `j ≤ i` only.
    pub causal: bool,
    /// A `keep [n, tq, tk]` operand follows `v`: 1 where query `i` may attend to key `j`.
    pub masked: bool,
    /// The fraction of weights dropped (training only); above 0 a `draw [3]` operand (step, first
    /// sample, samples) follows, and the mask is [`super::ElementwiseOp::Dropout`]'s over the
    /// weights as a `[n, heads, tq, tk]` tensor.
    pub rate: f32,
    /// The dropout hash's seed.
    pub seed: u32,
}

/// `(n, tq, tk, heads, d, dv)`: samples, query and key steps, heads, and the key and value widths.
pub type AttentionDims = (usize, usize, usize, usize, usize, usize);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttentionOp {
    /// Operands `q [n, tq, heads, d]`, `k [n, tk, heads, d]`, `v [n, tk, heads, dv]`, then `keep`
    /// and `draw` as [`Attend`] says; output `O [n, tq, heads, dv]`.
    Attention(Attend),
    /// Operands those of `Attention`, then its output `O` and the gradient `dO`; output
    /// `[n, width]` with, per sample ([`AttentionOp::grad_parts`]): `dq [tq, heads, d]`,
    /// `dk [tk, heads, d]`, `dv [tk, heads, dv]`, then each query row's `(m_i, l_i, D_i)`
    /// `[tq, heads, 3]` (the statistics the GPU kernel's second phase reads back).
    AttentionGrad(Attend),
}

op_names!(AttentionOp {
    Attention => "attention",
    AttentionGrad => "attention_grad",
});

impl AttentionOp {
    /// The layer's settings.
    pub fn attend(&self) -> Attend {
        match *self {
            AttentionOp::Attention(a) | AttentionOp::AttentionGrad(a) => a,
        }
    }

    /// Operands before the op's own: `q, k, v`, then `keep` and `draw` where present.
    pub fn context_len(&self) -> usize {
        let a = self.attend();
        3 + usize::from(a.masked) + usize::from(a.rate > 0.0)
    }

    /// Where `keep` and `draw` sit among the operands.
    pub fn keep_at(&self) -> Option<usize> {
        self.attend().masked.then_some(3)
    }

    pub fn draw_at(&self) -> Option<usize> {
        let a = self.attend();
        (a.rate > 0.0).then_some(3 + usize::from(a.masked))
    }

    /// Values per sample of the gradient's four parts: `dq`, `dk`, `dv` and the rows'
    /// statistics, in that order.
    pub fn grad_parts((_, tq, tk, h, d, dv): AttentionDims) -> [usize; 4] {
        [tq * h * d, tk * h * d, tk * h * dv, tq * h * 3]
    }

    /// The sizes, from the operand shapes, checked.
    pub fn dims(&self, s: &[&Shape]) -> Result<AttentionDims> {
        let name = self.name();
        let fail = || {
            Err(Error::shape(
                name,
                shapes_list(s),
                "q [n, tq, heads, d], k [n, tk, heads, d], v [n, tk, heads, dv], keep [n, tq, tk], draw [3]",
            ))
        };
        let (&[n, tq, h, d], &[kn, tk, kh, kd], &[vn, vk, vh, dv]) = (s[0].dims(), s[1].dims(), s[2].dims()) else {
            return fail();
        };
        let sizes_ok = [n, tq, tk, h, d, dv].iter().all(|&x| x > 0);
        if !sizes_ok || (kn, kh, kd) != (n, h, d) || (vn, vk, vh) != (n, tk, h) {
            return fail();
        }
        if self.keep_at().is_some_and(|k| s[k].dims() != [n, tq, tk]) {
            return fail();
        }
        if self.draw_at().is_some_and(|k| s[k].numel() != 3) {
            return fail();
        }
        let a = self.attend();
        if a.causal && tq != tk {
            return Err(Error::shape(
                name,
                shapes_list(s),
                "as many query steps as key steps (causal)",
            ));
        }
        if !(0.0..1.0).contains(&a.rate) || !a.scale.is_finite() {
            return Err(Error::invalid(
                name,
                format!("rate {} must be in [0, 1) and scale {} finite", a.rate, a.scale),
            ));
        }
        // Element indices (the dropout hash's among them) are u32 on the GPU.
        let per_sample: usize = Self::grad_parts((n, tq, tk, h, d, dv)).iter().sum();
        let largest = [n * h * tq * tk, n * per_sample];
        if largest.iter().any(|&x| x > u32::MAX as usize) {
            return Err(Error::invalid(name, "more than 2³² elements"));
        }
        Ok((n, tq, tk, h, d, dv))
    }
}

impl Family for AttentionOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            AttentionOp::Attention(_) => self.context_len(),
            AttentionOp::AttentionGrad(_) => self.context_len() + 2,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let dims = self.dims(s)?;
        let (n, tq, _, h, _, dv) = dims;
        match self {
            AttentionOp::Attention(_) => Ok(Some(Shape::new([n, tq, h, dv]))),
            AttentionOp::AttentionGrad(_) => {
                let output = Shape::new([n, tq, h, dv]);
                let extra = &s[self.context_len()..];
                if extra.iter().any(|got| **got != output) {
                    return Err(Error::shape(
                        self.name(),
                        shapes_list(extra),
                        format!("the output and its gradient, {output} each"),
                    ));
                }
                Ok(Some(Shape::new([n, Self::grad_parts(dims).iter().sum()])))
            }
        }
    }

    /// `q`, `k` and `v` get gradients; the mask and the draw are not differentiable inputs.
    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let AttentionOp::Attention(a) = *self else {
            return Err(not_differentiable(self.name(), SECOND_ORDER));
        };
        let context = &at.x[..self.context_len()];
        let dims = self.dims(&context.iter().map(|&x| g.shape(x)).collect::<Result<Vec<_>>>()?)?;
        let (n, tq, tk, h, d, dv) = dims;
        let packed = g.push(AttentionOp::AttentionGrad(a), &[context, &[at.y, at.dy]].concat())?;
        let [q_len, k_len, v_len, _] = Self::grad_parts(dims);
        let dq = g.slice(packed, 1, 0, q_len)?;
        let dq = g.reshape(dq, [n, tq, h, d])?;
        let dk = g.slice(packed, 1, q_len, k_len)?;
        let dk = g.reshape(dk, [n, tk, h, d])?;
        let d_value = g.slice(packed, 1, q_len + k_len, v_len)?;
        let d_value = g.reshape(d_value, [n, tk, h, dv])?;
        let mut grads = vec![Some(dq), Some(dk), Some(d_value)];
        grads.resize(context.len(), None);
        Ok(grads)
    }
}
