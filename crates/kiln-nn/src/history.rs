//! What fit reports: every metric per epoch, and optionally every batch's loss.

use std::fmt;

use crate::ConfusionMatrix;

/// Training history, as Keras' `History.history`: `loss`, each metric, and `val_` versions when
/// validation data was given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// `(name, value per epoch)`, in the order the names first appeared.
    pub metrics: Vec<(String, Vec<f32>)>,
    /// The loss of every training batch, when [`crate::FitOptions::record_batch_loss`] is set.
    pub batch_loss: Vec<f32>,
    /// The doctor's warnings about this run (also printed once when fit starts).
    pub warnings: Vec<String>,
    /// The epoch after which a callback stopped training early, if one did.
    pub stopped_at: Option<usize>,
    /// Number of the first recorded epoch (1, or `initial_epoch + 1` when resumed).
    pub first_epoch: usize,
    /// The epochs that validated, in order: the `val_` series hold one value for each (every
    /// epoch unless [`crate::FitOptions::validation_freq`] is above 1).
    pub validation_epochs: Vec<usize>,
}

impl History {
    /// Values of `name` per epoch.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The last epoch's value of `name`.
    pub fn last(&self, name: &str) -> Option<f32> {
        self.get(name).and_then(|v| v.last().copied())
    }

    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.metrics.first().map_or(0, |(_, v)| v.len())
    }

    pub(crate) fn push(&mut self, name: &str, value: f32) {
        match self.metrics.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(value),
            None => self.metrics.push((name.to_string(), vec![value])),
        }
    }
}

/// Loss and metrics of one pass over a dataset (`evaluate`), in compile order, and a classifier's
/// confusion matrices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub values: Vec<(String, f32)>,
    /// For a classifier: one `classes × classes` matrix (softmax outputs), or one 2×2 matrix per
    /// label (sigmoid outputs); empty for regression and beyond
    /// [`crate::MAX_CONFUSION_CLASSES`] classes.
    pub confusion: Vec<ConfusionMatrix>,
}

impl Evaluation {
    /// The value of `name` (`loss`, `accuracy`, ...).
    pub fn get(&self, name: &str) -> Option<f32> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The loss (`evaluate` always reports it); NaN for an evaluation built by hand without one.
    pub fn loss(&self) -> f32 {
        self.get("loss").unwrap_or(f32::NAN)
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.values.iter().map(|(n, v)| format!("{n}: {v:.4}")).collect();
        f.write_str(&parts.join(" - "))
    }
}
