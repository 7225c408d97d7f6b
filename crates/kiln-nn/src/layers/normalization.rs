//! `Normalization`, Keras' preprocessing layer that standardises features with statistics
//! computed from data once, before training (`adapt`), so the model carries its own input scaling
//! into `evaluate`, `predict` and the saved file (keras/src/layers/preprocessing/normalization.py).

use kiln_data::Tensor;
use kiln_graph::{ElementwiseOp, Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::{plain, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Error, Init, Result};

/// Keras' `backend.epsilon()`: the least standard deviation `call` divides by.
const EPSILON: f32 = 1e-7;

/// Keras' `Normalization()` over the last axis: `(x - mean) / max(√variance, 1e-7)` per feature,
/// with the mean and (population) variance of the data given to [`Normalization::adapt`], or
/// given directly ([`Normalization::with_stats`]). The statistics are non-trainable weights
/// (`mean`, `variance` and the sample `count`, Keras' scalar as `[1]`): saved with the model,
/// counted by `summary()` as non-trainable, never changed by training.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Normalization {
    mean: Vec<f32>,
    variance: Vec<f32>,
    count: f32,
    input_shape: Option<Vec<usize>>,
}

impl Normalization {
    /// The statistics of `data` `[n, ..., features]`: per feature, the mean and variance over
    /// every sample and position (Keras' `adapt` with the default `axis=-1`), summed in f64.
    pub fn adapt(data: &Tensor) -> Result<Self> {
        let features = data.shape().last().copied().unwrap_or(0);
        let values = data.data();
        if data.shape().len() < 2 || features == 0 || values.is_empty() {
            return Err(Error::invalid(
                "Normalization",
                format!(
                    "adapt needs samples with features on the last axis, got shape {:?}",
                    data.shape()
                ),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "Normalization",
                format!("adapt got the non-finite value {} at element {i}", values[i]),
            ));
        }
        let rows = values.len() / features;
        let mut mean = vec![0.0f64; features];
        for row in values.chunks(features) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut variance = vec![0.0f64; features];
        for row in values.chunks(features) {
            for ((s, &v), m) in variance.iter_mut().zip(row).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        Ok(Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            variance: variance.iter().map(|&s| (s / rows as f64) as f32).collect(),
            count: rows as f32,
            input_shape: Some(data.shape()[1..].to_vec()),
        })
    }

    /// Keras' `Normalization(mean=..., variance=...)`: statistics known in advance, one per feature.
    pub fn with_stats(mean: impl Into<Vec<f32>>, variance: impl Into<Vec<f32>>) -> Self {
        Normalization {
            mean: mean.into(),
            variance: variance.into(),
            count: 0.0,
            input_shape: None,
        }
    }

    /// The per-feature mean.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The per-feature variance.
    pub fn variance(&self) -> &[f32] {
        &self.variance
    }
}

impl Layer for Normalization {
    fn config(&self) -> LayerConfig {
        LayerConfig::Normalization(self.clone())
    }

    fn kind(&self) -> &'static str {
        "normalization"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Normalization", inputs)?;
        let features = input.last().copied().unwrap_or(0);
        if self.mean.len() != features || self.variance.len() != features {
            return Err(Error::invalid(
                "Normalization",
                format!(
                    "has statistics for {} features (mean) and {} (variance), the input {input:?} has {features}: \
                     adapt it to data shaped like the model's input",
                    self.mean.len(),
                    self.variance.len()
                ),
            ));
        }
        if let Some(v) = self.mean.iter().chain(&self.variance).find(|v| !v.is_finite()) {
            return Err(Error::invalid("Normalization", format!("a statistic is {v}")));
        }
        if let Some(v) = self.variance.iter().find(|&&v| v < 0.0) {
            return Err(Error::invalid("Normalization", format!("a variance is negative ({v})")));
        }
        Ok(input.to_vec())
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let features = inputs.first().and_then(|s| s.last()).copied().unwrap_or(0);
        let stat = |name, values: Vec<f32>| ParamDecl {
            name,
            shape: vec![values.len()],
            init: Init::Zeros,
            fans: (features, features),
            trainable: false,
            start: Some(values),
        };
        vec![
            stat("mean", self.mean.clone()),
            stat("variance", self.variance.clone()),
            stat("count", vec![self.count]),
        ]
    }

    fn autocasts(&self) -> bool {
        false
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let x = xs[0];
        let shape = g.shape(x)?.clone();
        let features = shape.last();
        let rows = shape.numel() / features.max(1);
        let (mean, variance) = (params[0], params[1]);
        // x · inv − mean · inv, inv = 1 / max(√variance, ε).
        let deviation = g.unary(ElementwiseOp::Pow { exponent: 0.5 }, variance)?;
        let floored = g.unary(
            ElementwiseOp::Clip {
                min: EPSILON,
                max: f32::MAX,
            },
            deviation,
        )?;
        let inv = g.unary(ElementwiseOp::Pow { exponent: -1.0 }, floored)?;
        let mean_inv = g.mul(mean, inv)?;
        let offset = g.scale(mean_inv, -1.0)?;
        let flat = g.reshape(x, [rows, features])?;
        let spread = g.push(ReduceOp::Broadcast { axis: 0, size: rows }, &[inv])?;
        let scaled = g.mul(flat, spread)?;
        let y = g.bias_add(scaled, offset)?;
        Ok(plain(g.reshape(y, shape)?))
    }
}
