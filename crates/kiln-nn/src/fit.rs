//! Options of `fit`.

use kiln_data::Tensor;

/// How `fit` runs. `FitOptions::default()` is Keras' `fit` defaults: 1 epoch, batch 32, shuffled.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Reshuffle the training samples every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling, so runs repeat exactly.
    pub seed: u64,
    /// 0 silent, 1 and 2 one line per epoch.
    pub verbose: u8,
    /// `(x, y)` evaluated at the end of every epoch into `val_` metrics.
    pub validation_data: Option<(Tensor, Tensor)>,
    /// Read every batch's loss back into [`crate::History::batch_loss`] (one sync per batch).
    pub record_batch_loss: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            verbose: 0,
            validation_data: None,
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

    /// Records every batch's loss.
    pub fn record_batch_loss(mut self) -> Self {
        self.record_batch_loss = true;
        self
    }
}
