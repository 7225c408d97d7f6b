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
    /// When `fit` starts, before the first epoch.
    fn on_train_begin(&mut self, _training: &mut Training<'_>) -> Result<()> {
        Ok(())
    }

    /// Before epoch `epoch` (1-based) runs.
    fn on_epoch_begin(&mut self, _epoch: usize, _training: &mut Training<'_>) -> Result<()> {
        Ok(())
    }

    /// After training batch `batch` (0-based within the epoch) of epoch `epoch`. The batch loss is
    /// not read back here: that would cost a device round trip every step.
    fn on_batch_end(&mut self, _epoch: usize, _batch: usize, _training: &mut Training<'_>) -> Result<()> {
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

/// The value of `monitor` in the epoch logs; `None` for a `val_` value in an epoch of a validating
/// fit that did not validate (`FitOptions::validation_freq`), which the callback skips as Keras'
/// do; an error from `who` listing what there is when the name is not logged.
fn monitored(logs: &[(String, f32)], monitor: &str, who: &str, training: &Training<'_>) -> Result<Option<f32>> {
    if let Some((_, v)) = logs.iter().find(|(n, _)| n == monitor) {
        return Ok(Some(*v));
    }
    let skipped = training.validates() && !logs.iter().any(|(n, _)| n.starts_with("val_"));
    if monitor.starts_with("val_") && skipped {
        return Ok(None);
    }
    let names: Vec<&str> = logs.iter().map(|(n, _)| n.as_str()).collect();
    Err(Error::invalid(
        who,
        format!("monitors `{monitor}`, but the epoch logs hold {names:?}"),
    ))
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
        let Some(value) = monitored(logs, &self.monitor, "EarlyStopping", training)? else {
            return Ok(Control::Continue);
        };
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
            let Some(value) = monitored(logs, &self.monitor, "ModelCheckpoint", training)? else {
                return Ok(Control::Continue);
            };
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
        let Some(value) = monitored(logs, &self.monitor, "ReduceLROnPlateau", training)? else {
            return Ok(Control::Continue);
        };
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

/// Stops training after an epoch whose loss is NaN or infinite, as Keras' `TerminateOnNaN`; for
/// runs that turned off `fit`'s own stop ([`crate::FitOptions::terminate_on_nan`]), which also rolls
/// the weights back. Keras checks every batch; this checks the epoch's loss, since a per-batch
/// check would read the loss back from the device every step.
#[derive(Debug, Default)]
pub struct TerminateOnNaN {
    /// The epoch after which it stopped training, if it did.
    pub stopped_epoch: Option<usize>,
}

impl TerminateOnNaN {
    /// The callback.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Callback for TerminateOnNaN {
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], _: &mut Training<'_>) -> Result<Control> {
        if logs.iter().any(|(name, v)| name == "loss" && !v.is_finite()) {
            eprintln!("Epoch {epoch}: invalid loss, terminating training");
            self.stopped_epoch = Some(epoch);
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }
}

type EpochHook = Box<dyn FnMut(usize) + Send>;
type EpochEndHook = Box<dyn FnMut(usize, &[(String, f32)]) + Send>;

/// A callback from closures, as Keras' `LambdaCallback`: each hook is optional.
#[derive(Default)]
pub struct LambdaCallback {
    train_begin: Option<Box<dyn FnMut() + Send>>,
    epoch_begin: Option<EpochHook>,
    epoch_end: Option<EpochEndHook>,
    train_end: Option<Box<dyn FnMut() + Send>>,
}

impl LambdaCallback {
    /// A callback that does nothing until given hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Called when training starts.
    pub fn on_train_begin(mut self, f: impl FnMut() + Send + 'static) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }

    /// Called with the epoch (1-based) before it runs.
    pub fn on_epoch_begin(mut self, f: impl FnMut(usize) + Send + 'static) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }

    /// Called with the epoch (1-based) and its logs after it ran.
    pub fn on_epoch_end(mut self, f: impl FnMut(usize, &[(String, f32)]) + Send + 'static) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }

    /// Called when training ends.
    pub fn on_train_end(mut self, f: impl FnMut() + Send + 'static) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
}

impl std::fmt::Debug for LambdaCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LambdaCallback")
    }
}

impl Callback for LambdaCallback {
    fn on_train_begin(&mut self, _: &mut Training<'_>) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f();
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: usize, _: &mut Training<'_>) -> Result<()> {
        if let Some(f) = &mut self.epoch_begin {
            f(epoch);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], _: &mut Training<'_>) -> Result<Control> {
        if let Some(f) = &mut self.epoch_end {
            f(epoch, logs);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _: &mut Training<'_>) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f();
        }
        Ok(())
    }
}

/// Streams each epoch's logs to a CSV file, as Keras' `CSVLogger`: a header `epoch,` then the log
/// names sorted, one row per epoch with Keras' 0-based epoch index, flushed every epoch so the
/// file is current if training dies. `append` continues an existing file (a resumed run). When a
/// later epoch logs names the first did not (validation every few epochs), a file this run started
/// is rewritten with the wider header, earlier rows left blank there (Keras drops such columns).
#[derive(Debug)]
pub struct CsvLogger {
    path: std::path::PathBuf,
    separator: char,
    append: bool,
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// The columns after `epoch`: this run's log names, sorted.
    keys: Vec<String>,
    /// This run's rows, `(epoch, logs)`, kept to rewrite the file when columns are added.
    rows: Vec<(usize, Vec<(String, f32)>)>,
    /// Whether this run started the file (not appending to rows already there): only then is it
    /// rewritten, and it needs a header.
    owns_file: bool,
}

impl CsvLogger {
    /// Writes to `path`, replacing it when training starts.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            separator: ',',
            append: false,
            file: None,
            keys: Vec::new(),
            rows: Vec::new(),
            owns_file: true,
        }
    }

    /// Appends to the file instead of replacing it.
    pub fn append(mut self) -> Self {
        self.append = true;
        self
    }

    /// The field separator (Keras' default ',').
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// One row: Keras' 0-based epoch index, then the value of each column (blank when not logged).
    fn row(&self, epoch: usize, logs: &[(String, f32)]) -> String {
        let value = |k: &String| {
            logs.iter()
                .find(|(n, _)| n == k)
                .map_or(String::new(), |(_, v)| v.to_string())
        };
        let row: Vec<String> = std::iter::once((epoch - 1).to_string())
            .chain(self.keys.iter().map(value))
            .collect();
        row.join(&self.separator.to_string()) + "\n"
    }

    fn header(&self) -> String {
        let header: Vec<&str> = std::iter::once("epoch")
            .chain(self.keys.iter().map(String::as_str))
            .collect();
        header.join(&self.separator.to_string()) + "\n"
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _: &mut Training<'_>) -> Result<()> {
        let has_rows = self.append && std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.file = Some(std::io::BufWriter::new(file));
        self.keys.clear();
        self.rows.clear();
        self.owns_file = !has_rows;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], _: &mut Training<'_>) -> Result<Control> {
        use std::io::{Seek, Write};
        let first = self.rows.is_empty();
        let new_keys = logs.iter().any(|(n, _)| !self.keys.contains(n));
        self.rows.push((epoch, logs.to_vec()));
        let lines = if first || (new_keys && self.owns_file) {
            self.keys.extend(logs.iter().map(|(n, _)| n.clone()));
            self.keys.sort();
            self.keys.dedup();
            let rows: String = self.rows.iter().map(|(e, logs)| self.row(*e, logs)).collect();
            if self.owns_file {
                self.header() + &rows
            } else {
                rows
            }
        } else {
            self.row(epoch, logs)
        };
        let rewrite = !first && new_keys && self.owns_file;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::invalid("CsvLogger", "the file was not opened: on_train_begin did not run"))?;
        let written = (|| {
            if rewrite {
                file.flush()?;
                file.get_ref().set_len(0)?;
                file.rewind()?;
            }
            file.write_all(lines.as_bytes())?;
            file.flush()
        })();
        written.map_err(|e| self.io(e))?;
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _: &mut Training<'_>) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

/// Resumes a `fit` that died, as Keras' `BackupAndRestore`: the model (weights, optimizer state,
/// step and epoch counts) is saved atomically to `dir/backup.safetensors` after every epoch; a
/// `fit` that starts while a backup is there restores it and carries on after its epoch, so a
/// killed run finishes with the weights an uninterrupted one would have. The backup is deleted when
/// training finishes (Keras' `delete_checkpoint=True`).
#[derive(Debug)]
pub struct BackupAndRestore {
    dir: std::path::PathBuf,
    /// The epoch the run resumed after, when it found a backup.
    pub resumed_after: Option<usize>,
}

impl BackupAndRestore {
    /// Backs up into the directory `dir` (created when needed).
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        BackupAndRestore {
            dir: dir.into(),
            resumed_after: None,
        }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.join("backup.safetensors")
    }
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, training: &mut Training<'_>) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::Io {
            path: self.dir.display().to_string(),
            message: e.to_string(),
        })?;
        if self.file().exists() {
            self.resumed_after = Some(training.restore_backup(&self.file())?);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        // A diverged epoch must not replace the last good backup.
        if logs.iter().all(|(_, v)| v.is_finite()) {
            training.save(&self.file())?;
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _: &mut Training<'_>) -> Result<()> {
        match std::fs::remove_file(self.file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                path: self.file().display().to_string(),
                message: e.to_string(),
            }),
            _ => Ok(()),
        }
    }
}
