//! Activation kernels (activation.wgsl): elementwise entries one invocation per element, row
//! entries (softmax) one per row of the last axis.

use kiln_graph::ActivationOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{ActivationParams, Shader};

pub(super) fn kernel(op: ActivationOp, io: &Io) -> Kernel {
    let (mut slope, mut alpha) = (0.0, 0.0);
    let (entry, operands): (_, &[usize]) = match op {
        ActivationOp::Relu => ("relu", &[0]),
        ActivationOp::Sigmoid => ("sigmoid", &[0]),
        ActivationOp::Softmax => ("softmax", &[0]),
        ActivationOp::Tanh => ("tanh_", &[0]),
        ActivationOp::Gelu { approximate: false } => ("gelu", &[0]),
        ActivationOp::Gelu { approximate: true } => ("gelu_approximate", &[0]),
        ActivationOp::LeakyRelu { slope: s } => {
            slope = s;
            ("leaky_relu", &[0])
        }
        ActivationOp::Elu { alpha: a } => {
            alpha = a;
            ("elu", &[0])
        }
        ActivationOp::Selu => ("selu", &[0]),
        ActivationOp::Softplus => ("softplus", &[0]),
        ActivationOp::Silu => ("silu", &[0]),
        ActivationOp::HardSigmoid => ("hard_sigmoid", &[0]),
        ActivationOp::Relu6 => ("relu6", &[0]),
        ActivationOp::ReluGrad => ("relu_grad", &[0, 1]),
        ActivationOp::SigmoidGrad => ("sigmoid_grad", &[0, 1]),
        ActivationOp::SoftmaxGrad => ("softmax_grad", &[0, 1]),
        ActivationOp::TanhGrad => ("tanh_grad", &[0, 1]),
        ActivationOp::GeluGrad { approximate: false } => ("gelu_grad", &[0, 1]),
        ActivationOp::GeluGrad { approximate: true } => ("gelu_approximate_grad", &[0, 1]),
        ActivationOp::LeakyReluGrad { slope: s } => {
            slope = s;
            ("leaky_relu_grad", &[0, 1])
        }
        ActivationOp::EluGrad { alpha: a } => {
            alpha = a;
            ("elu_grad", &[0, 1])
        }
        ActivationOp::SeluGrad => ("selu_grad", &[0, 1]),
        ActivationOp::SoftplusGrad => ("softplus_grad", &[0, 1]),
        ActivationOp::SiluGrad => ("silu_grad", &[0, 1]),
        ActivationOp::HardSigmoidGrad => ("hard_sigmoid_grad", &[0, 1]),
        ActivationOp::Relu6Grad => ("relu6_grad", &[0, 1]),
    };
    let cols = io.ins[0].shape.last();
    let count = if op.by_rows() { io.n() / cols.max(1) } else { io.n() };
    let params = ActivationParams {
        n: count as u32,
        cols: cols as u32,
        slope,
        alpha,
    };
    Kernel::new(Shader::Activation, entry, params, io.with_out(operands), grid_1d(count))
}
