//! Weight initialisers, with Keras' names and formulas (keras/src/initializers/).

use std::str::FromStr;

use rand::rngs::StdRng;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a parameter starts. The variance-scaling family (`Glorot*`, `He*`, `Lecun*`) reads the
/// parameter's fans as Keras' `compute_fans` counts them: a dense kernel `[in, out]` has
/// `(in, out)`, a convolution kernel the receptive field times the input and output channels.
/// The normal forms draw from a normal truncated at two standard deviations, scaled as Keras'
/// `VarianceScaling` does (keras/src/initializers/random_initializers.py).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Init {
    /// Uniform in ±√(6 / (fan_in + fan_out)): Keras' default for kernels.
    GlorotUniform,
    /// Truncated normal with variance 2 / (fan_in + fan_out).
    GlorotNormal,
    /// Truncated normal with variance 2 / fan_in: for relu layers.
    HeNormal,
    /// Uniform in ±√(6 / fan_in).
    HeUniform,
    /// Truncated normal with variance 1 / fan_in: for selu layers.
    LecunNormal,
    /// Uniform in ±√(3 / fan_in).
    LecunUniform,
    /// All zeros: Keras' default for biases.
    Zeros,
    /// All ones (BatchNormalization's `gamma` and moving variance).
    Ones,
    /// Every value `value`.
    Constant { value: f32 },
    /// Uniform in `[minval, maxval)` (Keras' `RandomUniform`, -0.05..0.05 by default: the
    /// Embedding default).
    RandomUniform { minval: f32, maxval: f32 },
    /// Normal with this mean and standard deviation (Keras' `RandomNormal`, 0 and 0.05).
    RandomNormal { mean: f32, stddev: f32 },
    /// Normal truncated at two standard deviations (Keras' `TruncatedNormal`, 0 and 0.05).
    TruncatedNormal { mean: f32, stddev: f32 },
    /// A random orthogonal matrix times `gain` (Keras' `Orthogonal`, gain 1: the default
    /// `recurrent_initializer` of LSTM and GRU). The parameter is viewed as `[rows, columns]`
    /// with `columns` its last axis; its rows (or columns, whichever are fewer) are orthonormal.
    Orthogonal { gain: f32 },
    /// Zeros but for ones in the second quarter: an LSTM bias with Keras' `unit_forget_bias`,
    /// which starts the forget gate (gates in the order input, forget, cell, output) open.
    UnitForgetBias,
}

/// Keras' factor from a truncated standard normal's standard deviation (0.8796) back to 1:
/// the standard deviation of N(0, 1) truncated to [-2, 2].
const TRUNCATED_STDDEV: f64 = 0.879_625_661_034_239_8;

impl Init {
    /// Initial values of a parameter of `shape`, drawn from `rng`, with these `(fan_in, fan_out)`.
    pub fn sample(self, shape: &[usize], (fan_in, fan_out): (usize, usize), rng: &mut StdRng) -> Vec<f32> {
        let n = shape.iter().product();
        let uniform = |limit: f32, rng: &mut StdRng| (0..n).map(|_| rng.random_range(-limit..limit)).collect();
        // Keras' VarianceScaling: scale / n with n the fan of the mode, at least 1.
        let fan = |n: usize| n.max(1) as f64;
        let avg = (fan_in + fan_out) as f64 / 2.0;
        let truncated = |mean: f64, stddev: f64, rng: &mut StdRng| -> Vec<f32> {
            (0..n)
                .map(|_| loop {
                    let z: f64 = StandardNormal.sample(rng);
                    if z.abs() <= 2.0 {
                        break (mean + stddev * z) as f32;
                    }
                })
                .collect()
        };
        match self {
            Init::GlorotUniform => uniform((6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32, rng),
            Init::GlorotNormal => truncated(0.0, (1.0 / avg.max(1.0)).sqrt() / TRUNCATED_STDDEV, rng),
            Init::HeNormal => truncated(0.0, (2.0 / fan(fan_in)).sqrt() / TRUNCATED_STDDEV, rng),
            Init::HeUniform => uniform((6.0 / fan(fan_in)).sqrt() as f32, rng),
            Init::LecunNormal => truncated(0.0, (1.0 / fan(fan_in)).sqrt() / TRUNCATED_STDDEV, rng),
            Init::LecunUniform => uniform((3.0 / fan(fan_in)).sqrt() as f32, rng),
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Constant { value } => vec![value; n],
            Init::RandomUniform { minval, maxval } => (0..n).map(|_| rng.random_range(minval..maxval)).collect(),
            Init::RandomNormal { mean, stddev } => (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    (f64::from(mean) + f64::from(stddev) * z) as f32
                })
                .collect(),
            Init::TruncatedNormal { mean, stddev } => truncated(f64::from(mean), f64::from(stddev), rng),
            Init::Orthogonal { gain } => orthogonal(shape, gain, rng),
            Init::UnitForgetBias => {
                let quarter = n / 4;
                (0..n)
                    .map(|i| if i / quarter.max(1) == 1 { 1.0 } else { 0.0 })
                    .collect()
            }
        }
    }

    /// Refuses ranges and spreads no distribution has, naming the layer's parameter.
    pub(crate) fn validate(self, what: &str) -> Result<()> {
        let ok = match self {
            Init::RandomUniform { minval, maxval } => minval.is_finite() && maxval.is_finite() && minval < maxval,
            Init::RandomNormal { mean, stddev } | Init::TruncatedNormal { mean, stddev } => {
                mean.is_finite() && stddev.is_finite() && stddev >= 0.0
            }
            Init::Constant { value } | Init::Orthogonal { gain: value } => value.is_finite(),
            Init::UnitForgetBias
            | Init::GlorotUniform
            | Init::GlorotNormal
            | Init::HeNormal
            | Init::HeUniform
            | Init::LecunNormal
            | Init::LecunUniform
            | Init::Zeros
            | Init::Ones => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                what,
                format!("{self:?}: needs finite values, minval < maxval and stddev ≥ 0"),
            ))
        }
    }
}

impl FromStr for Init {
    type Err = Error;

    /// Keras' initialiser names with their defaults: `"he_normal"`, `"glorot_uniform"`, ...
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "glorot_uniform" => Init::GlorotUniform,
            "glorot_normal" => Init::GlorotNormal,
            "he_normal" => Init::HeNormal,
            "he_uniform" => Init::HeUniform,
            "lecun_normal" => Init::LecunNormal,
            "lecun_uniform" => Init::LecunUniform,
            "zeros" => Init::Zeros,
            "ones" => Init::Ones,
            "random_uniform" | "uniform" => Init::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            "random_normal" | "normal" => Init::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            "truncated_normal" => Init::TruncatedNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            "orthogonal" => Init::Orthogonal { gain: 1.0 },
            other => {
                return Err(Error::invalid(
                    "Init",
                    format!(
                        "unknown initializer `{other}`; known: glorot_uniform, glorot_normal, he_normal, he_uniform, \
                         lecun_normal, lecun_uniform, zeros, ones, random_uniform, random_normal, truncated_normal, \
                         orthogonal"
                    ),
                ))
            }
        })
    }
}

/// Keras' `Orthogonal` (keras/src/initializers/random_initializers.py): a standard normal
/// `[max(r, c), min(r, c)]` matrix, the `Q` of its QR decomposition with the signs of `R`'s
/// diagonal folded in (so `R`'s diagonal is positive: the QR that Gram–Schmidt computes), transposed
/// when `r < c`, times `gain`; `r` is the product of all axes but the last, `c` the last.
fn orthogonal(shape: &[usize], gain: f32, rng: &mut StdRng) -> Vec<f32> {
    let cols = shape.last().copied().unwrap_or(1);
    let rows = shape.iter().product::<usize>() / cols.max(1);
    let (tall, wide) = (rows.max(cols), rows.min(cols));
    // `wide` columns of length `tall`, orthonormalised in turn (modified Gram–Schmidt, in f64).
    let mut q: Vec<Vec<f64>> = (0..wide)
        .map(|_| (0..tall).map(|_| StandardNormal.sample(rng)).collect())
        .collect();
    for j in 0..wide {
        let (done, rest) = q.split_at_mut(j);
        let v = &mut rest[0];
        for u in done.iter() {
            let dot: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(x, a)| *x -= dot * a);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        v.iter_mut().for_each(|x| *x /= norm);
    }
    let gain = f64::from(gain);
    let mut out = vec![0.0f32; rows * cols];
    for (j, column) in q.iter().enumerate() {
        for (i, &x) in column.iter().enumerate() {
            // Q is [tall, wide] with entry (i, j); laid out as [rows, cols], transposed when wide.
            let at = if rows >= cols { i * cols + j } else { j * cols + i };
            out[at] = (gain * x) as f32;
        }
    }
    out
}
