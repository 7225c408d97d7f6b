//! The compiled engine behind a [`crate::Model`]: its backend session, persistent tensors, loss,
//! metrics and optimizer, and the plan cache — one training, evaluation and prediction plan per batch
//! size, built from the network on first use.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_data::Tensor;
use kiln_graph::{
    gradients, schedule, ElementwiseOp, Graph, NodeId, PersistentId, PersistentKind, PersistentSpec, PlanId, UpdateOp,
};

use crate::confusion::Confusion;
use crate::feeds::{Feed, StepFeeds};
use crate::layers::LayerOut;
use crate::metrics::Accumulates;
use crate::mixed_precision::{DTypePolicy, LossScale, ScaleState};
use crate::network::{Network, Source};
use crate::replicas::Replicas;
use crate::saving::{self, Named, SavedModel};
use crate::{Activation, Evaluation, Loss, Metric, Optimizer};
use crate::{Error, Result};

/// The x of `fit`, `evaluate` and `predict`: one array per model input, in the order of the
/// model's inputs (Keras' `model.fit([x1, x2], y)`).
#[derive(Clone, Debug)]
pub struct Inputs<'a>(pub Vec<&'a Tensor>);

impl<'a> From<&'a Tensor> for Inputs<'a> {
    fn from(t: &'a Tensor) -> Self {
        Inputs(vec![t])
    }
}

impl<'a, const N: usize> From<[&'a Tensor; N]> for Inputs<'a> {
    fn from(ts: [&'a Tensor; N]) -> Self {
        Inputs(ts.to_vec())
    }
}

impl<'a> From<Vec<&'a Tensor>> for Inputs<'a> {
    fn from(ts: Vec<&'a Tensor>) -> Self {
        Inputs(ts)
    }
}

impl<'a> From<&'a [Tensor]> for Inputs<'a> {
    fn from(ts: &'a [Tensor]) -> Self {
        Inputs(ts.iter().collect())
    }
}

impl<'a> From<&'a Vec<Tensor>> for Inputs<'a> {
    fn from(ts: &'a Vec<Tensor>) -> Self {
        Inputs(ts.iter().collect())
    }
}

/// One parameter of a model: its path-like name (`dense_1/kernel`), shape and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Weight {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Mode {
    Train,
    /// A training step whose loss weighs each sample by a fed `sample_weight`.
    TrainWeighted,
    Evaluate,
    /// An evaluation whose loss and weighted metrics weigh each sample by a fed `sample_weight`.
    EvaluateWeighted,
    Predict,
    /// A data-parallel replica's half of a training step: like `Train` up to the gradients, which
    /// it outputs after the loss instead of applying them.
    Gradients,
    /// `Gradients` with a fed `sample_weight`.
    GradientsWeighted,
    /// The other half: the optimizer's update from fed gradients (one plan whatever the batch).
    Update,
}

impl Mode {
    /// Whether the plan trains (dropout drops, gradients and updates run).
    pub(crate) fn trains(self) -> bool {
        match self {
            Mode::Train | Mode::TrainWeighted | Mode::Gradients | Mode::GradientsWeighted | Mode::Update => true,
            Mode::Evaluate | Mode::EvaluateWeighted | Mode::Predict => false,
        }
    }

    /// Whether the plan applies the optimizer's update to the gradients it computes.
    fn applies_update(self) -> bool {
        match self {
            Mode::Train | Mode::TrainWeighted => true,
            Mode::Gradients | Mode::GradientsWeighted | Mode::Update => false,
            Mode::Evaluate | Mode::EvaluateWeighted | Mode::Predict => false,
        }
    }

    /// Whether the plan takes a `sample_weight` feed.
    pub(crate) fn weighted(self) -> bool {
        match self {
            Mode::TrainWeighted | Mode::EvaluateWeighted | Mode::GradientsWeighted => true,
            Mode::Train | Mode::Evaluate | Mode::Predict | Mode::Gradients | Mode::Update => false,
        }
    }

    /// Whether the plan counts the confusion matrices.
    fn evaluates(self) -> bool {
        match self {
            Mode::Evaluate | Mode::EvaluateWeighted => true,
            Mode::Train | Mode::TrainWeighted | Mode::Predict => false,
            Mode::Gradients | Mode::GradientsWeighted | Mode::Update => false,
        }
    }
}

/// A plan loaded in the session, with how many values each sample adds to each metric.
#[derive(Clone)]
pub(crate) struct CachedPlan {
    pub(crate) id: PlanId,
    pub(crate) metric_counts: Vec<usize>,
    /// Whether the plan counts the confusion matrices (evaluation of a classifier whose output
    /// carries no padding mask).
    pub(crate) counts_confusion: bool,
    /// When it was last handed out, for evicting the least recently used.
    pub(crate) last_used: u64,
}

/// Plans kept loaded at once. Training uses two (full and ragged last batch; on replicas, up to
/// two shard sizes each and the update), and evaluation and prediction two each; beyond this, the least recently used plan is unloaded, so calls with many
/// different batch sizes keep memory flat.
pub(crate) const MAX_CACHED_PLANS: usize = 8;

/// Everything `compile` fixes.
pub(crate) struct Compiled {
    /// The model's sessions: one per data-parallel replica, else one.
    pub(crate) replicas: Replicas,
    pub(crate) device: String,
    pub(crate) specs: Vec<PersistentSpec>,
    /// The network, fixed at compile.
    pub(crate) network: Network,
    /// Per layer application, its parameters in declaration order.
    pub(crate) layer_params: Vec<Vec<PersistentId>>,
    /// Per parameter, its optimizer state.
    pub(crate) opt_state: HashMap<PersistentId, Vec<PersistentId>>,
    pub(crate) loss_acc: PersistentId,
    /// `(reported name, resolved metric, what it accumulates, accumulator)`.
    pub(crate) metrics: Vec<(String, Metric, Accumulates, PersistentId)>,
    /// The confusion matrices evaluation counts, for a classifier, and their accumulator.
    pub(crate) confusion: Option<(Confusion, PersistentId)>,
    pub(crate) loss: Loss,
    pub(crate) optimizer: Optimizer,
    pub(crate) input_shapes: Vec<Vec<usize>>,
    /// Feed names of the inputs: `x0`, `x1`, ...
    pub(crate) input_names: Vec<String>,
    pub(crate) output_shape: Vec<usize>,
    pub(crate) last_activation: Activation,
    pub(crate) plans: HashMap<(Mode, usize), CachedPlan>,
    /// Per inference mode and batch size asked for, the batch size the device holds
    /// ([`Compiled::inference_batch`]).
    pub(crate) inference_batches: HashMap<(Mode, usize), usize>,
    /// Plan requests so far: the clock of the cache's least-recently-used eviction.
    pub(crate) plan_uses: u64,
    pub(crate) step: u64,
    /// Epochs completed by `fit` (restored from a checkpoint).
    pub(crate) epoch: usize,
    /// The epoch a backup restored at the start of `fit` ended with, for `fit` to carry on after.
    pub(crate) resumed_epoch: Option<usize>,
    /// What `compile` was given, for saving.
    pub(crate) requested_metrics: Vec<Metric>,
    pub(crate) seed: u64,
    /// The precision the model computes in.
    pub(crate) policy: DTypePolicy,
    /// The loss scale's state, under `mixed_float16`.
    pub(crate) loss_scale: Option<ScaleState>,
}

/// A forward pass in a graph: the input nodes, every parameter's node, each layer application's
/// output and the nodes it was fed.
pub(crate) struct Forward {
    pub(crate) g: Graph,
    pub(crate) inputs: Vec<NodeId>,
    pub(crate) params: Vec<(PersistentId, NodeId)>,
    pub(crate) outs: Vec<LayerOut>,
    /// The states each layer application returns after its output (Keras' `return_state`).
    pub(crate) states: Vec<Vec<NodeId>>,
    /// Each layer output's mask (`[n, steps]`, 1 for a real step), where it has one.
    pub(crate) masks: Vec<Option<NodeId>>,
    pub(crate) layer_inputs: Vec<Vec<NodeId>>,
}

impl Forward {
    /// `network`'s forward pass over a batch of `batch` samples (`training` as Keras' `call`), its
    /// parameters the persistent tensors `layer_params` of `specs`, computing as `policy` says
    /// (see [`crate::mixed_precision`] for where `mixed_float16` rounds to f16).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        network: &Network,
        layer_params: &[Vec<PersistentId>],
        specs: &[PersistentSpec],
        input_names: &[String],
        input_shapes: &[Vec<usize>],
        batch: usize,
        training: bool,
        policy: DTypePolicy,
    ) -> Result<Forward> {
        let mut g = Graph::new(specs.to_vec());
        let inputs: Vec<NodeId> = input_names
            .iter()
            .zip(input_shapes)
            .map(|(name, shape)| {
                let mut s = vec![batch];
                s.extend(shape);
                g.input(name, s)
            })
            .collect();
        let mut params = Vec::new();
        let mut outs: Vec<LayerOut> = Vec::with_capacity(network.nodes.len());
        let mut states: Vec<Vec<NodeId>> = Vec::with_capacity(network.nodes.len());
        let mut layer_inputs = Vec::with_capacity(network.nodes.len());
        // Each output's mask (Keras' `_keras_mask`): which steps are padding.
        let mut masks: Vec<Option<NodeId>> = Vec::with_capacity(network.nodes.len());
        let mut half = Half::new(policy, network);
        // One node per parameter, however many applications of a shared layer read it: the
        // gradients of its uses then add up in it.
        let mut read: HashMap<PersistentId, NodeId> = HashMap::new();
        for (k, app) in network.nodes.iter().enumerate() {
            let f16 = half.computes_in_f16(k);
            let ids = &layer_params[network.owner(k)];
            let mut nodes = Vec::with_capacity(ids.len());
            for &id in ids {
                let node = *read.entry(id).or_insert_with(|| {
                    let node = g.persistent(id);
                    params.push((id, node));
                    node
                });
                // Keras' autocast: a layer reads its trainable weights in the compute dtype.
                let autocast = f16 && app.layer.autocasts() && specs[id.0].kind == PersistentKind::Parameter;
                nodes.push(if autocast { half.round(&mut g, node)? } else { node });
            }
            let mut xs = Vec::with_capacity(app.inputs.len());
            let mut in_masks = Vec::with_capacity(app.inputs.len());
            for s in &app.inputs {
                let (x, mask) = match *s {
                    Source::Input(i) => (inputs[i], None),
                    Source::Node(j) => (outs[j].output, masks[j]),
                    Source::State(j, k) => (states[j][k], None),
                };
                // Values enter an f16 layer as f16 (indices stay exact, and a layer that only moves
                // values passes them on as they come).
                let converts = f16 && !app.layer.reads_indices() && !app.layer.moves_values();
                xs.push(if converts { half.round(&mut g, x)? } else { x });
                in_masks.push(mask);
            }
            let (mut out, mut returned) = app.layer.build_states(&mut g, &xs, &in_masks, &nodes, training)?;
            if f16 && !app.layer.moves_values() {
                out.output = half.round(&mut g, out.output)?;
                for s in &mut returned {
                    *s = half.round(&mut g, *s)?;
                }
            }
            outs.push(out);
            states.push(returned);
            masks.push(app.layer.output_mask(&mut g, &xs, &in_masks)?);
            layer_inputs.push(xs);
        }
        Ok(Forward {
            g,
            inputs,
            params,
            outs,
            states,
            masks,
            layer_inputs,
        })
    }

    /// The model's output and its mask (`[n, steps]`, where padding reaches the output).
    pub(crate) fn output(&self, network: &Network) -> (LayerOut, Option<NodeId>) {
        match network.output.expect("compile checked the model has an output") {
            Source::Node(j) => (self.outs[j], self.masks[j]),
            Source::State(j, k) => (crate::layers::plain(self.states[j][k]), None),
            Source::Input(i) => (crate::layers::plain(self.inputs[i]), None),
        }
    }
}

/// Where a forward pass rounds to f16 under `mixed_float16`: every layer but the output layer
/// computes in f16, and a value is rounded once however many layers read it.
struct Half {
    policy: DTypePolicy,
    /// The output layer's position: it computes in f32.
    output: Option<usize>,
    /// Nodes already rounded (or made by rounding), and each one's rounded node.
    rounded: HashMap<NodeId, NodeId>,
}

impl Half {
    fn new(policy: DTypePolicy, network: &Network) -> Self {
        let output = network.output.and_then(Source::node);
        Half {
            policy,
            output,
            rounded: HashMap::new(),
        }
    }

    /// Whether layer application `k` computes in f16.
    fn computes_in_f16(&self, k: usize) -> bool {
        self.policy.rounds() && self.output != Some(k)
    }

    /// `x` as an f16 value.
    fn round(&mut self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        if let Some(&r) = self.rounded.get(&x) {
            return Ok(r);
        }
        let r = g.unary(ElementwiseOp::RoundF16, x)?;
        self.rounded.insert(x, r);
        self.rounded.insert(r, r);
        Ok(r)
    }
}

/// Host staging for one batch: the gathered rows of every input and of the labels, reused across
/// steps so batching allocates nothing after the first.
pub(crate) struct Batch {
    pub(crate) xs: Vec<Vec<f32>>,
    pub(crate) y: Vec<f32>,
}

impl Batch {
    pub(crate) fn new(inputs: usize) -> Self {
        Batch {
            xs: vec![Vec::new(); inputs],
            y: Vec::new(),
        }
    }

    pub(crate) fn gather(&mut self, x: &Inputs<'_>, y: Option<&Tensor>, rows: &[usize]) {
        for (buf, t) in self.xs.iter_mut().zip(&x.0) {
            gather(t, rows, buf);
        }
        if let Some(y) = y {
            gather(y, rows, &mut self.y);
        }
    }

    /// `(name, data)` feeds of the inputs and the labels (ignored by plans that take none).
    pub(crate) fn feeds<'b>(&'b self, names: &'b [String]) -> Vec<(&'b str, &'b [f32])> {
        let mut f: Vec<(&str, &[f32])> = names
            .iter()
            .map(String::as_str)
            .zip(self.xs.iter().map(Vec::as_slice))
            .collect();
        f.push((Feed::LABELS, &self.y));
        f
    }
}

/// Copies the rows `idx` of `t` into `buf`, reusing its allocation.
pub(crate) fn gather(t: &Tensor, idx: &[usize], buf: &mut Vec<f32>) {
    buf.clear();
    for &i in idx {
        buf.extend_from_slice(t.row(i));
    }
}

impl Compiled {
    /// Counts one more update over a batch of `samples` and returns what the host feeds for it:
    /// the step counter, the constant learning rate and the dropout draw.
    pub(crate) fn next_step(&mut self, samples: usize) -> StepFeeds {
        self.step += 1;
        StepFeeds::new(self.step, self.optimizer.learning_rate().at(self.step), samples)
    }

    /// Rejects data the model cannot train on, with the reason.
    pub(crate) fn check_data(&self, context: &str, x: &Inputs<'_>, y: Option<&Tensor>) -> Result<()> {
        if x.0.len() != self.input_shapes.len() {
            return Err(Error::Data(format!(
                "{context}: the model has {} input(s) but {} array(s) were given",
                self.input_shapes.len(),
                x.0.len()
            )));
        }
        let n = x.0[0].rows();
        for (i, (t, shape)) in x.0.iter().zip(&self.input_shapes).enumerate() {
            let which = if x.0.len() > 1 {
                format!("x[{i}]")
            } else {
                "x".to_string()
            };
            if t.rows() == 0 || t.data().is_empty() {
                return Err(Error::Data(format!("{context}: {which} is empty")));
            }
            if t.rows() != n {
                return Err(Error::Data(format!(
                    "{context}: x[0] has {n} samples but {which} has {}",
                    t.rows()
                )));
            }
            if t.sample_shape() != shape.as_slice() {
                return Err(Error::Data(format!(
                    "{context}: {which} has samples of shape {:?} but the model expects {shape:?} ({which} is {:?})",
                    t.sample_shape(),
                    t.shape()
                )));
            }
            if let Some((k, v)) = t.first_non_finite() {
                return Err(Error::Data(format!(
                    "{context}: {which} holds {v} at sample {}, feature {}",
                    k / t.row_len(),
                    k % t.row_len()
                )));
            }
        }
        for app in &self.network.nodes {
            for source in &app.inputs {
                // Inputs behind a computing layer are not checked here: for the layers whose check
                // matters, `check_index_sources` refused that at compile.
                for i in self.network.value_origins(*source).unwrap_or_default() {
                    app.layer.check_input(x.0[i]).map_err(|e| match e {
                        Error::Data(m) => Error::Data(format!("{context}: layer `{}`: {m}", app.name)),
                        other => other,
                    })?;
                }
            }
        }
        if let Some(y) = y {
            if y.rows() != n {
                return Err(Error::Data(format!(
                    "{context}: x has {n} samples but y has {}",
                    y.rows()
                )));
            }
            if let Some((i, v)) = y.first_non_finite() {
                return Err(Error::Data(format!(
                    "{context}: y holds {v} at sample {}",
                    i / y.row_len().max(1)
                )));
            }
            crate::doctor::check_labels(&self.loss, self.last_activation, y, &self.output_shape)?;
        }
        Ok(())
    }

    pub(crate) fn weights(&mut self) -> Result<Vec<Weight>> {
        let ids: Vec<PersistentId> = self.layer_params.iter().flatten().copied().collect();
        ids.into_iter()
            .map(|id| {
                let spec = self.specs[id.0].clone();
                Ok(Weight {
                    name: spec.name,
                    shape: spec.shape.dims().to_vec(),
                    values: self.replicas.read_persistent(id)?,
                })
            })
            .collect()
    }

    /// Each layer application's parameter values, in declaration order (none for an application
    /// of a shared layer after its first).
    pub(crate) fn values_per_application(&mut self) -> Result<Vec<Vec<Vec<f32>>>> {
        // `weights` reads them in the same order, application by application.
        let mut values = self.weights()?.into_iter().map(|w| w.values);
        Ok(self
            .layer_params
            .iter()
            .map(|ids| values.by_ref().take(ids.len()).collect())
            .collect())
    }

    pub(crate) fn set_weights(&mut self, weights: &[Weight]) -> Result<()> {
        for w in weights {
            let id = self
                .layer_params
                .iter()
                .flatten()
                .find(|id| self.specs[id.0].name == w.name)
                .copied()
                .ok_or_else(|| Error::invalid("set_weights", format!("the model has no parameter `{}`", w.name)))?;
            let spec = &self.specs[id.0];
            if spec.shape.dims() != w.shape.as_slice() || w.values.len() != spec.shape.numel() {
                return Err(Error::shape(
                    &w.name,
                    format!("{:?} with {} values", w.shape, w.values.len()),
                    spec.shape.to_string(),
                ));
            }
            self.replicas.write_persistent(id, &w.values)?;
        }
        Ok(())
    }

    /// The persistent tensors of these kinds, read back from the device.
    pub(crate) fn named(&mut self, kinds: &[PersistentKind]) -> Result<Vec<Named>> {
        let ids: Vec<usize> = (0..self.specs.len())
            .filter(|&i| kinds.contains(&self.specs[i].kind))
            .collect();
        ids.into_iter()
            .map(|i| {
                Ok(Named {
                    name: self.specs[i].name.clone(),
                    shape: self.specs[i].shape.dims().to_vec(),
                    values: self.replicas.read_persistent(PersistentId(i))?,
                })
            })
            .collect()
    }

    /// Writes `values` into the persistent tensors named in `wanted`.
    pub(crate) fn write_named(&mut self, wanted: &[(String, Vec<usize>)], values: Vec<Vec<f32>>) -> Result<()> {
        for ((name, _), v) in wanted.iter().zip(values) {
            let id = self
                .specs
                .iter()
                .position(|s| &s.name == name)
                .ok_or_else(|| Error::invalid("load", format!("the model has no tensor `{name}`")))?;
            self.replicas.write_persistent(PersistentId(id), &v)?;
        }
        Ok(())
    }

    pub(crate) fn save(&mut self, path: &std::path::Path, interrupt_after: Option<usize>) -> Result<()> {
        let tensors = self.named(&[
            PersistentKind::Parameter,
            PersistentKind::OptimizerState,
            PersistentKind::State,
        ])?;
        if let Some(t) = tensors.iter().find(|t| t.values.iter().any(|v| !v.is_finite())) {
            return Err(Error::Diverged(format!(
                "save: `{}` holds non-finite values, so {} was left as it was; the model's training \
                 diverged (lower the learning rate, clip gradients, or check the data)",
                t.name,
                path.display()
            )));
        }
        let saved = SavedModel {
            seed: self.seed,
            inputs: self.network.inputs.clone(),
            layers: SavedModel::layers_of(&self.network),
            output: self.network.output,
            optimizer: self.optimizer.clone(),
            loss: self.loss.clone(),
            metrics: self.requested_metrics.clone(),
            step: self.step,
            epoch: self.epoch,
            policy: self.policy,
            loss_scale: self.loss_scale.map_or_else(LossScale::default, |s| s.settings),
        };
        saving::save_model(&saved, &tensors, path, interrupt_after)
    }

    pub(crate) fn reset_accumulators(&mut self) -> Result<()> {
        self.replicas.write_persistent(self.loss_acc, &[0.0])?;
        for (_, _, kind, acc) in &self.metrics {
            self.replicas
                .write_persistent(*acc, &vec![0.0; Metric::accumulator_len(*kind)])?;
        }
        if let Some((confusion, acc)) = self.confusion {
            self.replicas.write_persistent(acc, &vec![0.0; confusion.len()])?;
        }
        Ok(())
    }

    /// `(name, epoch value)` of the loss and each metric from the accumulators, over `n` samples.
    pub(crate) fn read_accumulators(&mut self, n: usize, counts: &[usize]) -> Result<Vec<(String, f32)>> {
        // The accumulators read as sums over every process; so are the samples.
        let mut samples = [n as f32];
        self.replicas.sum_over_processes(&mut samples)?;
        let n = samples[0] as usize;
        let mut out = vec![(
            "loss".to_string(),
            self.replicas.read_persistent(self.loss_acc)?[0] / n as f32,
        )];
        for ((name, metric, kind, acc), count) in self.metrics.iter().zip(counts) {
            let values = self.replicas.read_persistent(*acc)?;
            out.extend(metric.finish(name, *kind, &values, n, *count));
        }
        Ok(out)
    }

    /// Loss, metrics and confusion matrices over `(x, y)`, each sample weighted by `weights` when
    /// given (one per sample, checked by the caller).
    pub(crate) fn run_evaluation(
        &mut self,
        x: &Inputs<'_>,
        y: &Tensor,
        batch_size: usize,
        weights: Option<&[f32]>,
    ) -> Result<Evaluation> {
        if batch_size == 0 {
            return Err(Error::invalid("evaluate", "batch_size must be at least 1"));
        }
        self.reset_accumulators()?;
        let mode = if weights.is_some() {
            Mode::EvaluateWeighted
        } else {
            Mode::Evaluate
        };
        let batch_size = self.inference_batch(mode, batch_size, y.rows())?;
        let mut batch = Batch::new(x.0.len());
        let mut batch_weights = Vec::new();
        let all: Vec<usize> = (0..y.rows()).collect();
        let (mut counts, mut counted) = (Vec::new(), false);
        for chunk in all.chunks(batch_size) {
            let plan = self.plan(mode, self.first_shard(chunk.len()))?;
            counted = plan.counts_confusion;
            counts = plan.metric_counts;
            batch.gather(x, Some(y), chunk);
            if let Some(w) = weights {
                batch_weights.clear();
                batch_weights.extend(chunk.iter().map(|&i| w[i]));
            }
            if self.is_replicated() {
                self.evaluate_sharded(mode, &batch, weights.map(|_| batch_weights.as_slice()), chunk.len())?;
                continue;
            }
            let mut feeds = batch.feeds(&self.input_names);
            if weights.is_some() {
                feeds.push((Feed::SAMPLE_WEIGHT, &batch_weights));
            }
            self.replicas.primary().run(plan.id, &feeds)?;
        }
        let confusion = match self.confusion {
            Some((confusion, acc)) if counted => confusion.matrices(&self.replicas.read_persistent(acc)?),
            _ => Vec::new(),
        };
        Ok(Evaluation {
            values: self.read_accumulators(y.rows(), &counts)?,
            confusion,
        })
    }

    /// The batch size inference in `mode` over `samples` runs at when asked for `batch`: `batch`
    /// itself (at most `samples`, at least 1), or, where the device cannot hold that many samples
    /// at once ([`Error::TooLarge`]: a binding, buffer or grid limit, or memory), the largest
    /// halving of it that fits. Inference reads each sample on
    /// its own (Dropout off, BatchNormalization on its moving statistics) and the loss and metrics
    /// accumulate per sample, so the batch size of `evaluate` and `predict` is a throughput setting,
    /// as in Keras. Training never splits a batch: that would change the step. A data-parallel
    /// model keeps the batch it is given (its shards are smaller already).
    pub(crate) fn inference_batch(&mut self, mode: Mode, batch: usize, samples: usize) -> Result<usize> {
        let batch = batch.min(samples).max(1);
        if self.is_replicated() {
            return Ok(batch);
        }
        if let Some(&fits) = self.inference_batches.get(&(mode, batch)) {
            return Ok(fits);
        }
        let mut fits = batch;
        loop {
            match self.plan(mode, fits) {
                Ok(_) => break,
                Err(Error::TooLarge { .. }) if fits > 1 => fits = fits.div_ceil(2),
                Err(e) => return Err(e),
            }
        }
        self.inference_batches.insert((mode, batch), fits);
        Ok(fits)
    }

    /// The plan for `mode` at `batch` samples, built and loaded on first use.
    pub(crate) fn plan(&mut self, mode: Mode, batch: usize) -> Result<CachedPlan> {
        self.plan_uses += 1;
        if let Some(p) = self.plans.get_mut(&(mode, batch)) {
            p.last_used = self.plan_uses;
            return Ok(p.clone());
        }
        if self.plans.len() >= MAX_CACHED_PLANS {
            let oldest = *self
                .plans
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(key, _)| key)
                .expect("the cache is full");
            let evicted = self.plans.remove(&oldest).expect("just found");
            self.replicas.unload(evicted.id)?;
        }
        let (graph, outputs, metric_counts, counts_confusion) = self.build(mode, batch)?;
        let plan = Arc::new(schedule(&graph, &outputs)?);
        let id = self.replicas.load(plan)?;
        let loaded = CachedPlan {
            id,
            metric_counts,
            counts_confusion,
            last_used: self.plan_uses,
        };
        self.plans.insert((mode, batch), loaded.clone());
        Ok(loaded)
    }

    /// The network's forward pass over a batch of `batch` samples; `training` as Keras' `call`.
    pub(crate) fn forward(&self, batch: usize, training: bool) -> Result<Forward> {
        Forward::build(
            &self.network,
            &self.layer_params,
            &self.specs,
            &self.input_names,
            &self.input_shapes,
            batch,
            training,
            self.policy,
        )
    }

    /// The graph of `mode` at `batch` samples, its outputs, each metric's values per sample, and
    /// whether it counts the confusion matrices.
    pub(crate) fn build(&self, mode: Mode, batch: usize) -> Result<(Graph, Vec<NodeId>, Vec<usize>, bool)> {
        if mode == Mode::Update {
            return Ok((self.build_update()?, Vec::new(), Vec::new(), false));
        }
        let forward = self.forward(batch, mode.trains())?;
        let (out, mask) = forward.output(&self.network);
        let Forward { mut g, mut params, .. } = forward;
        if mode == Mode::Predict {
            return Ok((g, vec![out.output], Vec::new(), false));
        }
        let mut y_shape = vec![batch];
        y_shape.extend(self.loss.label_shape(&self.output_shape));
        let y = g.input(Feed::LABELS, y_shape);
        let weights = mode.weighted().then(|| g.input(Feed::SAMPLE_WEIGHT, [batch]));
        let loss = self
            .loss
            .build_masked(&mut g, out, self.last_activation, y, weights, mask)?;
        // The epoch loss is the sample-weighted mean of the batch losses: accumulate mean × batch.
        let weighted = g.scale(loss, batch as f32)?;
        let acc = g.persistent(self.loss_acc);
        g.push(UpdateOp::AccumulateSum, &[acc, weighted])?;
        let mut counts = Vec::new();
        for (_, metric, _, acc_id) in &self.metrics {
            // Over a masked output, each real step's value weighs 1 and padding 0, as Keras'
            // metrics apply the mask (compile accepted only mean metrics there).
            let (values, per) = match mask {
                Some(mask) => (
                    metric.masked_values(&mut g, out, self.last_activation, y, weights, mask)?,
                    1,
                ),
                None => metric.values(&mut g, out, self.last_activation, y, weights)?,
            };
            let acc = g.persistent(*acc_id);
            g.push(UpdateOp::AccumulateSum, &[acc, values])?;
            counts.push(per);
        }
        // A masked output's padded steps would count too: no confusion matrices for it.
        let counts_confusion = self.confusion.is_some() && mode.evaluates() && mask.is_none();
        if let (Some((confusion, acc_id)), true) = (self.confusion, counts_confusion) {
            let values = confusion.counts(&mut g, out, self.last_activation, y, weights)?;
            let acc = g.persistent(acc_id);
            g.push(UpdateOp::AccumulateSum, &[acc, values])?;
        }
        if mode.trains() {
            // Layer state (moving statistics) is updated by the layers themselves, not trained.
            params.retain(|(id, _)| self.specs[id.0].kind == PersistentKind::Parameter);
            let wrt: Vec<NodeId> = params.iter().map(|(_, n)| *n).collect();
            if !mode.applies_update() {
                // A replica's gradients, for the host to average: the loss, one per parameter in
                // the order of `trainable`, then for a masked output the real steps the loss
                // averaged over (what the replica's share of the batch is counted in).
                let mut outputs = vec![loss];
                outputs.extend(gradients(&mut g, loss, &wrt)?);
                if let Some(mask) = mask {
                    outputs.push(g.sum_all(mask)?);
                }
                return Ok((g, outputs, counts, counts_confusion));
            }
            match self.loss_scale {
                None => {
                    let grads = gradients(&mut g, loss, &wrt)?;
                    self.apply_update(&mut g, &params, grads, None)?;
                }
                // Mixed precision: the backward pass starts from the scaled loss; the gradients
                // are unscaled, checked, and applied only when all are finite; then the scale
                // moves on.
                Some(scaling) => {
                    let scaled = scaling.scaled(&mut g, loss)?;
                    let grads = gradients(&mut g, scaled, &wrt)?;
                    let (grads, apply) = scaling.unscale(&mut g, grads)?;
                    self.apply_update(&mut g, &params, grads, Some((&scaling, apply)))?;
                    scaling.advance(&mut g, apply)?;
                }
            }
        }
        Ok((g, vec![loss], counts, counts_confusion))
    }

    /// The trainable parameters, in the order training plans take their gradients (the forward
    /// pass's order).
    pub(crate) fn trainable(&self) -> impl Iterator<Item = PersistentId> + '_ {
        self.layer_params
            .iter()
            .flatten()
            .copied()
            .filter(|id| self.specs[id.0].kind == PersistentKind::Parameter)
    }

    /// The graph of a data-parallel update: every trainable parameter updated from its fed,
    /// averaged gradient.
    fn build_update(&self) -> Result<Graph> {
        let mut g = Graph::new(self.specs.clone());
        let mut params = Vec::new();
        let mut grads = Vec::new();
        for (j, id) in self.trainable().enumerate() {
            params.push((id, g.persistent(id)));
            grads.push(g.input(&Feed::gradient(j), self.specs[id.0].shape.clone()));
        }
        self.apply_update(&mut g, &params, grads, None)?;
        Ok(g)
    }

    /// Clips `grads` as the optimizer says and applies its update to each parameter in place.
    /// Under loss scaling, `scaling` holds the scale's state and the step's `apply` flag: the
    /// update count is then the applied updates' (skipped steps do not count, as in Keras).
    fn apply_update(
        &self,
        g: &mut Graph,
        params: &[(PersistentId, NodeId)],
        grads: Vec<NodeId>,
        scaling: Option<(&ScaleState, NodeId)>,
    ) -> Result<()> {
        let grads = self.optimizer.clipping().apply(g, grads)?;
        let update = self.optimizer.op();
        let step = match (self.optimizer.uses_step(), scaling) {
            (false, _) => None,
            (true, Some((state, _))) => Some(state.step(g)?),
            (true, None) => Some(Feed::step(g)),
        };
        let lr = Feed::learning_rate(g, self.optimizer.learning_rate(), step)?;
        let apply = match scaling {
            Some((_, apply)) => apply,
            None => g.constant(&[1.0], [1])?,
        };
        for ((id, node), grad) in params.iter().zip(grads) {
            let mut operands = vec![*node];
            operands.extend(self.opt_state[id].iter().map(|&s| g.persistent(s)));
            operands.extend([grad, lr]);
            operands.extend(step.filter(|_| update.uses_step()));
            operands.push(apply);
            g.push(update, &operands)?;
        }
        Ok(())
    }
}
