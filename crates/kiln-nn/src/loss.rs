//! Losses. Cross-entropies run from logits inside the graph (log-softmax / log-sigmoid), with the
//! one closed-form backward `p - y`, whenever the model ends in the matching activation; otherwise
//! they run on probabilities clipped to [1e-7, 1 - 1e-7] as Keras does.

use std::fmt;
use std::sync::Arc;

use kiln_graph::{Graph, LossOp, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use crate::layers::LayerOut;
use crate::Activation;
use crate::{Error, Result};

pub use crate::backend::EPSILON;

mod formulas;

/// The signature of a user-composed loss: `(graph, y_true, y_pred) -> loss` (any shape; its mean
/// is the batch loss).
pub type LossFn = dyn Fn(&mut Graph, NodeId, NodeId) -> kiln_graph::Result<NodeId> + Send + Sync;

/// A loss built from graph ops by the user; autodiff differentiates it like any other.
#[derive(Clone)]
pub struct CustomLoss {
    name: String,
    f: Arc<LossFn>,
}

crate::by_name::saved_by_name!(CustomLoss, "loss");

impl fmt::Debug for CustomLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomLoss({})", self.name)
    }
}

/// A training loss, as Keras names them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Loss {
    /// Independent sigmoid outputs against targets in [0, 1] (binary or multi-label).
    BinaryCrossentropy,
    /// Softmax output against one-hot (or probability) rows.
    CategoricalCrossentropy,
    /// Softmax output against integer class labels.
    SparseCategoricalCrossentropy,
    /// Mean squared error (regression).
    MeanSquaredError,
    /// Mean absolute error (regression).
    MeanAbsoluteError,
    /// A cross-entropy on raw scores (Keras' `from_logits=True`): the output layer is linear and
    /// the loss applies sigmoid or softmax itself. Build it with [`Loss::from_logits`].
    FromLogits(Box<Loss>),
    /// Binary cross-entropy with one weight per output unit (seed 004's class-weighted BCE).
    WeightedBinaryCrossentropy(Vec<f32>),
    /// Keras' `Huber(delta)` (default 1.0; [`Loss::huber`]).
    Huber { delta: f32 },
    /// Keras' `LogCosh`.
    LogCosh,
    /// Keras' `Poisson`: `pred - y·log(pred + ε)`, for counts.
    Poisson,
    /// Keras' `KLDivergence` between label and predicted distributions.
    KLDivergence,
    /// Keras' `CosineSimilarity`: minus the cosine between label and prediction rows.
    CosineSimilarity,
    /// Keras' `Hinge` on ±1 (or 0/1) labels and raw scores.
    Hinge,
    /// Keras' `SquaredHinge`.
    SquaredHinge,
    /// Keras' `BinaryFocalCrossentropy` (defaults α 0.25, γ 2, no class balancing;
    /// [`Loss::binary_focal`]).
    BinaryFocalCrossentropy {
        alpha: f32,
        gamma: f32,
        apply_class_balancing: bool,
    },
    /// Keras' `CategoricalFocalCrossentropy` (defaults α 0.25, γ 2; [`Loss::categorical_focal`]).
    CategoricalFocalCrossentropy { alpha: f32, gamma: f32 },
    /// A binary or categorical cross-entropy (plain, focal or from logits) on smoothed labels, as
    /// Keras' `label_smoothing` ([`Loss::label_smoothing`]).
    LabelSmoothing { loss: Box<Loss>, amount: f32 },
    /// A user-composed loss; see [`Loss::custom`].
    Custom(CustomLoss),
}

/// The family a loss belongs to, which decides label checks and how `accuracy` resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    Binary,
    Categorical,
    Sparse,
    /// Regression and user-composed losses.
    Other,
}

impl Loss {
    /// This cross-entropy applied to raw scores (Keras' `from_logits=True`).
    pub fn from_logits(self) -> Loss {
        Loss::FromLogits(Box::new(self))
    }

    /// This cross-entropy on labels smoothed by `amount` (Keras' `label_smoothing`): binary
    /// targets become `y·(1 - amount) + amount/2`, one-hot rows `y·(1 - amount) + amount/classes`.
    pub fn label_smoothing(self, amount: f32) -> Loss {
        Loss::LabelSmoothing {
            loss: Box::new(self),
            amount,
        }
    }

    /// Keras' `Huber(delta)`.
    pub fn huber(delta: f32) -> Loss {
        Loss::Huber { delta }
    }

    /// Keras' `BinaryFocalCrossentropy()` defaults: α 0.25, γ 2, no class balancing.
    pub fn binary_focal() -> Loss {
        Loss::BinaryFocalCrossentropy {
            alpha: 0.25,
            gamma: 2.0,
            apply_class_balancing: false,
        }
    }

    /// Keras' `CategoricalFocalCrossentropy()` defaults: α 0.25, γ 2.
    pub fn categorical_focal() -> Loss {
        Loss::CategoricalFocalCrossentropy {
            alpha: 0.25,
            gamma: 2.0,
        }
    }

    /// A loss composed from graph ops: `f(graph, y_true, y_pred)` returns the loss values (any
    /// shape); their mean is the batch loss. `y_pred` is the model's output (probabilities after a
    /// sigmoid or softmax), `y_true` the labels, shaped like the output.
    pub fn custom(
        name: &str,
        f: impl Fn(&mut Graph, NodeId, NodeId) -> kiln_graph::Result<NodeId> + Send + Sync + 'static,
    ) -> Loss {
        Loss::Custom(CustomLoss {
            name: name.to_string(),
            f: Arc::new(f),
        })
    }

    /// Keras' name of the loss.
    pub fn name(&self) -> String {
        match self {
            Loss::BinaryCrossentropy => "binary_crossentropy".into(),
            Loss::CategoricalCrossentropy => "categorical_crossentropy".into(),
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy".into(),
            Loss::MeanSquaredError => "mse".into(),
            Loss::MeanAbsoluteError => "mae".into(),
            Loss::FromLogits(inner) => format!("{} (from logits)", inner.name()),
            Loss::WeightedBinaryCrossentropy(_) => "weighted_binary_crossentropy".into(),
            Loss::Huber { .. } => "huber".into(),
            Loss::LogCosh => "log_cosh".into(),
            Loss::Poisson => "poisson".into(),
            Loss::KLDivergence => "kl_divergence".into(),
            Loss::CosineSimilarity => "cosine_similarity".into(),
            Loss::Hinge => "hinge".into(),
            Loss::SquaredHinge => "squared_hinge".into(),
            Loss::BinaryFocalCrossentropy { .. } => "binary_focal_crossentropy".into(),
            Loss::CategoricalFocalCrossentropy { .. } => "categorical_focal_crossentropy".into(),
            Loss::LabelSmoothing { loss, amount } => format!("{} (label smoothing {amount})", loss.name()),
            Loss::Custom(c) => c.name.clone(),
        }
    }

    /// The loss's family.
    pub fn kind(&self) -> LossKind {
        match self {
            Loss::BinaryCrossentropy | Loss::WeightedBinaryCrossentropy(_) | Loss::BinaryFocalCrossentropy { .. } => {
                LossKind::Binary
            }
            Loss::CategoricalCrossentropy | Loss::CategoricalFocalCrossentropy { .. } => LossKind::Categorical,
            Loss::SparseCategoricalCrossentropy => LossKind::Sparse,
            Loss::FromLogits(inner) | Loss::LabelSmoothing { loss: inner, .. } => inner.kind(),
            Loss::MeanSquaredError
            | Loss::MeanAbsoluteError
            | Loss::Huber { .. }
            | Loss::LogCosh
            | Loss::Poisson
            | Loss::KLDivergence
            | Loss::CosineSimilarity
            | Loss::Hinge
            | Loss::SquaredHinge
            | Loss::Custom(_) => LossKind::Other,
        }
    }

    /// Shape of one label sample for a model whose samples come out as `output`.
    pub fn label_shape(&self, output: &[usize]) -> Vec<usize> {
        match self.kind() {
            LossKind::Sparse => output[..output.len().saturating_sub(1)].to_vec(),
            _ => output.to_vec(),
        }
    }

    /// Adds the batch loss (a scalar, the mean over samples) to `g`. `activation` is the output
    /// layer's, which decides between the logits and the probability form. With `weights` (a
    /// `[batch]` input), each sample's loss is multiplied by its weight before the mean over the
    /// batch, as Keras' `sum_over_batch_size` reduction does (`reduce_weighted_values` in
    /// keras/src/losses/loss.py): `Σᵢ wᵢ·lᵢ / N`, so weights of one change nothing, bit for bit.
    pub fn build(
        &self,
        g: &mut Graph,
        out: LayerOut,
        activation: Activation,
        y: NodeId,
        weights: Option<NodeId>,
    ) -> Result<NodeId> {
        self.build_masked(g, out, activation, y, weights, None)
    }

    /// As [`Loss::build`] for an output that carries a mask `[n, steps]` (a per-step output after
    /// `Embedding(mask_zero)`): padded steps weigh nothing and the mean runs over the real ones,
    /// `Σ l·m / (Σ m + ε)`, as Keras' `apply_mask` weights a loss (keras/src/losses/loss.py).
    pub fn build_masked(
        &self,
        g: &mut Graph,
        out: LayerOut,
        activation: Activation,
        y: NodeId,
        weights: Option<NodeId>,
        mask: Option<NodeId>,
    ) -> Result<NodeId> {
        let per_element = self.per_element(g, out, activation, y, weights)?;
        let Some(mask) = mask else {
            return Ok(g.mean_all(per_element)?);
        };
        let (dims, steps) = (g.shape(per_element)?.dims().to_vec(), g.shape(mask)?.dims().to_vec());
        if !dims.starts_with(&steps) {
            return Err(Error::invalid(
                self.name(),
                format!("a mask over {steps:?} does not fit the loss values {dims:?}"),
            ));
        }
        // m · total / (Σm + ε) spread over the values' trailing axes, then the usual mean.
        let total: usize = steps.iter().product();
        let valid = g.sum_all(mask)?;
        let eps = g.fill(EPSILON, g.shape(valid)?.clone());
        let valid = g.add(valid, eps)?;
        let scale = g.unary(kiln_graph::ElementwiseOp::Pow { exponent: -1.0 }, valid)?;
        let scale = g.scale(scale, total as f32)?;
        let scale = g.reshape(scale, [1])?;
        let scale = g.push(ReduceOp::Broadcast { axis: 0, size: total }, &[scale])?;
        let scale = g.reshape(scale, steps.clone())?;
        let mut weight = g.mul(mask, scale)?;
        for (axis, &size) in dims.iter().enumerate().skip(steps.len()) {
            weight = g.push(ReduceOp::Broadcast { axis, size }, &[weight])?;
        }
        let weighted = g.mul(per_element, weight)?;
        Ok(g.mean_all(weighted)?)
    }

    /// The loss of each value (before the mean), with the sample weights applied.
    fn per_element(
        &self,
        g: &mut Graph,
        out: LayerOut,
        activation: Activation,
        y: NodeId,
        weights: Option<NodeId>,
    ) -> Result<NodeId> {
        let per_element = match self {
            Loss::SparseCategoricalCrossentropy => {
                g.binary(LossOp::SoftmaxCrossEntropy { sparse: true }, out.pre_activation, y)?
            }
            Loss::CategoricalCrossentropy => {
                g.binary(LossOp::SoftmaxCrossEntropy { sparse: false }, out.pre_activation, y)?
            }
            Loss::BinaryCrossentropy => binary_crossentropy(g, out, activation, y)?,
            Loss::WeightedBinaryCrossentropy(w) => {
                let bce = binary_crossentropy(g, out, activation, y)?;
                crate::backend::weight_columns(g, bce, w)?
            }
            Loss::MeanSquaredError => g.binary(LossOp::SquaredError, out.output, y)?,
            Loss::MeanAbsoluteError => g.binary(LossOp::AbsoluteError, out.output, y)?,
            Loss::FromLogits(inner) => {
                // The output is linear: it *is* the logits, so the logits form applies directly.
                let logits = LayerOut {
                    pre_activation: out.output,
                    output: out.output,
                };
                let as_if = match inner.kind() {
                    LossKind::Binary => Activation::Sigmoid,
                    LossKind::Categorical | LossKind::Sparse | LossKind::Other => Activation::Softmax,
                };
                return inner.per_element(g, logits, as_if, y, weights);
            }
            Loss::LabelSmoothing { loss, amount } => {
                let categorical = loss.kind() == LossKind::Categorical;
                let smoothed = formulas::smooth(g, y, *amount, categorical)?;
                return loss.per_element(g, out, activation, smoothed, weights);
            }
            Loss::Huber { delta } => formulas::huber(g, y, out.output, *delta)?,
            Loss::LogCosh => formulas::log_cosh(g, y, out.output)?,
            Loss::Poisson => formulas::poisson(g, y, out.output)?,
            Loss::KLDivergence => formulas::kl_divergence(g, y, out.output)?,
            Loss::CosineSimilarity => formulas::cosine_similarity(g, y, out.output)?,
            Loss::Hinge => formulas::hinge(g, y, out.output, false)?,
            Loss::SquaredHinge => formulas::hinge(g, y, out.output, true)?,
            Loss::BinaryFocalCrossentropy {
                alpha,
                gamma,
                apply_class_balancing,
            } => formulas::binary_focal(g, y, out, activation, *alpha, *gamma, *apply_class_balancing)?,
            Loss::CategoricalFocalCrossentropy { alpha, gamma } => {
                formulas::categorical_focal(g, y, out, activation, *alpha, *gamma)?
            }
            Loss::Custom(c) => (c.f)(g, y, out.output)?,
        };
        match weights {
            Some(w) => weighted(g, per_element, w, &self.name()),
            None => Ok(per_element),
        }
    }
}

/// `values · w` with the per-sample weights `w [batch]` broadcast along every axis after the first.
fn weighted(g: &mut Graph, values: NodeId, w: NodeId, loss: &str) -> Result<NodeId> {
    let (dims, batch) = (g.shape(values)?.dims().to_vec(), g.shape(w)?.numel());
    if dims.first() != Some(&batch) {
        return Err(Error::invalid(
            loss,
            format!(
                "sample weights need a loss value per sample, but the loss gives {dims:?} for a batch of {batch}; \
                 return per-sample (or per-element) values from a custom loss"
            ),
        ));
    }
    let mut wb = w;
    for (axis, &size) in dims.iter().enumerate().skip(1) {
        wb = g.push(ReduceOp::Broadcast { axis, size }, &[wb])?;
    }
    Ok(g.mul(values, wb)?)
}

/// Elementwise binary cross-entropy: from the logits when the output is a sigmoid, else on the
/// output probabilities, clipped as Keras clips them.
fn binary_crossentropy(g: &mut Graph, out: LayerOut, activation: Activation, y: NodeId) -> Result<NodeId> {
    if activation == Activation::Sigmoid {
        return Ok(g.binary(LossOp::SigmoidBinaryCrossEntropy, out.pre_activation, y)?);
    }
    Ok(crate::backend::binary_crossentropy(g, y, out.output)?)
}
