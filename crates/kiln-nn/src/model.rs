//! `Sequential`: a stack of layers compiled once into static graphs — one training, one
//! evaluation and one prediction plan per batch size — that run on one backend session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kiln_data::Tensor;
use kiln_graph::{
    gradients, schedule, Backend, Counters, Error, Graph, NodeId, Op, PersistentId, PersistentKind,
    PersistentSpec, PlanId, Result, Session, Shape,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::layers::{Layer, LayerOut};
use crate::{Activation, Evaluation, FitOptions, History, Loss, Metric, Optimizer};

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
    /// Per layer, its parameters in declaration order.
    layer_params: Vec<Vec<PersistentId>>,
    /// Per parameter, its optimizer state.
    opt_state: HashMap<PersistentId, Vec<PersistentId>>,
    loss_acc: PersistentId,
    /// `(reported name, resolved metric, accumulator)`.
    metrics: Vec<(String, Metric, PersistentId)>,
    loss: Loss,
    optimizer: Optimizer,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    last_activation: Activation,
    plans: HashMap<(Mode, usize), Loaded>,
    step: u64,
}

/// A linear stack of layers, used as in Keras:
///
/// ```no_run
/// use kiln_nn::{Activation, Dense, Loss, Metric, Optimizer, Sequential};
/// # fn run(device: &dyn kiln_graph::Backend, x: &kiln_data::Tensor, y: &kiln_data::Tensor) -> kiln_graph::Result<()> {
/// let mut model = Sequential::new()
///     .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
///     .add(Dense::new(10).activation(Activation::Softmax));
/// model.compile(device, Optimizer::adam(), Loss::SparseCategoricalCrossentropy, &[Metric::Accuracy])?;
/// let history = model.fit(x, y, &kiln_nn::FitOptions::new(30, 32))?;
/// println!("final accuracy {:?}", history.last("accuracy"));
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Sequential {
    input_shape: Option<Vec<usize>>,
    layers: Vec<Box<dyn Layer>>,
    names: Vec<String>,
    seed: u64,
    compiled: Option<Compiled>,
}

impl Sequential {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shape of one input sample (Keras' `Input(shape=...)`).
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }

    /// Seed of the weight initialisation.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Appends a layer. Names follow Keras: `dense`, `dense_1`, ...
    // Keras calls this `add`; a Keras user looks for that name, not for `std::ops::Add`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        let kind = layer.kind();
        let same = self.layers.iter().filter(|l| l.kind() == kind).count();
        self.names.push(if same == 0 {
            kind.to_string()
        } else {
            format!("{kind}_{same}")
        });
        if self.layers.is_empty() && self.input_shape.is_none() {
            self.input_shape = layer.input_shape();
        }
        self.layers.push(Box::new(layer));
        self
    }

    /// Layer names, in order.
    pub fn layer_names(&self) -> &[String] {
        &self.names
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
        let input_shape = self.input_shape.clone().ok_or_else(|| {
            Error::invalid("compile", "the model has no input shape: give the first layer one (Dense::new(n).input_dim(d)) or call Sequential::input_shape")
        })?;
        if self.layers.is_empty() {
            return Err(Error::invalid("compile", "the model has no layers"));
        }
        if input_shape.contains(&0) {
            return Err(Error::invalid(
                "compile",
                format!("input shape {input_shape:?} has a zero dimension"),
            ));
        }
        let mut specs = Vec::new();
        let mut layer_params = Vec::new();
        let mut inits = Vec::new();
        let mut shape = input_shape.clone();
        for (layer, name) in self.layers.iter().zip(&self.names) {
            let decls = layer.params(&shape);
            shape = layer
                .output_shape(&shape)
                .map_err(|e| Error::invalid(format!("layer `{name}`"), e.to_string()))?;
            let mut ids = Vec::new();
            for d in decls {
                ids.push(PersistentId(specs.len()));
                specs.push(PersistentSpec {
                    name: format!("{name}/{}", d.name),
                    shape: Shape::new(d.shape.clone()),
                    kind: PersistentKind::Parameter,
                });
                inits.push(d.init);
            }
            layer_params.push(ids);
        }
        let last_activation = self.layers.last().expect("checked non-empty").activation();
        loss.check_output(last_activation, &shape)?;
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
        let mut accumulator = |name: &str| {
            specs.push(PersistentSpec {
                name: format!("metrics/{name}"),
                shape: Shape::new([1]),
                kind: PersistentKind::Accumulator,
            });
            PersistentId(specs.len() - 1)
        };
        let loss_acc = accumulator("loss");
        let units = shape.last().copied().unwrap_or(1);
        let metrics: Vec<(String, Metric, PersistentId)> = metrics
            .iter()
            .map(|m| {
                (
                    m.name().to_string(),
                    m.resolve(loss, units),
                    accumulator(m.name()),
                )
            })
            .collect();

        let mut session = device.new_session(&specs)?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        for (id, init) in layer_params.iter().flatten().zip(inits) {
            session.write_persistent(*id, &init.sample(specs[id.0].shape.numel(), &mut rng))?;
        }
        self.compiled = Some(Compiled {
            session,
            device: device.name(),
            specs,
            layer_params,
            opt_state,
            loss_acc,
            metrics,
            loss,
            optimizer,
            input_shape,
            output_shape: shape,
            last_activation,
            plans: HashMap::new(),
            step: 0,
        });
        Ok(())
    }

    fn compiled(&mut self) -> Result<&mut Compiled> {
        self.compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("model", "call compile before fit, evaluate or predict"))
    }

    /// Name of the device the model was compiled for.
    pub fn device_name(&self) -> Option<&str> {
        self.compiled.as_ref().map(|c| c.device.as_str())
    }

    /// Work counters of the model's session (submits, dispatches, allocations, ...).
    pub fn counters(&self) -> Counters {
        self.compiled
            .as_ref()
            .map(|c| c.session.counters())
            .unwrap_or_default()
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.compiled.as_ref().map_or(0, |c| c.step)
    }

    /// Trains for `options.epochs` passes over `(x, y)`.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: &FitOptions) -> Result<History> {
        let layers = &self.layers;
        let c = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("fit", "call compile before fit"))?;
        if options.batch_size == 0 {
            return Err(Error::invalid("fit", "batch_size must be at least 1"));
        }
        c.check_data("fit", x, Some(y))?;
        if let Some((vx, vy)) = &options.validation_data {
            c.check_data("fit validation_data", vx, Some(vy))?;
        }
        let n = x.rows();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut history = History::default();
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        for epoch in 1..=options.epochs {
            let start = Instant::now();
            c.reset_accumulators()?;
            if options.shuffle {
                order.shuffle(&mut rng);
            }
            let mut counts = Vec::new();
            for chunk in order.chunks(options.batch_size) {
                let plan = c.plan(layers, Mode::Train, chunk.len())?;
                gather(x, chunk, &mut xb);
                gather(y, chunk, &mut yb);
                c.step += 1;
                let step = [c.step as f32];
                c.session
                    .run(plan.id, &[("x", &xb), ("y", &yb), ("step", &step)])?;
                if options.record_batch_loss {
                    history
                        .batch_loss
                        .push(c.session.read_outputs(plan.id)?[0][0]);
                }
                counts = plan.metric_counts;
            }
            for (name, value) in c.read_accumulators(n, &counts)? {
                history.push(&name, value);
            }
            if let Some((vx, vy)) = &options.validation_data {
                for (name, value) in c.run_evaluation(layers, vx, vy, options.batch_size)?.values {
                    history.push(&format!("val_{name}"), value);
                }
            }
            if options.verbose > 0 {
                let parts: Vec<String> = history
                    .metrics
                    .iter()
                    .map(|(name, v)| {
                        format!("{name}: {:.4}", v.last().copied().unwrap_or(f32::NAN))
                    })
                    .collect();
                println!(
                    "Epoch {epoch}/{} - {:.2}s - {}",
                    options.epochs,
                    start.elapsed().as_secs_f32(),
                    parts.join(" - ")
                );
            }
        }
        Ok(history)
    }

    /// Loss and metrics over `(x, y)`, in batches of `batch_size`.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        let layers = &self.layers;
        let c = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("evaluate", "call compile before evaluate"))?;
        c.check_data("evaluate", x, Some(y))?;
        c.run_evaluation(layers, x, y, batch_size)
    }

    /// The model's outputs for `x` (probabilities for sigmoid/softmax outputs), `[N, ..]`.
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let layers = &self.layers;
        let c = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("predict", "call compile before predict"))?;
        if batch_size == 0 {
            return Err(Error::invalid("predict", "batch_size must be at least 1"));
        }
        c.check_data("predict", x, None)?;
        let n = x.rows();
        let mut out = Vec::with_capacity(n * c.output_shape.iter().product::<usize>());
        let mut xb = Vec::new();
        let all: Vec<usize> = (0..n).collect();
        for chunk in all.chunks(batch_size) {
            let plan = c.plan(layers, Mode::Predict, chunk.len())?;
            gather(x, chunk, &mut xb);
            c.session.run(plan.id, &[("x", &xb)])?;
            out.extend(c.session.read_outputs(plan.id)?.swap_remove(0));
        }
        let mut shape = vec![n];
        shape.extend(&c.output_shape);
        Tensor::new(shape, out)
    }

    /// One training step on exactly this batch; returns its loss.
    pub fn train_on_batch(&mut self, x: &Tensor, y: &Tensor) -> Result<f32> {
        let layers = &self.layers;
        let c = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("train_on_batch", "call compile first"))?;
        c.check_data("train_on_batch", x, Some(y))?;
        let plan = c.plan(layers, Mode::Train, x.rows())?;
        c.step += 1;
        let step = [c.step as f32];
        c.session.run(
            plan.id,
            &[("x", x.data()), ("y", y.data()), ("step", &step)],
        )?;
        Ok(c.session.read_outputs(plan.id)?[0][0])
    }

    /// Every parameter, read back from the device.
    pub fn weights(&mut self) -> Result<Vec<Weight>> {
        let c = self.compiled()?;
        let ids: Vec<PersistentId> = c.layer_params.iter().flatten().copied().collect();
        ids.into_iter()
            .map(|id| {
                let spec = c.specs[id.0].clone();
                Ok(Weight {
                    name: spec.name,
                    shape: spec.shape.dims().to_vec(),
                    values: c.session.read_persistent(id)?,
                })
            })
            .collect()
    }

    /// Keras-style summary: layers, output shapes and parameter counts.
    pub fn summary(&self) -> String {
        let mut s = format!("{:<20}{:<20}{:>10}\n", "Layer", "Output shape", "Params");
        let mut shape = self.input_shape.clone().unwrap_or_default();
        let mut total = 0;
        for (layer, name) in self.layers.iter().zip(&self.names) {
            let params: usize = layer
                .params(&shape)
                .iter()
                .map(|p| p.shape.iter().product::<usize>())
                .sum();
            shape = layer.output_shape(&shape).unwrap_or_default();
            total += params;
            let out = format!(
                "(None, {})",
                shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            s += &format!(
                "{:<20}{:<20}{:>10}\n",
                format!("{name} ({})", layer.activation()),
                out,
                params
            );
        }
        s + &format!("Total params: {total}\n")
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
    fn check_data(&self, context: &str, x: &Tensor, y: Option<&Tensor>) -> Result<()> {
        let n = x.rows();
        if n == 0 || x.data().is_empty() {
            return Err(Error::Data(format!("{context}: x is empty")));
        }
        if x.sample_shape() != self.input_shape.as_slice() {
            return Err(Error::Data(format!(
                "{context}: x has samples of shape {:?} but the model expects {:?} (x is {:?})",
                x.sample_shape(),
                self.input_shape,
                x.shape()
            )));
        }
        if let Some((i, v)) = x.first_non_finite() {
            return Err(Error::Data(format!(
                "{context}: x holds {v} at sample {}, feature {}",
                i / x.row_len(),
                i % x.row_len()
            )));
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
            self.loss.check_labels(y, &self.output_shape)?;
        }
        Ok(())
    }

    fn reset_accumulators(&mut self) -> Result<()> {
        self.session.write_persistent(self.loss_acc, &[0.0])?;
        for (_, _, acc) in &self.metrics {
            self.session.write_persistent(*acc, &[0.0])?;
        }
        Ok(())
    }

    /// `(name, epoch value)` of the loss and each metric from the accumulators, over `n` samples.
    fn read_accumulators(&mut self, n: usize, counts: &[usize]) -> Result<Vec<(String, f32)>> {
        let mut out = vec![(
            "loss".to_string(),
            self.session.read_persistent(self.loss_acc)?[0] / n as f32,
        )];
        for ((name, _, acc), count) in self.metrics.iter().zip(counts) {
            out.push((
                name.clone(),
                self.session.read_persistent(*acc)?[0] / (n * count) as f32,
            ));
        }
        Ok(out)
    }

    fn run_evaluation(
        &mut self,
        layers: &[Box<dyn Layer>],
        x: &Tensor,
        y: &Tensor,
        batch_size: usize,
    ) -> Result<Evaluation> {
        if batch_size == 0 {
            return Err(Error::invalid("evaluate", "batch_size must be at least 1"));
        }
        self.reset_accumulators()?;
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let all: Vec<usize> = (0..x.rows()).collect();
        let mut counts = Vec::new();
        for chunk in all.chunks(batch_size) {
            let plan = self.plan(layers, Mode::Evaluate, chunk.len())?;
            gather(x, chunk, &mut xb);
            gather(y, chunk, &mut yb);
            self.session.run(plan.id, &[("x", &xb), ("y", &yb)])?;
            counts = plan.metric_counts;
        }
        Ok(Evaluation {
            values: self.read_accumulators(x.rows(), &counts)?,
        })
    }

    /// The plan for `mode` at `batch` samples, built and loaded on first use.
    fn plan(&mut self, layers: &[Box<dyn Layer>], mode: Mode, batch: usize) -> Result<Loaded> {
        if let Some(p) = self.plans.get(&(mode, batch)) {
            return Ok(p.clone());
        }
        let (graph, outputs, metric_counts) = self.build(layers, mode, batch)?;
        let plan = Arc::new(schedule(&graph, &outputs)?);
        let id = self.session.load(plan)?;
        let loaded = Loaded { id, metric_counts };
        self.plans.insert((mode, batch), loaded.clone());
        Ok(loaded)
    }

    /// The graph of one step: forward; then for training and evaluation the loss and metric
    /// accumulation; then for training the gradients and the optimizer's in-place updates.
    fn build(
        &self,
        layers: &[Box<dyn Layer>],
        mode: Mode,
        batch: usize,
    ) -> Result<(Graph, Vec<NodeId>, Vec<usize>)> {
        let mut g = Graph::new(self.specs.clone());
        let mut x_shape = vec![batch];
        x_shape.extend(&self.input_shape);
        let mut h = g.input("x", x_shape);
        let mut params = Vec::new();
        let mut last: Option<LayerOut> = None;
        for (layer, ids) in layers.iter().zip(&self.layer_params) {
            let nodes: Vec<NodeId> = ids.iter().map(|&id| g.persistent(id)).collect();
            params.extend(ids.iter().copied().zip(nodes.iter().copied()));
            let out = layer.build(&mut g, h, &nodes)?;
            h = out.output;
            last = Some(out);
        }
        let out = last.expect("compile checked the model has layers");
        if mode == Mode::Predict {
            return Ok((g, vec![out.output], Vec::new()));
        }
        let mut y_shape = vec![batch];
        y_shape.extend(self.loss.label_shape(&self.output_shape));
        let y = g.input("y", y_shape);
        let per_sample = self.loss.per_sample(&mut g, out, y)?;
        let loss = g.unary(Op::Mean { axis: 0 }, per_sample)?;
        let acc = g.persistent(self.loss_acc);
        g.push(Op::AccumulateSum, &[acc, per_sample])?;
        let mut counts = Vec::new();
        for (_, metric, acc_id) in &self.metrics {
            let (values, per) = metric.values(&mut g, out, self.last_activation, y)?;
            let acc = g.persistent(*acc_id);
            g.push(Op::AccumulateSum, &[acc, values])?;
            counts.push(per);
        }
        if mode == Mode::Train {
            let wrt: Vec<NodeId> = params.iter().map(|(_, n)| *n).collect();
            let grads = gradients(&mut g, loss, &wrt)?;
            let step = self.optimizer.uses_step().then(|| g.input("step", [1]));
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
