//! Ops that move data without arithmetic, on tensors viewed as `[outer, len, inner]` around an
//! axis. `concat` and `slice` are each other's adjoints: autodiff slices a concat's gradient apart and
//! pads a slice's gradient back with zeros.

use kiln_graph::LayoutOp;

use crate::executor::Args;
use crate::Real;

/// Runs one layout step (a reshape that runs at all is a copy: its operand is persistent).
pub fn compute<T: Real>(op: &LayoutOp, a: &Args<'_, T>, out: &mut [T]) {
    let v = op.view(&a.shapes());
    match op {
        LayoutOp::Reshape { .. } => out.copy_from_slice(a.x(0)),
        LayoutOp::Concat { .. } => concat(a.x(0), a.x(1), (v.outer, v.len_a, v.len_b, v.inner), out),
        LayoutOp::Slice { .. } => slice(a.x(0), (v.outer, v.len_a, v.inner), v.start, v.len_b, out),
        LayoutOp::SwapAxes { .. } => swap_axes(a.x(0), (v.outer, v.len_a, v.len_b, v.inner), out),
    }
}

/// `out[o, j, i, r] = x[o, i, j, r]` for `x [outer, la, lb, inner]`.
pub fn swap_axes<T: Real>(x: &[T], (outer, la, lb, inner): (usize, usize, usize, usize), out: &mut [T]) {
    for o in 0..outer {
        for j in 0..lb {
            for i in 0..la {
                let src = ((o * la + i) * lb + j) * inner;
                let dst = ((o * lb + j) * la + i) * inner;
                out[dst..dst + inner].copy_from_slice(&x[src..src + inner]);
            }
        }
    }
}

/// `out[o, 0..la, i] = a[o, .., i]`, `out[o, la.., i] = b[o, .., i]`.
pub fn concat<T: Real>(a: &[T], b: &[T], (outer, la, lb, inner): (usize, usize, usize, usize), out: &mut [T]) {
    let (ra, rb) = (la * inner, lb * inner);
    for o in 0..outer {
        let dst = o * (ra + rb);
        out[dst..dst + ra].copy_from_slice(&a[o * ra..(o + 1) * ra]);
        out[dst + ra..dst + ra + rb].copy_from_slice(&b[o * rb..(o + 1) * rb]);
    }
}

/// `out[o, l, i] = x[o, start + l, i]` for `l < len`, where `x` has `total` entries along the axis.
pub fn slice<T: Real>(x: &[T], (outer, total, inner): (usize, usize, usize), start: usize, len: usize, out: &mut [T]) {
    for o in 0..outer {
        let src = (o * total + start) * inner;
        out[o * len * inner..(o + 1) * len * inner].copy_from_slice(&x[src..src + len * inner]);
    }
}
