//! Keras 3's losses past the cross-entropies and squared/absolute errors, each as graph ops that
//! autodiff differentiates, with the formula of keras/src/losses/losses.py. Each returns per-element
//! (or, for the losses Keras sums over the last axis, per-sample) values; the caller means them.

use kiln_graph::{ActivationOp, ElementwiseOp, Graph, LossOp, NodeId, ReduceOp};

use crate::layers::LayerOut;
use crate::{Activation, Result, EPSILON};

/// `huber`: `½d²` within `delta` of the target, `delta·(|d| - ½delta)` beyond.
pub fn huber(g: &mut Graph, y: NodeId, pred: NodeId, delta: f32) -> Result<NodeId> {
    Ok(g.binary(LossOp::Huber { delta }, pred, y)?)
}

/// `log_cosh`: `log(cosh(pred - y))`.
pub fn log_cosh(g: &mut Graph, y: NodeId, pred: NodeId) -> Result<NodeId> {
    Ok(g.binary(LossOp::LogCosh, pred, y)?)
}

/// `poisson`: `pred - y·log(pred + ε)`.
pub fn poisson(g: &mut Graph, y: NodeId, pred: NodeId) -> Result<NodeId> {
    let eps = g.fill(EPSILON, g.shape(pred)?.clone());
    let shifted = g.add(pred, eps)?;
    let log = g.log(shifted)?;
    let t = g.mul(y, log)?;
    Ok(g.sub(pred, t)?)
}

/// `kl_divergence`: `Σ_last y·log(y / pred)`, both clipped to `[ε, 1]`; per sample.
pub fn kl_divergence(g: &mut Graph, y: NodeId, pred: NodeId) -> Result<NodeId> {
    let y = g.clip(y, EPSILON, 1.0)?;
    let p = g.clip(pred, EPSILON, 1.0)?;
    let ratio = g.div(y, p)?;
    let log = g.log(ratio)?;
    let terms = g.mul(y, log)?;
    sum_last(g, terms)
}

/// `cosine_similarity`: `-Σ_last ŷ·p̂` of the L2-normalised label and prediction rows, per sample;
/// Keras normalises as `x · rsqrt(max(Σx², ε²))` (`keras.ops.normalize`), finite at zero rows.
pub fn cosine_similarity(g: &mut Graph, y: NodeId, pred: NodeId) -> Result<NodeId> {
    let (y, p) = (l2_normalize(g, y)?, l2_normalize(g, pred)?);
    let products = g.mul(y, p)?;
    let similarity = sum_last(g, products)?;
    Ok(g.scale(similarity, -1.0)?)
}

/// Rows of `x` scaled to unit L2 norm along the last axis, as `keras.ops.normalize`.
fn l2_normalize(g: &mut Graph, x: NodeId) -> Result<NodeId> {
    let shape = g.shape(x)?.clone();
    let axis = shape.rank() - 1;
    let squares = g.mul(x, x)?;
    let sum = sum_last(g, squares)?;
    let sum = g.clip(sum, EPSILON * EPSILON, f32::MAX)?;
    let inverse = g.unary(ElementwiseOp::Pow { exponent: -0.5 }, sum)?;
    let inverse = g.push(
        ReduceOp::Broadcast {
            axis,
            size: shape.last(),
        },
        &[inverse],
    )?;
    Ok(g.mul(x, inverse)?)
}

/// `hinge` (and, `squared`, `squared_hinge`): `max(1 - y·pred, 0)` (squared), with 0/1 labels read
/// as -1/1 (Keras' `convert_binary_labels_to_hinge`; here every 0 becomes -1, which differs from
/// Keras only for label sets mixing 0 with values other than ±1).
pub fn hinge(g: &mut Graph, y: NodeId, pred: NodeId, squared: bool) -> Result<NodeId> {
    let shape = g.shape(pred)?.clone();
    let zeros = g.fill(0.0, shape.clone());
    let is_zero = g.binary(ElementwiseOp::Equal, y, zeros)?;
    let signed = g.sub(y, is_zero)?;
    let ones = g.fill(1.0, shape);
    let margin = g.mul(signed, pred)?;
    let slack = g.sub(ones, margin)?;
    let h = g.unary(ActivationOp::Relu, slack)?;
    Ok(if squared { g.mul(h, h)? } else { h })
}

/// `binary_focal_crossentropy`: `(1 - p_t)^γ · bce` with `p_t = y·p + (1-y)(1-p)`, and with class
/// balancing the weight `y·α + (1-y)(1-α)`.
pub fn binary_focal(
    g: &mut Graph,
    y: NodeId,
    out: LayerOut,
    activation: Activation,
    alpha: f32,
    gamma: f32,
    balanced: bool,
) -> Result<NodeId> {
    let p = probabilities(g, out, activation)?;
    let bce = crate::backend::binary_crossentropy(g, y, p)?;
    let shape = g.shape(p)?.clone();
    let ones = g.fill(1.0, shape);
    let not_y = g.sub(ones, y)?;
    let not_p = g.sub(ones, p)?;
    let hit = g.mul(y, p)?;
    let miss = g.mul(not_y, not_p)?;
    let p_t = g.add(hit, miss)?;
    let hard = g.sub(ones, p_t)?;
    let factor = g.unary(ElementwiseOp::Pow { exponent: gamma }, hard)?;
    let focal = g.mul(factor, bce)?;
    if !balanced {
        return Ok(focal);
    }
    let pos = g.scale(y, alpha)?;
    let neg = g.scale(not_y, 1.0 - alpha)?;
    let weight = g.add(pos, neg)?;
    Ok(g.mul(weight, focal)?)
}

/// `categorical_focal_crossentropy`: `Σ_last α·(1 - p)^γ · (-y·log p)`, `p` clipped to `[ε, 1-ε]`;
/// per sample.
pub fn categorical_focal(
    g: &mut Graph,
    y: NodeId,
    out: LayerOut,
    activation: Activation,
    alpha: f32,
    gamma: f32,
) -> Result<NodeId> {
    let p = probabilities(g, out, activation)?;
    let p = g.clip(p, EPSILON, 1.0 - EPSILON)?;
    let log = g.log(p)?;
    let cce = g.mul(y, log)?;
    let cce = g.scale(cce, -alpha)?;
    let ones = g.fill(1.0, g.shape(p)?.clone());
    let not_p = g.sub(ones, p)?;
    let factor = g.unary(ElementwiseOp::Pow { exponent: gamma }, not_p)?;
    let focal = g.mul(factor, cce)?;
    sum_last(g, focal)
}

/// Keras' label smoothing: `y·(1 - a) + a·0.5` for binary targets, `+ a / classes` for
/// categorical rows.
pub fn smooth(g: &mut Graph, y: NodeId, amount: f32, categorical: bool) -> Result<NodeId> {
    let shape = g.shape(y)?.clone();
    let share = if categorical { 1.0 / shape.last() as f32 } else { 0.5 };
    let kept = g.scale(y, 1.0 - amount)?;
    let spread = g.fill(amount * share, shape);
    Ok(g.add(kept, spread)?)
}

/// The output's probabilities: recomputed from the pre-activation when the output ends in sigmoid
/// or softmax (so a from-logits loss, whose "output" is the logits, gets them too).
fn probabilities(g: &mut Graph, out: LayerOut, activation: Activation) -> Result<NodeId> {
    Ok(match activation {
        Activation::Sigmoid => g.unary(ActivationOp::Sigmoid, out.pre_activation)?,
        Activation::Softmax => g.unary(ActivationOp::Softmax, out.pre_activation)?,
        Activation::Linear
        | Activation::Relu
        | Activation::Tanh
        | Activation::Gelu { .. }
        | Activation::LeakyRelu { .. }
        | Activation::Elu { .. }
        | Activation::Selu
        | Activation::Softplus
        | Activation::Silu
        | Activation::HardSigmoid
        | Activation::Relu6 => out.output,
    })
}

/// The sum over the last axis.
fn sum_last(g: &mut Graph, x: NodeId) -> Result<NodeId> {
    let axis = g.shape(x)?.rank() - 1;
    Ok(g.push(ReduceOp::Sum { axis }, &[x])?)
}
