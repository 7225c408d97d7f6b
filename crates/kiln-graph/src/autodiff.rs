//! Reverse-mode autodiff. The backward rule of each op lives beside its forward rule in its
//! family's module ([`crate::ops`]); this walk applies them from the loss back to the parameters.
//!
//! Gradients are built from other ops in the same graph, so the scheduler orders, fuses and
//! allocates them like the forward pass, and both executors run them unchanged.

use crate::ops::Backward;
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

    for i in (0..n).rev() {
        let Some(dy) = grads[i] else { continue };
        if !from_wrt[i] {
            continue;
        }
        let node = g.node(NodeId(i)).clone();
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
