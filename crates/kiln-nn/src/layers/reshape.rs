//! `Flatten` and `Reshape`: the same values under another per-sample shape (views in the arena; the
//! scheduler gives them no step).

use kiln_graph::{Graph, LayoutOp, NodeId, Shape};
use serde::{Deserialize, Serialize};

use super::{checked_product, plain, single, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// Keras' `Flatten`: each sample to one axis.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Flatten;

impl Flatten {
    /// The flattening layer.
    pub fn new() -> Self {
        Flatten
    }
}

impl Layer for Flatten {
    fn config(&self) -> LayerConfig {
        LayerConfig::Flatten(self.clone())
    }

    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        Ok(vec![checked_product("Flatten", single("Flatten", inputs)?)?])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let flat = Shape::new([dims[0], dims[1..].iter().product()]);
        Ok(plain(g.push(LayoutOp::Reshape { shape: flat }, &[xs[0]])?))
    }
}

/// Keras' `Reshape(target_shape)`: each sample to `target` (same number of values).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reshape {
    target: Vec<usize>,
}

impl Reshape {
    /// Samples reshaped to `target`.
    pub fn new(target: impl Into<Vec<usize>>) -> Self {
        Reshape { target: target.into() }
    }
}

impl Layer for Reshape {
    fn config(&self) -> LayerConfig {
        LayerConfig::Reshape(self.clone())
    }

    fn kind(&self) -> &'static str {
        "reshape"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Reshape", inputs)?;
        let (from, to) = (
            checked_product("Reshape", input)?,
            checked_product("Reshape", &self.target)?,
        );
        if from != to {
            return Err(Error::invalid(
                "Reshape",
                format!(
                    "samples {input:?} hold {from} values, the target {:?} holds {to}",
                    self.target
                ),
            ));
        }
        Ok(self.target.clone())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let mut shape = vec![g.shape(xs[0])?.dims()[0]];
        shape.extend(&self.target);
        Ok(plain(g.push(
            LayoutOp::Reshape {
                shape: Shape::new(shape),
            },
            &[xs[0]],
        )?))
    }
}
