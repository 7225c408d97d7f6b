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
            Loss::Custom(c) => c.name.clone(),
        }
    }

    /// The loss's family.
    pub fn kind(&self) -> LossKind {
        match self {
            Loss::BinaryCrossentropy | Loss::WeightedBinaryCrossentropy(_) => LossKind::Binary,
            Loss::CategoricalCrossentropy => LossKind::Categorical,
            Loss::SparseCategoricalCrossentropy => LossKind::Sparse,
            Loss::FromLogits(inner) => inner.kind(),
            Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Custom(_) => LossKind::Other,
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
                let as_if = match **inner {
                    Loss::BinaryCrossentropy => Activation::Sigmoid,
                    _ => Activation::Softmax,
                };
                return inner.build(g, logits, as_if, y, weights);
            }
            Loss::Custom(c) => (c.f)(g, y, out.output)?,
        };
        let per_element = match weights {
            Some(w) => weighted(g, per_element, w, &self.name())?,
            None => per_element,
        };
        Ok(g.mean_all(per_element)?)
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
