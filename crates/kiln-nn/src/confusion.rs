//! The confusion matrices `evaluate` reports for classifiers: one `classes × classes` matrix for a
//! single-label classifier (softmax, categorical or sparse labels), one 2×2 matrix per label for
//! sigmoid outputs (binary and multi-label). Counted on the device, in the evaluation step, into
//! one accumulator read once at the end, like the metrics.
//!
//! Rows are the true class and columns the predicted one, as scikit-learn's `confusion_matrix`
//! and `keras.ops`-era `tf.math.confusion_matrix` lay them out; a 2×2 matrix is
//! `[[TN, FP], [FN, TP]]`.

use std::fmt;

use kiln_graph::{ElementwiseOp, Graph, MatMulOp, NodeId, ReduceOp, Shape};

use crate::layers::LayerOut;
use crate::loss::LossKind;
use crate::{Activation, Loss, Result};

/// Classes beyond which no matrix is kept: its accumulator grows with the square of the classes.
pub const MAX_CONFUSION_CLASSES: usize = 256;

/// Sigmoid labels beyond which no matrices are kept (four counts each).
pub const MAX_CONFUSION_LABELS: usize = 65_536;

/// A confusion matrix: `count(actual, predicted)` samples (weighted by their sample weights under
/// [`crate::Model::evaluate_weighted`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    /// The output column this matrix is for, for sigmoid outputs of several labels.
    pub label: Option<usize>,
    classes: usize,
    /// Row-major: `counts[actual * classes + predicted]`.
    counts: Vec<f32>,
}

impl ConfusionMatrix {
    /// Number of classes (2 for a label of a sigmoid output).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of class `actual` predicted as `predicted`.
    ///
    /// # Panics
    /// When either class is out of range, as indexing does.
    pub fn count(&self, actual: usize, predicted: usize) -> f32 {
        assert!(actual < self.classes && predicted < self.classes, "class out of range");
        self.counts[actual * self.classes + predicted]
    }

    /// The counts, row-major, rows the true class.
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }

    /// Samples counted.
    pub fn total(&self) -> f32 {
        self.counts.iter().sum()
    }
}

impl fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(label) = self.label {
            writeln!(f, "label {label}:")?;
        }
        let width = self
            .counts
            .iter()
            .map(|c| format!("{c}").len())
            .max()
            .unwrap_or(1)
            .max(format!("{}", self.classes).len());
        write!(f, "{:>6} |", "true\\p")?;
        for p in 0..self.classes {
            write!(f, " {p:>width$}")?;
        }
        writeln!(f)?;
        for a in 0..self.classes {
            write!(f, "{a:>6} |")?;
            for p in 0..self.classes {
                write!(f, " {:>width$}", self.count(a, p))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Which matrices a model's evaluation counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Confusion {
    /// One matrix over `classes` classes; labels one-hot rows, or class indices when `sparse`.
    Classes { classes: usize, sparse: bool },
    /// A 2×2 matrix per label of a sigmoid output; the prediction is positive above `threshold`
    /// (0.5 on probabilities, 0 on logits).
    Labels { labels: usize, threshold: f32 },
}

impl Confusion {
    /// The matrices a classifier with this loss, output activation and width gets; `None` for
    /// regression, for more than [`MAX_CONFUSION_CLASSES`] classes and for more than
    /// [`MAX_CONFUSION_LABELS`] sigmoid labels.
    pub(crate) fn of(loss: &Loss, activation: Activation, units: usize) -> Option<Self> {
        let threshold = if activation == Activation::Sigmoid { 0.5 } else { 0.0 };
        let classes =
            |sparse| (units <= MAX_CONFUSION_CLASSES).then_some(Confusion::Classes { classes: units, sparse });
        match (loss.kind(), activation) {
            (LossKind::Binary, _) | (LossKind::Other, Activation::Sigmoid) => (units <= MAX_CONFUSION_LABELS)
                .then_some(Confusion::Labels {
                    labels: units,
                    threshold,
                }),
            (LossKind::Categorical, _) | (LossKind::Other, Activation::Softmax) => classes(false),
            (LossKind::Sparse, _) => classes(true),
            (LossKind::Other, _) => None,
        }
    }

    /// Elements of the accumulator.
    pub(crate) fn len(&self) -> usize {
        match *self {
            Confusion::Classes { classes, .. } => classes * classes,
            Confusion::Labels { labels, .. } => 4 * labels,
        }
    }

    /// One batch's counts, shaped to sum into the accumulator: `out` the output (`[B, .., C]`),
    /// `y` the labels, `weights` the samples' weights (`[B]`) if any.
    pub(crate) fn counts(
        &self,
        g: &mut Graph,
        out: LayerOut,
        activation: Activation,
        y: NodeId,
        weights: Option<NodeId>,
    ) -> Result<NodeId> {
        let dims = g.shape(out.output)?.dims().to_vec();
        let (batch, width) = (dims[0], *dims.last().unwrap_or(&1));
        // Every position of a sequence output counts as a sample of its own.
        let rows = dims.iter().product::<usize>() / width.max(1);
        // The weight of each row, broadcast over `width` columns: [rows, width].
        let row_weights = |g: &mut Graph| -> Result<Option<NodeId>> {
            let Some(w) = weights else { return Ok(None) };
            let per_sample = rows / batch;
            let w = if per_sample > 1 {
                let w = g.push(
                    ReduceOp::Broadcast {
                        axis: 1,
                        size: per_sample,
                    },
                    &[w],
                )?;
                g.reshape(w, [rows])?
            } else {
                w
            };
            Ok(Some(g.push(ReduceOp::Broadcast { axis: 1, size: width }, &[w])?))
        };
        match *self {
            Confusion::Classes { classes, sparse } => {
                let scores = if activation == Activation::Softmax {
                    out.pre_activation
                } else {
                    out.output
                };
                let scores = g.reshape(scores, [rows, classes])?;
                let predicted = g.unary(ReduceOp::ArgMax, scores)?;
                let predicted = one_hot(g, predicted, classes)?;
                let actual = if sparse {
                    let y = g.reshape(y, [rows])?;
                    one_hot(g, y, classes)?
                } else {
                    let y = g.reshape(y, [rows, classes])?;
                    let y = g.unary(ReduceOp::ArgMax, y)?;
                    one_hot(g, y, classes)?
                };
                let actual = match row_weights(g)? {
                    Some(w) => g.mul(actual, w)?,
                    None => actual,
                };
                // count[a][p] = Σ_rows actual[r][a] · predicted[r][p].
                Ok(g.push(MatMulOp::plain(true, false), &[actual, predicted])?)
            }
            Confusion::Labels { labels, threshold } => {
                let x = g.reshape(out.output, [rows, labels])?;
                let y = g.reshape(y, [rows, labels])?;
                let predicted = g.unary(ElementwiseOp::Greater { threshold }, x)?;
                let actual = g.unary(ElementwiseOp::Greater { threshold: 0.5 }, y)?;
                let tp = g.mul(predicted, actual)?;
                let fp = g.sub(predicted, tp)?;
                let fn_ = g.sub(actual, tp)?;
                let ones = g.fill(1.0, Shape::new([rows, labels]));
                let negatives = g.sub(ones, actual)?;
                let tn = g.sub(negatives, fp)?;
                // [rows, 4K]: TN, FP, FN, TP side by side, so label j's matrix is row-major.
                let counts = g.concat(&[tn, fp, fn_, tp], 1)?;
                Ok(match row_weights(g)? {
                    Some(w) => {
                        let wide = g.concat(&[w, w, w, w], 1)?;
                        g.mul(counts, wide)?
                    }
                    None => counts,
                })
            }
        }
    }

    /// The matrices from the accumulator.
    pub(crate) fn matrices(&self, acc: &[f32]) -> Vec<ConfusionMatrix> {
        match *self {
            Confusion::Classes { classes, .. } => vec![ConfusionMatrix {
                label: None,
                classes,
                counts: acc.to_vec(),
            }],
            Confusion::Labels { labels, .. } => (0..labels)
                .map(|j| ConfusionMatrix {
                    label: (labels > 1).then_some(j),
                    classes: 2,
                    counts: (0..4).map(|part| acc[part * labels + j]).collect(),
                })
                .collect(),
        }
    }
}

/// Class indices `[N]` as one-hot rows `[N, classes]`: each index compared with `0..classes`.
pub(crate) fn one_hot(g: &mut Graph, indices: NodeId, classes: usize) -> Result<NodeId> {
    let rows = g.shape(indices)?.numel();
    let ids: Vec<f32> = (0..classes).map(|c| c as f32).collect();
    let ids = g.constant(&ids, [classes])?;
    let ids = g.push(ReduceOp::Broadcast { axis: 0, size: rows }, &[ids])?;
    let indices = g.push(ReduceOp::Broadcast { axis: 1, size: classes }, &[indices])?;
    Ok(g.binary(ElementwiseOp::Equal, indices, ids)?)
}
