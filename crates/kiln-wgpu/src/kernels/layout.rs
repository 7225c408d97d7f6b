//! Layout kernels (layout.wgsl): tensors viewed as `[outer, len, inner]` around one axis, one
//! invocation per output element.

use kiln_graph::LayoutOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{LayoutParams, Shader};

pub(super) fn kernel(op: &LayoutOp, io: &Io) -> Kernel {
    let a = &io.ins[0].shape;
    // `len_a` is the first operand's length along the axis, `len_b` the second's (concat) or the
    // slice's.
    let (entry, operands, (outer, len_a, len_b, inner), start): (_, &[usize], _, _) = match op {
        // A reshape that runs at all copies its persistent operand (see the scheduler).
        LayoutOp::Reshape { .. } => ("copy", &[0, 0], (io.n(), 0, 0, 0), 0),
        LayoutOp::Concat { axis } => {
            let (outer, len_a, inner) = a.split_at_axis(*axis);
            (
                "concat",
                &[0, 1],
                (outer, len_a, io.ins[1].shape.dims()[*axis], inner),
                0,
            )
        }
        LayoutOp::Slice { axis, start, len } => {
            let (outer, total, inner) = a.split_at_axis(*axis);
            ("slice", &[0, 0], (outer, total, *len, inner), *start)
        }
    };
    let params = LayoutParams {
        outer: outer as u32,
        len_a: len_a as u32,
        len_b: len_b as u32,
        inner: inner as u32,
        start: start as u32,
        pad: [0; 3],
    };
    Kernel::new(Shader::Layout, entry, params, io.with_out(operands), grid_1d(io.n()))
}
