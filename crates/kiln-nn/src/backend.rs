//! Keras-backend-style helpers for user-composed losses and metrics (`K.binary_crossentropy`,
//! `K.mean`, ...), written over graph ops so autodiff differentiates them. The module mirrors
//! `keras.backend`, which user programs import as `K` (`use kiln::nn::backend as k`); it has nothing
//! to do with the devices, which implement kiln-graph's `Backend` trait.

use kiln_graph::{Graph, NodeId, Result};

/// Keras' fuzz factor (`keras.backend.epsilon()`): probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a logarithm.
pub const EPSILON: f32 = 1e-7;

/// Elementwise binary cross-entropy of probabilities `output` against `target`, clipped as Keras
/// clips: `-(t·log p + (1 - t)·log(1 - p))` with `p` in `[1e-7, 1 - 1e-7]`.
pub fn binary_crossentropy(g: &mut Graph, target: NodeId, output: NodeId) -> Result<NodeId> {
    let p = g.clip(output, EPSILON, 1.0 - EPSILON)?;
    let shape = g.shape(p)?.clone();
    let ones = g.fill(1.0, shape);
    let log_p = g.log(p)?;
    let one_minus_p = g.sub(ones, p)?;
    let log_q = g.log(one_minus_p)?;
    let one_minus_t = g.sub(ones, target)?;
    let a = g.mul(target, log_p)?;
    let b = g.mul(one_minus_t, log_q)?;
    let sum = g.add(a, b)?;
    g.scale(sum, -1.0)
}

/// `x · weights` with one weight per last-axis entry, the same for every sample (`x` is
/// `[batch, k]`).
pub fn weight_columns(g: &mut Graph, x: NodeId, weights: &[f32]) -> Result<NodeId> {
    let rows = g.shape(x)?.dims()[0];
    let w = g.constant(weights, [weights.len()])?;
    let w = g.broadcast_rows(w, rows)?;
    g.mul(x, w)
}

/// Mean of every element (`K.mean` without an axis).
pub fn mean(g: &mut Graph, x: NodeId) -> Result<NodeId> {
    g.mean_all(x)
}
