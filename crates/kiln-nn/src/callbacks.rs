//! Callbacks: code that runs between epochs and may stop training or touch the weights.

use std::sync::{Arc, Mutex};

use crate::model::Training;
use crate::Weight;
use crate::{Error, Result};

/// Whether training goes on after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Something to run between epochs, as Keras' `Callback`.
pub trait Callback: Send {
    /// Before epoch `epoch` (1-based) runs.
    fn on_epoch_begin(&mut self, _epoch: usize, _training: &mut Training<'_>) -> Result<()> {
        Ok(())
    }

    /// After epoch `epoch` (1-based) with its logs: `loss`, each metric, and `val_` versions.
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control>;

    /// Whether the callback may change the learning rate; `fit` then records `learning_rate` in
    /// the logs and the history every epoch, as Keras' rate callbacks do.
    fn changes_learning_rate(&self) -> bool {
        false
    }

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
}

/// Whether a larger value of the logged quantity `monitor` is better: scores (accuracy, auc,
/// precision, recall, f1) yes, losses and errors no.
fn higher_is_better(monitor: &str) -> bool {
    ["acc", "auc", "precision", "recall", "f1"]
        .iter()
        .any(|s| monitor.contains(s))
}

/// The value of `monitor` in the epoch logs, or an error from `who` listing what there is.
fn monitored(logs: &[(String, f32)], monitor: &str, who: &str) -> Result<f32> {
    logs.iter().find(|(n, _)| n == monitor).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = logs.iter().map(|(n, _)| n.as_str()).collect();
        Error::invalid(who, format!("monitors `{monitor}`, but the epoch logs hold {names:?}"))
    })
}

/// Whether `value` beats `best` by more than `min_delta` in the monitor's direction.
/// A non-finite value never improves on anything, so no callback keeps a diverged epoch as "best".
fn improves(monitor: &str, best: Option<f32>, value: f32, min_delta: f32) -> bool {
    if !value.is_finite() {
        return false;
    }
    match best {
        None => true,
        Some(best) if higher_is_better(monitor) => value > best + min_delta,
        Some(best) => value < best - min_delta,
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        let value = monitored(logs, &self.monitor, "EarlyStopping")?;
        if improves(&self.monitor, self.best, value, self.min_delta) {
            // Weights that are not finite (set by another callback, say) are never the best.
            // `None`: not a best after all; `Some(None)`: a best whose weights are not kept.
            let weights = if self.restore_best_weights {
                let w = training.weights()?;
                w.iter()
                    .all(|w| w.values.iter().all(|v| v.is_finite()))
                    .then_some(Some(w))
            } else {
                Some(None)
            };
            if let Some(weights) = weights {
                self.best = Some(value);
                self.best_epoch = Some(epoch);
                self.wait = 0;
                self.best_weights = weights;
                return Ok(Control::Continue);
            }
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

/// Saves the model during training, as Keras' `ModelCheckpoint`: after every epoch, or only when
/// the monitored value improves. `{epoch}` in the path becomes the epoch number. Each save is
/// atomic, so the last good checkpoint survives a crash mid-save.
#[derive(Debug)]
pub struct ModelCheckpoint {
    path: String,
    monitor: String,
    best_only: bool,
    best: Option<f32>,
    /// Epochs whose checkpoint was written.
    pub saved_epochs: Vec<usize>,
}

impl ModelCheckpoint {
    /// Saves the whole model (see [`crate::Model::save`]) to `path` after every epoch.
    pub fn new(path: impl Into<String>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: "val_loss".into(),
            best_only: false,
            best: None,
            saved_epochs: Vec::new(),
        }
    }

    /// Saves only when `monitor` (e.g. `val_loss`, `val_accuracy`) improves on its best so far.
    pub fn save_best_only(mut self, monitor: &str) -> Self {
        self.monitor = monitor.to_string();
        self.best_only = true;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        // A diverged epoch (fit run with `terminate_on_nan(false)`) must not replace a good file.
        if logs.iter().any(|(name, v)| name.ends_with("loss") && !v.is_finite()) {
            return Ok(Control::Continue);
        }
        if self.best_only {
            let value = monitored(logs, &self.monitor, "ModelCheckpoint")?;
            if !improves(&self.monitor, self.best, value, 0.0) {
                return Ok(Control::Continue);
            }
            self.best = Some(value);
        }
        let path = self.path.replace("{epoch}", &epoch.to_string());
        training.save(std::path::Path::new(&path))?;
        self.saved_epochs.push(epoch);
        Ok(Control::Continue)
    }
}

/// Lowers the learning rate when a monitored value stops improving, as Keras'
/// `ReduceLROnPlateau` (keras/src/callbacks/reduce_lr_on_plateau.py): after `patience` epochs
/// without an improvement larger than `min_delta`, the rate becomes `max(rate · factor, min_lr)`,
/// then `cooldown` epochs pass before waiting starts again. Keras' defaults: `val_loss`, factor
/// 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0. The rate must be a constant, not a
/// schedule (Keras refuses the same).
#[derive(Debug)]
pub struct ReduceLROnPlateau {
    monitor: String,
    factor: f32,
    patience: usize,
    min_delta: f32,
    cooldown: usize,
    min_lr: f32,
    best: Option<f32>,
    wait: usize,
    cooldown_left: usize,
    /// `(epoch, new rate)` of every reduction made.
    pub reductions: Vec<(usize, f32)>,
}

impl ReduceLROnPlateau {
    /// Watches `monitor` with Keras' defaults; a name that is a score (accuracy, auc, ...) must
    /// rise, any other fall.
    pub fn new(monitor: &str) -> Self {
        ReduceLROnPlateau {
            monitor: monitor.to_string(),
            factor: 0.1,
            patience: 10,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: None,
            wait: 0,
            cooldown_left: 0,
            reductions: Vec::new(),
        }
    }

    /// The factor the rate is multiplied by, in (0, 1).
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before a reduction.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The least change that counts as an improvement.
    pub fn min_delta(mut self, delta: f32) -> Self {
        self.min_delta = delta.abs();
        self
    }

    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, epochs: usize) -> Self {
        self.cooldown = epochs;
        self
    }

    /// The rate is never lowered below this.
    pub fn min_lr(mut self, rate: f32) -> Self {
        self.min_lr = rate;
        self
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::invalid(
                "ReduceLROnPlateau",
                format!("factor {} is not in (0, 1) (Keras' default: 0.1)", self.factor),
            ));
        }
        let value = monitored(logs, &self.monitor, "ReduceLROnPlateau")?;
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.wait = 0;
        }
        if improves(&self.monitor, self.best, value, self.min_delta) {
            self.best = Some(value);
            self.wait = 0;
        } else if self.cooldown_left == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = training.learning_rate() as f32;
                if old > self.min_lr {
                    let new = (old * self.factor).max(self.min_lr);
                    training.set_learning_rate(new)?;
                    self.reductions.push((epoch, new));
                    self.cooldown_left = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(Control::Continue)
    }

    fn changes_learning_rate(&self) -> bool {
        true
    }
}

/// Sets the learning rate before every epoch from a function of the epoch (0-based, as Keras
/// passes it) and the current rate, as Keras' `LearningRateScheduler`.
pub struct LearningRateScheduler {
    schedule: Box<dyn FnMut(usize, f32) -> f32 + Send>,
}

impl LearningRateScheduler {
    /// Calls `schedule(epoch, rate)` before each epoch and trains that epoch at the rate it
    /// returns.
    pub fn new(schedule: impl FnMut(usize, f32) -> f32 + Send + 'static) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
        }
    }
}

impl std::fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LearningRateScheduler")
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, training: &mut Training<'_>) -> Result<()> {
        let rate = (self.schedule)(epoch - 1, training.learning_rate() as f32);
        training.set_learning_rate(rate)
    }

    fn on_epoch_end(&mut self, _: usize, _: &[(String, f32)], _: &mut Training<'_>) -> Result<Control> {
        Ok(Control::Continue)
    }

    fn changes_learning_rate(&self) -> bool {
        true
    }
}
