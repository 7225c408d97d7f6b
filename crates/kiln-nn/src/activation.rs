//! Activations a layer can end in, with Keras' names, defaults and formulas
//! (keras/src/activations/activations.py).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use kiln_graph::ActivationOp;

use crate::{Error, Result};

/// The activation applied to a layer's output.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// The identity (Keras' `linear`, the default).
    #[default]
    Linear,
    Relu,
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
    Tanh,
    /// `x·Φ(x)` (Keras' default, `approximate: false`) or its tanh approximation.
    Gelu {
        approximate: bool,
    },
    /// `x` above 0, `negative_slope · x` below (Keras' `leaky_relu`, default slope 0.2; ≥ 0).
    LeakyRelu {
        negative_slope: f32,
    },
    /// `x` above 0, `alpha·(eˣ - 1)` below (Keras' default alpha 1; ≥ 0 here).
    Elu {
        alpha: f32,
    },
    /// Self-normalising: `1.0507·elu(x, 1.6733)`. As Keras advises, pair it with the
    /// `lecun_normal` initialiser (and `AlphaDropout`, which Kiln does not have) for its
    /// self-normalising property to hold.
    Selu,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `x·sigmoid(x)` (Keras' `silu`, also named `swish`).
    Silu,
    /// `clip(x/6 + ½, 0, 1)` (Keras 3's `hard_sigmoid`).
    HardSigmoid,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

impl Activation {
    /// Keras' `gelu` (exact, its default).
    pub fn gelu() -> Self {
        Activation::Gelu { approximate: false }
    }

    /// Keras' `leaky_relu` with its default negative slope 0.2.
    pub fn leaky_relu() -> Self {
        Activation::LeakyRelu { negative_slope: 0.2 }
    }

    /// Keras' `elu` with its default alpha 1.
    pub fn elu() -> Self {
        Activation::Elu { alpha: 1.0 }
    }

    /// The graph op computing this activation; `None` for the identity.
    pub fn op(self) -> Option<ActivationOp> {
        Some(match self {
            Activation::Linear => return None,
            Activation::Relu => ActivationOp::Relu,
            Activation::Sigmoid => ActivationOp::Sigmoid,
            Activation::Softmax => ActivationOp::Softmax,
            Activation::Tanh => ActivationOp::Tanh,
            Activation::Gelu { approximate } => ActivationOp::Gelu { approximate },
            Activation::LeakyRelu { negative_slope } => ActivationOp::LeakyRelu { slope: negative_slope },
            Activation::Elu { alpha } => ActivationOp::Elu { alpha },
            Activation::Selu => ActivationOp::Selu,
            Activation::Softplus => ActivationOp::Softplus,
            Activation::Silu => ActivationOp::Silu,
            Activation::HardSigmoid => ActivationOp::HardSigmoid,
            Activation::Relu6 => ActivationOp::Relu6,
        })
    }

    /// Refuses parameters the formulas do not allow, naming the layer.
    pub(crate) fn validate(self, layer: &str) -> Result<()> {
        let (what, v) = match self {
            Activation::LeakyRelu { negative_slope } => ("negative_slope", negative_slope),
            Activation::Elu { alpha } => ("alpha", alpha),
            Activation::Linear
            | Activation::Relu
            | Activation::Sigmoid
            | Activation::Softmax
            | Activation::Tanh
            | Activation::Gelu { .. }
            | Activation::Selu
            | Activation::Softplus
            | Activation::Silu
            | Activation::HardSigmoid
            | Activation::Relu6 => return Ok(()),
        };
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(Error::invalid(
                layer,
                format!("{self} has {what} {v}: it must be finite and ≥ 0 (Keras refuses negative slopes too)"),
            ))
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
            Activation::Tanh => "tanh",
            Activation::Gelu { approximate: false } => "gelu",
            Activation::Gelu { approximate: true } => "gelu (tanh approximation)",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Elu { .. } => "elu",
            Activation::Selu => "selu",
            Activation::Softplus => "softplus",
            Activation::Silu => "silu",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Relu6 => "relu6",
        })
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Keras' activation names, with their defaults: `"relu"`, `"gelu"`, `"swish"`, ...
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "softmax" => Activation::Softmax,
            "tanh" => Activation::Tanh,
            "gelu" => Activation::gelu(),
            "leaky_relu" => Activation::leaky_relu(),
            "elu" => Activation::elu(),
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "silu" | "swish" => Activation::Silu,
            "hard_sigmoid" => Activation::HardSigmoid,
            "relu6" => Activation::Relu6,
            other => {
                return Err(Error::invalid(
                    "Activation",
                    format!(
                        "unknown activation `{other}`; known: linear, relu, sigmoid, softmax, tanh, gelu, leaky_relu, \
                         elu, selu, softplus, silu (swish), hard_sigmoid, relu6"
                    ),
                ))
            }
        })
    }
}
