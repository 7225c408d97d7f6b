//! `Concatenate`: joins several inputs along their last axis (the functional API's merge).

use kiln_graph::{Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{plain, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// Joins its inputs along the last axis, as Keras' `Concatenate()`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Concatenate;

impl Concatenate {
    /// A concatenation along the last axis.
    pub fn new() -> Self {
        Concatenate
    }
}

impl Layer for Concatenate {
    fn config(&self) -> LayerConfig {
        LayerConfig::Concatenate(self.clone())
    }

    fn kind(&self) -> &'static str {
        "concatenate"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        if inputs.len() < 2 {
            return Err(Error::invalid(
                "Concatenate",
                format!("joins at least two inputs, got {}", inputs.len()),
            ));
        }
        let first = &inputs[0];
        if first.is_empty() {
            return Err(Error::invalid(
                "Concatenate",
                "inputs need at least one axis per sample",
            ));
        }
        let mut out = first.clone();
        for other in &inputs[1..] {
            if other.len() != first.len() || other[..other.len() - 1] != first[..first.len() - 1] {
                return Err(Error::shape(
                    "Concatenate",
                    format!("{first:?} and {other:?}"),
                    "shapes equal except along the last axis",
                ));
            }
            let joined = out.last_mut().expect("non-empty");
            *joined = joined.checked_add(*other.last().expect("same rank")).ok_or_else(|| {
                Error::invalid(
                    "Concatenate",
                    format!("joining {first:?} and {other:?} gives a last axis past usize::MAX"),
                )
            })?;
        }
        super::checked_product("Concatenate", &out)?;
        Ok(out)
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let axis = g.shape(xs[0])?.rank() - 1;
        Ok(plain(g.concat(xs, axis)?))
    }
}
