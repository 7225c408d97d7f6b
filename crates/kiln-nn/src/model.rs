//! `Model`: a network compiled once into static graphs — one training, one evaluation and one
//! prediction plan per batch size — that run on one backend session. `Sequential` and the
//! functional API both build one.

use std::collections::HashMap;

use kiln_data::Tensor;
use kiln_graph::{Backend, Counters, KernelTime, PersistentId, PersistentKind, PersistentSpec, Shape};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::confusion::Confusion;
use crate::engine::{Batch, Compiled, Forward, Inputs, Mode, Weight};
use crate::feeds::Feed;
use crate::functional::{self, SymbolicTensor};
use crate::layers::ParamDecl;
use crate::mixed_precision::{DTypePolicy, LossScale, ScaleState};
use crate::network::Network;
use crate::replicas::Replicas;
use crate::saving::{self, Precision};
use crate::LearningRate;
use crate::{Activation, Evaluation, Loss, Metric, Optimizer};
use crate::{Error, Result};

/// A compiled-once model: a network of layers, a loss, metrics and an optimizer, on one device.
/// Build one with [`crate::Sequential`] or, for several inputs or branches, with the functional
/// API and [`Model::new`].
#[derive(Default)]
pub struct Model {
    pub(crate) network: Network,
    pub(crate) seed: u64,
    /// The precision `compile` builds for, and its loss scaling's settings.
    pub(crate) policy: DTypePolicy,
    pub(crate) loss_scale: LossScale,
    pub(crate) compiled: Option<Compiled>,
    /// The identity of each layer when the model is applied as a layer ([`Model::call`]), drawn
    /// at the first call, so that every call applies the same layers.
    pub(crate) call_ids: Vec<u64>,
}

impl Model {
    /// The model computing `output` from `inputs` (functional API). Errors if `output` depends on an
    /// input not listed.
    pub fn new(inputs: &[SymbolicTensor], output: &SymbolicTensor) -> Result<Self> {
        let network = functional::network(inputs, output)?;
        network.shapes()?;
        network.check_index_sources()?;
        Ok(Model {
            network,
            ..Model::default()
        })
    }

    pub(crate) fn from_network(network: Network, seed: u64) -> Self {
        Model {
            network,
            seed,
            ..Model::default()
        }
    }

    /// Applies the model as a layer of another model, Keras' `model(x)`: the functional API's
    /// `call` on a whole model (an encoder inside an autoencoder, a pretrained base under a new
    /// head). Every call applies the same layers with the same weights, so one model called on
    /// two inputs is a siamese pair (as with [`crate::Shared`]). A compiled model's layers start
    /// from its weights as they are now (a trained base carries over); an uncompiled one's from
    /// their initialisers. The outer model lists the layers themselves (`summary()` shows them
    /// where Keras shows one row for the inner model) and holds its own copy of the weights.
    ///
    /// ```no_run
    /// use kiln_nn::{Activation, Call, Dense, Input, Model, Subtract};
    /// # fn main() -> kiln_nn::Result<()> {
    /// let x = Input::new([10]);
    /// let h = Dense::new(16).activation(Activation::Relu).call(&x)?;
    /// let mut encoder = Model::new(&[x], &Dense::new(4).call(&h)?)?;
    /// let (a, b) = (Input::new([10]), Input::new([10]));
    /// let (ea, eb) = (encoder.call(&a)?, encoder.call(&b)?);
    /// let difference = Subtract::new().call_many(&[&ea, &eb])?;
    /// let out = Dense::new(1).activation(Activation::Sigmoid).call(&difference)?;
    /// let _siamese = Model::new(&[a, b], &out)?;
    /// # Ok(()) }
    /// ```
    pub fn call(&mut self, input: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_many(&[input])
    }

    /// [`Model::call`] on a model with several inputs, in the order it lists them.
    pub fn call_many(&mut self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        let presets = match &mut self.compiled {
            Some(c) => Some(c.values_per_application()?),
            None => None,
        };
        // Drawn once (a `Sequential` that grew since takes new ones: it is another model).
        if self.call_ids.len() != self.network.nodes.len() {
            self.call_ids = functional::layer_ids(&self.network);
        }
        functional::inline(&self.network, &self.call_ids, presets, inputs)
    }

    /// Seed of the weight initialisation.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The precision the model computes in, from the next `compile` on (Keras'
    /// `dtype_policy`; [`DTypePolicy::MixedFloat16`] also scales the loss, as Keras' `compile`
    /// wraps the optimizer in a `LossScaleOptimizer`).
    pub fn with_dtype_policy(mut self, policy: DTypePolicy) -> Self {
        self.set_dtype_policy(policy);
        self
    }

    /// [`Model::with_dtype_policy`] on a model in place.
    pub fn set_dtype_policy(&mut self, policy: DTypePolicy) {
        self.policy = policy;
    }

    /// The dynamic loss scaling `mixed_float16` trains with (Keras' defaults unless set).
    pub fn set_loss_scale(&mut self, settings: LossScale) {
        self.loss_scale = settings;
    }

    /// The precision policy.
    pub fn dtype_policy(&self) -> DTypePolicy {
        self.policy
    }

    /// The current loss scale, read from the device: `None` unless the model was compiled under
    /// `mixed_float16`.
    pub fn loss_scale(&mut self) -> Result<Option<f32>> {
        let c = self.compiled("loss_scale")?;
        match c.loss_scale {
            Some(state) => Ok(Some(c.replicas.read_persistent(state.scale)?[0])),
            None => Ok(None),
        }
    }

    /// Layer names, in order (a shared layer once).
    pub fn layer_names(&self) -> Vec<&str> {
        self.network.layers().map(|n| n.name.as_str()).collect()
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
        optimizer.validate()?;
        if self.policy.rounds() {
            self.loss_scale.validate()?;
            if device.replicas().is_some() {
                return Err(Error::invalid(
                    "compile",
                    "mixed_float16 does not run data-parallel yet (its loss scale would have to be \
                     agreed across replicas); compile for one device, or use the float32 policy",
                ));
            }
        }
        let shapes = self.network.shapes()?;
        for (app, (ins, _)) in self.network.nodes.iter().zip(&shapes.nodes) {
            if app.shares.is_some() {
                continue;
            }
            app.layer.activation().validate(&app.name)?;
            for p in app.layer.params(ins) {
                p.init.validate(&format!("{}/{}", app.name, p.name))?;
                if let Some(start) = p
                    .start
                    .as_ref()
                    .filter(|v| v.len() != p.shape.iter().product::<usize>())
                {
                    return Err(Error::invalid(
                        format!("{}/{}", app.name, p.name),
                        format!("starts from {} values for shape {:?}", start.len(), p.shape),
                    ));
                }
            }
        }
        self.network.check_index_sources()?;
        if let Some((i, s)) = shapes.inputs.iter().enumerate().find(|(_, s)| s.contains(&0)) {
            return Err(Error::invalid(
                "compile",
                format!("input {i} has shape {s:?} with a zero dimension"),
            ));
        }
        let last_activation = self
            .network
            .output_layer()
            .map_or(Activation::Linear, |a| a.layer.activation());
        crate::doctor::check_model(&loss, last_activation, &shapes.output)?;
        let TrainingState {
            mut specs,
            layer_params,
            inits,
            opt_state,
            state_starts,
        } = TrainingState::of(&self.network, &shapes, &optimizer);
        let loss_scale = self
            .policy
            .rounds()
            .then(|| ScaleState::declare(self.loss_scale, &mut specs));
        let input_names: Vec<String> = (0..shapes.inputs.len()).map(Feed::x).collect();
        // Whether padding reaches the output, so that mean metrics weigh its steps by the mask.
        let masked = {
            let forward = Forward::build(
                &self.network,
                &layer_params,
                &specs,
                &input_names,
                &shapes.inputs,
                1,
                false,
                DTypePolicy::Float32,
            )?;
            forward.output(&self.network).1.is_some()
        };
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
            let mut kind = metric.accumulates(&loss, units)?;
            if masked {
                kind = metric.accumulates_masked(kind)?;
            }
            let name = reported_name(m, metrics);
            let acc = accumulator(&name, Metric::accumulator_len(kind));
            resolved.push((name, metric, kind, acc));
        }
        let metrics = resolved;
        let confusion = Confusion::of(&loss, last_activation, units).map(|c| (c, accumulator("confusion", c.len())));

        // One session per data-parallel replica, else one.
        let sessions = match device.replicas() {
            Some(devices) => devices
                .iter()
                .map(|d| d.new_session(&specs))
                .collect::<kiln_graph::Result<_>>()?,
            None => vec![device.new_session(&specs)?],
        };
        let mut session = Replicas::new(sessions, &specs, device.collective());
        let mut rng = StdRng::seed_from_u64(self.seed);
        for (id, decl) in layer_params.iter().flatten().zip(inits) {
            let values = match decl.start {
                Some(values) => values,
                None => decl.init.sample(specs[id.0].shape.dims(), decl.fans, &mut rng),
            };
            session.write_persistent(*id, &values)?;
        }
        // Optimizer state that does not start at zero (Adagrad's accumulator).
        for (id, start) in state_starts {
            session.write_persistent(id, &vec![start; specs[id.0].shape.numel()])?;
        }
        if let Some(state) = loss_scale {
            session.write_persistent(state.scale, &[state.settings.initial])?;
        }
        self.compiled = Some(Compiled {
            replicas: session,
            device: device.name(),
            specs,
            network: self.network.clone(),
            layer_params,
            opt_state,
            loss_acc,
            metrics,
            confusion,
            loss,
            optimizer,
            input_names,
            input_shapes: shapes.inputs,
            output_shape: shapes.output,
            last_activation,
            plans: HashMap::new(),
            inference_batches: HashMap::new(),
            plan_uses: 0,
            step: 0,
            epoch: 0,
            resumed_epoch: None,
            requested_metrics: metrics_given,
            seed: self.seed,
            policy: self.policy,
            loss_scale,
        });
        Ok(())
    }

    pub(crate) fn compiled(&mut self, context: &str) -> Result<&mut Compiled> {
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
        self.compiled
            .as_ref()
            .map(|c| c.replicas.counters())
            .unwrap_or_default()
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

    /// The optimizer as it stands (its rate as callbacks left it), once compiled.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    /// The shape of one sample of each input, as compiled (`[]` before `compile`).
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.compiled.as_ref().map_or_else(Vec::new, |c| c.input_shapes.clone())
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
        let tensors = c.named(&[PersistentKind::Parameter, PersistentKind::State])?;
        saving::save_weights(&tensors, path.as_ref(), precision)
    }

    /// Loads parameters saved by [`Model::save_weights`] or [`Model::save`] into this compiled
    /// model; every parameter must be in the file with the model's shape.
    pub fn load_weights(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let wanted = self.saved_tensor_specs(&[PersistentKind::Parameter, PersistentKind::State]);
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

    /// Loss and metrics over `(x, y)`, in batches of `batch_size`.
    pub fn evaluate<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        let x = x.into();
        let c = self.compiled("evaluate")?;
        c.check_data("evaluate", &x, Some(y))?;
        c.run_evaluation(&x, y, batch_size, None)
    }

    /// Loss and metrics over `(x, y)` like [`Model::evaluate`], each sample weighted by
    /// `sample_weight` (`[N]` or `[N, 1]`, finite and ≥ 0), as Keras' `evaluate(sample_weight=…)`:
    /// the loss is `Σᵢ wᵢ·lᵢ / N` per batch, the [weighted metrics](Metric::weighted) and the
    /// confusion matrices count each sample by its weight, and the other metrics stay unweighted.
    pub fn evaluate_weighted<'a>(
        &mut self,
        x: impl Into<Inputs<'a>>,
        y: &Tensor,
        sample_weight: &Tensor,
        batch_size: usize,
    ) -> Result<Evaluation> {
        let x = x.into();
        let c = self.compiled("evaluate")?;
        c.check_data("evaluate", &x, Some(y))?;
        let weights =
            crate::weights::per_sample("evaluate", y, Some(sample_weight), None)?.expect("a sample_weight was given");
        c.run_evaluation(&x, y, batch_size, Some(&weights))
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
        let batch_size = c.inference_batch(Mode::Predict, batch_size, n)?;
        let mut out = Vec::with_capacity(n * c.output_shape.iter().product::<usize>());
        // Batches are runs of consecutive rows, fed straight from the inputs' storage: the full
        // batches through one plan in one `run_each`, then the shorter last one through its own.
        let (full, tail) = (n / batch_size, n % batch_size);
        let names = c.input_names.clone();
        let feeds = |start: usize, rows: usize| -> Vec<(&str, &[f32])> {
            names
                .iter()
                .zip(&x.0)
                .map(|(name, t)| {
                    let width = t.data().len() / n;
                    (name.as_str(), &t.data()[start * width..(start + rows) * width])
                })
                .collect()
        };
        if c.is_replicated() {
            for start in (0..n).step_by(batch_size) {
                let rows = batch_size.min(n - start);
                let inputs: Vec<&[f32]> = feeds(start, rows).into_iter().map(|(_, x)| x).collect();
                c.predict_sharded(&inputs, rows, &mut out)?;
            }
        } else {
            let full_plan = (full > 0).then(|| c.plan(Mode::Predict, batch_size)).transpose()?;
            let tail_plan = (tail > 0).then(|| c.plan(Mode::Predict, tail)).transpose()?;
            let session = c.replicas.primary();
            if let Some(plan) = full_plan {
                let mut feed = |i: usize| feeds(i * batch_size, batch_size);
                let mut take = |_: usize, mut values: Vec<Vec<f32>>| out.extend(values.swap_remove(0));
                session.run_each(plan.id, full, &mut feed, &mut take)?;
            }
            if let Some(plan) = tail_plan {
                session.run(plan.id, &feeds(full * batch_size, tail))?;
                out.extend(session.read_outputs(plan.id)?.swap_remove(0));
            }
        }
        let mut shape = vec![n];
        shape.extend(&c.output_shape);
        Ok(Tensor::new(shape, out)?)
    }

    /// One training step on exactly this batch; returns its loss.
    pub fn train_on_batch<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor) -> Result<f32> {
        let x = x.into();
        let c = self.compiled("train_on_batch")?;
        c.check_data("train_on_batch", &x, Some(y))?;
        let step = c.next_step(y.rows());
        if c.is_replicated() {
            let mut batch = Batch::new(x.0.len());
            let rows: Vec<usize> = (0..y.rows()).collect();
            batch.gather(&x, Some(y), &rows);
            return Ok(c.train_sharded(&batch, None, y.rows(), step, false)?.0);
        }
        let plan = c.plan(Mode::Train, y.rows())?;
        let mut feeds: Vec<(&str, &[f32])> = c
            .input_names
            .iter()
            .map(String::as_str)
            .zip(x.0.iter().map(|t| t.data()))
            .collect();
        feeds.push((Feed::LABELS, y.data()));
        step.add_to(&mut feeds);
        let session = c.replicas.primary();
        session.run(plan.id, &feeds)?;
        Ok(session.read_outputs(plan.id)?[0][0])
    }

    /// One training step on this batch like [`Model::train_on_batch`], with each kernel timed
    /// (see [`Session::profile`]); `None` where the device cannot time kernels.
    pub fn profile_on_batch<'a>(&mut self, x: impl Into<Inputs<'a>>, y: &Tensor) -> Result<Option<Vec<KernelTime>>> {
        let x = x.into();
        let c = self.compiled("profile_on_batch")?;
        c.check_data("profile_on_batch", &x, Some(y))?;
        let step = c.next_step(y.rows());
        let mut batch = Batch::new(x.0.len());
        let rows: Vec<usize> = (0..y.rows()).collect();
        batch.gather(&x, Some(y), &rows);
        if c.is_replicated() {
            return Ok(c.train_sharded(&batch, None, y.rows(), step, true)?.1);
        }
        let plan = c.plan(Mode::Train, y.rows())?;
        let mut feeds = batch.feeds(&c.input_names);
        step.add_to(&mut feeds);
        Ok(c.replicas.primary().profile(plan.id, &feeds)?)
    }

    /// Bytes of the largest arena of transient tensors among the plans built so far.
    pub fn peak_arena_bytes(&self) -> Result<usize> {
        let Some(c) = self.compiled.as_ref() else {
            return Ok(0);
        };
        c.plans
            .values()
            .map(|p| c.replicas.primary_ref().arena_bytes(p.id))
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

    /// Keras-style summary: each layer with its type (`conv2d (Conv2D)`), output shape and
    /// parameter count, then the total, trainable and non-trainable counts.
    pub fn summary(&self) -> String {
        let header = (
            "Layer (type)".to_string(),
            "Output shape".to_string(),
            "Params".to_string(),
        );
        let Ok(shapes) = self.network.shapes() else {
            return format!(
                "{:<32}{:<20}{:>10}\n(shapes unknown until the input shape is set)\n",
                header.0, header.1, header.2
            );
        };
        let (mut trainable, mut fixed) = (0, 0);
        let batched = |shape: &[usize]| {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("(None, {})", dims.join(", "))
        };
        let mut rows = vec![header];
        for ((app, (ins, out)), states) in self.network.nodes.iter().zip(&shapes.nodes).zip(&shapes.states) {
            // A shared layer is listed once, at its first application, as Keras lists each layer.
            if app.shares.is_some() {
                continue;
            }
            let decls = app.layer.params(ins);
            let count = |want: bool| -> usize {
                decls
                    .iter()
                    .filter(|p| p.trainable == want)
                    .map(|p| p.shape.iter().product::<usize>())
                    .sum()
            };
            let (t, f) = (count(true), count(false));
            (trainable, fixed) = (trainable + t, fixed + f);
            // A layer returning states lists every output, as Keras' summary does.
            let out = if states.is_empty() {
                batched(out)
            } else {
                let all: Vec<String> = std::iter::once(out).chain(states).map(|s| batched(s)).collect();
                format!("[{}]", all.join(", "))
            };
            let name = format!("{} ({})", app.name, app.layer.config().class_name());
            rows.push((name, out, (t + f).to_string()));
        }
        // Columns as wide as their widest entry, at least Keras' usual widths.
        let width = |column: fn(&(String, String, String)) -> &String, least: usize| {
            rows.iter()
                .map(|r| column(r).chars().count() + 2)
                .max()
                .unwrap_or(0)
                .max(least)
        };
        let (w0, w1) = (width(|r| &r.0, 32), width(|r| &r.1, 20));
        let mut s = String::new();
        for (name, out, params) in &rows {
            s += &format!("{name:<w0$}{out:<w1$}{params:>10}\n");
        }
        s + &format!(
            "Total params: {}\nTrainable params: {trainable}\nNon-trainable params: {fixed}\n",
            trainable + fixed
        )
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
    pub(crate) c: &'a mut Compiled,
    /// Whether this `fit` validates (has validation data), every epoch or every few.
    pub(crate) validates: bool,
}

impl Training<'_> {
    /// Whether this `fit` has validation data, so `val_` values appear in the epoch logs (in
    /// every epoch, or every [`crate::FitOptions::validation_freq`] epochs).
    pub fn validates(&self) -> bool {
        self.validates
    }

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

    /// Restores a file [`Training::save`] wrote for this same model — parameters, optimizer state
    /// and rate, step and epoch counts — and has `fit` carry on after its epoch; returns that epoch.
    pub fn restore_backup(&mut self, path: &std::path::Path) -> Result<usize> {
        let (file, saved) = saving::ModelFile::read(path)?;
        let wanted: Vec<(String, Vec<usize>)> = self
            .c
            .specs
            .iter()
            .filter(|s| s.kind.is_training_state())
            .map(|s| (s.name.clone(), s.shape.dims().to_vec()))
            .collect();
        // The compiled plans hold this optimizer's rule, clipping and schedule: the backup may
        // differ only in a constant rate (which a rate callback changes and the host feeds).
        let (was, is) = (&saved.optimizer, &self.c.optimizer);
        let same_rate = match (was.learning_rate(), is.learning_rate()) {
            (LearningRate::Constant(_), LearningRate::Constant(_)) => true,
            (a, b) => a == b,
        };
        if was.op() != is.op() || was.clipping() != is.clipping() || was.state() != is.state() || !same_rate {
            return Err(Error::Io {
                path: path.display().to_string(),
                message: format!(
                    "the backup was written with another optimizer ({was:?}) than this model trains with ({is:?}); \
                     delete it to start over"
                ),
            });
        }
        let values = file.tensors(&wanted)?;
        self.c.write_named(&wanted, values)?;
        self.c.optimizer = saved.optimizer;
        self.c.step = saved.step;
        self.c.epoch = saved.epoch;
        self.c.resumed_epoch = Some(saved.epoch);
        Ok(saved.epoch)
    }

    /// The learning rate of the next update.
    pub fn learning_rate(&self) -> f64 {
        self.c.optimizer.learning_rate().at(self.c.step + 1)
    }

    /// Trains from the next update on at the constant rate `rate`. An error when the rate must be
    /// positive and finite and is not, or when it comes from a schedule (Keras refuses to set a
    /// schedule's rate too).
    pub fn set_learning_rate(&mut self, rate: f32) -> Result<()> {
        if let LearningRate::Schedule(_) = self.c.optimizer.learning_rate() {
            return Err(Error::invalid(
                "learning rate",
                "the optimizer's rate comes from a schedule and cannot be set; use a constant rate with \
                 ReduceLROnPlateau or LearningRateScheduler",
            ));
        }
        LearningRate::Constant(rate).validate(self.c.optimizer.name())?;
        self.c.optimizer.set_learning_rate(rate);
        Ok(())
    }
}

/// The persistent tensors a network trains, declared in a fixed order (parameters layer by layer,
/// then each parameter's optimizer state), which both `compile` and `load_model` derive.
struct TrainingState {
    specs: Vec<PersistentSpec>,
    /// Per layer application, its parameters in declaration order.
    layer_params: Vec<Vec<PersistentId>>,
    /// Per parameter, its declaration: how it starts.
    inits: Vec<ParamDecl>,
    /// Per parameter, its optimizer state.
    opt_state: HashMap<PersistentId, Vec<PersistentId>>,
    /// Optimizer state that starts at a value other than zero, with that value.
    state_starts: Vec<(PersistentId, f32)>,
}

impl TrainingState {
    fn of(network: &Network, shapes: &crate::network::Shapes, optimizer: &Optimizer) -> Self {
        let mut specs = Vec::new();
        let mut layer_params = Vec::new();
        let mut inits = Vec::new();
        for (app, (ins, _)) in network.nodes.iter().zip(&shapes.nodes) {
            let mut ids = Vec::new();
            // A shared layer's later applications use its first one's parameters (`Network::owner`).
            let decls = if app.shares.is_none() {
                app.layer.params(ins)
            } else {
                Vec::new()
            };
            for (k, mut d) in decls.into_iter().enumerate() {
                if let Some(values) = app.preset.as_ref().and_then(|p| p.get(k)) {
                    d.start = Some(values.clone());
                }
                ids.push(PersistentId(specs.len()));
                specs.push(PersistentSpec {
                    name: format!("{}/{}", app.name, d.name),
                    shape: Shape::new(d.shape.clone()),
                    kind: if d.trainable {
                        PersistentKind::Parameter
                    } else {
                        PersistentKind::State
                    },
                });
                inits.push(d);
            }
            layer_params.push(ids);
        }
        let mut opt_state = HashMap::new();
        let mut state_starts = Vec::new();
        // Only trainable parameters get optimizer state.
        let trainable: Vec<PersistentId> = layer_params
            .iter()
            .flatten()
            .copied()
            .filter(|p| specs[p.0].kind == PersistentKind::Parameter)
            .collect();
        for p in &trainable {
            let mut states = Vec::new();
            for (s, start) in optimizer.state() {
                let id = PersistentId(specs.len());
                states.push(id);
                specs.push(PersistentSpec {
                    name: format!("{}/{s}", specs[p.0].name),
                    shape: specs[p.0].shape.clone(),
                    kind: PersistentKind::OptimizerState,
                });
                if start != 0.0 {
                    state_starts.push((id, start));
                }
            }
            opt_state.insert(*p, states);
        }
        TrainingState {
            specs,
            layer_params,
            inits,
            opt_state,
            state_starts,
        }
    }
}

/// Rebuilds the model saved at `path` on `device`: architecture, compile settings, parameters,
/// optimizer state, step and epoch counts. `path` is a file, or a directory holding
/// `model.safetensors`.
pub fn load_model(path: impl AsRef<std::path::Path>, device: &dyn Backend) -> Result<Model> {
    let (file, saved) = saving::ModelFile::read(path.as_ref())?;
    let bad = |e: Error| Error::Io {
        path: file.path().display().to_string(),
        message: format!("model description: {e}"),
    };
    let (seed, step, epoch) = (saved.seed, saved.step, saved.epoch);
    let (policy, loss_scale) = (saved.policy, saved.loss_scale);
    let (optimizer, loss, metrics) = (saved.optimizer.clone(), saved.loss.clone(), saved.metrics.clone());
    let network = saved.network(file.path())?;
    let shapes = network.shapes().map_err(bad)?;
    // Every tensor the description implies must be in the file, with its shape, before anything
    // is allocated: the file's own size then bounds what the description can ask for.
    let mut specs = TrainingState::of(&network, &shapes, &optimizer).specs;
    if policy.rounds() {
        loss_scale.validate().map_err(bad)?;
        ScaleState::declare(loss_scale, &mut specs);
    }
    let wanted: Vec<(String, Vec<usize>)> = specs.into_iter().map(|s| (s.name, s.shape.dims().to_vec())).collect();
    let values = file.tensors(&wanted)?;
    let mut model = Model::from_network(network, seed);
    model.policy = policy;
    model.loss_scale = loss_scale;
    model.compile(device, optimizer, loss, &metrics)?;
    model.restore(&wanted, values, step, epoch)?;
    Ok(model)
}

/// The name `metric` is reported under among `metrics`: its own, or for a weighted metric beside
/// the same unweighted one `weighted_<name>` (Keras' rule in keras/src/trainers/compile_utils.py).
fn reported_name(metric: &Metric, metrics: &[Metric]) -> String {
    let name = metric.name();
    let shadowed = matches!(metric, Metric::Weighted(_))
        && metrics
            .iter()
            .any(|m| !matches!(m, Metric::Weighted(_)) && m.name() == name);
    if shadowed {
        format!("weighted_{name}")
    } else {
        name.to_string()
    }
}
