//! Reduction kernels (reduce.wgsl): tensors viewed as `[outer, len, inner]` around the reduced
//! axis, one invocation per output element with a sequential loop over `len`, so sums are
//! deterministic and in the CPU's order; `dot` (one output over every element) is one workgroup's
//! fixed tree instead.

use kiln_graph::ReduceOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{ReduceParams, Shader};

pub(super) fn kernel(op: &ReduceOp, io: &Io) -> Kernel {
    let (entry, operands): (_, &[usize]) = match op {
        ReduceOp::Sum { .. } | ReduceOp::Mean { .. } => ("sum", &[0]),
        ReduceOp::Broadcast { .. } => ("broadcast", &[0]),
        ReduceOp::ArgMax => ("argmax", &[0]),
        ReduceOp::CountAbove { .. } => ("count_above", &[0, 1]),
        ReduceOp::Dot => ("dot", &[0, 1]),
    };
    let v = op.view(&io.ins[0].shape, &io.out().shape);
    let params = ReduceParams {
        outer: v.outer as u32,
        len: v.len as u32,
        inner: v.inner as u32,
        scale: op.scale(v),
    };
    let grid = match op {
        ReduceOp::Dot => [1, 1, 1],
        ReduceOp::Sum { .. }
        | ReduceOp::Mean { .. }
        | ReduceOp::Broadcast { .. }
        | ReduceOp::ArgMax
        | ReduceOp::CountAbove { .. } => grid_1d(io.n()),
    };
    Kernel::new(Shader::Reduce, entry, params, io.with_out(operands), grid)
}
