//! BatchNormalization, as Keras' `layers.BatchNormalization` over the last axis
//! (keras/src/layers/normalization/batch_normalization.py).

use kiln_graph::{ElementwiseOp, Graph, LayoutOp, NodeId, ReduceOp, UpdateOp};
use serde::{Deserialize, Serialize};

use super::{checked_product, plain, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Error, Init, Result};

/// Normalises each channel (the last axis) to zero mean and unit variance, then scales by `gamma`
/// and shifts by `beta`:
///
/// `y = (x - mean) / √(variance + epsilon) · gamma + beta`
///
/// In training the mean and (biased) variance are the batch's, over every axis but the last, and
/// the step also moves the non-trainable statistics toward them, in place on the device:
/// `moving = moving · momentum + batch · (1 - momentum)`. Evaluation and prediction use the moving
/// statistics. Weights, in Keras' order: `gamma` (ones, when `scale`), `beta` (zeros, when
/// `center`), `moving_mean` (zeros) and `moving_variance` (ones), the last two non-trainable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchNormalization {
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// Keras' defaults: momentum 0.99, epsilon 1e-3, with `beta` and `gamma`.
    pub fn new() -> Self {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            input_shape: None,
        }
    }

    super::normalization_builders!();

    /// How much of the moving statistics each step keeps (Keras' default 0.99; lower follows the
    /// weights faster, which short runs need).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// The layer's momentum.
    pub fn get_momentum(&self) -> f32 {
        self.momentum
    }

    /// The layer's epsilon.
    pub fn get_epsilon(&self) -> f32 {
        self.epsilon
    }
}

impl Layer for BatchNormalization {
    fn autocasts(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "batch_normalization"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::BatchNormalization(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let shape = single("batch_normalization", inputs)?;
        if shape.is_empty() {
            return Err(Error::invalid(
                "BatchNormalization",
                "needs samples with at least one axis (the channels it normalises)",
            ));
        }
        checked_product("BatchNormalization", shape)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::invalid(
                "BatchNormalization",
                format!("momentum {} is not in [0, 1]", self.momentum),
            ));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid(
                "BatchNormalization",
                format!("epsilon {} must be finite and > 0", self.epsilon),
            ));
        }
        Ok(shape.to_vec())
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let channels = inputs.first().and_then(|s| s.last()).copied().unwrap_or(0);
        let decl = |name, init, trainable| ParamDecl {
            name,
            shape: vec![channels],
            init,
            fans: (channels, channels),
            trainable,
            start: None,
        };
        let mut p = Vec::with_capacity(4);
        if self.scale {
            p.push(decl("gamma", Init::Ones, true));
        }
        if self.center {
            p.push(decl("beta", Init::Zeros, true));
        }
        p.push(decl("moving_mean", Init::Zeros, false));
        p.push(decl("moving_variance", Init::Ones, false));
        p
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> Result<LayerOut> {
        let x = xs[0];
        let shape = g.shape(x)?.clone();
        let channels = shape.last();
        let rows = shape.numel() / channels.max(1);
        let (gamma, rest) = if self.scale {
            (Some(params[0]), &params[1..])
        } else {
            (None, params)
        };
        let (beta, rest) = if self.center {
            (Some(rest[0]), &rest[1..])
        } else {
            (None, rest)
        };
        let (moving_mean, moving_variance) = (rest[0], rest[1]);
        // Every position of every sample is a row of channels.
        let flat = g.reshape(x, [rows, channels])?;
        let (mean, variance) = if training {
            let (mean, variance) = moments(g, flat)?;
            let update = UpdateOp::MovingAverage {
                momentum: self.momentum,
            };
            g.push(update, &[moving_mean, mean])?;
            g.push(update, &[moving_variance, variance])?;
            (mean, variance)
        } else {
            (moving_mean, moving_variance)
        };
        let y = normalize(g, flat, mean, variance, gamma, beta, self.epsilon)?;
        Ok(plain(g.push(LayoutOp::Reshape { shape }, &[y])?))
    }
}

/// The per-channel mean and biased variance (Keras' `ops.moments`) of `x` `[rows, channels]`.
pub fn moments(g: &mut Graph, x: NodeId) -> Result<(NodeId, NodeId)> {
    let rows = g.shape(x)?.dims()[0];
    let mean = g.push(ReduceOp::Mean { axis: 0 }, &[x])?;
    let spread = g.push(ReduceOp::Broadcast { axis: 0, size: rows }, &[mean])?;
    let centered = g.sub(x, spread)?;
    let squares = g.mul(centered, centered)?;
    let variance = g.push(ReduceOp::Mean { axis: 0 }, &[squares])?;
    Ok((mean, variance))
}

/// Keras' `ops.batch_normalization` on `x` `[rows, channels]` with per-channel statistics:
/// `x · inv + (beta - mean · inv)` where `inv = gamma / √(variance + epsilon)`.
pub fn normalize(
    g: &mut Graph,
    x: NodeId,
    mean: NodeId,
    variance: NodeId,
    gamma: Option<NodeId>,
    beta: Option<NodeId>,
    epsilon: f32,
) -> Result<NodeId> {
    let rows = g.shape(x)?.dims()[0];
    let eps = g.fill(epsilon, g.shape(variance)?.clone());
    let shifted = g.add(variance, eps)?;
    let mut inv = g.unary(ElementwiseOp::Pow { exponent: -0.5 }, shifted)?;
    if let Some(gamma) = gamma {
        inv = g.mul(inv, gamma)?;
    }
    let mean_inv = g.mul(mean, inv)?;
    let offset = match beta {
        Some(beta) => g.sub(beta, mean_inv)?,
        None => g.scale(mean_inv, -1.0)?,
    };
    let inv = g.push(ReduceOp::Broadcast { axis: 0, size: rows }, &[inv])?;
    let scaled = g.mul(x, inv)?;
    Ok(g.bias_add(scaled, offset)?)
}
