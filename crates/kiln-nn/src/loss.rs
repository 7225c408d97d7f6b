//! Losses. Cross-entropies run from logits inside the graph (log-softmax / log-sigmoid), with the
//! one closed-form backward `p - y`, whenever the model ends in the matching activation; otherwise
//! they run on probabilities clipped to [1e-7, 1 - 1e-7] as Keras does.

use std::fmt;
use std::sync::Arc;

use kiln_data::Tensor;
use kiln_graph::{Error, Graph, NodeId, Op, Result};

use crate::layers::LayerOut;
use crate::Activation;

/// Keras' fuzz factor: probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a logarithm.
pub const EPSILON: f32 = 1e-7;

/// The signature of a user-composed loss: `(graph, y_true, y_pred) -> loss` (any shape; its mean
/// is the batch loss).
pub type LossFn = dyn Fn(&mut Graph, NodeId, NodeId) -> Result<NodeId> + Send + Sync;

/// A loss built from graph ops by the user; autodiff differentiates it like any other.
#[derive(Clone)]
pub struct CustomLoss {
    name: String,
    f: Arc<LossFn>,
}

impl fmt::Debug for CustomLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomLoss({})", self.name)
    }
}

/// A training loss, as Keras names them.
#[derive(Clone, Debug)]
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
        f: impl Fn(&mut Graph, NodeId, NodeId) -> Result<NodeId> + Send + Sync + 'static,
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

    /// Checks, when the model is compiled, that the output layer suits this loss.
    pub fn check_output(&self, activation: Activation, output: &[usize]) -> Result<()> {
        let units = output.last().copied().unwrap_or(1);
        let doctor = |m: String| Err(Error::Doctor(m));
        if activation == Activation::Softmax && units == 1 {
            return doctor(format!(
                "the output layer applies softmax over a single unit, which always outputs 1.0, so the model cannot learn \
                 anything ({}). For binary classification use Dense(1) with sigmoid and binary_crossentropy, or Dense(2) \
                 with softmax and sparse_categorical_crossentropy.",
                self.name()
            ));
        }
        match (self, activation) {
            (Loss::FromLogits(inner), Activation::Linear) => match **inner {
                Loss::BinaryCrossentropy | Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy => Ok(()),
                _ => Err(Error::invalid("loss", format!("{} has no from_logits form", inner.name()))),
            },
            (Loss::FromLogits(inner), other) => doctor(format!(
                "{} expects raw scores, but the output layer already applies {other}: the activation would be applied \
                 twice. Drop the output activation, or drop from_logits.",
                inner.name() + " with from_logits"
            )),
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, Activation::Softmax) => Ok(()),
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, other) => doctor(format!(
                "{} expects the output layer to end in softmax, but it ends in {other}. Give the last Dense layer \
                 activation softmax, or use {}.from_logits() on a linear output.",
                self.name(),
                self.name()
            )),
            (Loss::WeightedBinaryCrossentropy(w), _) if w.len() != units => Err(Error::invalid(
                "weighted_binary_crossentropy",
                format!("{} weights for an output of {units} units; give one weight per unit", w.len()),
            )),
            (Loss::BinaryCrossentropy | Loss::WeightedBinaryCrossentropy(_), Activation::Sigmoid | Activation::Softmax) => {
                Ok(())
            }
            (Loss::BinaryCrossentropy | Loss::WeightedBinaryCrossentropy(_), other) => doctor(format!(
                "{} expects probabilities, but the output layer ends in {other}, whose outputs are not in [0, 1]. Give the \
                 last Dense layer activation sigmoid, or use binary_crossentropy.from_logits() on a linear output.",
                self.name()
            )),
            (Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Custom(_), _) => Ok(()),
        }
    }

    /// Adds the batch loss (a scalar, the mean over samples) to `g`. `activation` is the output
    /// layer's, which decides between the logits and the probability form.
    pub fn build(&self, g: &mut Graph, out: LayerOut, activation: Activation, y: NodeId) -> Result<NodeId> {
        let per_element = match self {
            Loss::SparseCategoricalCrossentropy => {
                g.binary(Op::SoftmaxCrossEntropy { sparse: true }, out.pre_activation, y)?
            }
            Loss::CategoricalCrossentropy => {
                g.binary(Op::SoftmaxCrossEntropy { sparse: false }, out.pre_activation, y)?
            }
            Loss::BinaryCrossentropy => binary_crossentropy(g, out, activation, y)?,
            Loss::WeightedBinaryCrossentropy(w) => {
                let bce = binary_crossentropy(g, out, activation, y)?;
                crate::backend::weight_columns(g, bce, w)?
            }
            Loss::MeanSquaredError => g.binary(Op::SquaredError, out.output, y)?,
            Loss::MeanAbsoluteError => g.binary(Op::AbsoluteError, out.output, y)?,
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
                return inner.build(g, logits, as_if, y);
            }
            Loss::Custom(c) => (c.f)(g, y, out.output)?,
        };
        g.mean_all(per_element)
    }

    /// Checks the labels handed to fit/evaluate against this loss and the model's output shape.
    /// This is where silent nonsense is stopped: wrong label encodings, labels out of range, more
    /// classes than a sigmoid unit can model.
    pub fn check_labels(&self, y: &Tensor, output: &[usize]) -> Result<()> {
        let units = output.last().copied().unwrap_or(1);
        let want = self.label_shape(output).iter().product::<usize>();
        let n = y.rows();
        let integral = y.data().iter().all(|v| v.fract() == 0.0);
        let distinct = distinct_values(y, 16);
        let doctor = |m: String| Err(Error::Doctor(m));
        match self.kind() {
            LossKind::Sparse => {
                if y.row_len() != want {
                    if y.row_len() == units && is_one_hot(y) {
                        return doctor(format!(
                            "sparse_categorical_crossentropy expects one integer class label per sample, but the labels are \
                             one-hot rows of {units}. Use categorical_crossentropy, or pass the class indices (argmax of each row)."
                        ));
                    }
                    return Err(Error::shape(
                        &self.name(),
                        format!("labels {:?}", y.shape()),
                        format!("[{n}] integer class labels"),
                    ));
                }
                if let Some((i, &v)) = y
                    .data()
                    .iter()
                    .enumerate()
                    .find(|(_, v)| v.fract() != 0.0 || **v < 0.0 || **v >= units as f32)
                {
                    return doctor(format!(
                        "sparse_categorical_crossentropy: label {v} at sample {i} is not a class index in 0..{units} (the output \
                         layer has {units} units). Labels must be integers from 0 to {}; if there are more classes, widen the \
                         output layer.",
                        units - 1
                    ));
                }
            }
            LossKind::Categorical => {
                if y.row_len() != want {
                    if integral && y.row_len() == 1 {
                        return doctor(format!(
                            "categorical_crossentropy expects one-hot labels of shape [{n}, {units}], but got integer class \
                             labels {:?}. Use sparse_categorical_crossentropy with these labels, or one-hot encode them with \
                             to_categorical(labels, {units}).",
                            y.shape()
                        ));
                    }
                    return doctor(format!(
                        "categorical_crossentropy: one-hot labels have {} columns but the output layer has {units} units; they \
                         must match.",
                        y.row_len()
                    ));
                }
            }
            LossKind::Binary => {
                if y.row_len() != want {
                    return Err(Error::shape(
                        &self.name(),
                        format!("labels {:?}", y.shape()),
                        format!("[{n}, {units}] targets in [0, 1], one per output unit"),
                    ));
                }
                if let Some((i, &v)) = y.data().iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
                    if integral && distinct.iter().all(|d| *d >= 0.0) && distinct.len() > 2 {
                        return doctor(format!(
                            "binary_crossentropy models each output as a yes/no probability, but the labels take {} \
                             distinct integer values ({}): this is a {}-class problem squeezed into {units} sigmoid unit{}, \
                             which trains into nonsense. Use an output layer Dense({}, softmax) with \
                             sparse_categorical_crossentropy (integer labels) or categorical_crossentropy (one-hot labels).",
                            distinct.len(),
                            list(&distinct),
                            distinct.len(),
                            if units == 1 { "" } else { "s" },
                            distinct.len()
                        ));
                    }
                    return doctor(format!(
                        "binary_crossentropy needs targets in [0, 1], but sample {i} has {v}. Rescale the targets, or use mse \
                         for a regression target."
                    ));
                }
            }
            LossKind::Other => {
                if y.row_len() != want {
                    return Err(Error::shape(
                        &self.name(),
                        format!("targets {:?}", y.shape()),
                        format!("[{n}, {}] (one target per output unit)", want),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Up to `limit` distinct values of `y`, sorted.
fn distinct_values(y: &Tensor, limit: usize) -> Vec<f32> {
    let mut seen: Vec<f32> = Vec::new();
    for &v in y.data() {
        if !seen.contains(&v) {
            seen.push(v);
            if seen.len() > limit {
                break;
            }
        }
    }
    seen.sort_by(f32::total_cmp);
    seen
}

fn list(v: &[f32]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

fn is_one_hot(y: &Tensor) -> bool {
    (0..y.rows()).all(|i| {
        let r = y.row(i);
        r.iter().all(|&v| v == 0.0 || v == 1.0) && r.iter().sum::<f32>() == 1.0
    })
}

/// Elementwise binary cross-entropy: from the logits when the output is a sigmoid, else on the
/// output probabilities, clipped as Keras clips them.
fn binary_crossentropy(g: &mut Graph, out: LayerOut, activation: Activation, y: NodeId) -> Result<NodeId> {
    if activation == Activation::Sigmoid {
        return g.binary(Op::SigmoidBinaryCrossEntropy, out.pre_activation, y);
    }
    crate::backend::binary_crossentropy(g, y, out.output)
}
