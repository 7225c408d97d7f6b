//! Keras' elementwise merge layers for the functional API — `Add`, `Subtract`, `Multiply`,
//! `Average`, `Maximum`, `Minimum` (keras/src/layers/merging/): inputs of one shape in, one out.
//! Each is composed from graph ops, so autodiff gives its backward; `max(a, b)` is
//! `a + relu(b - a)`, whose gradient goes to the first input on ties, as TensorFlow's does.

use kiln_graph::{ActivationOp, Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{plain, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// How a merge layer combines its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merge {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

impl Merge {
    /// Keras' class name.
    fn class(self) -> &'static str {
        match self {
            Merge::Add => "Add",
            Merge::Subtract => "Subtract",
            Merge::Multiply => "Multiply",
            Merge::Average => "Average",
            Merge::Maximum => "Maximum",
            Merge::Minimum => "Minimum",
        }
    }

    /// Inputs must share one shape (Keras broadcasts only size-1 axes, which Kiln does not); at
    /// least two, exactly two for `Subtract`.
    fn output_shape(self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let arity_ok = match self {
            Merge::Subtract => inputs.len() == 2,
            Merge::Add | Merge::Multiply | Merge::Average | Merge::Maximum | Merge::Minimum => inputs.len() >= 2,
        };
        if !arity_ok {
            let wanted = if self == Merge::Subtract {
                "exactly two"
            } else {
                "at least two"
            };
            return Err(Error::invalid(
                self.class(),
                format!("merges {wanted} inputs, got {}", inputs.len()),
            ));
        }
        if let Some(other) = inputs.iter().find(|s| *s != &inputs[0]) {
            return Err(Error::shape(
                self.class(),
                format!("{:?} and {other:?}", inputs[0]),
                "inputs of one shape (project one with a Dense or a 1×1 convolution first)",
            ));
        }
        Ok(inputs[0].clone())
    }

    fn build(self, g: &mut Graph, xs: &[NodeId]) -> Result<LayerOut> {
        let mut out = xs[0];
        for &x in &xs[1..] {
            out = match self {
                Merge::Add | Merge::Average => g.add(out, x)?,
                Merge::Subtract => g.sub(out, x)?,
                Merge::Multiply => g.mul(out, x)?,
                Merge::Maximum => {
                    let d = g.sub(x, out)?;
                    let above = g.unary(ActivationOp::Relu, d)?;
                    g.add(out, above)?
                }
                Merge::Minimum => {
                    let d = g.sub(out, x)?;
                    let above = g.unary(ActivationOp::Relu, d)?;
                    g.sub(out, above)?
                }
            };
        }
        if self == Merge::Average {
            out = g.scale(out, 1.0 / xs.len() as f32)?;
        }
        Ok(plain(out))
    }
}

/// One merge layer per Keras class, each a unit struct saved under its class name.
macro_rules! merge_layer {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        pub struct $name;

        impl $name {
            pub fn new() -> Self {
                $name
            }
        }

        impl Layer for $name {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn config(&self) -> LayerConfig {
                LayerConfig::$name(self.clone())
            }

            fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
                Merge::$name.output_shape(inputs)
            }

            fn passes_mask(&self) -> bool {
                true
            }

            fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
                Merge::$name.build(g, xs)
            }
        }
    };
}

merge_layer!(
    /// The sum of its inputs (Keras' `Add`): the join of a residual block.
    Add,
    "add"
);
merge_layer!(
    /// The first input minus the second (Keras' `Subtract`).
    Subtract,
    "subtract"
);
merge_layer!(
    /// The elementwise product of its inputs (Keras' `Multiply`).
    Multiply,
    "multiply"
);
merge_layer!(
    /// The mean of its inputs (Keras' `Average`).
    Average,
    "average"
);
merge_layer!(
    /// The elementwise maximum of its inputs (Keras' `Maximum`).
    Maximum,
    "maximum"
);
merge_layer!(
    /// The elementwise minimum of its inputs (Keras' `Minimum`).
    Minimum,
    "minimum"
);
