//! Losses. Cross-entropies always run from logits inside the graph (log-softmax / log-sigmoid),
//! with the one closed-form backward `p - y`, even when the model ends in softmax or sigmoid.

use kiln_data::Tensor;
use kiln_graph::{Error, Graph, NodeId, Op, Result};

use crate::layers::LayerOut;
use crate::Activation;

/// A training loss, as Keras names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl Loss {
    /// Keras' name of the loss.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::MeanSquaredError => "mse",
            Loss::MeanAbsoluteError => "mae",
        }
    }

    /// Shape of one label sample for a model whose samples come out as `output`.
    pub fn label_shape(&self, output: &[usize]) -> Vec<usize> {
        match self {
            Loss::SparseCategoricalCrossentropy => {
                output[..output.len().saturating_sub(1)].to_vec()
            }
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
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, Activation::Softmax) => Ok(()),
            (Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy, other) => doctor(format!(
                "{} expects the output layer to end in softmax, but it ends in {other}. Give the last Dense layer \
                 activation softmax.",
                self.name()
            )),
            (Loss::BinaryCrossentropy, Activation::Sigmoid) => Ok(()),
            (Loss::BinaryCrossentropy, other) => doctor(format!(
                "binary_crossentropy expects the output layer to end in sigmoid (independent probabilities), but it ends \
                 in {other}. Give the last Dense layer activation sigmoid."
            )),
            (Loss::MeanSquaredError | Loss::MeanAbsoluteError, _) => Ok(()),
        }
    }

    /// Adds the per-sample loss (`[batch]`) to `g`.
    pub fn per_sample(&self, g: &mut Graph, out: LayerOut, y: NodeId) -> Result<NodeId> {
        let mean_last = |g: &mut Graph, v: NodeId| -> Result<NodeId> {
            let mut v = v;
            while g.shape(v)?.rank() > 1 {
                let last = g.shape(v)?.rank() - 1;
                v = g.unary(Op::Mean { axis: last }, v)?;
            }
            Ok(v)
        };
        match self {
            Loss::SparseCategoricalCrossentropy => g.binary(
                Op::SoftmaxCrossEntropy { sparse: true },
                out.pre_activation,
                y,
            ),
            Loss::CategoricalCrossentropy => g.binary(
                Op::SoftmaxCrossEntropy { sparse: false },
                out.pre_activation,
                y,
            ),
            Loss::BinaryCrossentropy => {
                let l = g.binary(Op::SigmoidBinaryCrossEntropy, out.pre_activation, y)?;
                mean_last(g, l)
            }
            Loss::MeanSquaredError => {
                let l = g.binary(Op::SquaredError, out.output, y)?;
                mean_last(g, l)
            }
            Loss::MeanAbsoluteError => {
                let l = g.binary(Op::AbsoluteError, out.output, y)?;
                mean_last(g, l)
            }
        }
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
        match self {
            Loss::SparseCategoricalCrossentropy => {
                if y.row_len() != want {
                    if y.row_len() == units && is_one_hot(y) {
                        return doctor(format!(
                            "sparse_categorical_crossentropy expects one integer class label per sample, but the labels are \
                             one-hot rows of {units}. Use categorical_crossentropy, or pass the class indices (argmax of each row)."
                        ));
                    }
                    return Err(Error::shape(
                        self.name(),
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
            Loss::CategoricalCrossentropy => {
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
            Loss::BinaryCrossentropy => {
                if y.row_len() != want {
                    return Err(Error::shape(
                        self.name(),
                        format!("labels {:?}", y.shape()),
                        format!("[{n}, {units}] targets in [0, 1], one per output unit"),
                    ));
                }
                if let Some((i, &v)) = y
                    .data()
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(0.0..=1.0).contains(*v))
                {
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
            Loss::MeanSquaredError | Loss::MeanAbsoluteError => {
                if y.row_len() != want {
                    return Err(Error::shape(
                        self.name(),
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
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_one_hot(y: &Tensor) -> bool {
    (0..y.rows()).all(|i| {
        let r = y.row(i);
        r.iter().all(|&v| v == 0.0 || v == 1.0) && r.iter().sum::<f32>() == 1.0
    })
}
