//! Data-parallel training in one process: [`DataParallel`], and the sharded steps a model compiled
//! on it runs.
//!
//! Every replica holds the whole model. A batch is cut into one run of consecutive samples per
//! replica; each replica runs the gradient plan on its shard; the host averages the gradients,
//! weighting each replica by its share of the batch (so a last, shorter batch is exact); and every
//! replica runs the same update plan on that average, so the parameters stay identical without
//! being broadcast. Two submits per replica and step: gradients, then update.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use kiln_graph::{Backend, Collective, KernelTime, PersistentId, PersistentKind, PersistentSpec, Session};

use crate::engine::{Batch, CachedPlan, Compiled, Mode};
use crate::feeds::{Feed, StepFeeds};
use crate::replicas::Replicas;
use crate::{Error, Result};

/// Keras' `keras.distribution.DataParallel`: a model compiled on it keeps one replica per device
/// and trains each step on all of them, every replica on its own part of the batch. Devices may be
/// any mix of GPU adapters and CPU backends, the same one several times included.
///
/// Exactness: the averaged gradient is the whole batch's up to the order of the sums, and every
/// random mask (dropout, random flips) is drawn as the whole batch draws it, so training on
/// replicas follows training on one device to float rounding. BatchNormalization normalises each
/// replica's shard with that shard's own statistics, as Keras' data parallelism does; the moving
/// statistics are then averaged over the replicas (weighted by shard) after every step, so the
/// replicas stay identical and the moving mean is the whole batch's.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use kiln_graph::Backend;
/// # use kiln_nn::{Activation, DataParallel, Dense, Loss, Optimizer, Sequential};
/// # fn demo(gpu: Arc<dyn Backend>, cpu: Arc<dyn Backend>) -> kiln_nn::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([4])
///     .add(Dense::new(3).activation(Activation::Softmax));
/// // Half of every batch on the GPU, half on the CPU backend.
/// let devices = DataParallel::new(vec![gpu, cpu])?;
/// model.compile(&devices, Optimizer::adam(), Loss::SparseCategoricalCrossentropy, &[])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DataParallel {
    devices: Vec<Arc<dyn Backend>>,
    /// The other processes of the job, when it spans several.
    collective: Option<Arc<dyn Collective>>,
}

impl DataParallel {
    /// Replicas on `devices`, in order (the first is where reads of the model's state go).
    pub fn new(devices: Vec<Arc<dyn Backend>>) -> Result<Self> {
        if devices.is_empty() {
            return Err(Error::invalid("DataParallel", "needs at least one device"));
        }
        if devices.iter().any(|d| d.replicas().is_some()) {
            return Err(Error::invalid(
                "DataParallel",
                "a device is itself a DataParallel; list its devices directly",
            ));
        }
        Ok(DataParallel {
            devices,
            collective: None,
        })
    }

    /// The same replicas in every process of a job (MPI ranks: `kiln::mpi`): each step's gradients
    /// are averaged over every replica of every process, weighted by their samples. Each process
    /// trains on its own part of the data ([`kiln_data::rank_shard`]) with the same number of
    /// batches per epoch; the epoch's loss and metrics, and evaluations, are over all of them, so
    /// every process makes the same calls (`fit`, `evaluate`, `train_on_batch`) in the same order.
    /// `predict` stays local.
    pub fn across_processes(mut self, collective: Arc<dyn Collective>) -> Self {
        self.collective = Some(collective);
        self
    }

    /// `n` replicas of one device.
    pub fn replicate(device: impl Backend + Clone + 'static, n: usize) -> Result<Self> {
        Self::new((0..n).map(|_| Arc::new(device.clone()) as Arc<dyn Backend>).collect())
    }
}

impl Backend for DataParallel {
    fn name(&self) -> String {
        let names: Vec<String> = self.devices.iter().map(|d| d.name()).collect();
        format!(
            "data parallel over {} replicas: {}",
            self.devices.len(),
            names.join(", ")
        )
    }

    /// A session on the first device alone; a model compiled on a `DataParallel` opens one on
    /// every device instead (through [`Backend::replicas`]).
    fn new_session(&self, persistents: &[PersistentSpec]) -> kiln_graph::Result<Box<dyn Session>> {
        self.devices[0].new_session(persistents)
    }

    fn replicas(&self) -> Option<&[Arc<dyn Backend>]> {
        Some(&self.devices)
    }

    fn collective(&self) -> Option<Arc<dyn Collective>> {
        self.collective.clone()
    }
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataParallel({})", self.name())
    }
}

/// `rows` consecutive samples cut into one run per replica, the first `rows % replicas` runs one
/// longer than the rest (a replica gets an empty run when the batch has fewer samples than there
/// are replicas).
pub(crate) fn shards(rows: usize, replicas: usize) -> Vec<Range<usize>> {
    let (base, extra) = (rows / replicas, rows % replicas);
    let mut start = 0;
    (0..replicas)
        .map(|r| {
            let len = base + usize::from(r < extra);
            start += len;
            start - len..start
        })
        .collect()
}

/// A shard's feeds from the replica's index and its samples' range in the batch.
type ShardFeeds<'f, 'a> = &'f (dyn Fn(usize, &Range<usize>) -> Vec<(&'a str, &'a [f32])> + Sync);

/// What one replica's run of a sharded batch gave: its outputs, and its kernel times when profiled.
type ShardRun = Option<(Vec<Vec<f32>>, Option<Vec<KernelTime>>)>;

/// A feed's rows `rows` out of a staged batch of `total` samples.
fn rows_of<'a>(data: &'a [f32], total: usize, rows: &Range<usize>) -> &'a [f32] {
    let width = data.len() / total.max(1);
    &data[rows.start * width..rows.end * width]
}

/// The feeds of the samples `range` of a staged batch of `rows`: inputs, labels and, when given,
/// sample weights.
fn shard_of<'a>(
    names: &'a [String],
    batch: &'a Batch,
    weights: Option<&'a [f32]>,
    rows: usize,
    range: &Range<usize>,
) -> Vec<(&'a str, &'a [f32])> {
    let mut f: Vec<(&str, &[f32])> = names
        .iter()
        .zip(&batch.xs)
        .map(|(name, x)| (name.as_str(), rows_of(x, rows, range)))
        .collect();
    f.push((Feed::LABELS, rows_of(&batch.y, rows, range)));
    if let Some(w) = weights {
        f.push((Feed::SAMPLE_WEIGHT, &w[range.clone()]));
    }
    f
}

/// Runs each replica's plan of `plans` on its shard of `shards` at once: `feeds` gives a shard's
/// feeds from its replica and range. Outputs are read back when `read`; replica 0's kernels are
/// timed when `profile`. `None` for a replica with no samples.
fn run_on_shards<'a>(
    replicas: &mut Replicas,
    plans: &[Option<CachedPlan>],
    shards: &[Range<usize>],
    feeds: ShardFeeds<'_, 'a>,
    read: bool,
    profile: bool,
) -> Result<Vec<ShardRun>> {
    replicas.each(|r, session| {
        let Some(plan) = &plans[r] else { return Ok(None) };
        let feeds = feeds(r, &shards[r]);
        let times = if profile && r == 0 {
            session.profile(plan.id, &feeds)?
        } else {
            session.run(plan.id, &feeds)?;
            None
        };
        let outputs = if read {
            session.read_outputs(plan.id)?
        } else {
            Vec::new()
        };
        Ok(Some((outputs, times)))
    })
}

impl Compiled {
    /// Whether the model trains data-parallel (several replicas, or several processes).
    pub(crate) fn is_replicated(&self) -> bool {
        self.replicas.data_parallel()
    }

    /// The mode a replica runs for `mode`: a training step's gradients when the model is
    /// replicated (the update is a plan of its own), `mode` itself otherwise.
    pub(crate) fn replica_mode(&self, mode: Mode) -> Mode {
        match mode {
            Mode::Train if self.is_replicated() => Mode::Gradients,
            Mode::TrainWeighted if self.is_replicated() => Mode::GradientsWeighted,
            other => other,
        }
    }

    /// The samples of a batch of `rows` that the first replica runs (all of them on one device):
    /// the batch size of the plan whose metric counts a caller reads.
    pub(crate) fn first_shard(&self, rows: usize) -> usize {
        shards(rows, self.replicas.len())[0].len()
    }

    /// `mode`'s plan for each shard (`None` for an empty one), loaded on every replica.
    fn shard_plans(&mut self, mode: Mode, shards: &[Range<usize>]) -> Result<Vec<Option<CachedPlan>>> {
        shards
            .iter()
            .map(|s| (!s.is_empty()).then(|| self.plan(mode, s.len())).transpose())
            .collect()
    }

    /// One training step on the staged `batch` of `rows` samples across the replicas: gradients
    /// per shard, their average weighted by shard size, then the same update on every replica.
    /// Returns the batch's loss, and with `profile` replica 0's kernel times plus the host's
    /// all-reduce as the kernel `all_reduce`.
    pub(crate) fn train_sharded(
        &mut self,
        batch: &Batch,
        weights: Option<&[f32]>,
        rows: usize,
        step: StepFeeds,
        profile: bool,
    ) -> Result<(f32, Option<Vec<KernelTime>>)> {
        let mode = if weights.is_some() {
            Mode::GradientsWeighted
        } else {
            Mode::Gradients
        };
        let shards = shards(rows, self.replicas.len());
        let plans = self.shard_plans(mode, &shards)?;
        let shard_steps: Vec<StepFeeds> = shards.iter().map(|s| step.shard(s.start, s.len())).collect();
        let names = &self.input_names;
        let feeds = |replica: usize, range: &Range<usize>| -> Vec<(&str, &[f32])> {
            let mut f = shard_of(names, batch, weights, rows, range);
            shard_steps[replica].add_to(&mut f);
            f
        };
        let runs = run_on_shards(&mut self.replicas, &plans, &shards, &feeds, true, profile)?;

        // The all-reduce: Σ_r (n_r / n) · g_r, the whole batch's mean gradient, over the replicas
        // here and then over the processes. A masked output's loss is a mean over its real
        // steps, so there a replica's `n_r` counts real steps. One buffer crosses the processes:
        // the weighted loss, the count, the weighted gradients and layer state.
        let reduce_start = Instant::now();
        let trainable = self.trainable().count();
        let state = self.state_ids();
        let states = state
            .iter()
            .map(|&id| self.replicas.read_each(id))
            .collect::<Result<Vec<_>>>()?;
        let mut sum = vec![0.0f32; 2];
        let mut layout: Vec<Range<usize>> = Vec::new();
        let mut times = None;
        for (r, (run, shard)) in runs.into_iter().zip(&shards).enumerate() {
            let Some((outputs, t)) = run else { continue };
            times = times.or(t);
            let count = match outputs.get(1 + trainable) {
                Some(real) => real[0],
                None => shard.len() as f32,
            };
            let parts = outputs[1..=trainable].iter().map(Vec::as_slice);
            let parts = parts.chain(states.iter().map(|each| each[r].as_slice()));
            if layout.is_empty() {
                for p in parts.clone() {
                    layout.push(sum.len()..sum.len() + p.len());
                    sum.resize(sum.len() + p.len(), 0.0);
                }
            }
            sum[0] += count * outputs[0][0];
            sum[1] += count;
            for (range, p) in layout.iter().zip(parts) {
                sum[range.clone()].iter_mut().zip(p).for_each(|(s, v)| *s += count * v);
            }
        }
        self.replicas.sum_over_processes(&mut sum)?;
        let total = sum[1].max(f32::MIN_POSITIVE);
        sum.iter_mut().for_each(|v| *v /= total);
        let loss = sum[0];
        for (id, range) in state.iter().zip(&layout[trainable..]) {
            self.replicas.write_persistent(*id, &sum[range.clone()])?;
        }
        let reduce = reduce_start.elapsed().as_secs_f64();

        let update = self.plan(Mode::Update, 0)?;
        let grad_names: Vec<String> = (0..trainable).map(Feed::gradient).collect();
        let mut feeds: Vec<(&str, &[f32])> = grad_names
            .iter()
            .map(String::as_str)
            .zip(layout.iter().map(|range| &sum[range.clone()]))
            .collect();
        step.add_to(&mut feeds);
        let feeds = &feeds;
        let update_times = self.replicas.each(|r, session| {
            if profile && r == 0 {
                return Ok(session.profile(update.id, feeds)?);
            }
            session.run(update.id, feeds)?;
            Ok(None)
        })?;
        let times = times.map(|mut t| {
            t.push(KernelTime {
                kernel: "all_reduce".into(),
                seconds: reduce,
            });
            t.extend(update_times.into_iter().flatten().flatten());
            t
        });
        Ok((loss, times))
    }

    /// The layers' state tensors (BatchNormalization's moving statistics), which the replicas
    /// average after every step.
    fn state_ids(&self) -> Vec<PersistentId> {
        (0..self.specs.len())
            .filter(|&i| self.specs[i].kind == PersistentKind::State)
            .map(PersistentId)
            .collect()
    }

    /// Evaluates the staged `batch` of `rows` samples across the replicas, into their
    /// accumulators (which read as their sum).
    pub(crate) fn evaluate_sharded(
        &mut self,
        mode: Mode,
        batch: &Batch,
        weights: Option<&[f32]>,
        rows: usize,
    ) -> Result<()> {
        let shards = shards(rows, self.replicas.len());
        let plans = self.shard_plans(mode, &shards)?;
        let names = &self.input_names;
        let feeds = |_: usize, range: &Range<usize>| shard_of(names, batch, weights, rows, range);
        run_on_shards(&mut self.replicas, &plans, &shards, &feeds, false, false)?;
        Ok(())
    }

    /// The model's outputs for `inputs` (each `rows` consecutive samples), computed across the
    /// replicas and joined in sample order.
    pub(crate) fn predict_sharded(&mut self, inputs: &[&[f32]], rows: usize, out: &mut Vec<f32>) -> Result<()> {
        let shards = shards(rows, self.replicas.len());
        let plans = self.shard_plans(Mode::Predict, &shards)?;
        let names = &self.input_names;
        let feeds = |_: usize, range: &Range<usize>| -> Vec<(&str, &[f32])> {
            names
                .iter()
                .zip(inputs)
                .map(|(name, x)| (name.as_str(), rows_of(x, rows, range)))
                .collect()
        };
        let runs = run_on_shards(&mut self.replicas, &plans, &shards, &feeds, true, false)?;
        for (outputs, _) in runs.into_iter().flatten() {
            out.extend(outputs.into_iter().next().unwrap_or_default());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order_and_differ_by_at_most_one() {
        assert_eq!(shards(8, 3), vec![0..3, 3..6, 6..8]);
        assert_eq!(shards(4, 3), vec![0..2, 2..3, 3..4]);
        assert_eq!(shards(1, 2), vec![0..1, 1..1]);
        assert_eq!(shards(6, 1), vec![0..6]);
    }
}
