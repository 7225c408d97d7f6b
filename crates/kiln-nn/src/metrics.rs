//! Metrics, accumulated on the device over an epoch and read once at its end.

use kiln_graph::{Graph, NodeId, Op, Result};

use crate::layers::LayerOut;
use crate::loss::LossKind;
use crate::{Activation, Loss};

/// A metric, as named to `compile`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Keras' `"accuracy"`, resolved from the loss and output shape: binary accuracy (threshold
    /// 0.5) for binary_crossentropy, categorical for categorical_crossentropy, sparse categorical for
    /// sparse_categorical_crossentropy. For other losses (regression, user-composed) it follows the
    /// output layer: binary after a sigmoid, categorical after a softmax, otherwise binary on one unit
    /// and categorical on several. (Keras looks only at the width there, which scores multi-label
    /// sigmoid outputs with categorical accuracy.)
    Accuracy,
    /// Fraction of outputs on the right side of `threshold`.
    BinaryAccuracy { threshold: f32 },
    /// argmax(prediction) == argmax(one-hot label).
    CategoricalAccuracy,
    /// argmax(prediction) == integer label.
    SparseCategoricalAccuracy,
    /// Mean |prediction - target|.
    MeanAbsoluteError,
    /// Mean (prediction - target)².
    MeanSquaredError,
}

impl Metric {
    /// The name reported in the history (`accuracy`, `mae`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy { .. } => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
        }
    }

    /// `Accuracy` resolved to a concrete accuracy for this loss and output width.
    pub fn resolve(&self, loss: &Loss, activation: Activation, units: usize) -> Metric {
        match self {
            Metric::Accuracy => match (loss.kind(), activation) {
                (LossKind::Binary, _) => Metric::BinaryAccuracy { threshold: 0.5 },
                (LossKind::Categorical, _) => Metric::CategoricalAccuracy,
                (LossKind::Sparse, _) => Metric::SparseCategoricalAccuracy,
                (LossKind::Other, Activation::Sigmoid) => Metric::BinaryAccuracy { threshold: 0.5 },
                (LossKind::Other, Activation::Softmax) => Metric::CategoricalAccuracy,
                (LossKind::Other, _) if units == 1 => Metric::BinaryAccuracy { threshold: 0.5 },
                (LossKind::Other, _) => Metric::CategoricalAccuracy,
            },
            other => *other,
        }
    }

    /// Adds the per-element values whose mean is the metric; returns them with how many values
    /// each sample contributes. Argmax runs on the logits of a softmax layer (same argmax, no
    /// softmax needed while training).
    pub fn values(&self, g: &mut Graph, out: LayerOut, activation: Activation, y: NodeId) -> Result<(NodeId, usize)> {
        let per_sample = |g: &Graph, v: NodeId| -> Result<usize> { Ok(g.shape(v)?.dims()[1..].iter().product()) };
        let scores = if activation == Activation::Softmax {
            out.pre_activation
        } else {
            out.output
        };
        let v = match self {
            Metric::Accuracy => unreachable!("resolve `Accuracy` before building"),
            Metric::BinaryAccuracy { threshold } => {
                let predicted = g.unary(Op::Greater { threshold: *threshold }, out.output)?;
                g.binary(Op::Equal, predicted, y)?
            }
            Metric::CategoricalAccuracy => {
                let p = g.unary(Op::ArgMax, scores)?;
                let t = g.unary(Op::ArgMax, y)?;
                g.binary(Op::Equal, p, t)?
            }
            Metric::SparseCategoricalAccuracy => {
                let p = g.unary(Op::ArgMax, scores)?;
                g.binary(Op::Equal, p, y)?
            }
            Metric::MeanAbsoluteError => g.binary(Op::AbsoluteError, out.output, y)?,
            Metric::MeanSquaredError => g.binary(Op::SquaredError, out.output, y)?,
        };
        Ok((v, per_sample(g, v)?))
    }
}
