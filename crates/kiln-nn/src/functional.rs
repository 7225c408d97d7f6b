//! The functional API: `Input` gives a symbolic tensor, layers applied to symbolic tensors give
//! new ones, and `Model::new(inputs, output)` turns the graph between them into a model.
//!
//! ```no_run
//! use kiln_nn::{Activation, Call, Concatenate, Dense, Input, Model};
//! # fn main() -> kiln_nn::Result<()> {
//! let a = Input::new([10]);
//! let b = Input::new([5]);
//! let ha = Dense::new(8).activation(Activation::Relu).call(&a)?;
//! let hb = Dense::new(8).activation(Activation::Relu).call(&b)?;
//! let merged = Concatenate::new().call_many(&[&ha, &hb])?;
//! let out = Dense::new(3).activation(Activation::Sigmoid).call(&merged)?;
//! let _model = Model::new(&[a, b], &out)?;
//! # Ok(()) }
//! ```
//!
//! A recurrent layer with `return_state` gives its output and its final state, and takes an
//! initial state after its sequence — an encoder-decoder, as keras.io's seq2seq example builds it:
//!
//! ```no_run
//! use kiln_nn::{Activation, Call, Dense, Input, Model, LSTM};
//! # fn main() -> kiln_nn::Result<()> {
//! let source = Input::new([12, 8]);
//! let target = Input::new([10, 6]);
//! // [output, h, c], as Keras' `_, h, c = LSTM(32, return_state=True)(source)`.
//! let encoded = LSTM::new(32).return_state(true).call_states(&[&source])?;
//! let decoded = LSTM::new(32)
//!     .return_sequences(true)
//!     .call_many(&[&target, &encoded[1], &encoded[2]])?;
//! let out = Dense::new(6).activation(Activation::Softmax).call(&decoded)?;
//! let _model = Model::new(&[source, target], &out)?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::layers::Layer;
use crate::network::{Network, Preset, Source};
use crate::{Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
enum Origin {
    Input,
    /// Value `output` of a layer application: 0 its output, `k + 1` its state `k`.
    Layer {
        app: Arc<SymApp>,
        output: usize,
    },
}

/// One application of a layer: every tensor it gives shares it, so a model holds it once.
#[derive(Debug)]
struct SymApp {
    id: u64,
    /// The layer's identity: the same for every application of one [`Shared`] layer.
    layer_id: u64,
    layer: Arc<dyn Layer>,
    inputs: Vec<SymbolicTensor>,
    /// Trained weights the layer starts from (a compiled model applied as a layer).
    preset: Option<Preset>,
}

#[derive(Debug)]
struct SymNode {
    id: u64,
    shape: Vec<usize>,
    origin: Origin,
}

/// A tensor of the functional API: what flows between layers before a model exists. Its shape is
/// per sample (no batch axis).
#[derive(Clone, Debug)]
pub struct SymbolicTensor(Arc<SymNode>);

impl SymbolicTensor {
    /// The sample shape.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
}

/// Keras' `Input(shape=...)`.
pub struct Input;

impl Input {
    /// A model input whose samples have `shape`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: impl Into<Vec<usize>>) -> SymbolicTensor {
        SymbolicTensor(Arc::new(SymNode {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape: shape.into(),
            origin: Origin::Input,
        }))
    }
}

/// Applying layers to symbolic tensors, Keras' `layer(x)`. A call takes the layer: each call is
/// a layer of its own, with its own weights (a clone too). To apply one layer with the same
/// weights to several inputs, as Keras does when one layer object is called twice, wrap it in
/// [`Shared`].
pub trait Call: Layer + Sized + 'static {
    /// Applies the layer to one input; errors at once if the shapes do not fit.
    fn call(self, input: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_many(&[input])
    }

    /// Applies the layer to several inputs (`Concatenate`; a recurrent layer's sequence and
    /// initial state, Keras' `layer(x, initial_state=[h, c])`).
    fn call_many(self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        let kind = self.kind();
        output_alone(self.call_states(inputs)?, kind)
    }

    /// Applies the layer and returns everything it gives: its output, then the states it returns
    /// with `return_state` (an LSTM's `[output, h, c]`, a GRU's `[output, h]`), as Keras'
    /// `outputs, *states = layer(x)`.
    fn call_states(self, inputs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        apply(Arc::new(self), NEXT_ID.fetch_add(1, Ordering::Relaxed), inputs, None)
    }
}

impl<L: Layer + Sized + 'static> Call for L {}

/// A layer applied to several inputs with one set of weights, as a Keras layer object called more
/// than once (a siamese network's encoder, one embedding for two token inputs). Every application
/// reads and trains the same weights, so their gradients add up; the layer is named, saved and
/// counted by `summary()` once. Its inputs must fit the weights its first application built.
///
/// ```no_run
/// use kiln_nn::{Activation, Dense, Input, Model, Shared, Subtract};
/// # use kiln_nn::Call;
/// # fn main() -> kiln_nn::Result<()> {
/// let (a, b) = (Input::new([10]), Input::new([10]));
/// let encoder = Shared::new(Dense::new(8).activation(Activation::Relu));
/// let (ea, eb) = (encoder.call(&a)?, encoder.call(&b)?);
/// let difference = Subtract::new().call_many(&[&ea, &eb])?;
/// let out = Dense::new(1).activation(Activation::Sigmoid).call(&difference)?;
/// let _model = Model::new(&[a, b], &out)?;
/// # Ok(()) }
/// ```
///
/// State is shared too: a BatchNormalization's moving statistics are updated once per
/// application while training, in call order, as Keras updates them. Weights are shared within a model: two
/// models built from one `Shared` layer each hold their own (a model's weights live on its
/// device), where Keras' two models would share the layer's variables.
#[derive(Clone, Debug)]
pub struct Shared {
    id: u64,
    layer: Arc<dyn Layer>,
}

impl Shared {
    /// `layer`, to be applied any number of times with the same weights.
    pub fn new(layer: impl Layer + 'static) -> Self {
        Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            layer: Arc::new(layer),
        }
    }

    /// Applies the layer to one input, as [`Call::call`].
    pub fn call(&self, input: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_many(&[input])
    }

    /// Applies the layer to several inputs, as [`Call::call_many`].
    pub fn call_many(&self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        output_alone(self.call_states(inputs)?, self.layer.kind())
    }

    /// Applies the layer and returns its output and states, as [`Call::call_states`].
    pub fn call_states(&self, inputs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        apply(self.layer.clone(), self.id, inputs, None)
    }
}

/// One application of `layer` (identity `layer_id`, starting from `preset` if given) to `inputs`:
/// its output, then its states.
fn apply(
    layer: Arc<dyn Layer>,
    layer_id: u64,
    inputs: &[&SymbolicTensor],
    preset: Option<Preset>,
) -> Result<Vec<SymbolicTensor>> {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.0.shape.clone()).collect();
    let mut all = vec![layer.output_shape(&shapes)?];
    all.extend(layer.state_shapes(&shapes));
    let app = Arc::new(SymApp {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        layer_id,
        layer,
        inputs: inputs.iter().map(|t| (*t).clone()).collect(),
        preset,
    });
    Ok(all
        .into_iter()
        .enumerate()
        .map(|(output, shape)| {
            SymbolicTensor(Arc::new(SymNode {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shape,
                origin: Origin::Layer {
                    app: app.clone(),
                    output,
                },
            }))
        })
        .collect())
}

/// The output of an application that must give nothing else: a layer returning states is refused
/// (Keras' call returns a list there).
fn output_alone(mut all: Vec<SymbolicTensor>, kind: &str) -> Result<SymbolicTensor> {
    if all.len() > 1 {
        return Err(Error::invalid(
            kind,
            format!(
                "returns its output and {} states (`return_state`), as Keras returns a list: apply it \
                 with `call_states`, which gives [output, states…]",
                all.len() - 1
            ),
        ));
    }
    Ok(all.remove(0))
}

/// The network between `inputs` and `output`, applications in dependency order.
pub(crate) fn network(inputs: &[SymbolicTensor], output: &SymbolicTensor) -> Result<Network> {
    let mut net = Network {
        inputs: inputs.iter().map(|t| Some(t.0.shape.clone())).collect(),
        ..Network::default()
    };
    let mut seen = Seen {
        inputs: inputs.iter().enumerate().map(|(i, t)| (t.0.id, i)).collect(),
        apps: HashMap::new(),
        layers: HashMap::new(),
    };
    if seen.inputs.len() != inputs.len() {
        return Err(Error::invalid("Model::new", "the same Input is listed twice"));
    }
    let out = visit(output, &mut seen, &mut net)?;
    net.output = Some(out);
    Ok(net)
}

/// What [`visit`] has placed: each model input's position, each layer application's node, and
/// each layer's first application.
struct Seen {
    inputs: HashMap<u64, usize>,
    apps: HashMap<u64, usize>,
    layers: HashMap<u64, usize>,
}

fn visit(t: &SymbolicTensor, seen: &mut Seen, net: &mut Network) -> Result<Source> {
    match &t.0.origin {
        Origin::Input => seen.inputs.get(&t.0.id).map(|&i| Source::Input(i)).ok_or_else(|| {
            Error::invalid(
                "Model::new",
                format!(
                    "the output depends on an Input of shape {:?} that is not among the model's inputs",
                    t.0.shape
                ),
            )
        }),
        Origin::Layer { app, output } => {
            let node = match seen.apps.get(&app.id) {
                Some(&j) => j,
                None => {
                    let sources = app
                        .inputs
                        .iter()
                        .map(|i| visit(i, seen, net))
                        .collect::<Result<Vec<_>>>()?;
                    let j = match seen.layers.get(&app.layer_id) {
                        Some(&owner) => net.push_shared(owner, sources),
                        None => net.push(app.layer.clone(), sources),
                    }
                    .node()
                    .expect("a pushed layer is a node");
                    // The layer's first application holds its weights, and so their starting values.
                    if seen.layers.insert(app.layer_id, j).is_none() {
                        net.nodes[j].preset = app.preset.clone();
                    }
                    seen.apps.insert(app.id, j);
                    j
                }
            };
            Ok(match output {
                0 => Source::Node(node),
                k => Source::State(node, k - 1),
            })
        }
    }
}

/// A model applied as a layer (Keras' `model(x)`): its layer applications repeated on `inputs`,
/// each layer keeping the identity `ids` gives it (`ids[j]` for the application `j` that holds
/// the weights), so that calling one model twice shares its layers as [`Shared`] does. `presets`
/// holds each application's trained weights when the model was compiled (none for one that was
/// not, whose layers start from their initialisers).
pub(crate) fn inline(
    net: &Network,
    ids: &[u64],
    presets: Option<Vec<Vec<Vec<f32>>>>,
    inputs: &[&SymbolicTensor],
) -> Result<SymbolicTensor> {
    if inputs.len() != net.inputs.len() {
        return Err(Error::invalid(
            "Model::call",
            format!("the model takes {} inputs, got {}", net.inputs.len(), inputs.len()),
        ));
    }
    for (i, (t, want)) in inputs.iter().zip(&net.inputs).enumerate() {
        if want.as_deref() != Some(t.shape()) {
            return Err(Error::invalid(
                "Model::call",
                format!(
                    "input {i} has samples of shape {:?}, the model takes {want:?}",
                    t.shape()
                ),
            ));
        }
    }
    let mut presets = presets.map(Vec::into_iter);
    let mut values: Vec<Vec<SymbolicTensor>> = Vec::with_capacity(net.nodes.len());
    let value = |source: Source, values: &[Vec<SymbolicTensor>]| -> SymbolicTensor {
        // The network was validated when the model was built: every source exists.
        match source {
            Source::Input(i) => inputs[i].clone(),
            Source::Node(j) => values[j][0].clone(),
            Source::State(j, k) => values[j][k + 1].clone(),
        }
    };
    for (j, app) in net.nodes.iter().enumerate() {
        let ins: Vec<SymbolicTensor> = app.inputs.iter().map(|&s| value(s, &values)).collect();
        let refs: Vec<&SymbolicTensor> = ins.iter().collect();
        let preset = presets
            .as_mut()
            .and_then(Iterator::next)
            .filter(|p| !p.is_empty())
            .map(Arc::new);
        values.push(apply(app.layer.clone(), ids[j], &refs, preset)?);
    }
    let output = net
        .output
        .ok_or_else(|| Error::invalid("Model::call", "the model has no layers"))?;
    Ok(value(output, &values))
}

/// A fresh layer identity per application of `net` (the same for a shared layer's applications).
pub(crate) fn layer_ids(net: &Network) -> Vec<u64> {
    let fresh: Vec<u64> = net
        .nodes
        .iter()
        .map(|_| NEXT_ID.fetch_add(1, Ordering::Relaxed))
        .collect();
    (0..net.nodes.len()).map(|j| fresh[net.owner(j)]).collect()
}
