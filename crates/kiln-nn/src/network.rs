//! The structure every model shares: inputs, layer applications in dependency order, one output.
//! `Sequential` builds it as a chain; the functional API builds it from symbolic tensors.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::layers::Layer;
use crate::{Error, Result};

/// Where a layer application takes an input from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Model input `i`.
    Input(usize),
    /// The output of application `i`.
    Node(usize),
}

/// One layer applied to earlier sources.
#[derive(Clone, Debug)]
pub struct Application {
    pub layer: Arc<dyn Layer>,
    /// Keras-style unique name (`dense`, `dense_1`, `concatenate`, ...).
    pub name: String,
    pub inputs: Vec<Source>,
}

/// A model's layers as a DAG. Applications only read inputs or earlier applications.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// The sample shape of each input, once known.
    pub inputs: Vec<Option<Vec<usize>>>,
    pub nodes: Vec<Application>,
    pub output: Option<Source>,
}

/// Every shape of a network, resolved.
#[derive(Clone, Debug)]
pub struct Shapes {
    pub inputs: Vec<Vec<usize>>,
    /// Per application: its input sample shapes and its output sample shape.
    pub nodes: Vec<(Vec<Vec<usize>>, Vec<usize>)>,
    pub output: Vec<usize>,
}

impl Network {
    /// A name for a new application of `kind`, unique in this network.
    pub fn fresh_name(&self, kind: &str) -> String {
        let same = self.nodes.iter().filter(|n| n.layer.kind() == kind).count();
        if same == 0 {
            kind.to_string()
        } else {
            format!("{kind}_{same}")
        }
    }

    /// Appends an application and returns its source.
    pub fn push(&mut self, layer: Arc<dyn Layer>, inputs: Vec<Source>) -> Source {
        let name = self.fresh_name(layer.kind());
        self.nodes.push(Application { layer, name, inputs });
        Source::Node(self.nodes.len() - 1)
    }

    /// Resolves every sample shape, or says which layer cannot accept what it is given.
    pub fn shapes(&self) -> Result<Shapes> {
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.clone().ok_or_else(|| {
                    Error::invalid(
                        "model",
                        format!(
                            "input {i} has no shape: give the first layer one (Dense::new(n).input_dim(d)) or call \
                             Sequential::input_shape"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut nodes: Vec<(Vec<Vec<usize>>, Vec<usize>)> = Vec::with_capacity(self.nodes.len());
        for app in &self.nodes {
            let ins: Vec<Vec<usize>> = app
                .inputs
                .iter()
                .map(|s| match *s {
                    Source::Input(i) => inputs[i].clone(),
                    Source::Node(j) => nodes[j].1.clone(),
                })
                .collect();
            let out = app
                .layer
                .output_shape(&ins)
                .map_err(|e| Error::invalid(format!("layer `{}`", app.name), e.to_string()))?;
            nodes.push((ins, out));
        }
        let output = match self
            .output
            .ok_or_else(|| Error::invalid("model", "the model has no layers"))?
        {
            Source::Input(i) => inputs[i].clone(),
            Source::Node(j) => nodes[j].1.clone(),
        };
        Ok(Shapes { inputs, nodes, output })
    }

    /// The application that produces the output, if any.
    pub fn output_layer(&self) -> Option<&Application> {
        match self.output? {
            Source::Node(j) => Some(&self.nodes[j]),
            Source::Input(_) => None,
        }
    }
}
