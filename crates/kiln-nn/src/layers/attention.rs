//! `MultiHeadAttention`, as Keras 3's layer (keras/src/layers/attention/multi_head_attention.py):
//! scaled dot-product attention over `num_heads` learned projections of the query, key and value,
//! joined by an output projection.
//!
//! Each projection is one product over every position, its `[n, steps, heads, d]` result read
//! as it lies by the fused attention op (`kiln_graph::AttentionOp`: scores, masks, the stable
//! softmax, dropout and the weighted values of every head in one step, four backward), whose
//! `[n, tq, heads, dv]` output is the output projection's rows. Measured against the same block
//! built from batched products, softmax and axis swaps: docs/sequence-models.md.

use kiln_graph::{Attend, AttentionOp, Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::dropout::{graph_seed, DROPOUT_SALT};
use super::{checked_product, plain, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::feeds::Feed;
use crate::{Error, Init, Result};

/// Attention of each query position over the key/value positions, in `num_heads` heads:
/// `softmax(q·kᵀ / √key_dim)·v` per head, with `q`, `k`, `v` the inputs' projections (kernels
/// `[features, heads, key_dim]` and biases `[heads, key_dim]`, as Keras lays them out), the heads'
/// outputs then projected back to the query's features (or `output_dim`).
///
/// Called on `[query, value]` (self-attention: the same tensor twice) or `[query, value, key]`.
/// `causal(true)` lets position `i` attend only to positions `≤ i` (Keras' `use_causal_mask`,
/// given to the layer here since a Kiln graph is fixed when it compiles). `dropout` drops
/// attention weights while training. Weights, in Keras' order and names: `query/kernel`,
/// `query/bias`, `key/kernel`, `key/bias`, `value/kernel`, `value/bias`,
/// `attention_output/kernel`, `attention_output/bias`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MultiHeadAttention {
    num_heads: usize,
    key_dim: usize,
    value_dim: Option<usize>,
    dropout: f32,
    use_bias: bool,
    output_dim: Option<usize>,
    causal: bool,
    kernel_initializer: Init,
    bias_initializer: Init,
    seed: u32,
}

impl MultiHeadAttention {
    /// `num_heads` heads of `key_dim` (Keras' required arguments); the value size is `key_dim`.
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim: None,
            dropout: 0.0,
            use_bias: true,
            output_dim: None,
            causal: false,
            kernel_initializer: Init::GlorotUniform,
            bias_initializer: Init::Zeros,
            seed: 0,
        }
    }

    /// The size of each head's value projection (Keras' `value_dim`; `key_dim` by default).
    pub fn value_dim(mut self, dim: usize) -> Self {
        self.value_dim = Some(dim);
        self
    }

    /// The fraction of attention weights dropped while training.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Drops the projections' biases.
    pub fn without_bias(mut self) -> Self {
        self.use_bias = false;
        self
    }

    /// Features of the output (Keras' `output_shape`; the query's by default).
    pub fn output_dim(mut self, dim: usize) -> Self {
        self.output_dim = Some(dim);
        self
    }

    /// Whether each position attends only to itself and earlier ones (Keras' `use_causal_mask`).
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    /// How the projection kernels start (glorot_uniform).
    pub fn kernel_initializer(mut self, init: Init) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// How the biases start (zeros).
    pub fn bias_initializer(mut self, init: Init) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Seed of the dropout masks.
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }

    fn value_size(&self) -> usize {
        self.value_dim.unwrap_or(self.key_dim)
    }

    /// `(query, value, key)` sample shapes `[steps, features]`, checked.
    fn operands<'a>(&self, inputs: &'a [Vec<usize>]) -> Result<[&'a [usize]; 3]> {
        let fail = |why: String| Err(Error::invalid("MultiHeadAttention", why));
        let (query, value, key) = match inputs {
            [q, v] => (q, v, v),
            [q, v, k] => (q, v, k),
            _ => {
                return fail(format!(
                    "takes [query, value] or [query, value, key], got {} inputs",
                    inputs.len()
                ))
            }
        };
        for (what, s) in [("query", query), ("value", value), ("key", key)] {
            if s.len() != 2 || s.contains(&0) {
                return fail(format!("expects a {what} of [steps, features], got {s:?}"));
            }
        }
        if key[0] != value[0] {
            return fail(format!(
                "key and value need as many steps (key {key:?}, value {value:?})"
            ));
        }
        if self.causal && query[0] != value[0] {
            return fail(format!(
                "a causal mask needs as many query steps as value steps (query {query:?}, value {value:?})"
            ));
        }
        if self.num_heads == 0 || self.key_dim == 0 || self.value_size() == 0 || self.output_dim == Some(0) {
            return fail("num_heads, key_dim, value_dim and output_dim must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        let widest = query[1].max(key[1]).max(value[1]).max(self.output_dim.unwrap_or(1));
        checked_product(
            "MultiHeadAttention",
            &[widest, self.num_heads, self.key_dim.max(self.value_size())],
        )?;
        checked_product("MultiHeadAttention", &[self.num_heads, query[0], key[0]])?;
        Ok([query, value, key])
    }

    /// `x [n, steps, features]` projected by `kernel [features, heads, dim]` (plus `bias`):
    /// `[n, steps, heads, dim]`, where the attention op reads each head.
    fn heads(&self, g: &mut Graph, x: NodeId, kernel: NodeId, bias: Option<NodeId>, dim: usize) -> Result<NodeId> {
        let &[n, steps, features] = g.shape(x)?.dims() else {
            return Err(Error::invalid("MultiHeadAttention", "expects batches of sequences"));
        };
        let h = self.num_heads;
        let rows = g.reshape(x, [n * steps, features])?;
        let kernel = g.reshape(kernel, [features, h * dim])?;
        let mut y = g.matmul(rows, kernel, false, false)?;
        if let Some(b) = bias {
            let b = g.reshape(b, [h * dim])?;
            y = g.bias_add(y, b)?;
        }
        Ok(g.reshape(y, [n, steps, h, dim])?)
    }
}

/// The fused attention op over `q`, `k`, `v` (`[n, steps, heads, d]`) with the padding mask `keep`
/// if any, the query `scale` and causal mask, and dropout `rate` (seeded by the layer's `seed`
/// and the graph's other random ops): `[n, tq, heads, dv]`.
pub(super) fn attend(
    g: &mut Graph,
    [q, k, v]: [NodeId; 3],
    keep: Option<NodeId>,
    (scale, causal): (f32, bool),
    (rate, seed): (f32, u32),
) -> Result<NodeId> {
    let settings = Attend {
        scale,
        causal,
        masked: keep.is_some(),
        rate,
        seed: if rate > 0.0 {
            graph_seed(g, seed, DROPOUT_SALT)
        } else {
            0
        },
    };
    let mut operands = vec![q, k, v];
    operands.extend(keep);
    if rate > 0.0 {
        operands.push(Feed::draw(g));
    }
    Ok(g.push(AttentionOp::Attention(settings), &operands)?)
}

impl MultiHeadAttention {
    /// The padding mask `[n, tq, tk]` (1 where the query step and the key step are both real)
    /// from the query's, key's and value's masks `[n, steps]`, or none when none has one.
    fn padding_mask(
        &self,
        g: &mut Graph,
        query: Option<NodeId>,
        key: Option<NodeId>,
        value: Option<NodeId>,
        (tq, tk): (usize, usize),
    ) -> Result<Option<NodeId>> {
        let mut keep = match query {
            Some(m) => Some(g.push(ReduceOp::Broadcast { axis: 2, size: tk }, &[m])?),
            None => None,
        };
        for m in [key, value].into_iter().flatten() {
            let columns = g.push(ReduceOp::Broadcast { axis: 1, size: tq }, &[m])?;
            keep = Some(match keep {
                None => columns,
                Some(prev) => g.mul(prev, columns)?,
            });
        }
        Ok(keep)
    }
}

impl Layer for MultiHeadAttention {
    fn kind(&self) -> &'static str {
        "multi_head_attention"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::MultiHeadAttention(self.clone())
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let [query, ..] = self.operands(inputs)?;
        Ok(vec![query[0], self.output_dim.unwrap_or(query[1])])
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let Ok([query, value, key]) = self.operands(inputs) else {
            return Vec::new();
        };
        let (h, kd, vd) = (self.num_heads, self.key_dim, self.value_size());
        let out = self.output_dim.unwrap_or(query[1]);
        // Keras' fans of an einsum kernel `[.., in, out]` count the leading axes as a receptive
        // field (initializers.compute_fans): `[d, heads, dim]` has fans (heads·d, dim·d).
        let kernel = |name, d: usize, dim: usize| {
            ParamDecl::weight(name, vec![d, h, dim], self.kernel_initializer, (h * d, dim * d))
        };
        let bias = |name, shape: Vec<usize>| ParamDecl::weight(name, shape, self.bias_initializer, (0, 0));
        let mut p = vec![kernel("query/kernel", query[1], kd)];
        if self.use_bias {
            p.push(bias("query/bias", vec![h, kd]));
        }
        p.push(kernel("key/kernel", key[1], kd));
        if self.use_bias {
            p.push(bias("key/bias", vec![h, kd]));
        }
        p.push(kernel("value/kernel", value[1], vd));
        if self.use_bias {
            p.push(bias("value/bias", vec![h, vd]));
        }
        p.push(ParamDecl::weight(
            "attention_output/kernel",
            vec![h, vd, out],
            self.kernel_initializer,
            (vd * h, out * h),
        ));
        if self.use_bias {
            p.push(bias("attention_output/bias", vec![out]));
        }
        p
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut> {
        self.build_masked(g, xs, &[], params, training)
    }

    /// The query's mask (Keras' `compute_mask` of the layer).
    fn output_mask(&self, _g: &mut Graph, _xs: &[NodeId], masks: &[Option<NodeId>]) -> Result<Option<NodeId>> {
        Ok(masks.first().copied().flatten())
    }

    /// Masks of the query, value and key become the attention mask of Keras'
    /// `_compute_attention_mask`: query step `i` attends to key step `j` only where both are real
    /// (and `j ≤ i` when causal). Keras adds -1e9 (`_large_negative_number` for float32 in
    /// keras/src/layers/activations/softmax.py) to the masked scores and multiplies the softmax by
    /// the mask: the attention op gives masked keys weight 0, and a step with nothing to attend
    /// to (a padded query) all-zero weights.
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
        let mut params = params.iter().copied();
        let mut next = |with: bool| if with { params.next() } else { None };
        let b = self.use_bias;
        let (wq, bq) = (next(true).expect("query kernel"), next(b));
        let (wk, bk) = (next(true).expect("key kernel"), next(b));
        let (wv, bv) = (next(true).expect("value kernel"), next(b));
        let (wo, bo) = (next(true).expect("output kernel"), next(b));
        let (h, kd, vd) = (self.num_heads, self.key_dim, self.value_size());
        let &[n, tq, _] = g.shape(query)?.dims() else {
            return Err(Error::invalid("MultiHeadAttention", "expects batches of sequences"));
        };
        let tk = g.shape(key)?.dims()[1];

        let q = self.heads(g, query, wq, bq, kd)?;
        let k = self.heads(g, key, wk, bk, kd)?;
        let v = self.heads(g, value, wv, bv, vd)?;
        let at = |i: usize| masks.get(i).copied().flatten();
        let keep = self.padding_mask(g, at(0), at(2), at(1), (tq, tk))?;
        let rate = if training { self.dropout } else { 0.0 };
        // Keras scales the query before the product.
        let scale = 1.0 / (kd as f32).sqrt();
        let heads = attend(g, [q, k, v], keep, (scale, self.causal), (rate, self.seed))?;
        // [n, tq, heads, vd] is [n·tq, heads·vd]: the output projection's rows.
        let heads = g.reshape(heads, [n * tq, h * vd])?;
        let out_dim = g.shape(wo)?.dims()[2];
        let wo = g.reshape(wo, [h * vd, out_dim])?;
        let mut y = g.matmul(heads, wo, false, false)?;
        if let Some(bo) = bo {
            y = g.bias_add(y, bo)?;
        }
        Ok(plain(g.reshape(y, [n, tq, out_dim])?))
    }
}
