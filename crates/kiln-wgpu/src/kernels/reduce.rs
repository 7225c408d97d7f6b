//! Reduction kernels (reduce.wgsl): tensors viewed as `[outer, len, inner]` around the reduced
//! axis, one invocation per output element with a sequential loop over `len`, so sums are
//! deterministic and in the CPU's order.

use kiln_graph::ReduceOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{ReduceParams, Shader};

pub(super) fn kernel(op: &ReduceOp, io: &Io) -> Kernel {
    let x = &io.ins[0].shape;
    let (entry, operands, (outer, len, inner), scale): (_, &[usize], _, _) = match *op {
        ReduceOp::Sum { axis } => ("sum", &[0], x.split_at_axis(axis), 1.0),
        ReduceOp::Mean { axis } => {
            let dims = x.split_at_axis(axis);
            ("sum", &[0], dims, 1.0 / dims.1 as f32)
        }
        ReduceOp::Broadcast { axis, .. } => ("broadcast", &[0], io.out().shape.split_at_axis(axis), 1.0),
        ReduceOp::ArgMax => ("argmax", &[0], (io.n(), x.last(), 1), 1.0),
        ReduceOp::CountAbove { thresholds } => ("count_above", &[0, 1], (x.dims()[0], x.dims()[1], thresholds), 1.0),
    };
    let params = ReduceParams {
        outer: outer as u32,
        len: len as u32,
        inner: inner as u32,
        scale,
    };
    Kernel::new(Shader::Reduce, entry, params, io.with_out(operands), grid_1d(io.n()))
}
