//! `Model`: a network compiled once into static graphs — one training, one evaluation and one
//! prediction plan per batch size — that run on one backend session. `Sequential` and the
//! functional API both build one.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_data::Tensor;
use kiln_graph::{
    gradients, schedule, Backend, Counters, Error, Graph, KernelTime, NodeId, PersistentId, PersistentKind,
    PersistentSpec, PlanId, Result, Session, Shape, UpdateOp,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::callbacks::Control;
use crate::functional::{self, SymbolicTensor};
use crate::layers::LayerOut;
use crate::metrics::Accumulates;
use crate::network::{Network, Source};
use crate::progress::EpochProgress;
use crate::saving::{self, Named, Precision, SavedModel};
use crate::{Activation, Evaluation, FitOptions, History, Loss, Metric, Optimizer};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mode {
    Train,
    Evaluate,
    Predict,
}

/// One parameter of a model: its path-like name (`dense_1/kernel`), shape and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Weight {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A plan loaded in the session, with how many values each sample adds to each metric.
#[derive(Clone)]
struct Loaded {
    id: PlanId,
    metric_counts: Vec<usize>,
}

/// Everything `compile` fixes.
struct Compiled {
    session: Box<dyn Session>,
    device: String,
    specs: Vec<PersistentSpec>,
    /// The network, fixed at compile.
    network: Network,
    /// Per layer application, its parameters in declaration order.
    layer_params: Vec<Vec<PersistentId>>,
    /// Per parameter, its optimizer state.
    opt_state: HashMap<PersistentId, Vec<PersistentId>>,
    loss_acc: PersistentId,
    /// `(reported name, resolved metric, what it accumulates, accumulator)`.
    metrics: Vec<(String, Metric, Accumulates, PersistentId)>,
    loss: Loss,
    optimizer: Optimizer,
    input_shapes: Vec<Vec<usize>>,
    /// Feed names of the inputs: `x0`, `x1`, ...
    input_names: Vec<String>,
    output_shape: Vec<usize>,
    last_activation: Activation,
    plans: HashMap<(Mode, usize), Loaded>,
    step: u64,
    /// Epochs completed by `fit` (restored from a checkpoint).
    epoch: usize,
    /// What `compile` was given, for saving.
    requested_metrics: Vec<Metric>,
    seed: u64,
}

/// A compiled-once model: a network of layers, a loss, metrics and an optimizer, on one device.
/// Build one with [`crate::Sequential`] or, for several inputs or branches, with the functional
/// API and [`Model::new`].
#[derive(Default)]
pub struct Model {
    pub(crate) network: Network,
    pub(crate) seed: u64,
    compiled: Option<Compiled>,
}

impl Model {
    /// The model computing `output` from `inputs` (functional API). Errors if `output` depends on an
    /// input not listed.
    pub fn new(inputs: &[SymbolicTensor], output: &SymbolicTensor) -> Result<Self> {
        let network = functional::network(inputs, output)?;
        network.shapes()?;
        Ok(Model {
            network,
            seed: 0,
            compiled: None,
        })
    }

    pub(crate) fn from_network(network: Network, seed: u64) -> Self {
        Model {
            network,
            seed,
            compiled: None,
        }
    }

    /// Seed of the weight initialisation.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Layer names, in order.
    pub fn layer_names(&self) -> Vec<&str> {
        self.network.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Fixes optimizer, loss and metrics, creates the parameters on `device` (glorot-uniform
    /// kernels, zero biases) and checks that the output layer suits the loss.
    pub fn compile(
        &mut self,
        device: &dyn Backend,
        optimizer: Optimizer,
        loss: Loss,
        metrics: &[Metric],
    ) -> Result<()> {
        let shapes = self.network.shapes()?;
        if let Some((i, s)) = shapes.inputs.iter().enumerate().find(|(_, s)| s.contains(&0)) {
            return Err(Error::invalid(
                "compile",
                format!("input {i} has shape {s:?} with a zero dimension"),
            ));
        }
        let mut specs = Vec::new();
        let mut layer_params = Vec::new();
        let mut inits = Vec::new();
        for (app, (ins, _)) in self.network.nodes.iter().zip(&shapes.nodes) {
            let mut ids = Vec::new();
            for d in app.layer.params(ins) {
                ids.push(PersistentId(specs.len()));
                specs.push(PersistentSpec {
                    name: format!("{}/{}", app.name, d.name),
                    shape: Shape::new(d.shape.clone()),
                    kind: PersistentKind::Parameter,
                });
                inits.push(d.init);
            }
            layer_params.push(ids);
        }
        let last_activation = self
            .network
            .output_layer()
            .map_or(Activation::Linear, |a| a.layer.activation());
        crate::doctor::check_model(&loss, last_activation, &shapes.output)?;
        let mut opt_state = HashMap::new();
        for p in layer_params.iter().flatten() {
            let mut states = Vec::new();
            for s in optimizer.state_names() {
                states.push(PersistentId(specs.len()));
                specs.push(PersistentSpec {
                    name: format!("{}/{s}", specs[p.0].name),
                    shape: specs[p.0].shape.clone(),
                    kind: PersistentKind::OptimizerState,
                });
            }
            opt_state.insert(*p, states);
        }
        let mut accumulator = |name: &str, len: usize| {
            specs.push(PersistentSpec {
                name: format!("metrics/{name}"),
                shape: Shape::new([len]),
                kind: PersistentKind::Accumulator,
            });
            PersistentId(specs.len() - 1)
        };
        let loss_acc = accumulator("loss", 1);
        let units = shapes.output.last().copied().unwrap_or(1);
        let metrics_given = metrics.to_vec();
        let mut resolved = Vec::with_capacity(metrics.len());
        for m in metrics {
            let metric = m.resolve(&loss, last_activation, units);
            let kind = metric.accumulates(&loss, units)?;
            let acc = accumulator(m.name(), Metric::accumulator_len(kind));
            resolved.push((m.name().to_string(), metric, kind, acc));
        }
        let metrics = resolved;

        let mut session = device.new_session(&specs)?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        for (id, init) in layer_params.iter().flatten().zip(inits) {
            session.write_persistent(*id, &init.sample(specs[id.0].shape.numel(), &mut rng))?;
        }
        self.compiled = Some(Compiled {
            session,
            device: device.name(),
            specs,
            network: self.network.clone(),
            layer_params,
            opt_state,
            loss_acc,
            metrics,
            loss,
            optimizer,
            input_names: (0..shapes.inputs.len()).map(|i| format!("x{i}")).collect(),
            input_shapes: shapes.inputs,
            output_shape: shapes.output,
            last_activation,
            plans: HashMap::new(),
            step: 0,
            epoch: 0,
            requested_metrics: metrics_given,
            seed: self.seed,
        });
        Ok(())
    }

    fn compiled(&mut self, context: &str) -> Result<&mut Compiled> {
        self.compiled
            .as_mut()
            .ok_or_else(|| Error::invalid(context, "call compile before fit, evaluate or predict"))
    }

    /// Name of the device the model was compiled for.
    pub fn device_name(&self) -> Option<&str> {
        self.compiled.as_ref().map(|c| c.device.as_str())
    }

    /// Work counters of the model's session (submits, dispatches, allocations, ...).
    pub fn counters(&self) -> Counters {
        self.compiled.as_ref().map(|c| c.session.counters()).unwrap_or_default()
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.compiled.as_ref().map_or(0, |c| c.step)
    }

    /// Epochs `fit` has completed (carried over by [`Model::save`] and [`crate::load_model`]);
    /// pass it to [`FitOptions::initial_epoch`] to resume.
    pub fn epoch(&self) -> usize {
        self.compiled.as_ref().map_or(0, |c| c.epoch)
    }

    /// Saves the whole model to one safetensors file (or `model.safetensors` in a directory):
    /// architecture and compile settings (JSON in the metadata), parameters named by layer path
    /// (`dense_1/kernel`), optimizer state, and the step and epoch counts. Written atomically.
    pub fn save(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.compiled("save")?.save(path.as_ref(), None)
    }

    /// [`Model::save`] that stops after writing `bytes` of the temporary file, as a crash would.
    #[doc(hidden)]
    pub fn save_interrupted(&mut self, path: impl AsRef<std::path::Path>, bytes: usize) -> Result<()> {
        self.compiled("save")?.save(path.as_ref(), Some(bytes))
    }

    /// Saves the parameters alone (safetensors, named by layer path), in f32.
    pub fn save_weights(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.save_weights_as(path, Precision::F32)
    }

    /// Saves the parameters alone in `precision` (f16 halves the file).
    pub fn save_weights_as(&mut self, path: impl AsRef<std::path::Path>, precision: Precision) -> Result<()> {
        let c = self.compiled("save_weights")?;
        let tensors = c.named(&[PersistentKind::Parameter])?;
        saving::save_weights(&tensors, path.as_ref(), precision)
    }

    /// Loads parameters saved by [`Model::save_weights`] or [`Model::save`] into this compiled
    /// model; every parameter must be in the file with the model's shape.
    pub fn load_weights(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let wanted = self.saved_tensor_specs(&[PersistentKind::Parameter]);
        let c = self.compiled("load_weights")?;
        let values = saving::load_tensors(path.as_ref(), &wanted)?;
        c.write_named(&wanted, values)
    }

    /// `(name, shape)` of the persistent tensors of these kinds (empty before compile).
    pub(crate) fn saved_tensor_specs(&self, kinds: &[PersistentKind]) -> Vec<(String, Vec<usize>)> {
        self.compiled.as_ref().map_or_else(Vec::new, |c| {
            c.specs
                .iter()
                .filter(|s| kinds.contains(&s.kind))
                .map(|s| (s.name.clone(), s.shape.dims().to_vec()))
                .collect()
        })
    }

    /// Writes loaded tensors and counters into the compiled model.
    pub(crate) fn restore(
        &mut self,
        wanted: &[(String, Vec<usize>)],
        values: Vec<Vec<f32>>,
        step: u64,
        epoch: usize,
    ) -> Result<()> {
        let c = self.compiled("load_model")?;
        c.write_named(wanted, values)?;
        c.step = step;
        c.epoch = epoch;
        Ok(())
    }

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
        let mut order: Vec<usize> = (0..n).collect();
        let mut history = History {
            warnings: crate::doctor::warnings(&c.loss, c.last_activation, y),
            first_epoch: options.initial_epoch + 1,
            ..History::default()
        };
        for w in &history.warnings {
            eprintln!("warning: {w}");
        }
        let mut batch = Batch::new(x.0.len());
        let steps = n.div_ceil(options.batch_size);
        for epoch in options.initial_epoch + 1..=options.epochs {
            let mut progress = EpochProgress::start(options.verbose, epoch, options.epochs, steps);
            c.reset_accumulators()?;
            if options.shuffle {
                // Each epoch's order depends only on (seed, epoch), so a resumed run shuffles
                // exactly as an uninterrupted one.
                let mut rng = StdRng::seed_from_u64(options.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.shuffle(&mut rng);
            }
            let mut counts = Vec::new();
            for chunk in order.chunks(options.batch_size) {
                let plan = c.plan(Mode::Train, chunk.len())?;
                batch.gather(&x, Some(y), chunk);
                c.step += 1;
                let step = [c.step as f32];
                let mut feeds = batch.feeds(&c.input_names);
                feeds.push(("step", &step));
                c.session.run(plan.id, &feeds)?;
                let loss = if options.record_batch_loss || progress.wants_loss() {
                    Some(c.session.read_outputs(plan.id)?[0][0])
                } else {
                    None
                };
                if options.record_batch_loss {
                    history.batch_loss.extend(loss);
                }
                progress.step(loss);
                counts = plan.metric_counts;
            }
            let mut logs = c.read_accumulators(n, &counts)?;
            if let Some((vx, vy)) = &validation {
                let val = c.run_evaluation(&Inputs::from(vx), vy, options.batch_size)?;
                logs.extend(val.values.into_iter().map(|(name, v)| (format!("val_{name}"), v)));
            }
            for (name, value) in &logs {
                history.push(name, *value);
            }
            c.epoch = epoch;
            progress.finish(options.verbose, &logs);
            let mut stop = false;
            for cb in &options.callbacks {
                let mut cb = cb
                    .lock()
                    .map_err(|_| Error::invalid("fit", "a callback panicked earlier"))?;
                stop |= cb.on_epoch_end(epoch, &logs, &mut Training { c: &mut *c })? == Control::Stop;
            }
            if stop {
                history.stopped_at = Some(epoch);
                break;
            }
        }
        for cb in &options.callbacks {
            let mut cb = cb
                .lock()
                .map_err(|_| Error::invalid("fit", "a callback panicked earlier"))?;
            cb.on_train_end(&mut Training { c: &mut *c })?;
        }
        Ok(history)
    }

    /// Loss and metrics over `(x, y)`, in batches of `batch_size`.
    pub fn evaluate<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        let x = x.into();
        let c = self.compiled("evaluate")?;
        c.check_data("evaluate", &x, Some(y))?;
        c.run_evaluation(&x, y, batch_size)
    }

    /// The model's outputs for `x` (probabilities for sigmoid/softmax outputs), `[N, ..]`.
    pub fn predict<'a>(&mut self, x: impl Into<Inputs<'a>>, batch_size: usize) -> Result<Tensor> {
        let x = x.into();
        let c = self.compiled("predict")?;
        if batch_size == 0 {
            return Err(Error::invalid("predict", "batch_size must be at least 1"));
        }
        c.check_data("predict", &x, None)?;
        let n = x.0[0].rows();
        let mut out = Vec::with_capacity(n * c.output_shape.iter().product::<usize>());
        let mut batch = Batch::new(x.0.len());
        let all: Vec<usize> = (0..n).collect();
        for chunk in all.chunks(batch_size) {
            let plan = c.plan(Mode::Predict, chunk.len())?;
            batch.gather(&x, None, chunk);
            c.session.run(plan.id, &batch.feeds(&c.input_names))?;
            out.extend(c.session.read_outputs(plan.id)?.swap_remove(0));
        }
        let mut shape = vec![n];
        shape.extend(&c.output_shape);
        Tensor::new(shape, out)
    }

    /// One training step on exactly this batch; returns its loss.
    pub fn train_on_batch<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor) -> Result<f32> {
        let x = x.into();
        let c = self.compiled("train_on_batch")?;
        c.check_data("train_on_batch", &x, Some(y))?;
        let plan = c.plan(Mode::Train, y.rows())?;
        c.step += 1;
        let step = [c.step as f32];
        let mut feeds: Vec<(&str, &[f32])> = c
            .input_names
            .iter()
            .map(String::as_str)
            .zip(x.0.iter().map(|t| t.data()))
            .collect();
        feeds.push(("y", y.data()));
        feeds.push(("step", &step));
        c.session.run(plan.id, &feeds)?;
        Ok(c.session.read_outputs(plan.id)?[0][0])
    }

    /// One training step on this batch like [`Model::train_on_batch`], with each kernel timed
    /// (see [`Session::profile`]); `None` where the device cannot time kernels.
    pub fn profile_on_batch<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor) -> Result<Option<Vec<KernelTime>>> {
        let x = x.into();
        let c = self.compiled("profile_on_batch")?;
        c.check_data("profile_on_batch", &x, Some(y))?;
        let plan = c.plan(Mode::Train, y.rows())?;
        c.step += 1;
        let step = [c.step as f32];
        let mut batch = Batch::new(x.0.len());
        let rows: Vec<usize> = (0..y.rows()).collect();
        batch.gather(&x, Some(y), &rows);
        let mut feeds = batch.feeds(&c.input_names);
        feeds.push(("step", &step));
        c.session.profile(plan.id, &feeds)
    }

    /// Bytes of the largest arena of transient tensors among the plans built so far.
    pub fn peak_arena_bytes(&self) -> Result<usize> {
        let Some(c) = self.compiled.as_ref() else {
            return Ok(0);
        };
        c.plans
            .values()
            .map(|p| c.session.arena_bytes(p.id))
            .try_fold(0, |peak, bytes| Ok(peak.max(bytes?)))
    }

    /// Every parameter, read back from the device.
    pub fn weights(&mut self) -> Result<Vec<Weight>> {
        self.compiled("weights")?.weights()
    }

    /// Overwrites parameters by name (as [`Model::weights`] returns them); shapes must match.
    pub fn set_weights(&mut self, weights: &[Weight]) -> Result<()> {
        self.compiled("set_weights")?.set_weights(weights)
    }

    /// Keras-style summary: layers, output shapes and parameter counts.
    pub fn summary(&self) -> String {
        let mut s = format!("{:<24}{:<20}{:>10}\n", "Layer", "Output shape", "Params");
        let Ok(shapes) = self.network.shapes() else {
            return s + "(shapes unknown until the input shape is set)\n";
        };
        let mut total = 0;
        for (app, (ins, out)) in self.network.nodes.iter().zip(&shapes.nodes) {
            let params: usize = app
                .layer
                .params(ins)
                .iter()
                .map(|p| p.shape.iter().product::<usize>())
                .sum();
            total += params;
            let out = format!(
                "(None, {})",
                out.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            );
            s += &format!(
                "{:<24}{:<20}{:>10}\n",
                format!("{} ({})", app.name, app.layer.activation()),
                out,
                params
            );
        }
        s + &format!("Total params: {total}\n")
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("layers", &self.layer_names())
            .field("device", &self.device_name())
            .finish()
    }
}

/// What a callback may touch while training: the weights.
pub struct Training<'a> {
    c: &'a mut Compiled,
}

impl Training<'_> {
    /// Every parameter, read back from the device.
    pub fn weights(&mut self) -> Result<Vec<Weight>> {
        self.c.weights()
    }

    /// Overwrites parameters by name (as [`Training::weights`] returns them).
    pub fn set_weights(&mut self, weights: &[Weight]) -> Result<()> {
        self.c.set_weights(weights)
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.c.step
    }

    /// Epochs completed, the current one included.
    pub fn epoch(&self) -> usize {
        self.c.epoch
    }

    /// Saves the whole model as [`Model::save`] does.
    pub fn save(&mut self, path: &std::path::Path) -> Result<()> {
        self.c.save(path, None)
    }
}

/// Host staging for one batch: the gathered rows of every input and of the labels, reused across
/// steps so batching allocates nothing after the first.
struct Batch {
    xs: Vec<Vec<f32>>,
    y: Vec<f32>,
}

impl Batch {
    fn new(inputs: usize) -> Self {
        Batch {
            xs: vec![Vec::new(); inputs],
            y: Vec::new(),
        }
    }

    fn gather(&mut self, x: &Inputs<'_>, y: Option<&Tensor>, rows: &[usize]) {
        for (buf, t) in self.xs.iter_mut().zip(&x.0) {
            gather(t, rows, buf);
        }
        if let Some(y) = y {
            gather(y, rows, &mut self.y);
        }
    }

    /// `(name, data)` feeds of the inputs and the labels (ignored by plans that take none).
    fn feeds<'b>(&'b self, names: &'b [String]) -> Vec<(&'b str, &'b [f32])> {
        let mut f: Vec<(&str, &[f32])> = names
            .iter()
            .map(String::as_str)
            .zip(self.xs.iter().map(Vec::as_slice))
            .collect();
        f.push(("y", &self.y));
        f
    }
}

/// Copies the rows `idx` of `t` into `buf`, reusing its allocation.
fn gather(t: &Tensor, idx: &[usize], buf: &mut Vec<f32>) {
    buf.clear();
    for &i in idx {
        buf.extend_from_slice(t.row(i));
    }
}

impl Compiled {
    /// Rejects data the model cannot train on, with the reason.
    fn check_data(&self, context: &str, x: &Inputs<'_>, y: Option<&Tensor>) -> Result<()> {
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
                if let Source::Input(i) = *source {
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
            crate::doctor::check_labels(&self.loss, y, &self.output_shape)?;
        }
        Ok(())
    }

    fn weights(&mut self) -> Result<Vec<Weight>> {
        let ids: Vec<PersistentId> = self.layer_params.iter().flatten().copied().collect();
        ids.into_iter()
            .map(|id| {
                let spec = self.specs[id.0].clone();
                Ok(Weight {
                    name: spec.name,
                    shape: spec.shape.dims().to_vec(),
                    values: self.session.read_persistent(id)?,
                })
            })
            .collect()
    }

    fn set_weights(&mut self, weights: &[Weight]) -> Result<()> {
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
            self.session.write_persistent(id, &w.values)?;
        }
        Ok(())
    }

    /// The persistent tensors of these kinds, read back from the device.
    fn named(&mut self, kinds: &[PersistentKind]) -> Result<Vec<Named>> {
        let ids: Vec<usize> = (0..self.specs.len())
            .filter(|&i| kinds.contains(&self.specs[i].kind))
            .collect();
        ids.into_iter()
            .map(|i| {
                Ok(Named {
                    name: self.specs[i].name.clone(),
                    shape: self.specs[i].shape.dims().to_vec(),
                    values: self.session.read_persistent(PersistentId(i))?,
                })
            })
            .collect()
    }

    /// Writes `values` into the persistent tensors named in `wanted`.
    fn write_named(&mut self, wanted: &[(String, Vec<usize>)], values: Vec<Vec<f32>>) -> Result<()> {
        for ((name, _), v) in wanted.iter().zip(values) {
            let id = self
                .specs
                .iter()
                .position(|s| &s.name == name)
                .ok_or_else(|| Error::invalid("load", format!("the model has no tensor `{name}`")))?;
            self.session.write_persistent(PersistentId(id), &v)?;
        }
        Ok(())
    }

    fn save(&mut self, path: &std::path::Path, interrupt_after: Option<usize>) -> Result<()> {
        let tensors = self.named(&[PersistentKind::Parameter, PersistentKind::OptimizerState])?;
        let saved = SavedModel {
            seed: self.seed,
            inputs: self.network.inputs.clone(),
            layers: SavedModel::layers_of(&self.network),
            output: self.network.output,
            optimizer: self.optimizer,
            loss: self.loss.clone(),
            metrics: self.requested_metrics.clone(),
            step: self.step,
            epoch: self.epoch,
        };
        saving::save_model(&saved, &tensors, path, interrupt_after)
    }

    fn reset_accumulators(&mut self) -> Result<()> {
        self.session.write_persistent(self.loss_acc, &[0.0])?;
        for (_, _, kind, acc) in &self.metrics {
            self.session
                .write_persistent(*acc, &vec![0.0; Metric::accumulator_len(*kind)])?;
        }
        Ok(())
    }

    /// `(name, epoch value)` of the loss and each metric from the accumulators, over `n` samples.
    fn read_accumulators(&mut self, n: usize, counts: &[usize]) -> Result<Vec<(String, f32)>> {
        let mut out = vec![(
            "loss".to_string(),
            self.session.read_persistent(self.loss_acc)?[0] / n as f32,
        )];
        for ((name, metric, kind, acc), count) in self.metrics.iter().zip(counts) {
            let values = self.session.read_persistent(*acc)?;
            out.extend(metric.finish(name, *kind, &values, n, *count));
        }
        Ok(out)
    }

    fn run_evaluation(&mut self, x: &Inputs<'_>, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        if batch_size == 0 {
            return Err(Error::invalid("evaluate", "batch_size must be at least 1"));
        }
        self.reset_accumulators()?;
        let mut batch = Batch::new(x.0.len());
        let all: Vec<usize> = (0..y.rows()).collect();
        let mut counts = Vec::new();
        for chunk in all.chunks(batch_size) {
            let plan = self.plan(Mode::Evaluate, chunk.len())?;
            batch.gather(x, Some(y), chunk);
            self.session.run(plan.id, &batch.feeds(&self.input_names))?;
            counts = plan.metric_counts;
        }
        Ok(Evaluation {
            values: self.read_accumulators(y.rows(), &counts)?,
        })
    }

    /// The plan for `mode` at `batch` samples, built and loaded on first use.
    fn plan(&mut self, mode: Mode, batch: usize) -> Result<Loaded> {
        if let Some(p) = self.plans.get(&(mode, batch)) {
            return Ok(p.clone());
        }
        let (graph, outputs, metric_counts) = self.build(mode, batch)?;
        let plan = Arc::new(schedule(&graph, &outputs)?);
        let id = self.session.load(plan)?;
        let loaded = Loaded { id, metric_counts };
        self.plans.insert((mode, batch), loaded.clone());
        Ok(loaded)
    }

    /// The graph of one step: forward; then for training and evaluation the loss and metric
    /// accumulation; then for training the gradients and the optimizer's in-place updates.
    fn build(&self, mode: Mode, batch: usize) -> Result<(Graph, Vec<NodeId>, Vec<usize>)> {
        let mut g = Graph::new(self.specs.clone());
        g.set_training(mode == Mode::Train);
        let inputs: Vec<NodeId> = self
            .input_names
            .iter()
            .zip(&self.input_shapes)
            .map(|(name, shape)| {
                let mut s = vec![batch];
                s.extend(shape);
                g.input(name, s)
            })
            .collect();
        let mut params = Vec::new();
        let mut outs: Vec<LayerOut> = Vec::with_capacity(self.network.nodes.len());
        for (app, ids) in self.network.nodes.iter().zip(&self.layer_params) {
            let nodes: Vec<NodeId> = ids.iter().map(|&id| g.persistent(id)).collect();
            params.extend(ids.iter().copied().zip(nodes.iter().copied()));
            let xs: Vec<NodeId> = app
                .inputs
                .iter()
                .map(|s| match *s {
                    Source::Input(i) => inputs[i],
                    Source::Node(j) => outs[j].output,
                })
                .collect();
            outs.push(app.layer.build(&mut g, &xs, &nodes)?);
        }
        let out = match self.network.output.expect("compile checked the model has an output") {
            Source::Node(j) => outs[j],
            Source::Input(i) => crate::layers::plain(inputs[i]),
        };
        if mode == Mode::Predict {
            return Ok((g, vec![out.output], Vec::new()));
        }
        let mut y_shape = vec![batch];
        y_shape.extend(self.loss.label_shape(&self.output_shape));
        let y = g.input("y", y_shape);
        let loss = self.loss.build(&mut g, out, self.last_activation, y)?;
        // The epoch loss is the sample-weighted mean of the batch losses: accumulate mean × batch.
        let weighted = g.scale(loss, batch as f32)?;
        let acc = g.persistent(self.loss_acc);
        g.push(UpdateOp::AccumulateSum, &[acc, weighted])?;
        let mut counts = Vec::new();
        for (_, metric, _, acc_id) in &self.metrics {
            let (values, per) = metric.values(&mut g, out, self.last_activation, y)?;
            let acc = g.persistent(*acc_id);
            g.push(UpdateOp::AccumulateSum, &[acc, values])?;
            counts.push(per);
        }
        if mode == Mode::Train {
            let wrt: Vec<NodeId> = params.iter().map(|(_, n)| *n).collect();
            let grads = gradients(&mut g, loss, &wrt)?;
            let step = self.optimizer.uses_step().then(|| g.shared_input("step", [1]));
            for ((id, node), grad) in params.iter().zip(grads) {
                let mut operands = vec![*node];
                operands.extend(self.opt_state[id].iter().map(|&s| g.persistent(s)));
                operands.push(grad);
                operands.extend(step);
                g.push(self.optimizer.op(), &operands)?;
            }
        }
        Ok((g, vec![loss], counts))
    }
}
