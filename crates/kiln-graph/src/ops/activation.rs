//! Activations and their gradients. Each gradient is written in terms of the forward output `y`
//! (operands `(y, dy)`), so the backward pass never keeps the pre-activation alive.

use super::check::{not_differentiable, not_scalar, same, SECOND_ORDER};
use super::{op_names, Backward, Epilogue, Family, Param};
use crate::{Graph, NodeId, Result, Shape};

/// Keras' SELU constants (keras/src/backend/numpy/nn.py, `selu`): `scale · elu(x, alpha)`.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_284_817_042_991_671_7;
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_493_419_334_985_294_6;

/// The activations, and the gradient ops their backward lowers to. Formulas follow
/// keras/src/activations/activations.py and the numpy backend (keras/src/backend/numpy/nn.py).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationOp {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
    /// `tanh(x)`.
    Tanh,
    /// `x · Φ(x)` with `Φ` the normal CDF (`approximate: false`, Keras' default), or its tanh
    /// approximation `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    Gelu { approximate: bool },
    /// `x` for `x > 0`, else `slope · x` (Keras' `leaky_relu`, default slope 0.2); `slope ≥ 0`.
    LeakyRelu { slope: f32 },
    /// `x` for `x > 0`, else `alpha · (eˣ - 1)`; `alpha ≥ 0`.
    Elu { alpha: f32 },
    /// `SELU_SCALE · elu(x, SELU_ALPHA)`.
    Selu,
    /// `ln(1 + eˣ)`, computed as `max(x, 0) + ln(1 + e^-|x|)` so it never overflows.
    Softplus,
    /// `x · sigmoid(x)` (Keras' `silu`, also `swish`).
    Silu,
    /// `clip(x/6 + ½, 0, 1)` (Keras 3's `hard_sigmoid`).
    HardSigmoid,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `dy · [y > 0]`, operands `(y, dy)` where `y = relu(x)`.
    ReluGrad,
    /// `dy · y · (1 - y)`, operands `(y, dy)` where `y = sigmoid(x)`.
    SigmoidGrad,
    /// `y · (dy - Σ dy·y)` over the last axis, operands `(y, dy)` where `y = softmax(x)`.
    SoftmaxGrad,
    /// `dy · (1 - y²)`, operands `(y, dy)` where `y = tanh(x)`.
    TanhGrad,
    /// `dy · gelu'(x)`, operands `(x, dy)`: `Φ(x) + x·φ(x)`, or the tanh form's derivative.
    GeluGrad { approximate: bool },
    /// `dy · (y > 0 ? 1 : slope)`, operands `(y, dy)` (y has x's sign for `slope ≥ 0`).
    LeakyReluGrad { slope: f32 },
    /// `dy · (y > 0 ? 1 : y + alpha)`, operands `(y, dy)`: `alpha·eˣ = y + alpha` below 0.
    EluGrad { alpha: f32 },
    /// `dy · SELU_SCALE` where `y > 0`, else `dy · (y + SELU_SCALE·SELU_ALPHA)`; operands `(y, dy)`.
    SeluGrad,
    /// `dy · sigmoid(x)`, operands `(x, dy)`.
    SoftplusGrad,
    /// `dy · s·(1 + x(1 - s))` with `s = sigmoid(x)`, operands `(x, dy)`.
    SiluGrad,
    /// `dy / 6` where `0 < y < 1`, else 0; operands `(y, dy)`.
    HardSigmoidGrad,
    /// `dy` where `0 < y < 6`, else 0; operands `(y, dy)`.
    Relu6Grad,
}

/// What a gradient op reads beside `dy`.
enum GradOf {
    /// The forward output `y`, so the input can be freed early.
    Output,
    /// The forward input `x` (the function is not invertible from `y` cheaply).
    Input,
}

impl ActivationOp {
    /// The matmul epilogue that computes this activation, where there is one (the scheduler fuses
    /// `act(matmul(..))` into it).
    pub fn epilogue(self) -> Option<Epilogue> {
        Some(match self {
            ActivationOp::Relu => Epilogue::Relu,
            ActivationOp::Sigmoid => Epilogue::Sigmoid,
            ActivationOp::Tanh => Epilogue::Tanh,
            ActivationOp::Gelu { approximate: false } => Epilogue::Gelu,
            ActivationOp::Gelu { approximate: true } => Epilogue::GeluTanh,
            ActivationOp::Selu => Epilogue::Selu,
            ActivationOp::Softplus => Epilogue::Softplus,
            ActivationOp::Silu => Epilogue::Silu,
            ActivationOp::HardSigmoid => Epilogue::HardSigmoid,
            ActivationOp::Relu6 => Epilogue::Relu6,
            ActivationOp::LeakyRelu { slope } => Epilogue::LeakyRelu {
                slope: Param::new(slope),
            },
            ActivationOp::Elu { alpha } => Epilogue::Elu {
                alpha: Param::new(alpha),
            },
            // Rows are not elementwise.
            ActivationOp::Softmax => return None,
            ActivationOp::ReluGrad
            | ActivationOp::SigmoidGrad
            | ActivationOp::SoftmaxGrad
            | ActivationOp::TanhGrad
            | ActivationOp::GeluGrad { .. }
            | ActivationOp::LeakyReluGrad { .. }
            | ActivationOp::EluGrad { .. }
            | ActivationOp::SeluGrad
            | ActivationOp::SoftplusGrad
            | ActivationOp::SiluGrad
            | ActivationOp::HardSigmoidGrad
            | ActivationOp::Relu6Grad => return None,
        })
    }

    /// Whether the op works on whole rows of the last axis rather than element by element.
    pub fn by_rows(self) -> bool {
        matches!(self, ActivationOp::Softmax | ActivationOp::SoftmaxGrad)
    }

    /// The gradient op of a forward activation and what it reads beside `dy`; `None` for the
    /// gradient ops themselves.
    fn gradient(self) -> Option<(ActivationOp, GradOf)> {
        use GradOf::{Input, Output};
        Some(match self {
            ActivationOp::Relu => (ActivationOp::ReluGrad, Output),
            ActivationOp::Sigmoid => (ActivationOp::SigmoidGrad, Output),
            ActivationOp::Softmax => (ActivationOp::SoftmaxGrad, Output),
            ActivationOp::Tanh => (ActivationOp::TanhGrad, Output),
            ActivationOp::Gelu { approximate } => (ActivationOp::GeluGrad { approximate }, Input),
            ActivationOp::LeakyRelu { slope } => (ActivationOp::LeakyReluGrad { slope }, Output),
            ActivationOp::Elu { alpha } => (ActivationOp::EluGrad { alpha }, Output),
            ActivationOp::Selu => (ActivationOp::SeluGrad, Output),
            ActivationOp::Softplus => (ActivationOp::SoftplusGrad, Input),
            ActivationOp::Silu => (ActivationOp::SiluGrad, Input),
            ActivationOp::HardSigmoid => (ActivationOp::HardSigmoidGrad, Output),
            ActivationOp::Relu6 => (ActivationOp::Relu6Grad, Output),
            ActivationOp::ReluGrad
            | ActivationOp::SigmoidGrad
            | ActivationOp::SoftmaxGrad
            | ActivationOp::TanhGrad
            | ActivationOp::GeluGrad { .. }
            | ActivationOp::LeakyReluGrad { .. }
            | ActivationOp::EluGrad { .. }
            | ActivationOp::SeluGrad
            | ActivationOp::SoftplusGrad
            | ActivationOp::SiluGrad
            | ActivationOp::HardSigmoidGrad
            | ActivationOp::Relu6Grad => return None,
        })
    }
}

op_names!(ActivationOp {
    Relu => "relu",
    Sigmoid => "sigmoid",
    Softmax => "softmax",
    Tanh => "tanh",
    Gelu => "gelu",
    LeakyRelu => "leaky_relu",
    Elu => "elu",
    Selu => "selu",
    Softplus => "softplus",
    Silu => "silu",
    HardSigmoid => "hard_sigmoid",
    Relu6 => "relu6",
    ReluGrad => "relu_grad",
    SigmoidGrad => "sigmoid_grad",
    SoftmaxGrad => "softmax_grad",
    TanhGrad => "tanh_grad",
    GeluGrad => "gelu_grad",
    LeakyReluGrad => "leaky_relu_grad",
    EluGrad => "elu_grad",
    SeluGrad => "selu_grad",
    SoftplusGrad => "softplus_grad",
    SiluGrad => "silu_grad",
    HardSigmoidGrad => "hard_sigmoid_grad",
    Relu6Grad => "relu6_grad",
});

impl Family for ActivationOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        if self.gradient().is_some() {
            1
        } else {
            2
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        // Slopes below zero would break the gradients written in terms of y (y keeps x's sign).
        if let ActivationOp::LeakyRelu { slope: v }
        | ActivationOp::LeakyReluGrad { slope: v }
        | ActivationOp::Elu { alpha: v }
        | ActivationOp::EluGrad { alpha: v } = *self
        {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(crate::Error::invalid(
                    self.name(),
                    format!("{v} for the negative-side factor: it must be finite and ≥ 0"),
                ));
            }
        }
        if self.by_rows() {
            not_scalar(self.name(), s[0], "at least one axis")?;
        }
        if self.arity() == 2 {
            same(self.name(), s[0], s[1])?;
        }
        Ok(Some(s[0].clone()))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let Some((grad, reads)) = self.gradient() else {
            return Err(not_differentiable(self.name(), SECOND_ORDER));
        };
        let operand = match reads {
            GradOf::Output => at.y,
            GradOf::Input => at.x[0],
        };
        Ok(vec![Some(g.binary(grad, operand, at.dy)?)])
    }
}
