//! Loss kernels (loss.wgsl): softmax cross-entropy one invocation per row, the rest one per element.

use kiln_graph::LossOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{LossParams, Shader};

pub(super) fn kernel(op: &LossOp, io: &Io) -> Kernel {
    let (entry, operands, sparse): (_, &[usize], _) = match *op {
        LossOp::SoftmaxCrossEntropy { sparse } => ("softmax_cross_entropy", &[0, 1], Some(sparse)),
        LossOp::SoftmaxCrossEntropyGrad { sparse } => ("softmax_cross_entropy_grad", &[0, 1, 2], Some(sparse)),
        LossOp::SigmoidBinaryCrossEntropy => ("sigmoid_binary_cross_entropy", &[0, 1], None),
        LossOp::SigmoidBinaryCrossEntropyGrad => ("sigmoid_binary_cross_entropy_grad", &[0, 1, 2], None),
        LossOp::SquaredError => ("squared_error", &[0, 1], None),
        LossOp::AbsoluteError => ("absolute_error", &[0, 1], None),
        LossOp::Huber { .. } => ("huber", &[0, 1], None),
        LossOp::LogCosh => ("log_cosh", &[0, 1], None),
    };
    let delta = match *op {
        LossOp::Huber { delta } => delta,
        LossOp::SoftmaxCrossEntropy { .. }
        | LossOp::SoftmaxCrossEntropyGrad { .. }
        | LossOp::SigmoidBinaryCrossEntropy
        | LossOp::SigmoidBinaryCrossEntropyGrad
        | LossOp::SquaredError
        | LossOp::AbsoluteError
        | LossOp::LogCosh => 0.0,
    };
    let cols = io.ins[0].shape.last();
    let rows = io.ins[0].len() / cols.max(1);
    let params = LossParams {
        rows: rows as u32,
        cols: cols as u32,
        n: io.n() as u32,
        delta,
    };
    let grid = grid_1d(if sparse.is_some() { rows } else { io.n() });
    let kernel = Kernel::new(Shader::Loss, entry, params, io.with_out(operands), grid);
    match sparse {
        Some(s) => kernel.with("SPARSE", f64::from(u8::from(s))),
        None => kernel,
    }
}
