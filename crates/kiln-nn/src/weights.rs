//! `fit`'s `sample_weight` and `class_weight`, turned into one weight per training sample with
//! Keras' rules (keras/src/trainers/data_adapters/data_adapter_utils.py, `class_weight_to_sample_weights`).

use std::collections::BTreeMap;

use kiln_data::Tensor;

use crate::{Error, Result};

/// Per-sample weights for the labels `y`: the given `sample_weight`, or each sample's class
/// weight, or `None` when neither is set. Keras maps a label row to its class through `argmax`
/// for one-hot (or multi-hot) rows of more than one column, by rounding a single column, and
/// takes integer labels as they are; a class without a weight gets 1.
pub(crate) fn per_sample(
    context: &str,
    y: &Tensor,
    sample_weight: Option<&Tensor>,
    class_weight: Option<&BTreeMap<usize, f32>>,
) -> Result<Option<Vec<f32>>> {
    let n = y.rows();
    let weights = match (sample_weight, class_weight) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                context,
                "sample_weight and class_weight cannot both be set (Keras refuses the same); fold the class \
                 weights into the sample weights",
            ))
        }
        (None, None) => return Ok(None),
        (Some(w), None) => {
            if w.rows() != n || w.data().len() != n {
                return Err(Error::Data(format!(
                    "{context}: sample_weight has shape {:?}, but there are {n} samples: give one weight per sample",
                    w.shape()
                )));
            }
            w.data().to_vec()
        }
        (None, Some(classes)) => {
            if let Some((c, w)) = classes.iter().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
                return Err(Error::invalid(
                    context,
                    format!("class_weight for class {c} is {w}: class weights must be finite and ≥ 0"),
                ));
            }
            (0..n)
                .map(|i| classes.get(&class_of(y.row(i))).copied().unwrap_or(1.0))
                .collect()
        }
    };
    if let Some((i, w)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
        return Err(Error::Data(format!(
            "{context}: sample_weight of sample {i} is {w}: weights must be finite and ≥ 0"
        )));
    }
    Ok(Some(weights))
}

/// The class a label row stands for, by Keras' rule: the first largest entry of a row of several
/// columns, or the rounded value of a single one.
fn class_of(row: &[f32]) -> usize {
    match row {
        [v] => v.round().max(0.0) as usize,
        _ => {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |best, (i, &v)| if v > best.1 { (i, v) } else { best },
                )
                .0
        }
    }
}

/// The doctor's warning for class weights on multi-hot labels, where Keras' `argmax` rule counts
/// only the first positive tag of each row.
pub(crate) fn multi_hot_warning(y: &Tensor, class_weight: Option<&BTreeMap<usize, f32>>) -> Option<String> {
    class_weight?;
    let tags = (0..y.rows())
        .map(|i| y.row(i).iter().filter(|&&v| v > 0.5).count())
        .max()
        .unwrap_or(0);
    (tags > 1).then(|| {
        format!(
            "class_weight on multi-hot labels (up to {tags} positive tags per row): each sample is weighted by \
             the class of its first positive tag only (Keras' argmax rule), so the other tags' weights are \
             ignored. To weigh every label, use Loss::WeightedBinaryCrossentropy(weights per label)."
        )
    })
}
