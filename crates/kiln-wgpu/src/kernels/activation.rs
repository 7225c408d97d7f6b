//! Activation kernels (activation.wgsl): elementwise entries one invocation per element, row
//! entries (softmax) one per row of the last axis.

use kiln_graph::ActivationOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{ActivationParams, Shader};

pub(super) fn kernel(op: ActivationOp, io: &Io) -> Kernel {
    let (entry, operands): (_, &[usize]) = match op {
        ActivationOp::Relu => ("relu", &[0]),
        ActivationOp::Sigmoid => ("sigmoid", &[0]),
        ActivationOp::Softmax => ("softmax", &[0]),
        ActivationOp::Tanh => ("tanh_", &[0]),
        ActivationOp::ReluGrad => ("relu_grad", &[0, 1]),
        ActivationOp::SigmoidGrad => ("sigmoid_grad", &[0, 1]),
        ActivationOp::SoftmaxGrad => ("softmax_grad", &[0, 1]),
        ActivationOp::TanhGrad => ("tanh_grad", &[0, 1]),
    };
    let cols = io.ins[0].shape.last();
    let count = if op.by_rows() { io.n() / cols.max(1) } else { io.n() };
    let params = ActivationParams {
        n: count as u32,
        cols: cols as u32,
        ..Default::default()
    };
    Kernel::new(Shader::Activation, entry, params, io.with_out(operands), grid_1d(count))
}
