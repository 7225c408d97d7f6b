//! The doctor: checks of the model, the loss and the actual labels that stop runs Keras would let
//! train into nonsense, with an error naming what was found and the fix; and warnings for the
//! doubtful, printed once per fit and kept on the [`crate::History`]. Every check and its message is
//! listed in `docs/doctor.md`; each has a test for the error and one for the nearby legitimate case.

use kiln_data::Tensor;

use crate::loss::LossKind;
use crate::{Activation, Loss};
use crate::{Error, Result};

/// Checks, when the model is compiled, that the output layer suits this loss.
pub fn check_model(loss: &Loss, activation: Activation, output: &[usize]) -> Result<()> {
    let units = output.last().copied().unwrap_or(1);
    let doctor = |m: String| Err(Error::Doctor(m));
    if activation == Activation::Softmax && units == 1 {
        return doctor(format!(
            "the output layer applies softmax over a single unit, which always outputs 1.0, so the model cannot learn \
             anything ({}). For binary classification use Dense(1) with sigmoid and binary_crossentropy, or Dense(2) \
             with softmax and sparse_categorical_crossentropy.",
            loss.name()
        ));
    }
    check_hyperparameters(loss)?;
    match (loss, activation) {
        (Loss::FromLogits(inner), Activation::Linear) => match **inner {
            Loss::BinaryCrossentropy
            | Loss::CategoricalCrossentropy
            | Loss::SparseCategoricalCrossentropy
            | Loss::BinaryFocalCrossentropy { .. }
            | Loss::CategoricalFocalCrossentropy { .. }
            | Loss::LabelSmoothing { .. } => Ok(()),
            _ => Err(Error::invalid(
                "loss",
                format!("{} has no from_logits form", inner.name()),
            )),
        },
        // Smoothing changes the labels, not what the output must be.
        (Loss::LabelSmoothing { loss: inner, .. }, _) => check_model(inner, activation, output),
        (Loss::FromLogits(inner), other) => doctor(format!(
            "{} expects raw scores, but the output layer already applies {other}: the activation would be applied \
             twice. Drop the output activation, or drop from_logits.",
            inner.name() + " with from_logits"
        )),
        (
            Loss::SparseCategoricalCrossentropy
            | Loss::CategoricalCrossentropy
            | Loss::CategoricalFocalCrossentropy { .. },
            Activation::Softmax,
        ) => Ok(()),
        (
            Loss::SparseCategoricalCrossentropy
            | Loss::CategoricalCrossentropy
            | Loss::CategoricalFocalCrossentropy { .. },
            other,
        ) => doctor(format!(
            "{} expects the output layer to end in softmax, but it ends in {other}. Give the last Dense layer \
             activation softmax, or use {}.from_logits() on a linear output.",
            loss.name(),
            loss.name()
        )),
        (Loss::WeightedBinaryCrossentropy(w), _) if bad_weight(w).is_some() => {
            let (k, v) = bad_weight(w).expect("the guard found one");
            doctor(format!(
                "weighted_binary_crossentropy: class weight {k} is {v}; weights scale each output's loss and must be \
                 finite and non-negative (a NaN weight makes every loss NaN, a negative one rewards mistakes). Use \
                 positive weights, e.g. negatives/positives for a rare class."
            ))
        }
        (Loss::WeightedBinaryCrossentropy(w), _) if w.len() != units => Err(Error::invalid(
            "weighted_binary_crossentropy",
            format!(
                "{} weights for an output of {units} units; give one weight per unit",
                w.len()
            ),
        )),
        (
            Loss::BinaryCrossentropy | Loss::WeightedBinaryCrossentropy(_) | Loss::BinaryFocalCrossentropy { .. },
            Activation::Sigmoid | Activation::Softmax,
        ) => Ok(()),
        (
            Loss::BinaryCrossentropy | Loss::WeightedBinaryCrossentropy(_) | Loss::BinaryFocalCrossentropy { .. },
            other,
        ) => doctor(format!(
            "{} expects probabilities, but the output layer ends in {other}, whose outputs are not in [0, 1]. Give the \
             last Dense layer activation sigmoid, or use binary_crossentropy.from_logits() on a linear output.",
            loss.name()
        )),
        (
            Loss::MeanSquaredError
            | Loss::MeanAbsoluteError
            | Loss::Huber { .. }
            | Loss::LogCosh
            | Loss::Poisson
            | Loss::KLDivergence
            | Loss::CosineSimilarity
            | Loss::Hinge
            | Loss::SquaredHinge
            | Loss::Custom(_),
            _,
        ) => Ok(()),
    }
}

/// The ranges Keras' loss constructors accept: Huber's delta positive, focal α in [0, 1] and γ ≥ 0,
/// label smoothing in [0, 1] and only on binary or categorical cross-entropies.
fn check_hyperparameters(loss: &Loss) -> Result<()> {
    let bad = |what: String| Err(Error::invalid(loss.name(), what));
    match *loss {
        Loss::Huber { delta } if !(delta.is_finite() && delta > 0.0) => bad(format!("delta {delta} must be positive")),
        Loss::BinaryFocalCrossentropy { alpha, gamma, .. } | Loss::CategoricalFocalCrossentropy { alpha, gamma }
            if !((0.0..=1.0).contains(&alpha) && gamma.is_finite() && gamma >= 0.0) =>
        {
            bad(format!(
                "alpha {alpha} must be in [0, 1] and gamma {gamma} ≥ 0 (Keras' defaults: 0.25 and 2)"
            ))
        }
        Loss::LabelSmoothing { amount, .. } if !(0.0..=1.0).contains(&amount) => {
            bad(format!("label_smoothing {amount} must be in [0, 1]"))
        }
        Loss::LabelSmoothing { ref loss, .. }
            if !matches!(loss.kind(), LossKind::Binary | LossKind::Categorical)
                || matches!(**loss, Loss::WeightedBinaryCrossentropy(_)) =>
        {
            bad(format!(
                "{} has no label smoothing (Keras smooths binary and categorical cross-entropies)",
                loss.name()
            ))
        }
        Loss::FromLogits(ref inner) | Loss::LabelSmoothing { loss: ref inner, .. } => check_hyperparameters(inner),
        _ => Ok(()),
    }
}

/// The first class weight that is not finite and non-negative, with its index.
fn bad_weight(w: &[f32]) -> Option<(usize, f32)> {
    w.iter()
        .copied()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
}

/// Checks the labels handed to fit/evaluate against this loss and the model's output shape.
/// This is where silent nonsense is stopped: wrong label encodings, labels out of range, more
/// classes than a sigmoid unit can model.
pub fn check_labels(loss: &Loss, activation: Activation, y: &Tensor, output: &[usize]) -> Result<()> {
    let units = output.last().copied().unwrap_or(1);
    let want = loss.label_shape(output).iter().product::<usize>();
    let n = y.rows();
    let integral = y.data().iter().all(|v| v.fract() == 0.0);
    let distinct = distinct_values(y, 16);
    let doctor = |m: String| Err(Error::Doctor(m));
    match loss.kind() {
        LossKind::Sparse => {
            if y.row_len() != want {
                if y.row_len() == units && is_one_hot(y) {
                    return doctor(format!(
                        "sparse_categorical_crossentropy expects one integer class label per sample, but the labels are \
                         one-hot rows of {units}. Use categorical_crossentropy, or pass the class indices (argmax of each row)."
                    ));
                }
                return Err(Error::shape(
                    &loss.name(),
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
            not_distributions(y)?;
        }
        LossKind::Binary => {
            if y.row_len() != want {
                return Err(Error::shape(
                    &loss.name(),
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
                    &loss.name(),
                    format!("targets {:?}", y.shape()),
                    format!("[{n}, {}] (one target per output unit)", want),
                ));
            }
            let bounded = matches!(activation, Activation::Sigmoid | Activation::Softmax);
            let regression = matches!(
                loss,
                Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber { .. } | Loss::LogCosh
            );
            if let Some((i, v)) = y.data().iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
                if bounded && regression {
                    return doctor(format!(
                        "{} on a {activation} output, but sample {} has target {v}: a {activation} only outputs values in \
                         (0, 1), so it can never reach targets outside [0, 1] and trains towards the nearest bound. Use a \
                         linear output layer for regression, or rescale the targets into [0, 1].",
                        loss.name(),
                        i / y.row_len().max(1)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Categorical labels must be distributions: non-negative rows that sum to 1 (one-hot, or smoothed).
/// 0/1 rows with several ones are multi-hot and get their own warning.
fn not_distributions(y: &Tensor) -> Result<()> {
    for i in 0..y.rows() {
        let r = y.row(i);
        let sum: f32 = r.iter().sum();
        let multi_hot = r.iter().all(|&v| v == 0.0 || v == 1.0) && sum > 1.0;
        let why = if let Some(v) = r.iter().find(|&&v| v < 0.0) {
            format!("has the negative entry {v}")
        } else if sum == 0.0 {
            "is all zeros (no class)".to_string()
        } else if (sum - 1.0).abs() > 1e-3 && !multi_hot {
            format!("sums to {sum}")
        } else {
            continue;
        };
        return Err(Error::Doctor(format!(
            "categorical_crossentropy reads each label row as a probability distribution over the classes, but row {i} \
             {why}. Rows must be non-negative and sum to 1: one-hot encode class labels with to_categorical, or \
             normalise soft labels."
        )));
    }
    Ok(())
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

/// Doubtful but possibly intended combinations, as messages for the history. `inputs` are the
/// model inputs' sample shapes; `binary_accuracy` says whether a metric reports binary accuracy.
pub fn warnings(
    loss: &Loss,
    activation: Activation,
    y: &Tensor,
    inputs: &[Vec<usize>],
    binary_accuracy: bool,
) -> Vec<String> {
    let multi_hot = max_positives(y);
    let mut out = Vec::new();
    // Keras resolves "accuracy" under binary_crossentropy to binary accuracy: the share of label
    // *columns* right at threshold 0.5. With one class per sample over C columns, predicting all
    // zeros already scores (C-1)/C, so the figure says nothing about picking the class.
    let classes = y.row_len();
    if binary_accuracy && activation == Activation::Softmax && classes > 2 && y.rows() > 0 && is_one_hot(y) {
        let floor = (classes - 1) as f32 / classes as f32;
        out.push(format!(
            "{} on a softmax output with one-hot labels over {classes} classes: the accuracy reported is binary \
             accuracy, the share of the {classes} columns right at threshold 0.5, so predicting no class at all \
             already scores {floor:.2}. For one class per sample use categorical_crossentropy (its accuracy is the \
             argmax accuracy), or ask for Metric::CategoricalAccuracy.",
            loss.name()
        ));
    }
    for (i, s) in inputs.iter().enumerate() {
        // [3, 32, 32]: a few "rows" of square, many-channel pixels is how channels-first images read.
        if let [c, h, w] = s[..] {
            if c <= 4 && h == w && w > 4 * c {
                out.push(format!(
                    "input {i} has samples [{c}, {h}, {w}]: images here are channels-last [height, width, channels], \
                     so this reads as {c} row(s) of {h} pixels with {w} channels each. If the data is channels-first \
                     (as PyTorch stores it), transpose each sample to [{h}, {w}, {c}]."
                ));
            }
        }
    }
    if multi_hot > 1 && loss.kind() == LossKind::Binary && activation == Activation::Softmax {
        out.push(format!(
            "{} on a softmax output, but label rows have up to {multi_hot} positive tags: softmax makes the outputs \
             compete (they sum to 1), so independent tags cannot all be predicted. For multi-label targets use \
             sigmoid outputs with binary_crossentropy.",
            loss.name()
        ));
    }
    if multi_hot > 1 && loss.kind() == LossKind::Categorical {
        out.push(format!(
            "categorical_crossentropy treats each row as one class, but label rows have up to {multi_hot} positive \
             tags (multi-hot). For multi-label targets use sigmoid outputs with binary_crossentropy."
        ));
    }
    out
}

/// The most entries above 0.5 in any label row.
fn max_positives(y: &Tensor) -> usize {
    (0..y.rows())
        .map(|i| y.row(i).iter().filter(|&&v| v > 0.5).count())
        .max()
        .unwrap_or(0)
}
