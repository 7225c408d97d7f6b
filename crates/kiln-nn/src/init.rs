//! Weight initialisers, with Keras' defaults.

use rand::rngs::StdRng;
use rand::RngExt;

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in ±√(6 / (fan_in + fan_out)): Keras' `glorot_uniform`, its default for kernels.
    GlorotUniform { fan_in: usize, fan_out: usize },
    /// All zeros: Keras' default for biases.
    Zeros,
    /// All ones (BatchNormalization's `gamma` and moving variance).
    Ones,
    /// Uniform in ±`limit` (Keras' `uniform` embeddings use 0.05).
    Uniform { limit: f32 },
}

impl Init {
    /// `n` initial values drawn from `rng`.
    pub fn sample(self, n: usize, rng: &mut StdRng) -> Vec<f32> {
        match self {
            Init::GlorotUniform { fan_in, fan_out } => {
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-limit..limit)).collect()
            }
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Uniform { limit } => (0..n).map(|_| rng.random_range(-limit..limit)).collect(),
        }
    }
}
