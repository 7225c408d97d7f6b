//! Layout kernels (layout.wgsl): tensors viewed as `[outer, len, inner]` around one axis, one
//! invocation per output element.

use kiln_graph::LayoutOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{LayoutParams, Shader};

pub(super) fn kernel(op: &LayoutOp, io: &Io) -> Kernel {
    let (entry, operands): (_, &[usize]) = match op {
        // A reshape that runs at all copies its persistent operand (see the scheduler).
        LayoutOp::Reshape { .. } => ("copy", &[0, 0]),
        LayoutOp::Concat { .. } => ("concat", &[0, 1]),
        LayoutOp::Slice { .. } => ("slice", &[0, 0]),
        LayoutOp::SwapAxes { .. } => ("swap_axes", &[0, 0]),
    };
    let v = op.view(&io.shapes());
    let params = LayoutParams {
        outer: v.outer as u32,
        len_a: v.len_a as u32,
        len_b: v.len_b as u32,
        inner: v.inner as u32,
        start: v.start as u32,
        pad: [0; 3],
    };
    Kernel::new(Shader::Layout, entry, params, io.with_out(operands), grid_1d(io.n()))
}
