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
    /// State `k` that application `i` returns after its output (Keras' `return_state`: an LSTM's
    /// `h` is state 0, its `c` state 1).
    State(usize, usize),
}

impl Source {
    /// The application the value comes from, if a layer computes it.
    pub fn node(self) -> Option<usize> {
        match self {
            Source::Input(_) => None,
            Source::Node(j) | Source::State(j, _) => Some(j),
        }
    }
}

/// One layer applied to earlier sources.
#[derive(Clone, Debug)]
pub struct Application {
    pub layer: Arc<dyn Layer>,
    /// Keras-style unique name (`dense`, `dense_1`, `concatenate`, ...); a shared layer's
    /// applications all carry its name.
    pub name: String,
    pub inputs: Vec<Source>,
    /// The earlier application whose layer this one applies again, with the same weights (Keras'
    /// shared layer: one layer object called on several inputs); `None` for a layer's first
    /// application.
    pub shares: Option<usize>,
    /// The values the layer's parameters start from, one per parameter in declaration order (the
    /// trained weights of a model applied as a layer); `None`: drawn from their initialisers.
    pub preset: Option<Preset>,
}

/// A layer's parameters' starting values, one vector per parameter.
pub type Preset = Arc<Vec<Vec<f32>>>;

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
    /// Per application: the sample shapes of the states it returns (mostly none).
    pub states: Vec<Vec<Vec<usize>>>,
    pub output: Vec<usize>,
}

impl Shapes {
    /// The sample shape of the value `source` names, or an error naming a state that the
    /// application does not return.
    fn of(&self, source: Source, nodes: &[Application]) -> Result<Vec<usize>> {
        match source {
            Source::Input(i) => Ok(self.inputs[i].clone()),
            Source::Node(j) => Ok(self.nodes[j].1.clone()),
            Source::State(j, k) => self.states[j].get(k).cloned().ok_or_else(|| {
                Error::invalid(
                    format!("layer `{}`", nodes[j].name),
                    format!(
                        "returns {} state{} (Keras' `return_state`), so it has no state {k}",
                        self.states[j].len(),
                        if self.states[j].len() == 1 { "" } else { "s" }
                    ),
                )
            }),
        }
    }
}

/// Refuses a shared layer's further application when it would need other weights than its first
/// (Keras: "Input 0 of layer … is incompatible with the layer"). State the layer keeps is shared
/// too: a BatchNormalization's moving statistics are updated once per application in training, in
/// call order, as Keras updates them.
fn check_shared(app: &Application, first: &[Vec<usize>], ins: &[Vec<usize>]) -> Result<()> {
    let at = || format!("layer `{}`", app.name);
    let first_params = app.layer.params(first);
    let weights =
        |params: &[crate::layers::ParamDecl]| -> Vec<Vec<usize>> { params.iter().map(|p| p.shape.clone()).collect() };
    let (want, got) = (weights(&first_params), weights(&app.layer.params(ins)));
    if want != got {
        return Err(Error::invalid(
            at(),
            format!(
                "is shared: it was built for inputs {first:?} (weights {want:?}), so it cannot be applied \
                 again to inputs {ins:?}, which would need weights {got:?}"
            ),
        ));
    }
    Ok(())
}

impl Network {
    /// A name for a new layer of `kind`, unique in this network.
    pub fn fresh_name(&self, kind: &str) -> String {
        let same = self
            .nodes
            .iter()
            .filter(|n| n.shares.is_none() && n.layer.kind() == kind)
            .count();
        if same == 0 {
            kind.to_string()
        } else {
            format!("{kind}_{same}")
        }
    }

    /// Appends an application of a new layer and returns its source.
    pub fn push(&mut self, layer: Arc<dyn Layer>, inputs: Vec<Source>) -> Source {
        let name = self.fresh_name(layer.kind());
        self.nodes.push(Application {
            layer,
            name,
            inputs,
            shares: None,
            preset: None,
        });
        Source::Node(self.nodes.len() - 1)
    }

    /// Appends another application of the layer application `owner` applied (its weights too)
    /// and returns its source.
    pub fn push_shared(&mut self, owner: usize, inputs: Vec<Source>) -> Source {
        let first = &self.nodes[owner];
        self.nodes.push(Application {
            layer: first.layer.clone(),
            name: first.name.clone(),
            inputs,
            shares: Some(owner),
            preset: None,
        });
        Source::Node(self.nodes.len() - 1)
    }

    /// The application that holds the weights application `j` uses: `j` itself unless it applies
    /// a shared layer again.
    pub fn owner(&self, j: usize) -> usize {
        self.nodes[j].shares.unwrap_or(j)
    }

    /// The layers' first applications: one per layer, each holding its weights.
    pub fn layers(&self) -> impl Iterator<Item = &Application> {
        self.nodes.iter().filter(|a| a.shares.is_none())
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
        let mut shapes = Shapes {
            inputs,
            nodes: Vec::with_capacity(self.nodes.len()),
            states: Vec::with_capacity(self.nodes.len()),
            output: Vec::new(),
        };
        for app in &self.nodes {
            let ins = app
                .inputs
                .iter()
                .map(|&s| shapes.of(s, &self.nodes))
                .collect::<Result<Vec<_>>>()?;
            let named = |e: Error| Error::invalid(format!("layer `{}`", app.name), e.to_string());
            let out = app.layer.output_shape(&ins).map_err(named)?;
            if let Some(owner) = app.shares {
                check_shared(app, &shapes.nodes[owner].0, &ins)?;
            }
            shapes.states.push(app.layer.state_shapes(&ins));
            shapes.nodes.push((ins, out));
        }
        let output = self
            .output
            .ok_or_else(|| Error::invalid("model", "the model has no layers"))?;
        shapes.output = shapes.of(output, &self.nodes)?;
        Ok(shapes)
    }

    /// The model inputs whose values reach `source` unchanged (through layers that only move
    /// values), or the first application on the way that computes new values.
    pub fn value_origins(&self, source: Source) -> std::result::Result<Vec<usize>, &Application> {
        match source {
            Source::Input(i) => Ok(vec![i]),
            Source::State(j, _) => Err(&self.nodes[j]),
            Source::Node(j) => {
                let app = &self.nodes[j];
                if !app.layer.moves_values() {
                    return Err(app);
                }
                let mut out = Vec::new();
                for s in &app.inputs {
                    out.extend(self.value_origins(*s)?);
                }
                Ok(out)
            }
        }
    }

    /// Refuses a layer that reads indices from values another layer computed: a lookup has no
    /// gradient with respect to its indices, and computed floats would be rounded into tokens
    /// silently, unchecked.
    pub fn check_index_sources(&self) -> Result<()> {
        for app in self.nodes.iter().filter(|a| a.layer.reads_indices()) {
            for s in &app.inputs {
                if let Err(computed) = self.value_origins(*s) {
                    return Err(Error::invalid(
                        format!("layer `{}`", app.name),
                        format!(
                            "reads integer token indices, but its input is computed by layer `{}` ({}): a lookup has \
                             no gradient with respect to its indices, and computed values are not tokens. Feed it \
                             from a model input of token ids (through Reshape, Flatten or Concatenate at most).",
                            computed.name,
                            computed.layer.kind()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The application that produces the output, if any.
    pub fn output_layer(&self) -> Option<&Application> {
        Some(&self.nodes[self.output?.node()?])
    }
}
