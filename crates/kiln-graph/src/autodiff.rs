//! Reverse-mode autodiff: every backward rule of the op registry in one exhaustive match.
//!
//! Gradients are built from other ops in the same graph, so the scheduler orders, fuses and
//! allocates them like the forward pass, and both executors run them unchanged.

use crate::{Epilogue, Error, Graph, NodeId, Op, Result};

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
        let contributions = backward(g, &node, NodeId(i), dy)?;
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

/// The gradient contribution to each operand of `node` (output `y`, upstream gradient `dy`).
fn backward(g: &mut Graph, node: &Node, y: NodeId, dy: NodeId) -> Result<Vec<Option<NodeId>>> {
    let x = &node.inputs;
    let not_diff = |why: &str| Error::NotDifferentiable {
        op: node.op.name().to_string(),
        why: why.to_string(),
    };
    Ok(match &node.op {
        Op::Input { .. } | Op::Persistent { .. } | Op::Fill { .. } | Op::Constant { .. } => vec![],
        Op::MatMul {
            trans_a,
            trans_b,
            bias,
            epilogue,
        } => {
            if *bias || *epilogue != Epilogue::Linear {
                // Fusion happens in the scheduler, after autodiff: a fused matmul here is a bug.
                panic!("autodiff met a fused matmul; fusion must run after autodiff");
            }
            let (a, b) = (x[0], x[1]);
            let (da, db) = match (*trans_a, *trans_b) {
                (false, false) => (g.matmul(dy, b, false, true)?, g.matmul(a, dy, true, false)?),
                (true, false) => (g.matmul(b, dy, false, true)?, g.matmul(a, dy, false, false)?),
                (false, true) => (g.matmul(dy, b, false, false)?, g.matmul(dy, a, true, false)?),
                (true, true) => (g.matmul(b, dy, true, true)?, g.matmul(dy, a, true, true)?),
            };
            vec![Some(da), Some(db)]
        }
        Op::BiasAdd => {
            let mut db = dy;
            while g.shape(db)?.rank() > 1 {
                db = g.push(Op::Sum { axis: 0 }, &[db])?;
            }
            vec![Some(dy), Some(db)]
        }
        Op::Relu => vec![Some(g.binary(Op::ReluGrad, y, dy)?)],
        Op::Sigmoid => vec![Some(g.binary(Op::SigmoidGrad, y, dy)?)],
        Op::Softmax => vec![Some(g.binary(Op::SoftmaxGrad, y, dy)?)],
        Op::Add => vec![Some(dy), Some(dy)],
        Op::Sub => vec![Some(dy), Some(g.scale(dy, -1.0)?)],
        Op::Mul => vec![Some(g.binary(Op::Mul, dy, x[1])?), Some(g.binary(Op::Mul, dy, x[0])?)],
        Op::Scale { factor } => vec![Some(g.scale(dy, *factor)?)],
        Op::Div => {
            // d(a/b) = (dy / b, -dy · a / b²) = (dy / b, -(dy / b) · y)
            let da = g.binary(Op::Div, dy, x[1])?;
            let t = g.binary(Op::Mul, da, y)?;
            vec![Some(da), Some(g.scale(t, -1.0)?)]
        }
        Op::Log => vec![Some(g.binary(Op::Div, dy, x[0])?)],
        Op::Dropout { rate, seed } => vec![
            Some(g.push(
                Op::Dropout {
                    rate: *rate,
                    seed: *seed,
                },
                &[dy, x[1]],
            )?),
            None,
        ],
        Op::Im2Col { window } => vec![Some(g.push(Op::Col2Im { window: *window }, &[dy])?)],
        Op::Col2Im { window } => vec![Some(g.push(Op::Im2Col { window: *window }, &[dy])?)],
        Op::MaxPool2d { window } => vec![Some(g.push(Op::MaxPool2dGrad { window: *window }, &[x[0], dy])?)],
        Op::Reshape { .. } => {
            let back = g.shape(x[0])?.clone();
            vec![Some(g.push(Op::Reshape { shape: back }, &[dy])?)]
        }
        Op::Embedding => {
            let vocab = g.shape(x[0])?.dims()[0];
            vec![Some(g.push(Op::EmbeddingGrad { vocab }, &[x[1], dy])?), None]
        }
        Op::Clip { min, max } => {
            // dy where min < x < max: the gate is 1 - [x <= min] - [x >= max], built from Greater.
            let above_min = g.unary(Op::Greater { threshold: *min }, x[0])?;
            let above_max = g.unary(Op::Greater { threshold: *max }, x[0])?;
            let gate = g.binary(Op::Sub, above_min, above_max)?;
            vec![Some(g.binary(Op::Mul, dy, gate)?)]
        }
        Op::Concat { axis } => {
            let (la, lb) = (g.shape(x[0])?.dims()[*axis], g.shape(x[1])?.dims()[*axis]);
            vec![
                Some(g.push(
                    Op::Slice {
                        axis: *axis,
                        start: 0,
                        len: la,
                    },
                    &[dy],
                )?),
                Some(g.push(
                    Op::Slice {
                        axis: *axis,
                        start: la,
                        len: lb,
                    },
                    &[dy],
                )?),
            ]
        }
        Op::Slice { axis, start, len } => {
            // The slice's gradient is dy placed back at its range, zeros elsewhere.
            let full = g.shape(x[0])?.dims().to_vec();
            let zeros = |g: &mut Graph, n: usize| {
                let mut d = full.clone();
                d[*axis] = n;
                g.fill(0.0, d)
            };
            let mut out = dy;
            if *start > 0 {
                let before = zeros(g, *start);
                out = g.push(Op::Concat { axis: *axis }, &[before, out])?;
            }
            let after = full[*axis] - start - len;
            if after > 0 {
                let after = zeros(g, after);
                out = g.push(Op::Concat { axis: *axis }, &[out, after])?;
            }
            vec![Some(out)]
        }
        Op::Sum { axis } => {
            let size = g.shape(x[0])?.dims()[*axis];
            vec![Some(g.push(Op::Broadcast { axis: *axis, size }, &[dy])?)]
        }
        Op::Mean { axis } => {
            let size = g.shape(x[0])?.dims()[*axis];
            let b = g.push(Op::Broadcast { axis: *axis, size }, &[dy])?;
            vec![Some(g.scale(b, 1.0 / size as f32)?)]
        }
        Op::Broadcast { axis, .. } => vec![Some(g.push(Op::Sum { axis: *axis }, &[dy])?)],
        Op::SoftmaxCrossEntropy { sparse } => {
            let d = g.push(Op::SoftmaxCrossEntropyGrad { sparse: *sparse }, &[x[0], x[1], dy])?;
            vec![Some(d), None]
        }
        Op::SigmoidBinaryCrossEntropy => {
            let d = g.push(Op::SigmoidBinaryCrossEntropyGrad, &[x[0], x[1], dy])?;
            vec![Some(d), None]
        }
        Op::SquaredError => {
            let diff = g.binary(Op::Sub, x[0], x[1])?;
            let d = g.binary(Op::Mul, diff, dy)?;
            let d = g.scale(d, 2.0)?;
            vec![Some(d), Some(g.scale(d, -1.0)?)]
        }
        Op::AbsoluteError => {
            let diff = g.binary(Op::Sub, x[0], x[1])?;
            let sign = g.unary(Op::Sign, diff)?;
            let d = g.binary(Op::Mul, sign, dy)?;
            vec![Some(d), Some(g.scale(d, -1.0)?)]
        }
        Op::Sign | Op::Equal | Op::Greater { .. } | Op::ArgMax | Op::CountAbove { .. } => {
            return Err(not_diff(
                "its derivative is zero almost everywhere; it belongs in metrics, not in a loss",
            ))
        }
        Op::ReluGrad
        | Op::SigmoidGrad
        | Op::SoftmaxGrad
        | Op::SoftmaxCrossEntropyGrad { .. }
        | Op::EmbeddingGrad { .. }
        | Op::MaxPool2dGrad { .. }
        | Op::SigmoidBinaryCrossEntropyGrad => return Err(not_diff("second derivatives are not supported")),
        Op::AdamUpdate { .. } | Op::SgdUpdate { .. } | Op::AccumulateSum => {
            return Err(not_diff("it is an in-place update with no output"))
        }
    })
}

use crate::graph::Node;
