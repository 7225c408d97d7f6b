//! The training loop: `fit` and its options, with the callbacks' hooks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kiln_data::Tensor;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::callbacks::{Callback, Control, SharedCallback};
use crate::engine::{Batch, Inputs, Mode};
use crate::feeds::Feed;
use crate::model::Training;
use crate::progress::EpochProgress;
use crate::{Error, Result};
use crate::{History, LearningRate, Metric, Model};

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
    /// Stop with [`Error::Diverged`] at the end of the first epoch whose loss is not finite, the
    /// model rolled back to the weights it had when that epoch began (on by default; Keras'
    /// `TerminateOnNaN` is opt-in).
    pub terminate_on_nan: bool,
    /// One loss weight per sample (Keras' `sample_weight`): `[N]` or `[N, 1]`, finite and ≥ 0.
    pub sample_weight: Option<Tensor>,
    /// A loss weight per class index (Keras' `class_weight`); classes not listed weigh 1.
    pub class_weight: Option<BTreeMap<usize, f32>>,
    /// Batches per epoch (Keras' `steps_per_epoch`); see [`FitOptions::steps_per_epoch`].
    pub steps_per_epoch: Option<usize>,
    /// Validate every this many epochs (Keras' `validation_freq`, default 1); see
    /// [`FitOptions::validation_freq`].
    pub validation_freq: usize,
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
            terminate_on_nan: true,
            sample_weight: None,
            class_weight: None,
            steps_per_epoch: None,
            validation_freq: 1,
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

    /// Whether fit stops at the first epoch whose loss is not finite (see
    /// [`FitOptions::terminate_on_nan`]; on by default).
    pub fn terminate_on_nan(mut self, on: bool) -> Self {
        self.terminate_on_nan = on;
        self
    }

    /// Records every batch's loss.
    pub fn record_batch_loss(mut self) -> Self {
        self.record_batch_loss = true;
        self
    }

    /// Runs `steps` batches per epoch, as Keras 3 does for arrays: an epoch takes the next `steps`
    /// batches of the current pass over the (shuffled) samples, cut short where the pass ends, and
    /// the next epoch starts a new, reshuffled pass.
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// Validates only after epochs whose number is a multiple of `every` (Keras'
    /// `validation_freq`, with 1-based epochs): the `val_` series in the history are then shorter
    /// than the others, and [`History::validation_epochs`] says which epoch each value is from.
    /// Callbacks monitoring a `val_` value skip the epochs without one, as Keras' do.
    pub fn validation_freq(mut self, every: usize) -> Self {
        self.validation_freq = every;
        self
    }

    /// Weighs each sample's loss, as Keras' `fit(sample_weight=…)`: the batch loss is
    /// `Σᵢ wᵢ·lᵢ / N`. Metrics stay unweighted (Keras weighs only its `weighted_metrics`).
    pub fn sample_weight(mut self, weights: Tensor) -> Self {
        self.sample_weight = Some(weights);
        self
    }

    /// Weighs each sample's loss by its class, as Keras' `fit(class_weight=…)`: integer labels
    /// directly, one-hot rows through `argmax`, a single 0/1 column by rounding.
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f32)>) -> Self {
        self.class_weight = Some(weights.into_iter().collect());
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
            .field("terminate_on_nan", &self.terminate_on_nan)
            .field(
                "sample_weight",
                &self.sample_weight.as_ref().map(|w| w.shape().to_vec()),
            )
            .field("class_weight", &self.class_weight)
            .field("steps_per_epoch", &self.steps_per_epoch)
            .field("validation_freq", &self.validation_freq)
            .finish()
    }
}

impl Model {
    /// Trains for `options.epochs` passes over `(x, y)`; `x` has one array per model input.
    pub fn fit<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor, options: &FitOptions) -> Result<History> {
        let x = x.into();
        let c = self.compiled("fit")?;
        if options.batch_size == 0 {
            return Err(Error::invalid("fit", "batch_size must be at least 1"));
        }
        if !(0.0..1.0).contains(&options.validation_split) {
            return Err(Error::invalid(
                "fit",
                format!("validation_split {} is not in [0, 1)", options.validation_split),
            ));
        }
        c.check_data("fit", &x, Some(y))?;
        let weights =
            crate::weights::per_sample("fit", y, options.sample_weight.as_ref(), options.class_weight.as_ref())?;
        let mode = if weights.is_some() {
            Mode::TrainWeighted
        } else {
            Mode::Train
        };
        // Keras holds out the last samples, before shuffling.
        let held_out = match (&options.validation_data, options.validation_split) {
            (None, split) if split > 0.0 => {
                let n = y.rows();
                let cut = ((n as f32) * (1.0 - split)) as usize;
                if cut == 0 || cut == n {
                    return Err(Error::Data(format!(
                        "fit: validation_split {split} of {n} samples leaves one side empty"
                    )));
                }
                let xs: Vec<Tensor> = x.0.iter().map(|t| t.slice_rows(cut..n)).collect();
                Some((xs, y.slice_rows(cut..n), cut))
            }
            _ => None,
        };
        let (n, validation): (usize, Option<(Vec<Tensor>, Tensor)>) = match (held_out, &options.validation_data) {
            (Some((xs, vy, cut)), _) => (cut, Some((xs, vy))),
            (None, Some((vx, vy))) => (y.rows(), Some((vec![vx.clone()], vy.clone()))),
            (None, None) => (y.rows(), None),
        };
        if let Some((vx, vy)) = &validation {
            c.check_data("fit validation data", &Inputs::from(vx), Some(vy))?;
        }
        let validates = validation.is_some();
        let mut order: Vec<usize> = (0..n).collect();
        let mut history = History {
            warnings: crate::doctor::warnings(
                &c.loss,
                c.last_activation,
                y,
                &c.input_shapes,
                c.metrics
                    .iter()
                    .any(|(_, m, ..)| matches!(m, Metric::BinaryAccuracy { .. })),
            ),
            first_epoch: options.initial_epoch + 1,
            ..History::default()
        };
        history
            .warnings
            .extend(crate::weights::multi_hot_warning(y, options.class_weight.as_ref()));
        for w in &history.warnings {
            eprintln!("warning: {w}");
        }
        let mut batch = Batch::new(x.0.len());
        let mut batch_weights = Vec::with_capacity(options.batch_size.min(n));
        let batches = n.div_ceil(options.batch_size);
        // Across processes every step is a collective: each must run as many.
        c.replicas.check_agreed("batches per epoch", batches)?;
        if options.steps_per_epoch == Some(0) {
            return Err(Error::invalid("fit", "steps_per_epoch must be at least 1"));
        }
        if options.validation_freq == 0 {
            return Err(Error::invalid("fit", "validation_freq must be at least 1"));
        }
        // The rate is logged each epoch when it can change: under a schedule or a rate callback.
        let mut record_lr = matches!(c.optimizer.learning_rate(), LearningRate::Schedule(_));
        for_each_callback(&options.callbacks, |cb| {
            record_lr |= cb.changes_learning_rate();
            Ok(())
        })?;
        for_each_callback(&options.callbacks, |cb| {
            cb.on_train_begin(&mut Training { c: &mut *c, validates })
        })?;
        // A callback that restored a backup (BackupAndRestore) moves the start past its epoch.
        let first_epoch = options.initial_epoch.max(c.resumed_epoch.take().unwrap_or(0)) + 1;
        history.first_epoch = first_epoch;
        for epoch in first_epoch..=options.epochs {
            for_each_callback(&options.callbacks, |cb| {
                cb.on_epoch_begin(epoch, &mut Training { c: &mut *c, validates })
            })?;
            let window = EpochWindow::of(epoch, batches, options.steps_per_epoch);
            let steps = window.batches;
            let mut progress = EpochProgress::start(options.verbose, epoch, options.epochs, steps);
            c.reset_accumulators()?;
            // The state this epoch starts from, kept on the device to roll back to if it diverges.
            let first_step = c.step + 1;
            if options.terminate_on_nan {
                c.replicas.keep_restore_point()?;
            }
            if options.shuffle {
                // Each pass's order depends only on (seed, pass), so a resumed run shuffles
                // exactly as an uninterrupted one (a pass is an epoch without steps_per_epoch).
                let pass = window.pass as u64 + 1;
                let mut rng = StdRng::seed_from_u64(options.seed ^ pass.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.shuffle(&mut rng);
            }
            let mut counts = Vec::new();
            let mut seen = 0;
            let chunks = order.chunks(options.batch_size).skip(window.first).take(window.batches);
            for (index, chunk) in chunks.enumerate() {
                seen += chunk.len();
                let plan = c.plan(c.replica_mode(mode), c.first_shard(chunk.len()))?;
                batch.gather(&x, Some(y), chunk);
                let step = c.next_step(chunk.len());
                if let Some(w) = &weights {
                    batch_weights.clear();
                    batch_weights.extend(chunk.iter().map(|&i| w[i]));
                }
                let wants_loss = options.record_batch_loss || progress.wants_loss();
                let loss = if c.is_replicated() {
                    let weights = weights.as_ref().map(|_| batch_weights.as_slice());
                    let (loss, _) = c.train_sharded(&batch, weights, chunk.len(), step, false)?;
                    wants_loss.then_some(loss)
                } else {
                    let mut feeds = batch.feeds(&c.input_names);
                    step.add_to(&mut feeds);
                    if weights.is_some() {
                        feeds.push((Feed::SAMPLE_WEIGHT, &batch_weights));
                    }
                    let session = c.replicas.primary();
                    session.run(plan.id, &feeds)?;
                    wants_loss
                        .then(|| session.read_outputs(plan.id).map(|o| o[0][0]))
                        .transpose()?
                };
                if options.record_batch_loss {
                    history.batch_loss.extend(loss);
                }
                progress.step(loss);
                counts = plan.metric_counts;
                for_each_callback(&options.callbacks, |cb| {
                    cb.on_batch_end(epoch, index, &mut Training { c: &mut *c, validates })
                })?;
            }
            let mut logs = c.read_accumulators(seen, &counts)?;
            if options.terminate_on_nan {
                if let Some(&(_, loss)) = logs.iter().find(|(name, v)| name == "loss" && !v.is_finite()) {
                    progress.finish(options.verbose, &logs);
                    c.replicas.restore()?;
                    c.step = first_step - 1;
                    return Err(diverged(epoch, first_step..=c.step + steps as u64, loss, &c.optimizer));
                }
            }
            if record_lr {
                // The rate of the epoch's last update.
                logs.push(("learning_rate".into(), c.optimizer.learning_rate().at(c.step) as f32));
            }
            match &validation {
                Some((vx, vy)) if epoch % options.validation_freq == 0 => {
                    let val = c.run_evaluation(&Inputs::from(vx), vy, options.batch_size, None)?;
                    logs.extend(val.values.into_iter().map(|(name, v)| (format!("val_{name}"), v)));
                    history.validation_epochs.push(epoch);
                }
                _ => {}
            }
            for (name, value) in &logs {
                history.push(name, *value);
            }
            c.epoch = epoch;
            progress.finish(options.verbose, &logs);
            let mut stop = false;
            for_each_callback(&options.callbacks, |cb| {
                stop |= cb.on_epoch_end(epoch, &logs, &mut Training { c: &mut *c, validates })? == Control::Stop;
                Ok(())
            })?;
            if stop {
                history.stopped_at = Some(epoch);
                break;
            }
        }
        // The doctor's after-fit check: BatchNormalization statistics that lag the weights.
        let lagging = c.moving_statistics_warnings(&x, &order, options.batch_size)?;
        for w in &lagging {
            eprintln!("warning: {w}");
        }
        history.warnings.extend(lagging);
        for_each_callback(&options.callbacks, |cb| {
            cb.on_train_end(&mut Training { c: &mut *c, validates })
        })?;
        Ok(history)
    }
}

/// The batches an epoch runs: Keras 3's `EpochIterator` with `steps_per_epoch` keeps one pass over
/// the data going across epochs and cuts an epoch short where the pass ends
/// (keras/src/trainers/epoch_iterator.py); without it every epoch is one whole pass.
struct EpochWindow {
    /// Which pass over the data (0-based): what the shuffle is seeded with.
    pass: usize,
    /// The pass's first batch this epoch runs.
    first: usize,
    batches: usize,
}

impl EpochWindow {
    /// The window of 1-based `epoch` over passes of `batches` batches, worked out from epoch 1 so
    /// a resumed run continues where the uninterrupted one would be.
    fn of(epoch: usize, batches: usize, steps_per_epoch: Option<usize>) -> Self {
        let Some(k) = steps_per_epoch else {
            return EpochWindow {
                pass: epoch - 1,
                first: 0,
                batches,
            };
        };
        let (mut pass, mut first) = (0, 0);
        for _ in 1..epoch {
            first += k.min(batches - first);
            if first >= batches {
                (pass, first) = (pass + 1, 0);
            }
        }
        EpochWindow {
            pass,
            first,
            batches: k.min(batches - first),
        }
    }
}

/// Runs `f` on every callback, in order.
fn for_each_callback(callbacks: &[SharedCallback], mut f: impl FnMut(&mut dyn Callback) -> Result<()>) -> Result<()> {
    for cb in callbacks {
        let mut cb = cb
            .lock()
            .map_err(|_| Error::invalid("fit", "a callback panicked earlier"))?;
        f(&mut *cb)?;
    }
    Ok(())
}

/// The error of a diverged epoch: where, how, and what to try.
fn diverged(epoch: usize, steps: std::ops::RangeInclusive<u64>, loss: f32, optimizer: &crate::Optimizer) -> Error {
    Error::Diverged(format!(
        "fit: the loss became {loss} in epoch {epoch} (steps {}..={}, learning rate {}): training diverged. \
         The model keeps the weights it had when epoch {epoch} began. Lower the learning rate, clip the \
         gradients, or check the data and class weights for NaN, infinite or extreme values \
         (FitOptions::terminate_on_nan(false) trains on regardless).",
        steps.start(),
        steps.end(),
        optimizer.learning_rate().at(*steps.end())
    ))
}
