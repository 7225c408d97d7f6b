//! Reverse-mode autodiff. The backward rule of each op lives beside its forward rule in its
//! family's module ([`crate::ops`]); this walk applies them from the loss back to the parameters.
//!
//! Gradients are built from other ops in the same graph, so the scheduler orders, fuses and
//! allocates them like the forward pass, and both executors run them unchanged.

use crate::ops::{Backward, LayoutOp, StepOp};
use crate::{Error, Graph, NodeId, Op, Result};

/// Appends the ops computing `d loss / d x` for each `x` in `wrt` and returns their nodes, in order.
/// `loss` must be a scalar. A node that `loss` does not depend on gets a zero-filled gradient.
pub fn gradients(g: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    let loss_shape = g.shape(loss)?.clone();
    if loss_shape.numel() != 1 {
        return Err(Error::shape("gradients", format!("loss {loss_shape}"), "a scalar loss"));
    }
    // Which nodes lie on a path from a `wrt` node to the loss: only those need gradients.
    let n = loss.0 + 1;
    let mut from_wrt = vec![false; n];
    for &w in wrt {
        if w.0 < n {
            from_wrt[w.0] = true;
        }
    }
    for i in 0..n {
        if !from_wrt[i] && g.node(NodeId(i)).inputs.iter().any(|x| from_wrt[x.0]) {
            from_wrt[i] = true;
        }
    }
    let mut grads: Vec<Option<NodeId>> = vec![None; n];
    grads[loss.0] = Some(g.fill(1.0, loss_shape));
    let mut pieces = sliced_apart(g, &from_wrt);

    for i in (0..n).rev() {
        // Every consumer of a node cut into slices has run: join their gradients in one piece.
        if let Some(cut) = pieces[i].take().filter(|c| !c.parts.is_empty()) {
            grads[i] = Some(join(g, NodeId(i), cut)?);
        }
        let Some(dy) = grads[i] else { continue };
        if !from_wrt[i] {
            continue;
        }
        let node = g.node(NodeId(i)).clone();
        if let Op::Step(StepOp::Layout(LayoutOp::Slice { start, .. })) = node.op {
            let x = node.inputs[0].0;
            if let Some(cut) = pieces[x].as_mut() {
                cut.parts.push((start, dy));
                continue;
            }
        }
        let Op::Step(op) = &node.op else {
            continue; // leaves have no operands
        };
        let at = Backward {
            x: &node.inputs,
            y: NodeId(i),
            dy,
        };
        let contributions = op.family().backward(g, &at)?;
        for (k, c) in contributions.into_iter().enumerate() {
            let (Some(c), x) = (c, node.inputs[k]) else {
                continue;
            };
            if !from_wrt[x.0] {
                continue;
            }
            grads[x.0] = Some(match grads[x.0] {
                None => c,
                Some(prev) => g.add(prev, c)?,
            });
        }
    }
    wrt.iter()
        .map(|&w| match grads.get(w.0).copied().flatten() {
            Some(d) => Ok(d),
            None => {
                let shape = g.shape(w)?.clone();
                Ok(g.fill(0.0, shape))
            }
        })
        .collect()
}

/// The slices of a node, gathered in the backward walk: along `axis`, each `(start, d slice)`.
struct Cut {
    axis: usize,
    parts: Vec<(usize, NodeId)>,
}

/// A [`Cut`] for each node whose every consumer on a path to the loss is a `Slice` along one axis,
/// the slices not overlapping (an unrolled recurrence cutting a sequence into steps, gates cut
/// from one product); `None` for the others.
///
/// The gradient of such a node is its slices' gradients joined end to end, where each slice's own
/// rule would pad its piece with zeros to the full size and sum the padded copies: quadratic in
/// the number of slices.
fn sliced_apart(g: &Graph, from_wrt: &[bool]) -> Vec<Option<Cut>> {
    let n = from_wrt.len();
    // Per node: the axis (once seen) and `(start, len)` ranges of its slice consumers, or None
    // once any other use appears.
    type Ranges = (Option<usize>, Vec<(usize, usize)>);
    let mut cuts: Vec<Option<Ranges>> = vec![Some((None, Vec::new())); n];
    for (i, node) in g.nodes().iter().enumerate().take(n) {
        if !from_wrt[i] {
            continue;
        }
        let Op::Step(op) = &node.op else { continue };
        for &x in &node.inputs {
            let Some(entry) = cuts.get_mut(x.0) else { continue };
            match (op, entry.as_mut()) {
                (StepOp::Layout(LayoutOp::Slice { axis, start, len }), Some((at, ranges)))
                    if at.is_none_or(|a| a == *axis) =>
                {
                    *at = Some(*axis);
                    ranges.push((*start, *len));
                }
                _ => *entry = None,
            }
        }
    }
    cuts.into_iter()
        .map(|cut| {
            let (axis, mut ranges) = cut?;
            ranges.sort_unstable();
            let apart = ranges.len() > 1 && ranges.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0);
            apart.then(|| Cut {
                axis: axis.expect("slices were seen"),
                parts: Vec::new(),
            })
        })
        .collect()
}

/// The gradient of `x` from its slices' gradients: the pieces in order along the cut axis, zeros
/// in the gaps, joined by a balanced tree of concats.
fn join(g: &mut Graph, x: NodeId, Cut { axis, mut parts }: Cut) -> Result<NodeId> {
    let full = g.shape(x)?.clone();
    parts.sort_unstable_by_key(|p| p.0);
    let mut run = Vec::with_capacity(parts.len() * 2 + 1);
    let mut at = 0;
    for (start, d) in parts {
        if start > at {
            run.push(g.fill(0.0, full.with_len(axis, start - at)));
        }
        at = start + g.shape(d)?.dims()[axis];
        run.push(d);
    }
    if full.dims()[axis] > at {
        run.push(g.fill(0.0, full.with_len(axis, full.dims()[axis] - at)));
    }
    g.concat(&run, axis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ElementwiseOp;

    /// The ops of `g` from node `from` on.
    fn ops_after(g: &Graph, from: usize) -> Vec<&Op> {
        g.nodes()[from..].iter().map(|n| &n.op).collect()
    }

    #[test]
    fn a_node_cut_into_slices_gets_its_pieces_joined_not_padded_and_summed() {
        let mut g = Graph::new(Vec::new());
        let x = g.input("x", [4, 12]);
        // Twelve columns cut into 1, 3 and 2 columns with gaps, as a recurrence cuts steps.
        let pieces = [(0, 1), (2, 3), (7, 2)];
        let mut total = None;
        for (start, len) in pieces {
            let s = g.slice(x, 1, start, len).unwrap();
            let sq = g.mul(s, s).unwrap();
            let sum = g.sum_all(sq).unwrap();
            total = Some(match total {
                None => sum,
                Some(t) => g.add(t, sum).unwrap(),
            });
        }
        let before = g.nodes().len();
        let [dx] = gradients(&mut g, total.unwrap(), &[x]).unwrap()[..] else {
            panic!()
        };
        assert_eq!(g.shape(dx).unwrap().dims(), [4, 12]);
        // No full-size sum: the three pieces and three zero gaps are joined by five concats.
        let added_full = ops_after(&g, before)
            .iter()
            .zip(&g.nodes()[before..])
            .filter(|(op, n)| {
                matches!(op, Op::Step(StepOp::Elementwise(ElementwiseOp::Add)))
                    && n.shape.as_ref().map(|s| s.dims() == [4, 12]).unwrap_or(false)
            })
            .count();
        assert_eq!(added_full, 0);
        let concats = ops_after(&g, before)
            .iter()
            .filter(|op| matches!(op, Op::Step(StepOp::Layout(LayoutOp::Concat { .. }))))
            .count();
        assert_eq!(concats, 5);
    }

    #[test]
    fn overlapping_slices_and_other_uses_keep_the_padded_rule() {
        for overlap in [true, false] {
            let mut g = Graph::new(Vec::new());
            let x = g.input("x", [2, 6]);
            let a = g.slice(x, 1, 0, 3).unwrap();
            let b = if overlap {
                g.slice(x, 1, 2, 3).unwrap()
            } else {
                // A second use that is not a slice.
                let s = g.slice(x, 1, 3, 3).unwrap();
                let whole = g.sum_all(x).unwrap();
                let whole = g
                    .push(crate::ops::ReduceOp::Broadcast { axis: 0, size: 3 }, &[whole])
                    .unwrap();
                let whole = g.reshape(whole, [3]).unwrap();
                let whole = g
                    .push(crate::ops::ReduceOp::Broadcast { axis: 0, size: 2 }, &[whole])
                    .unwrap();
                g.add(s, whole).unwrap()
            };
            let ab = g.mul(a, b).unwrap();
            let loss = g.sum_all(ab).unwrap();
            let cut = sliced_apart(&g, &vec![true; loss.0 + 1]);
            assert!(cut[x.0].is_none(), "overlap {overlap}");
            let dx = gradients(&mut g, loss, &[x]).unwrap()[0];
            assert_eq!(g.shape(dx).unwrap().dims(), [2, 6]);
        }
    }
}
