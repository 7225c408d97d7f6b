//! Reductions over one axis and their adjoints, argmax, and the ROC counts of the AUC metric.

use super::check::{axis as axis_ok, not_differentiable, not_scalar, same};
use super::{op_names, Backward, ElementwiseOp, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum over one axis, which is removed.
    Sum { axis: usize },
    /// Mean over one axis, which is removed.
    Mean { axis: usize },
    /// Repeats `x` `size` times along a new axis inserted at `axis` (the adjoint of `Sum`).
    Broadcast { axis: usize, size: usize },
    /// Index of the largest element over the last axis (first one on ties), as f32.
    ArgMax,
    /// `Σ a·b` over every element of two same-shaped tensors, as `[1]` (a squared norm with `a = b`).
    Dot,
    /// ROC counts over `thresholds` thresholds ([`roc_threshold`]): operands `(scores [r, k], labels
    /// [r, k])`, output `[2, k, thresholds]` holding, per label and threshold, how many positive
    /// (label > 0.5) and how many negative samples score above it.
    CountAbove { thresholds: usize },
}

/// A tensor viewed as `[outer, len, inner]` around the axis an op works along: the lowering both
/// backends' reduction kernels read, worked out here once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisView {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl ReduceOp {
    /// The view the op's kernel works on, for input `x` and output `out`: `Sum`/`Mean` the input
    /// around the reduced axis, `Broadcast` the output around the new axis, `ArgMax` `[rows, classes,
    /// 1]`, `CountAbove` `[rows, labels, thresholds]`.
    pub fn view(&self, x: &Shape, out: &Shape) -> AxisView {
        let (outer, len, inner) = match *self {
            ReduceOp::Sum { axis } | ReduceOp::Mean { axis } => x.split_at_axis(axis),
            ReduceOp::Broadcast { axis, .. } => out.split_at_axis(axis),
            ReduceOp::ArgMax => (out.numel(), x.last(), 1),
            ReduceOp::Dot => (1, x.numel(), 1),
            ReduceOp::CountAbove { thresholds } => (x.dims()[0], x.dims()[1], thresholds),
        };
        AxisView { outer, len, inner }
    }

    /// The factor each sum is multiplied by: `1 / len` for a mean, 1 otherwise.
    pub fn scale(&self, view: AxisView) -> f32 {
        match self {
            ReduceOp::Mean { .. } => 1.0 / view.len as f32,
            ReduceOp::Sum { .. }
            | ReduceOp::Broadcast { .. }
            | ReduceOp::ArgMax
            | ReduceOp::Dot
            | ReduceOp::CountAbove { .. } => 1.0,
        }
    }
}

op_names!(ReduceOp {
    Sum => "sum",
    Mean => "mean",
    Broadcast => "broadcast",
    ArgMax => "argmax",
    Dot => "dot",
    CountAbove => "count_above",
});

impl Family for ReduceOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            ReduceOp::Sum { .. } | ReduceOp::Mean { .. } | ReduceOp::Broadcast { .. } | ReduceOp::ArgMax => 1,
            ReduceOp::Dot | ReduceOp::CountAbove { .. } => 2,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let (name, x) = (self.name(), s[0]);
        let out = match self {
            ReduceOp::Sum { axis } | ReduceOp::Mean { axis } => {
                axis_ok(name, x, *axis)?;
                x.without_axis(*axis)
            }
            ReduceOp::Broadcast { axis, size } => {
                if *axis > x.rank() {
                    return Err(Error::shape(
                        name,
                        format!("axis {axis} of {x}"),
                        "an axis at most the rank",
                    ));
                }
                x.with_axis(*axis, *size)
            }
            ReduceOp::ArgMax => {
                not_scalar(name, x, "at least one axis")?;
                x.without_axis(x.rank() - 1)
            }
            ReduceOp::Dot => {
                same(name, s[0], s[1])?;
                Shape::new([1])
            }
            ReduceOp::CountAbove { thresholds } => {
                same(name, s[0], s[1])?;
                if x.rank() != 2 || *thresholds < 2 {
                    return Err(Error::shape(
                        name,
                        format!("scores {x} with {thresholds} thresholds"),
                        "[rows, labels] and at least 2 thresholds",
                    ));
                }
                Shape::new([2, x.dims()[1], *thresholds])
            }
        };
        Ok(Some(out))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let (x, dy) = (at.x, at.dy);
        let d = match *self {
            ReduceOp::Sum { axis } => {
                let size = g.shape(x[0])?.dims()[axis];
                g.push(ReduceOp::Broadcast { axis, size }, &[dy])?
            }
            ReduceOp::Mean { axis } => {
                let size = g.shape(x[0])?.dims()[axis];
                let b = g.push(ReduceOp::Broadcast { axis, size }, &[dy])?;
                g.scale(b, 1.0 / size as f32)?
            }
            ReduceOp::Broadcast { axis, .. } => g.push(ReduceOp::Sum { axis }, &[dy])?,
            // d(a·b)/da = b·dy and d/db = a·dy, dy a [1] scalar.
            ReduceOp::Dot => {
                let da = g.push(ElementwiseOp::ScaleByScalar, &[x[1], dy])?;
                let db = g.push(ElementwiseOp::ScaleByScalar, &[x[0], dy])?;
                return Ok(vec![Some(da), Some(db)]);
            }
            ReduceOp::ArgMax | ReduceOp::CountAbove { .. } => {
                return Err(not_differentiable(
                    self.name(),
                    "its derivative is zero almost everywhere; it belongs in metrics, not in a loss",
                ))
            }
        };
        Ok(vec![Some(d)])
    }
}

/// Threshold `t` of `n` used by [`ReduceOp::CountAbove`]: just below 0, evenly spaced inside (0, 1),
/// and just above 1, so the ROC curve runs from (1, 1) to (0, 0). Both backends compute it this way.
pub fn roc_threshold(t: usize, n: usize) -> f32 {
    if t == 0 {
        -1e-7
    } else if t + 1 == n {
        1.0 + 1e-7
    } else {
        t as f32 / (n - 1) as f32
    }
}
