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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::layers::Layer;
use crate::network::{Network, Source};
use crate::{Error, Result};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
enum Origin {
    Input,
    Layer {
        layer: Arc<dyn Layer>,
        inputs: Vec<SymbolicTensor>,
    },
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

/// Applying layers to symbolic tensors, Keras' `layer(x)`.
pub trait Call: Layer + Sized + 'static {
    /// Applies the layer to one input; errors at once if the shapes do not fit.
    fn call(self, input: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_many(&[input])
    }

    /// Applies the layer to several inputs (`Concatenate`).
    fn call_many(self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.0.shape.clone()).collect();
        let shape = self.output_shape(&shapes)?;
        Ok(SymbolicTensor(Arc::new(SymNode {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            origin: Origin::Layer {
                layer: Arc::new(self),
                inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            },
        })))
    }
}

impl<L: Layer + Sized + 'static> Call for L {}

/// The network between `inputs` and `output`, applications in dependency order.
pub(crate) fn network(inputs: &[SymbolicTensor], output: &SymbolicTensor) -> Result<Network> {
    let mut net = Network {
        inputs: inputs.iter().map(|t| Some(t.0.shape.clone())).collect(),
        ..Network::default()
    };
    let mut seen: HashMap<u64, Source> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.0.id, Source::Input(i)))
        .collect();
    if seen.len() != inputs.len() {
        return Err(Error::invalid("Model::new", "the same Input is listed twice"));
    }
    let out = visit(output, &mut seen, &mut net)?;
    net.output = Some(out);
    Ok(net)
}

fn visit(t: &SymbolicTensor, seen: &mut HashMap<u64, Source>, net: &mut Network) -> Result<Source> {
    if let Some(s) = seen.get(&t.0.id) {
        return Ok(*s);
    }
    match &t.0.origin {
        Origin::Input => Err(Error::invalid(
            "Model::new",
            format!(
                "the output depends on an Input of shape {:?} that is not among the model's inputs",
                t.0.shape
            ),
        )),
        Origin::Layer { layer, inputs } => {
            let sources = inputs.iter().map(|i| visit(i, seen, net)).collect::<Result<Vec<_>>>()?;
            let s = net.push(layer.clone(), sources);
            seen.insert(t.0.id, s);
            Ok(s)
        }
    }
}
