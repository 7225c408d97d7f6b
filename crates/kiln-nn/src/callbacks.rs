//! Callbacks: code that runs between epochs and may stop training or touch the weights.

use std::sync::{Arc, Mutex};

use kiln_graph::{Error, Result};

use crate::model::Training;
use crate::Weight;

/// Whether training goes on after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Something to run between epochs, as Keras' `Callback`.
pub trait Callback: Send {
    /// After epoch `epoch` (1-based) with its logs: `loss`, each metric, and `val_` versions.
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control>;

    /// When training ends, early or not.
    fn on_train_end(&mut self, _training: &mut Training<'_>) -> Result<()> {
        Ok(())
    }
}

/// A callback shared between the fit options and the caller, who can inspect it afterwards.
pub type SharedCallback = Arc<Mutex<dyn Callback>>;

/// Stops training when a monitored value has stopped improving, as Keras' `EarlyStopping`.
#[derive(Debug)]
pub struct EarlyStopping {
    monitor: String,
    patience: usize,
    min_delta: f32,
    restore_best_weights: bool,
    best: Option<f32>,
    best_weights: Option<Vec<Weight>>,
    wait: usize,
    /// The epoch whose weights were best (1-based), once known.
    pub best_epoch: Option<usize>,
    /// The epoch after which training stopped, if it stopped early.
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watches `monitor` (e.g. `val_loss`); lower is better, except for names that are scores
    /// (accuracy, auc, precision, recall, f1), where higher is.
    pub fn new(monitor: &str) -> Self {
        EarlyStopping {
            monitor: monitor.to_string(),
            patience: 0,
            min_delta: 0.0,
            restore_best_weights: false,
            best: None,
            best_weights: None,
            wait: 0,
            best_epoch: None,
            stopped_epoch: None,
        }
    }

    /// Epochs without improvement to wait before stopping.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The least change that counts as an improvement.
    pub fn min_delta(mut self, delta: f32) -> Self {
        self.min_delta = delta.abs();
        self
    }

    /// Put back the weights of the best epoch when training ends (reads the weights from the
    /// device at each improvement).
    pub fn restore_best_weights(mut self) -> Self {
        self.restore_best_weights = true;
        self
    }

    fn higher_is_better(&self) -> bool {
        ["acc", "auc", "precision", "recall", "f1"]
            .iter()
            .any(|s| self.monitor.contains(s))
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        let value = logs
            .iter()
            .find(|(n, _)| *n == self.monitor)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = logs.iter().map(|(n, _)| n.as_str()).collect();
                Error::invalid(
                    "EarlyStopping",
                    format!("monitors `{}`, but the epoch logs hold {names:?}", self.monitor),
                )
            })?;
        let improved = match self.best {
            None => true,
            Some(best) if self.higher_is_better() => value > best + self.min_delta,
            Some(best) => value < best - self.min_delta,
        };
        if improved {
            self.best = Some(value);
            self.best_epoch = Some(epoch);
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(training.weights()?);
            }
            return Ok(Control::Continue);
        }
        self.wait += 1;
        if self.wait >= self.patience {
            self.stopped_epoch = Some(epoch);
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, training: &mut Training<'_>) -> Result<()> {
        if let Some(weights) = self.best_weights.take() {
            training.set_weights(&weights)?;
        }
        Ok(())
    }
}
