//! LayerNormalization, as Keras' `layers.LayerNormalization` over the last axis
//! (keras/src/layers/normalization/layer_normalization.py, `ops.layer_normalization`).

use kiln_graph::{ElementwiseOp, Graph, LayoutOp, NodeId, ReduceOp, Shape};
use serde::{Deserialize, Serialize};

use super::{checked_product, plain, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Error, Init, Result};

/// Normalises each position's features (the last axis) to zero mean and unit variance, then
/// scales by `gamma` and shifts by `beta`: `y = (x - mean) / √(variance + epsilon) · gamma + beta`
/// with the (biased) statistics of that position alone, the same in training and inference.
/// Weights, in Keras' order: `gamma` (ones, when `scale`) and `beta` (zeros, when `center`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerNormalization {
    epsilon: f32,
    center: bool,
    scale: bool,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// Keras' defaults: epsilon 1e-3, with `gamma` and `beta`.
    pub fn new() -> Self {
        LayerNormalization {
            epsilon: 1e-3,
            center: true,
            scale: true,
            input_shape: None,
        }
    }

    super::normalization_builders!();
}

impl Layer for LayerNormalization {
    fn autocasts(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "layer_normalization"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::LayerNormalization(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let shape = single("layer_normalization", inputs)?;
        if shape.is_empty() {
            return Err(Error::invalid(
                "LayerNormalization",
                "needs samples with at least one axis (the features it normalises)",
            ));
        }
        checked_product("LayerNormalization", shape)?;
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid(
                "LayerNormalization",
                format!("epsilon {} must be finite and > 0", self.epsilon),
            ));
        }
        Ok(shape.to_vec())
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let features = inputs.first().and_then(|s| s.last()).copied().unwrap_or(0);
        let mut p = Vec::with_capacity(2);
        if self.scale {
            p.push(ParamDecl::weight(
                "gamma",
                vec![features],
                Init::Ones,
                (features, features),
            ));
        }
        if self.center {
            p.push(ParamDecl::weight(
                "beta",
                vec![features],
                Init::Zeros,
                (features, features),
            ));
        }
        p
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let shape = g.shape(xs[0])?.clone();
        let features = shape.last();
        let rows = shape.numel() / features.max(1);
        let flat = g.push(
            LayoutOp::Reshape {
                shape: Shape::new([rows, features]),
            },
            &[xs[0]],
        )?;
        let gamma = self.scale.then(|| params[0]);
        let beta = self.center.then(|| params[usize::from(self.scale)]);
        let y = normalize_rows(g, flat, gamma, beta, self.epsilon)?;
        Ok(plain(g.push(LayoutOp::Reshape { shape }, &[y])?))
    }
}

/// Keras' `ops.layer_normalization` on `x` `[rows, features]`: each row normalised by its own
/// mean and biased variance, then `· gamma + beta` per feature.
pub fn normalize_rows(
    g: &mut Graph,
    x: NodeId,
    gamma: Option<NodeId>,
    beta: Option<NodeId>,
    epsilon: f32,
) -> Result<NodeId> {
    let [rows, features]: [usize; 2] = g
        .shape(x)?
        .dims()
        .try_into()
        .map_err(|_| Error::invalid("layer normalization", "expects rows of features"))?;
    let across = |g: &mut Graph, v: NodeId| {
        g.push(
            ReduceOp::Broadcast {
                axis: 1,
                size: features,
            },
            &[v],
        )
    };
    let mean = g.push(ReduceOp::Mean { axis: 1 }, &[x])?;
    let spread = across(g, mean)?;
    let centered = g.sub(x, spread)?;
    let squares = g.mul(centered, centered)?;
    let variance = g.push(ReduceOp::Mean { axis: 1 }, &[squares])?;
    let eps = g.fill(epsilon, Shape::new([rows]));
    let shifted = g.add(variance, eps)?;
    let inv = g.unary(ElementwiseOp::Pow { exponent: -0.5 }, shifted)?;
    let inv = across(g, inv)?;
    let mut y = g.mul(centered, inv)?;
    if let Some(gamma) = gamma {
        let gamma = g.push(ReduceOp::Broadcast { axis: 0, size: rows }, &[gamma])?;
        y = g.mul(y, gamma)?;
    }
    if let Some(beta) = beta {
        y = g.bias_add(y, beta)?;
    }
    Ok(y)
}
