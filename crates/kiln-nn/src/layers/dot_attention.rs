//! `Attention`, Keras' dot-product (Luong-style) attention layer (keras/src/layers/attention/
//! attention.py): `softmax(q · kᵀ) · v` with no projections, the attention of a seq2seq decoder
//! over its encoder's steps. It runs on MultiHeadAttention's fused kernel with one head and scale 1.

use kiln_graph::{ElementwiseOp, Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::attention::attend;
use super::{plain, spread_mask, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Error, Init, Result};

/// Keras' `Attention(use_scale=False, score_mode="dot", dropout=0.0)` applied to `[query, value]`
/// or `[query, value, key]` (the key defaults to the value): each query step's output is the
/// values averaged with the softmax of its dot products with the keys, `[tq, dv]`. With
/// `use_scale` the scores are multiplied by a learned scalar `scale` (starting at 1); `causal` is
/// Keras' `use_causal_mask=True` (step `i` attends to steps `j ≤ i`); `dropout` drops attention
/// weights while training.
///
/// Masks as Keras: the value's mask (padding from `Embedding(mask_zero)`) keeps padded keys out
/// of every softmax, and the query's mask zeroes the outputs of padded query steps and passes on.
/// A query step with no key left to attend to gets zeros, where Keras' softmax over equally
/// penalised scores averages every value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Attention {
    use_scale: bool,
    causal: bool,
    dropout: f32,
    seed: u32,
}

impl Attention {
    /// Plain dot-product attention.
    pub fn new() -> Self {
        Attention::default()
    }

    /// Learns a scalar that multiplies the scores (Keras' `use_scale`).
    pub fn use_scale(mut self, on: bool) -> Self {
        self.use_scale = on;
        self
    }

    /// Query step `i` attends to key steps `j ≤ i` only (Keras' `use_causal_mask`).
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    /// Drops a fraction `rate` of the attention weights while training.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Seed of the dropout masks.
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }
}

impl Layer for Attention {
    fn kind(&self) -> &'static str {
        "attention"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Attention(self.clone())
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let fail = |why: String| Err(Error::invalid("Attention", why));
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        let (query, value) = match inputs {
            [q, v] | [q, v, _] => (q, v),
            _ => {
                return fail(format!(
                    "takes [query, value] or [query, value, key], got {} inputs",
                    inputs.len()
                ))
            }
        };
        let key = inputs.get(2).unwrap_or(value);
        if [query, value, key].iter().any(|s| s.len() != 2 || s.contains(&0)) {
            return fail(format!(
                "expects sequences [steps, features]: query {query:?}, value {value:?}, key {key:?}"
            ));
        }
        if query[1] != key[1] || key[0] != value[0] {
            return fail(format!(
                "the query's features ({}) must match the key's ({}), and the key's steps ({}) the value's ({})",
                query[1], key[1], key[0], value[0]
            ));
        }
        Ok(vec![query[0], value[1]])
    }

    fn params(&self, _inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        if self.use_scale {
            // Keras' scalar weight, as [1].
            vec![ParamDecl::weight("scale", vec![1], Init::Ones, (1, 1))]
        } else {
            Vec::new()
        }
    }

    fn output_mask(&self, _g: &mut Graph, _xs: &[NodeId], masks: &[Option<NodeId>]) -> Result<Option<NodeId>> {
        Ok(masks.first().copied().flatten())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut> {
        self.build_masked(g, xs, &[], params, training)
    }

    fn build_masked(
        &self,
        g: &mut Graph,
        xs: &[NodeId],
        masks: &[Option<NodeId>],
        params: &[NodeId],
        training: bool,
    ) -> Result<LayerOut> {
        let (query, value) = (xs[0], xs[1]);
        let key = xs.get(2).copied().unwrap_or(value);
        let (q, k, v) = (g.shape(query)?.clone(), g.shape(key)?.clone(), g.shape(value)?.clone());
        let (n, tq, d) = (q.dims()[0], q.dims()[1], q.dims()[2]);
        let (tk, dv) = (k.dims()[1], v.dims()[2]);
        // One head: [n, steps, 1, features], as the fused op reads heads.
        let mut q4 = g.reshape(query, [n, tq, 1, d])?;
        if let Some(&scale) = params.first() {
            q4 = g.push(ElementwiseOp::ScaleByScalar, &[q4, scale])?;
        }
        let k4 = g.reshape(key, [n, tk, 1, d])?;
        let v4 = g.reshape(value, [n, tk, 1, dv])?;
        let at = |i: usize| masks.get(i).copied().flatten();
        let keep = match at(1) {
            Some(m) => Some(g.push(ReduceOp::Broadcast { axis: 1, size: tq }, &[m])?),
            None => None,
        };
        let rate = if training { self.dropout } else { 0.0 };
        let attended = attend(g, [q4, k4, v4], keep, (1.0, self.causal), (rate, self.seed))?;
        let mut out = g.reshape(attended, [n, tq, dv])?;
        if let Some(m) = at(0) {
            let spread = spread_mask(g, m, dv)?;
            out = g.mul(out, spread)?;
        }
        Ok(plain(out))
    }
}
