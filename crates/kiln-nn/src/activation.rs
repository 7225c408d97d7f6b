//! Activations a layer can end in.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The activation applied to a layer's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// The identity (Keras' `linear`, the default).
    #[default]
    Linear,
    Relu,
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
        })
    }
}
