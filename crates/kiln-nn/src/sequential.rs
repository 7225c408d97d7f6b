//! `Sequential`: Keras' linear stack of layers, built as a chain in the shared [`Network`].

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::layers::Layer;
use crate::network::{Network, Source};
use crate::Model;

/// A linear stack of layers, used as in Keras:
///
/// ```no_run
/// use kiln_nn::{Activation, Dense, Loss, Metric, Optimizer, Sequential};
/// # fn run(device: &dyn kiln_graph::Backend, x: &kiln_data::Tensor, y: &kiln_data::Tensor) -> kiln_nn::Result<()> {
/// let mut model = Sequential::new()
///     .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
///     .add(Dense::new(10).activation(Activation::Softmax));
/// model.compile(device, Optimizer::adam(), Loss::SparseCategoricalCrossentropy, &[Metric::Accuracy])?;
/// let history = model.fit(x, y, &kiln_nn::FitOptions::new(30, 32))?;
/// println!("final accuracy {:?}", history.last("accuracy"));
/// # Ok(()) }
/// ```
///
/// A `Sequential` is a [`Model`] (as in Keras), so `compile`, `fit`, `evaluate` and `predict` are
/// `Model`'s, reached through `Deref`.
pub struct Sequential {
    model: Model,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty stack with one input whose shape the first layer or [`Sequential::input_shape`]
    /// gives.
    pub fn new() -> Self {
        let model = Model {
            network: Network {
                inputs: vec![None],
                ..Network::default()
            },
            ..Model::default()
        };
        Sequential { model }
    }

    /// The shape of one input sample (Keras' `Input(shape=...)`).
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.model.network.inputs[0] = Some(shape.into());
        self
    }

    /// Seed of the weight initialisation.
    pub fn seed(mut self, seed: u64) -> Self {
        self.model.seed = seed;
        self
    }

    /// Appends a layer fed by the previous one. Names follow Keras: `dense`, `dense_1`, ...
    // Keras calls this `add`; a Keras user looks for that name, not for `std::ops::Add`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        let net = &mut self.model.network;
        if net.nodes.is_empty() && net.inputs[0].is_none() {
            net.inputs[0] = layer.input_shape();
        }
        let from = net.output.unwrap_or(Source::Input(0));
        let out = net.push(Arc::new(layer), vec![from]);
        net.output = Some(out);
        self
    }

    /// The model underneath.
    pub fn into_model(self) -> Model {
        self.model
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sequential{:?}", self.model)
    }
}

impl Deref for Sequential {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

impl DerefMut for Sequential {
    fn deref_mut(&mut self) -> &mut Model {
        &mut self.model
    }
}
