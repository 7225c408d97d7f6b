//! Metrics, accumulated on the device over an epoch and read once at its end.
//!
//! Three kinds: means (accuracies, errors, user metrics: a running sum of per-element values),
//! confusion counts per label (precision, recall, F1: true positives, false positives, false
//! negatives at a threshold) and ROC counts per label (AUC: positives and negatives above each of
//! [`AUC_THRESHOLDS`] thresholds, integrated on the host).

use std::fmt;
use std::sync::Arc;

use kiln_graph::{roc_threshold, ElementwiseOp, Graph, LayoutOp, LossOp, NodeId, ReduceOp, Shape};
use serde::{Deserialize, Serialize};

use crate::layers::LayerOut;
use crate::loss::LossKind;
use crate::{Activation, Loss};
use crate::{Error, Result};

/// Thresholds of the ROC curve behind [`Metric::Auc`]; with this many the trapezoid AUC stays
/// within 1e-3 of the exact rank-based AUC.
pub const AUC_THRESHOLDS: usize = 2000;

/// The signature of a user-defined metric: `(graph, y_true, y_pred) -> values`, whose mean over the
/// epoch is the metric.
pub type MetricFn = dyn Fn(&mut Graph, NodeId, NodeId) -> kiln_graph::Result<NodeId> + Send + Sync;

/// A metric built from graph ops by the user.
#[derive(Clone)]
pub struct CustomMetric {
    name: String,
    f: Arc<MetricFn>,
}

crate::by_name::saved_by_name!(CustomMetric, "metric");

impl fmt::Debug for CustomMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomMetric({})", self.name)
    }
}

/// A metric, as named to `compile`.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// TP / (TP + FP) of outputs above `threshold`, per label and macro-averaged.
    Precision { threshold: f32 },
    /// TP / (TP + FN) of outputs above `threshold`, per label and macro-averaged.
    Recall { threshold: f32 },
    /// Harmonic mean of precision and recall, per label and macro-averaged.
    F1 { threshold: f32 },
    /// Area under the ROC curve, per label and macro-averaged.
    Auc,
    /// Area under the precision-recall curve (Keras' `AUC(curve="PR")`) with Keras' interpolation
    /// between thresholds (Davis & Goadrich; `interpolate_pr_auc` in
    /// keras/src/metrics/confusion_metrics.py), per label and macro-averaged.
    AucPr,
    /// `√(mean (prediction - target)²)` over the epoch (Keras' `RootMeanSquaredError`).
    RootMeanSquaredError,
    /// `100 · mean |(target - prediction) / max(|target|, ε)|` (Keras'
    /// `MeanAbsolutePercentageError`).
    MeanAbsolutePercentageError,
    /// Keras' `R2Score()`: `1 - SS_res / SS_tot` per output over the epoch, averaged over outputs.
    R2Score,
    /// Whether the one-hot label's class is among the `k` highest scores (Keras'
    /// `TopKCategoricalAccuracy`, default k = 5): fewer than `k` classes score strictly higher.
    TopKCategoricalAccuracy { k: usize },
    /// As [`Metric::TopKCategoricalAccuracy`] with integer class labels.
    SparseTopKCategoricalAccuracy { k: usize },
    /// A user-defined metric; see [`Metric::custom`].
    Custom(CustomMetric),
    /// The metric weighted by each sample's weight (Keras' `weighted_metrics`); see
    /// [`Metric::weighted`].
    Weighted(Box<Metric>),
}

/// How a metric's accumulator turns into reported values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accumulates {
    /// A sum of per-element values; the metric is their mean.
    Mean,
    /// `[Σ wᵢ·v̄ᵢ, Σ wᵢ]` over samples `i` with weights `wᵢ` and mean values `v̄ᵢ`; the metric is
    /// their ratio.
    WeightedMean,
    /// `[TP, FP, FN]` per label.
    Confusion { labels: usize },
    /// `[Σ target, Σ target², Σ (target - prediction)²]` per output.
    Moments { outputs: usize },
    /// Positives and negatives above each threshold, per label.
    Roc { labels: usize },
}

impl Metric {
    /// Precision at threshold 0.5.
    pub fn precision() -> Self {
        Metric::Precision { threshold: 0.5 }
    }

    /// Recall at threshold 0.5.
    pub fn recall() -> Self {
        Metric::Recall { threshold: 0.5 }
    }

    /// F1 at threshold 0.5.
    pub fn f1() -> Self {
        Metric::F1 { threshold: 0.5 }
    }

    /// Keras' `TopKCategoricalAccuracy()` (k = 5).
    pub fn top_k() -> Self {
        Metric::TopKCategoricalAccuracy { k: 5 }
    }

    /// Keras' `SparseTopKCategoricalAccuracy()` (k = 5).
    pub fn sparse_top_k() -> Self {
        Metric::SparseTopKCategoricalAccuracy { k: 5 }
    }

    /// This metric weighted by the samples' weights, as Keras' `compile(weighted_metrics=[…])`:
    /// under `fit(sample_weight=…)`, `fit(class_weight=…)` or [`crate::Model::evaluate_weighted`]
    /// each sample counts by its weight (a mean becomes `Σ wᵢ·v̄ᵢ / Σ wᵢ` with `v̄ᵢ` the sample's
    /// mean value, Keras' `reduce_to_samplewise_values` in keras/src/metrics/reduction_metrics.py;
    /// precision, recall and F1 count weighted true and false positives); without weights it equals
    /// the unweighted metric. Reported under the metric's name, or `weighted_<name>` beside the same
    /// unweighted metric (Keras' naming in keras/src/trainers/compile_utils.py). Means, precision,
    /// recall and F1 can be weighted; AUC and R² cannot yet, and `compile` says so.
    pub fn weighted(self) -> Self {
        match self {
            Metric::Weighted(_) => self,
            other => Metric::Weighted(Box::new(other)),
        }
    }

    /// A metric composed from graph ops: `f(graph, y_true, y_pred)` returns per-element values (any
    /// shape with the batch first) whose mean over the epoch is reported under `name`.
    pub fn custom(
        name: &str,
        f: impl Fn(&mut Graph, NodeId, NodeId) -> kiln_graph::Result<NodeId> + Send + Sync + 'static,
    ) -> Self {
        Metric::Custom(CustomMetric {
            name: name.to_string(),
            f: Arc::new(f),
        })
    }

    /// The name reported in the history (`accuracy`, `mae`, ...).
    pub fn name(&self) -> &str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy { .. } => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
            Metric::Precision { .. } => "precision",
            Metric::Recall { .. } => "recall",
            Metric::F1 { .. } => "f1",
            Metric::Auc => "auc",
            Metric::AucPr => "pr_auc",
            Metric::RootMeanSquaredError => "root_mean_squared_error",
            Metric::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Metric::R2Score => "r2_score",
            Metric::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Metric::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            Metric::Custom(c) => &c.name,
            Metric::Weighted(m) => m.name(),
        }
    }

    /// `Accuracy` resolved to a concrete accuracy for this loss, output activation and width.
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
            Metric::Weighted(m) => Metric::Weighted(Box::new(m.resolve(loss, activation, units))),
            other => other.clone(),
        }
    }

    /// What the metric accumulates for an output of `units` units, or an error when it cannot be
    /// computed from these labels.
    pub(crate) fn accumulates(&self, loss: &Loss, units: usize) -> Result<Accumulates> {
        let needs_dense = |name: &str| {
            if loss.kind() == LossKind::Sparse {
                Err(Error::invalid(
                    name,
                    "needs labels shaped like the output (one column per unit); with integer class labels use \
                     categorical_crossentropy and to_categorical",
                ))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            Metric::Precision { .. } | Metric::Recall { .. } | Metric::F1 { .. } => {
                needs_dense(self.name())?;
                Accumulates::Confusion { labels: units }
            }
            Metric::Auc | Metric::AucPr => {
                needs_dense(self.name())?;
                Accumulates::Roc { labels: units }
            }
            Metric::R2Score => {
                needs_dense("r2_score")?;
                Accumulates::Moments { outputs: units }
            }
            Metric::TopKCategoricalAccuracy { k } | Metric::SparseTopKCategoricalAccuracy { k } if *k == 0 => {
                return Err(Error::invalid(self.name(), "k must be at least 1"))
            }
            Metric::TopKCategoricalAccuracy { .. } => {
                needs_dense("top_k_categorical_accuracy")?;
                Accumulates::Mean
            }
            Metric::SparseTopKCategoricalAccuracy { .. } if loss.kind() != LossKind::Sparse => {
                return Err(Error::invalid(
                    "sparse_top_k_categorical_accuracy",
                    "needs integer class labels (a sparse loss); with one-hot labels use top_k_categorical_accuracy",
                ))
            }
            Metric::MeanAbsoluteError
            | Metric::MeanSquaredError
            | Metric::RootMeanSquaredError
            | Metric::MeanAbsolutePercentageError => {
                needs_dense(self.name())?;
                Accumulates::Mean
            }
            Metric::SparseTopKCategoricalAccuracy { .. }
            | Metric::Accuracy
            | Metric::BinaryAccuracy { .. }
            | Metric::CategoricalAccuracy
            | Metric::SparseCategoricalAccuracy
            | Metric::Custom(_) => Accumulates::Mean,
            Metric::Weighted(m) => match m.accumulates(loss, units)? {
                Accumulates::Mean | Accumulates::WeightedMean => Accumulates::WeightedMean,
                confusion @ Accumulates::Confusion { .. } => confusion,
                Accumulates::Moments { .. } | Accumulates::Roc { .. } => {
                    return Err(Error::invalid(
                        m.name(),
                        "cannot be a weighted metric yet (weighted AUC and R² are not built); list it \
                         unweighted",
                    ))
                }
            },
        })
    }

    /// Elements of the accumulator.
    pub(crate) fn accumulator_len(kind: Accumulates) -> usize {
        match kind {
            Accumulates::Mean => 1,
            Accumulates::WeightedMean => 2,
            Accumulates::Confusion { labels } => 3 * labels,
            Accumulates::Moments { outputs } => 3 * outputs,
            Accumulates::Roc { labels } => 2 * labels * AUC_THRESHOLDS,
        }
    }

    /// Adds what the metric accumulates for one batch; returns it with how many values each
    /// sample contributes (for means). Argmax runs on the logits of a softmax layer (same argmax,
    /// no softmax needed while training). `weights` (`[batch]`) are the samples' weights, read by
    /// weighted metrics alone (which weigh every sample 1 without them).
    pub fn values(
        &self,
        g: &mut Graph,
        out: LayerOut,
        activation: Activation,
        y: NodeId,
        weights: Option<NodeId>,
    ) -> Result<(NodeId, usize)> {
        let scores = if activation == Activation::Softmax {
            out.pre_activation
        } else {
            out.output
        };
        let v = match self {
            Metric::Accuracy => {
                return Err(Error::invalid(
                    "Metric::Accuracy",
                    "stands for the accuracy the loss implies: resolve it with Metric::resolve before building",
                ))
            }
            Metric::BinaryAccuracy { threshold } => {
                let predicted = g.unary(ElementwiseOp::Greater { threshold: *threshold }, out.output)?;
                g.binary(ElementwiseOp::Equal, predicted, y)?
            }
            Metric::CategoricalAccuracy => {
                let p = g.unary(ReduceOp::ArgMax, scores)?;
                let t = g.unary(ReduceOp::ArgMax, y)?;
                g.binary(ElementwiseOp::Equal, p, t)?
            }
            Metric::SparseCategoricalAccuracy => {
                let p = g.unary(ReduceOp::ArgMax, scores)?;
                g.binary(ElementwiseOp::Equal, p, y)?
            }
            Metric::MeanAbsoluteError => g.binary(LossOp::AbsoluteError, out.output, y)?,
            Metric::MeanSquaredError => g.binary(LossOp::SquaredError, out.output, y)?,
            Metric::Precision { threshold } | Metric::Recall { threshold } | Metric::F1 { threshold } => {
                // [B, 3K]: true positives, false positives, false negatives side by side.
                let predicted = g.unary(ElementwiseOp::Greater { threshold: *threshold }, out.output)?;
                let positive = g.unary(ElementwiseOp::Greater { threshold: 0.5 }, y)?;
                let tp = g.mul(predicted, positive)?;
                let fp = g.sub(predicted, tp)?;
                let fn_ = g.sub(positive, tp)?;
                let axis = g.shape(tp)?.rank() - 1;
                let both = g.push(LayoutOp::Concat { axis }, &[tp, fp])?;
                g.push(LayoutOp::Concat { axis }, &[both, fn_])?
            }
            Metric::Auc | Metric::AucPr => g.binary(
                ReduceOp::CountAbove {
                    thresholds: AUC_THRESHOLDS,
                },
                out.output,
                y,
            )?,
            Metric::RootMeanSquaredError => g.binary(LossOp::SquaredError, out.output, y)?,
            Metric::MeanAbsolutePercentageError => {
                let error = g.binary(LossOp::AbsoluteError, out.output, y)?;
                let zeros = g.fill(0.0, g.shape(y)?.clone());
                let size = g.binary(LossOp::AbsoluteError, y, zeros)?;
                let size = g.clip(size, crate::EPSILON, f32::MAX)?;
                let ratio = g.div(error, size)?;
                g.scale(ratio, 100.0)?
            }
            Metric::R2Score => {
                // [B, 3K]: targets, their squares and the squared errors side by side.
                let squares = g.mul(y, y)?;
                let residuals = g.binary(LossOp::SquaredError, out.output, y)?;
                let axis = g.shape(y)?.rank() - 1;
                let both = g.push(LayoutOp::Concat { axis }, &[y, squares])?;
                g.push(LayoutOp::Concat { axis }, &[both, residuals])?
            }
            Metric::TopKCategoricalAccuracy { k } => top_k(g, scores, y, *k)?,
            Metric::SparseTopKCategoricalAccuracy { k } => {
                let one_hot = crate::confusion::one_hot(g, y, g.shape(scores)?.last())?;
                top_k(g, scores, one_hot, *k)?
            }
            Metric::Custom(c) => (c.f)(g, y, out.output)?,
            Metric::Weighted(m) => return weigh(g, m, out, activation, y, weights),
        };
        let dims = g.shape(v)?.dims().to_vec();
        Ok((v, dims.iter().skip(1).product::<usize>().max(1)))
    }

    /// The reported values from an epoch's accumulator: the metric itself under its name and, for
    /// per-label metrics over several labels, `name[j]` for each label.
    pub(crate) fn finish(
        &self,
        name: &str,
        kind: Accumulates,
        acc: &[f32],
        samples: usize,
        per_sample: usize,
    ) -> Vec<(String, f32)> {
        let per_label: Vec<f32> = match kind {
            Accumulates::Mean | Accumulates::WeightedMean => {
                let mean = match kind {
                    Accumulates::WeightedMean if acc[1] > 0.0 => acc[0] / acc[1],
                    // No weight at all: Keras' `divide_no_nan`.
                    Accumulates::WeightedMean => 0.0,
                    _ => acc[0] / (samples * per_sample) as f32,
                };
                let value = match self.unweighted() {
                    Metric::RootMeanSquaredError => mean.sqrt(),
                    _ => mean,
                };
                return vec![(name.to_string(), value)];
            }
            Accumulates::Moments { outputs } => {
                // Keras' R2Score: SS_tot = Σy² - (Σy)²/n per output; "uniform_average" over outputs.
                let n = samples as f64;
                let r2: Vec<f32> = (0..outputs)
                    .map(|j| {
                        let (sum, squares, residual) = (
                            f64::from(acc[j]),
                            f64::from(acc[outputs + j]),
                            f64::from(acc[2 * outputs + j]),
                        );
                        let total = squares - sum * sum / n;
                        (1.0 - residual / total) as f32
                    })
                    .collect();
                return vec![(name.to_string(), r2.iter().sum::<f32>() / outputs as f32)];
            }
            Accumulates::Confusion { labels } => (0..labels)
                .map(|j| {
                    let (tp, fp, fn_) = (acc[j], acc[labels + j], acc[2 * labels + j]);
                    let ratio = |a: f32, b: f32| if a + b > 0.0 { a / (a + b) } else { 0.0 };
                    let (precision, recall) = (ratio(tp, fp), ratio(tp, fn_));
                    match self.unweighted() {
                        Metric::Precision { .. } => precision,
                        Metric::Recall { .. } => recall,
                        _ if precision + recall > 0.0 => 2.0 * precision * recall / (precision + recall),
                        _ => 0.0,
                    }
                })
                .collect(),
            Accumulates::Roc { labels } => (0..labels)
                .map(|j| {
                    let pos = &acc[j * AUC_THRESHOLDS..(j + 1) * AUC_THRESHOLDS];
                    let neg = &acc[(labels + j) * AUC_THRESHOLDS..(labels + j + 1) * AUC_THRESHOLDS];
                    match self.unweighted() {
                        Metric::AucPr => pr_auc(pos, neg),
                        _ => roc_auc(pos, neg),
                    }
                })
                .collect(),
        };
        let mut out = vec![(name.to_string(), per_label.iter().sum::<f32>() / per_label.len() as f32)];
        if per_label.len() > 1 {
            out.extend(per_label.iter().enumerate().map(|(j, v)| (format!("{name}[{j}]"), *v)));
        }
        out
    }
}

impl Metric {
    /// The metric a weighted one weighs; the metric itself otherwise.
    fn unweighted(&self) -> &Metric {
        match self {
            Metric::Weighted(m) => m,
            other => other,
        }
    }
}

/// The accumulated values of `metric` with each sample counted by its weight (`weights` `[B]`, or
/// 1 each): per-sample means and weights `[B, 2]` for means, weighted counts for confusion counts.
fn weigh(
    g: &mut Graph,
    metric: &Metric,
    out: LayerOut,
    activation: Activation,
    y: NodeId,
    weights: Option<NodeId>,
) -> Result<(NodeId, usize)> {
    let (values, per) = metric.values(g, out, activation, y, None)?;
    let batch = g.shape(values)?.dims()[0];
    let w = match weights {
        Some(w) => w,
        None => g.fill(1.0, Shape::new([batch])),
    };
    if let Metric::Precision { .. } | Metric::Recall { .. } | Metric::F1 { .. } = metric {
        // [B, 3K] counts, each row scaled by its sample's weight.
        let width = g.shape(values)?.last();
        let w = g.push(ReduceOp::Broadcast { axis: 1, size: width }, &[w])?;
        return Ok((g.mul(values, w)?, per));
    }
    // Each sample's mean value (Keras reduces to sample-wise values before weighing), beside its
    // weight.
    let rows = |shape: [usize; 2]| LayoutOp::Reshape {
        shape: Shape::new(shape),
    };
    let flat = g.push(rows([batch, per]), &[values])?;
    let means = g.push(ReduceOp::Mean { axis: 1 }, &[flat])?;
    let weighted = g.mul(means, w)?;
    let weighted = g.push(rows([batch, 1]), &[weighted])?;
    let w = g.push(rows([batch, 1]), &[w])?;
    Ok((g.push(LayoutOp::Concat { axis: 1 }, &[weighted, w])?, 1))
}

impl Metric {
    /// What this metric accumulates over an output that carries a padding mask: a mean metric
    /// becomes a mean weighted by the mask ([`Metric::masked_values`]); the others count padded
    /// steps as samples, so they are refused.
    pub(crate) fn accumulates_masked(&self, kind: Accumulates) -> Result<Accumulates> {
        match kind {
            Accumulates::Mean | Accumulates::WeightedMean => Ok(Accumulates::WeightedMean),
            Accumulates::Confusion { .. } | Accumulates::Moments { .. } | Accumulates::Roc { .. } => {
                Err(Error::invalid(
                    "metrics",
                    format!(
                        "the model's output keeps a padding mask (from Embedding(mask_zero) through \
                         per-step layers), and `{}` does not read masks: it would count the padded \
                         steps. Mean metrics (accuracy, mse, mae, ...) read the mask; measure this one \
                         on the unpadded steps from `predict`",
                        self.name()
                    ),
                ))
            }
        }
    }

    /// A mean metric's values over a masked output, as Keras' `MeanMetricWrapper` weighs them by
    /// the mask (keras/src/metrics/reduction_metrics.py, `apply_mask`): each step's value (the mean
    /// over its last axis) beside its weight — the mask, times the sample's weight for a weighted
    /// metric — as rows `[m·w·v, m·w]` whose sums give the mean over real steps.
    pub(crate) fn masked_values(
        &self,
        g: &mut Graph,
        out: LayerOut,
        activation: Activation,
        y: NodeId,
        weights: Option<NodeId>,
        mask: NodeId,
    ) -> Result<NodeId> {
        let (metric, weights) = match self {
            Metric::Weighted(m) => (&**m, weights),
            m => (m, None),
        };
        let (values, per) = metric.values(g, out, activation, y, None)?;
        let batch = g.shape(values)?.dims()[0];
        let cells = g.shape(mask)?.numel();
        let steps = cells / batch.max(1);
        let flat = g.reshape(values, [cells, batch * per / cells.max(1)])?;
        let step_values = g.push(ReduceOp::Mean { axis: 1 }, &[flat])?;
        let mut weight = g.reshape(mask, [cells, 1])?;
        if let Some(w) = weights {
            let w = g.push(ReduceOp::Broadcast { axis: 1, size: steps }, &[w])?;
            let w = g.reshape(w, [cells, 1])?;
            weight = g.mul(weight, w)?;
        }
        let step_values = g.reshape(step_values, [cells, 1])?;
        let weighted = g.mul(step_values, weight)?;
        Ok(g.push(LayoutOp::Concat { axis: 1 }, &[weighted, weight])?)
    }
}

/// 1 per row where fewer than `k` classes score strictly higher than the labelled one (`y` one-hot
/// rows `[B, C]`), else 0.
fn top_k(g: &mut Graph, scores: NodeId, y: NodeId, k: usize) -> Result<NodeId> {
    let classes = g.shape(scores)?.last();
    let axis = g.shape(scores)?.rank() - 1;
    let picked = g.mul(scores, y)?;
    let labelled = g.push(ReduceOp::Sum { axis }, &[picked])?;
    let labelled = g.push(ReduceOp::Broadcast { axis, size: classes }, &[labelled])?;
    let margin = g.sub(scores, labelled)?;
    let above = g.unary(ElementwiseOp::Greater { threshold: 0.0 }, margin)?;
    let above = g.push(ReduceOp::Sum { axis }, &[above])?;
    let missed = g.unary(
        ElementwiseOp::Greater {
            threshold: k as f32 - 0.5,
        },
        above,
    )?;
    let ones = g.fill(1.0, g.shape(missed)?.clone());
    Ok(g.sub(ones, missed)?)
}

/// Area under the precision-recall curve from the counts above each threshold, interpolated between
/// thresholds as Keras' `interpolate_pr_auc` does: within an interval precision is taken as
/// `(tp₁ + slope·(p - p₁)) / p` along the predicted positives `p`, integrated in closed form over
/// recall. 0 without positives (Keras' `divide_no_nan`).
fn pr_auc(pos: &[f32], neg: &[f32]) -> f32 {
    let positives = f64::from(pos[0]);
    if positives == 0.0 {
        return 0.0;
    }
    let mut area = 0.0f64;
    for t in 0..pos.len() - 1 {
        let (tp0, tp1) = (f64::from(pos[t]), f64::from(pos[t + 1]));
        let (p0, p1) = (tp0 + f64::from(neg[t]), tp1 + f64::from(neg[t + 1]));
        let (dtp, dp) = (tp0 - tp1, (p0 - p1).max(0.0));
        let slope = if dp > 0.0 { dtp / dp } else { 0.0 };
        let intercept = tp1 - slope * p1;
        let ratio = if p0 > 0.0 && p1 > 0.0 { p0 / p1 } else { 1.0 };
        area += slope * (dtp + intercept * ratio.ln()) / positives;
    }
    area as f32
}

/// Trapezoid area under the ROC curve from the counts above each threshold (thresholds rising, so
/// the curve runs from (1, 1) down to (0, 0)). 0.5 when either class is absent.
fn roc_auc(pos: &[f32], neg: &[f32]) -> f32 {
    let (p, n) = (pos[0], neg[0]);
    if p == 0.0 || n == 0.0 {
        return 0.5;
    }
    let mut area = 0.0f64;
    for t in 0..pos.len() - 1 {
        let (x0, x1) = (f64::from(neg[t] / n), f64::from(neg[t + 1] / n));
        let (y0, y1) = (f64::from(pos[t] / p), f64::from(pos[t + 1] / p));
        area += (x0 - x1) * (y0 + y1) / 2.0;
    }
    // The thresholds are the same for both backends; the assert keeps the helper honest.
    debug_assert!(roc_threshold(0, pos.len()) < 0.0);
    area as f32
}
