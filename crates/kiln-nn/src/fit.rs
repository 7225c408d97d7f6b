//! Options of `fit`.

use std::sync::{Arc, Mutex};

use kiln_data::Tensor;

use crate::callbacks::{Callback, SharedCallback};

/// How `fit` runs. `FitOptions::default()` is Keras' `fit` defaults: 1 epoch, batch 32, shuffled.
#[derive(Clone)]
pub struct FitOptions {
    /// The epoch to stop after (Keras' `epochs`: with `initial_epoch` k, `epochs - k` are run).
    pub epochs: usize,
    /// Epochs already done, as a loaded checkpoint's [`crate::Model::epoch`] says: training
    /// resumes at epoch `initial_epoch + 1`, shuffled as that epoch would have been.
    pub initial_epoch: usize,
    pub batch_size: usize,
    /// Reshuffle the training samples every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling, so runs repeat exactly.
    pub seed: u64,
    /// 0 silent; 1 a live progress bar per epoch on a terminal (a line per epoch otherwise); 2 one
    /// line per epoch.
    pub verbose: u8,
    /// `(x, y)` evaluated at the end of every epoch into `val_` metrics.
    pub validation_data: Option<(Tensor, Tensor)>,
    /// Fraction of the samples, taken from the end before any shuffling, held out as validation
    /// data (as Keras does) when `validation_data` is not given.
    pub validation_split: f32,
    /// Run between epochs, in order.
    pub callbacks: Vec<SharedCallback>,
    /// Read every batch's loss back into [`crate::History::batch_loss`] (one sync per batch).
    pub record_batch_loss: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            initial_epoch: 0,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            verbose: 0,
            validation_data: None,
            validation_split: 0.0,
            callbacks: Vec::new(),
            record_batch_loss: false,
        }
    }
}

impl FitOptions {
    /// Default options with `epochs` and `batch_size` set.
    pub fn new(epochs: usize, batch_size: usize) -> Self {
        FitOptions {
            epochs,
            batch_size,
            ..Default::default()
        }
    }

    /// Resumes after `epoch` completed epochs (Keras' `initial_epoch`).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Sets the shuffle seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the verbosity.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Turns shuffling off.
    pub fn no_shuffle(mut self) -> Self {
        self.shuffle = false;
        self
    }

    /// Adds validation data.
    pub fn validation_data(mut self, x: Tensor, y: Tensor) -> Self {
        self.validation_data = Some((x, y));
        self
    }

    /// Holds out the last `fraction` of the samples as validation data.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Adds a callback; keep a clone of the `Arc` to inspect it after fit.
    pub fn callback(mut self, callback: Arc<Mutex<impl Callback + 'static>>) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// Records every batch's loss.
    pub fn record_batch_loss(mut self) -> Self {
        self.record_batch_loss = true;
        self
    }
}

impl std::fmt::Debug for FitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitOptions")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("verbose", &self.verbose)
            .field(
                "validation_data",
                &self.validation_data.as_ref().map(|(x, _)| x.shape().to_vec()),
            )
            .field("validation_split", &self.validation_split)
            .field("callbacks", &self.callbacks.len())
            .field("record_batch_loss", &self.record_batch_loss)
            .finish()
    }
}
