//! Moving values without arithmetic: reshape, concat and its adjoint slice, and swapping two
//! adjacent axes.

use super::check::axis as axis_ok;
use super::{op_names, Backward, Family};
use crate::error::shapes_list;
use crate::{Error, Graph, NodeId, Result, Shape};

#[derive(Clone, Debug, PartialEq)]
pub enum LayoutOp {
    /// The same values under another shape with as many elements (a view when its operand lives
    /// in the arena: the scheduler gives it no step).
    Reshape { shape: Shape },
    /// `a` and `b` joined along `axis` (every other dimension equal).
    Concat { axis: usize },
    /// `len` entries of `x` along `axis`, from `start` (the adjoint of `Concat`).
    Slice { axis: usize, start: usize, len: usize },
    /// Axes `axis` and `axis + 1` swapped (attention's `[n, steps, heads, d]` to
    /// `[n, heads, steps, d]`); its own adjoint.
    SwapAxes { axis: usize },
}

/// The `[outer, len, inner]` views a layout kernel works on, worked out here once for both backends:
/// concat joins `[outer, len_a, inner]` and `[outer, len_b, inner]`; slice takes `[outer, len_b,
/// inner]` from `[outer, len_a, inner]` at `start`; a reshape that runs copies `outer` elements;
/// a swap turns `[outer, len_a, len_b, inner]` into `[outer, len_b, len_a, inner]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayoutView {
    pub outer: usize,
    pub len_a: usize,
    pub len_b: usize,
    pub inner: usize,
    pub start: usize,
}

impl LayoutOp {
    /// The view for operand shapes `s`.
    pub fn view(&self, s: &[&Shape]) -> LayoutView {
        match *self {
            LayoutOp::Reshape { .. } => LayoutView {
                outer: s[0].numel(),
                ..LayoutView::default()
            },
            LayoutOp::Concat { axis } => {
                let (outer, len_a, inner) = s[0].split_at_axis(axis);
                let len_b = s[1].dims()[axis];
                LayoutView {
                    outer,
                    len_a,
                    len_b,
                    inner,
                    start: 0,
                }
            }
            LayoutOp::Slice { axis, start, len } => {
                let (outer, len_a, inner) = s[0].split_at_axis(axis);
                LayoutView {
                    outer,
                    len_a,
                    len_b: len,
                    inner,
                    start,
                }
            }
            LayoutOp::SwapAxes { axis } => {
                let d = s[0].dims();
                LayoutView {
                    outer: d[..axis].iter().product(),
                    len_a: d[axis],
                    len_b: d[axis + 1],
                    inner: d[axis + 2..].iter().product(),
                    start: 0,
                }
            }
        }
    }
}

op_names!(LayoutOp {
    Reshape => "reshape",
    Concat => "concat",
    Slice => "slice",
    SwapAxes => "swap_axes",
});

impl Family for LayoutOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            LayoutOp::Reshape { .. } | LayoutOp::Slice { .. } | LayoutOp::SwapAxes { .. } => 1,
            LayoutOp::Concat { .. } => 2,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        let out = match self {
            LayoutOp::Reshape { shape } => {
                if shape.numel() != s[0].numel() {
                    return Err(Error::shape(name, format!("{} to {shape}", s[0]), "as many elements"));
                }
                shape.clone()
            }
            LayoutOp::Concat { axis } => {
                let (a, b) = (s[0], s[1]);
                axis_ok(name, a, *axis)?;
                if a.rank() != b.rank() || a.without_axis(*axis) != b.without_axis(*axis) {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[a, b]),
                        format!("shapes equal except along axis {axis}"),
                    ));
                }
                a.with_len(*axis, a.dims()[*axis] + b.dims()[*axis])
            }
            LayoutOp::Slice { axis, start, len } => {
                axis_ok(name, s[0], *axis)?;
                if start + len > s[0].dims()[*axis] {
                    return Err(Error::shape(
                        name,
                        format!("{start}..{} of axis {axis} of {}", start + len, s[0]),
                        "a range inside the axis",
                    ));
                }
                s[0].with_len(*axis, *len)
            }
            LayoutOp::SwapAxes { axis } => {
                if axis + 1 >= s[0].rank() {
                    return Err(Error::shape(
                        name,
                        format!("axes {axis} and {} of {}", axis + 1, s[0]),
                        "two axes of the operand",
                    ));
                }
                let mut d = s[0].dims().to_vec();
                d.swap(*axis, axis + 1);
                Shape::new(d)
            }
        };
        Ok(Some(out))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let (x, dy) = (at.x, at.dy);
        Ok(match self {
            LayoutOp::Reshape { .. } => {
                let shape = g.shape(x[0])?.clone();
                vec![Some(g.push(LayoutOp::Reshape { shape }, &[dy])?)]
            }
            LayoutOp::Concat { axis } => {
                let axis = *axis;
                let (la, lb) = (g.shape(x[0])?.dims()[axis], g.shape(x[1])?.dims()[axis]);
                let a = g.push(
                    LayoutOp::Slice {
                        axis,
                        start: 0,
                        len: la,
                    },
                    &[dy],
                )?;
                let b = g.push(
                    LayoutOp::Slice {
                        axis,
                        start: la,
                        len: lb,
                    },
                    &[dy],
                )?;
                vec![Some(a), Some(b)]
            }
            LayoutOp::Slice { axis, start, len } => {
                // dy placed back at its range, zeros elsewhere.
                let (axis, full) = (*axis, g.shape(x[0])?.clone());
                let mut out = dy;
                if *start > 0 {
                    let before = g.fill(0.0, full.with_len(axis, *start));
                    out = g.push(LayoutOp::Concat { axis }, &[before, out])?;
                }
                let after = full.dims()[axis] - start - len;
                if after > 0 {
                    let after = g.fill(0.0, full.with_len(axis, after));
                    out = g.push(LayoutOp::Concat { axis }, &[out, after])?;
                }
                vec![Some(out)]
            }
            LayoutOp::SwapAxes { axis } => vec![Some(g.push(LayoutOp::SwapAxes { axis: *axis }, &[dy])?)],
        })
    }
}
