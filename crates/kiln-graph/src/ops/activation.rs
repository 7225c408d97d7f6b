//! Activations and their gradients. Each gradient is written in terms of the forward output `y`
//! (operands `(y, dy)`), so the backward pass never keeps the pre-activation alive.

use super::check::{not_differentiable, not_scalar, same, SECOND_ORDER};
use super::{op_names, Backward, Epilogue, Family};
use crate::{Graph, NodeId, Result, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActivationOp {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
    /// `tanh(x)`.
    Tanh,
    /// `dy · [y > 0]`, operands `(y, dy)` where `y = relu(x)`.
    ReluGrad,
    /// `dy · y · (1 - y)`, operands `(y, dy)` where `y = sigmoid(x)`.
    SigmoidGrad,
    /// `y · (dy - Σ dy·y)` over the last axis, operands `(y, dy)` where `y = softmax(x)`.
    SoftmaxGrad,
    /// `dy · (1 - y²)`, operands `(y, dy)` where `y = tanh(x)`.
    TanhGrad,
}

impl ActivationOp {
    /// The matmul epilogue that computes this activation, where there is one (the scheduler fuses
    /// `act(matmul(..))` into it).
    pub fn epilogue(self) -> Option<Epilogue> {
        match self {
            ActivationOp::Relu => Some(Epilogue::Relu),
            ActivationOp::Sigmoid => Some(Epilogue::Sigmoid),
            ActivationOp::Softmax
            | ActivationOp::Tanh
            | ActivationOp::ReluGrad
            | ActivationOp::SigmoidGrad
            | ActivationOp::SoftmaxGrad
            | ActivationOp::TanhGrad => None,
        }
    }

    /// Whether the op works on whole rows of the last axis rather than element by element.
    pub fn by_rows(self) -> bool {
        match self {
            ActivationOp::Softmax | ActivationOp::SoftmaxGrad => true,
            ActivationOp::Relu
            | ActivationOp::Sigmoid
            | ActivationOp::Tanh
            | ActivationOp::ReluGrad
            | ActivationOp::SigmoidGrad
            | ActivationOp::TanhGrad => false,
        }
    }
}

op_names!(ActivationOp {
    Relu => "relu",
    Sigmoid => "sigmoid",
    Softmax => "softmax",
    Tanh => "tanh",
    ReluGrad => "relu_grad",
    SigmoidGrad => "sigmoid_grad",
    SoftmaxGrad => "softmax_grad",
    TanhGrad => "tanh_grad",
});

impl Family for ActivationOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            ActivationOp::Relu | ActivationOp::Sigmoid | ActivationOp::Softmax | ActivationOp::Tanh => 1,
            ActivationOp::ReluGrad | ActivationOp::SigmoidGrad | ActivationOp::SoftmaxGrad | ActivationOp::TanhGrad => {
                2
            }
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        if self.by_rows() {
            not_scalar(self.name(), s[0], "at least one axis")?;
        }
        if self.arity() == 2 {
            same(self.name(), s[0], s[1])?;
        }
        Ok(Some(s[0].clone()))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let grad = match self {
            ActivationOp::Relu => ActivationOp::ReluGrad,
            ActivationOp::Sigmoid => ActivationOp::SigmoidGrad,
            ActivationOp::Softmax => ActivationOp::SoftmaxGrad,
            ActivationOp::Tanh => ActivationOp::TanhGrad,
            ActivationOp::ReluGrad | ActivationOp::SigmoidGrad | ActivationOp::SoftmaxGrad | ActivationOp::TanhGrad => {
                return Err(not_differentiable(self.name(), SECOND_ORDER))
            }
        };
        Ok(vec![Some(g.binary(grad, at.y, at.dy)?)])
    }
}
