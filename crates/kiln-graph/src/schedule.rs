//! The scheduler: prunes what no output needs, fuses bias and activation into matmul epilogues and
//! an embedding's lookup into the mean over its steps, fixes the order, and gives every transient
//! tensor an arena slot by liveness.

use crate::ops::{ElementwiseOp, EmbeddingOp, Epilogue, LayoutOp, Leaf, MatMulOp, ReduceOp, StepOp};
use crate::plan::{ArenaRef, Location, Plan, Step, TensorRef, ARENA_ALIGN};
use crate::{Error, Graph, NodeId, Op, Result};

/// Schedules `g` so that `outputs` can be read after a run. Every effect op in the graph runs.
pub fn schedule(g: &Graph, outputs: &[NodeId]) -> Result<Plan> {
    if let Some(o) = outputs.iter().find(|o| o.0 >= g.nodes().len()) {
        return Err(Error::invalid(
            "schedule",
            format!("output node #{} is not in this graph", o.0),
        ));
    }
    let mut nodes: Vec<(Op, Vec<NodeId>)> = g.nodes().iter().map(|n| (n.op.clone(), n.inputs.clone())).collect();
    let is_output = {
        let mut v = vec![false; nodes.len()];
        for o in outputs {
            v[o.0] = true;
        }
        v
    };
    let mut live = liveness(&nodes, outputs);
    fuse_bias(&mut nodes, &mut live, &is_output);
    fuse_activation(&mut nodes, &mut live, &is_output);
    fuse_lookup_mean(g, &mut nodes, &mut live, &is_output);
    live = liveness(&nodes, outputs);
    check_effect_order(&nodes, &live)?;

    let order: Vec<usize> = (0..nodes.len()).filter(|&i| live[i]).collect();
    check_sizes(g, &order)?;
    let uses = consumers(&nodes, &live);
    let mut last_use = vec![0usize; nodes.len()];
    for (pos, &i) in order.iter().enumerate() {
        for x in &nodes[i].1 {
            last_use[x.0] = pos;
        }
    }
    let release_at = releases(&nodes, &order, &uses, &last_use, &is_output);

    let mut arena = Arena::default();
    let mut refs: Vec<Option<TensorRef>> = vec![None; nodes.len()];
    let shape_of = |i: usize| g.node(NodeId(i)).shape.clone();
    // Inputs are uploaded before the first step and constants when the plan loads, so their slots
    // are taken before any step's; constants keep theirs for good.
    let mut inputs = Vec::new();
    let mut constants = Vec::new();
    for &i in &order {
        let Op::Leaf(leaf) = &nodes[i].0 else { continue };
        let slot = |arena: &mut Arena, shape: &crate::Shape| ArenaRef {
            offset: arena.alloc(shape.numel()),
            shape: shape.clone(),
        };
        match leaf {
            Leaf::Constant { data, shape } => {
                let r = slot(&mut arena, shape);
                refs[i] = Some(r.tensor());
                constants.push((r, data.clone()));
            }
            Leaf::Input { name, shape } => {
                let r = slot(&mut arena, shape);
                refs[i] = Some(r.tensor());
                inputs.push((name.clone(), r));
            }
            Leaf::Persistent { .. } => {}
        }
    }
    let mut steps = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        let (op, operands) = &nodes[i];
        match op {
            Op::Leaf(Leaf::Input { .. } | Leaf::Constant { .. }) => {}
            Op::Leaf(Leaf::Persistent { id, shape }) => {
                refs[i] = Some(TensorRef {
                    location: Location::Persistent(*id),
                    shape: shape.clone(),
                });
            }
            Op::Step(_) if aliases(&nodes, i) => {
                let x = refs[operands[0].0]
                    .clone()
                    .expect("operands are scheduled before their users");
                refs[i] = Some(TensorRef {
                    location: x.location,
                    shape: shape_of(i).expect("a reshape has an output"),
                });
            }
            Op::Step(op) => {
                let ins: Vec<TensorRef> = operands
                    .iter()
                    .map(|x| refs[x.0].clone().expect("operands are scheduled before their users"))
                    .collect();
                // Allocate the output before releasing operands so that no step reads and writes
                // overlapping ranges.
                let output = shape_of(i).map(|shape| ArenaRef {
                    offset: arena.alloc(shape.numel()),
                    shape,
                });
                refs[i] = output.as_ref().map(ArenaRef::tensor);
                steps.push(Step {
                    op: op.clone(),
                    inputs: ins,
                    output,
                });
            }
        }
        for &r in &release_at[pos] {
            free_ref(&mut arena, &refs[r]);
        }
    }
    let outputs = outputs
        .iter()
        .map(|o| {
            let r = refs[o.0]
                .clone()
                .ok_or_else(|| Error::invalid("schedule", "an effect op cannot be an output"))?;
            match r.location {
                Location::Arena { offset } => Ok(ArenaRef { offset, shape: r.shape }),
                Location::Persistent(_) => Err(Error::invalid(
                    "schedule",
                    "a persistent tensor cannot be a plan output; read it from the session",
                )),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Plan {
        steps,
        arena_len: arena.top,
        inputs,
        outputs,
        constants,
        persistents: g.persistents().to_vec(),
    })
}

/// A reshape of an arena tensor is a view: it shares its operand's slot and runs no step. (A
/// reshaped persistent tensor is still copied, so that an in-place update later in the step cannot
/// change what its readers see.)
/// Refuses a plan whose tensors' sizes overflow: each live node's element count, and the bytes of
/// all of them together (an upper bound of the arena), must fit in `usize`; so must each
/// persistent tensor's. Shapes come from users and files, so this is where a wrapped size would
/// otherwise turn into a small buffer.
fn check_sizes(g: &Graph, order: &[usize]) -> Result<()> {
    let too_big = |what: String, shape: &crate::Shape| {
        Error::invalid(
            "schedule",
            format!("{what} of shape {shape} has more values than memory can address"),
        )
    };
    let mut total = 0usize;
    for &i in order {
        let Some(shape) = &g.node(NodeId(i)).shape else {
            continue;
        };
        let values = shape
            .checked_numel()
            .and_then(|n| n.max(1).checked_next_multiple_of(ARENA_ALIGN))
            .ok_or_else(|| too_big(format!("{} (node #{i})", g.node(NodeId(i)).op.name()), shape))?;
        total = total
            .checked_add(values)
            .filter(|t| t.checked_mul(4).is_some())
            .ok_or_else(|| too_big(format!("the plan's tensors, up to node #{i},"), shape))?;
    }
    for p in g.persistents() {
        p.shape
            .checked_numel()
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| too_big(format!("persistent tensor {}", p.name), &p.shape))?;
    }
    Ok(())
}

fn aliases(nodes: &[(Op, Vec<NodeId>)], i: usize) -> bool {
    matches!(nodes[i].0, Op::Step(StepOp::Layout(LayoutOp::Reshape { .. })))
        && !matches!(nodes[nodes[i].1[0].0].0, Op::Leaf(Leaf::Persistent { .. }))
}

/// For each position of `order`, the nodes whose arena slots are free after that step: a slot
/// lives until the last use of every tensor that shares it (a tensor and its reshapes), and slots
/// holding outputs or constants live for good.
fn releases(
    nodes: &[(Op, Vec<NodeId>)],
    order: &[usize],
    uses: &[usize],
    last_use: &[usize],
    is_output: &[bool],
) -> Vec<Vec<usize>> {
    let mut root: Vec<usize> = (0..nodes.len()).collect();
    let mut end = vec![0usize; nodes.len()];
    let mut pinned = vec![false; nodes.len()];
    for (pos, &i) in order.iter().enumerate() {
        if aliases(nodes, i) {
            root[i] = root[nodes[i].1[0].0];
        }
        let r = root[i];
        end[r] = end[r].max(if uses[i] == 0 { pos } else { last_use[i] });
        pinned[r] |= is_output[i] || matches!(nodes[i].0, Op::Leaf(Leaf::Constant { .. } | Leaf::Persistent { .. }));
    }
    let mut at = vec![Vec::new(); order.len()];
    for &i in order {
        if root[i] == i && !pinned[i] {
            at[end[i]].push(i);
        }
    }
    at
}

fn free_ref(arena: &mut Arena, r: &Option<TensorRef>) {
    if let Some(TensorRef {
        location: Location::Arena { offset },
        shape,
    }) = r
    {
        arena.free(*offset, shape.numel());
    }
}

/// Marks every node that an output or an effect op needs.
fn liveness(nodes: &[(Op, Vec<NodeId>)], outputs: &[NodeId]) -> Vec<bool> {
    let mut live = vec![false; nodes.len()];
    for o in outputs {
        live[o.0] = true;
    }
    for (i, (op, _)) in nodes.iter().enumerate() {
        if op.is_effect() {
            live[i] = true;
        }
    }
    for i in (0..nodes.len()).rev() {
        if live[i] {
            for x in &nodes[i].1 {
                live[x.0] = true;
            }
        }
    }
    live
}

fn consumers(nodes: &[(Op, Vec<NodeId>)], live: &[bool]) -> Vec<usize> {
    let mut c = vec![0; nodes.len()];
    for (i, (_, ins)) in nodes.iter().enumerate() {
        if live[i] {
            for x in ins {
                c[x.0] += 1;
            }
        }
    }
    c
}

/// The matmul `op` is, if it is one with nothing fused into it yet.
fn plain_matmul(op: &Op) -> Option<MatMulOp> {
    let Op::Step(StepOp::MatMul(m)) = op else { return None };
    (*m == MatMulOp::plain(m.trans_a, m.trans_b)).then_some(*m)
}

/// The matmul `op` is, if it has no activation fused into it yet.
fn linear_matmul(op: &Op) -> Option<MatMulOp> {
    let Op::Step(StepOp::MatMul(m)) = op else { return None };
    (m.epilogue == Epilogue::Linear).then_some(*m)
}

/// `BiasAdd(MatMul(a, b), bias)` → `MatMul(a, b, bias)` when nothing else reads the product.
fn fuse_bias(nodes: &mut [(Op, Vec<NodeId>)], live: &mut [bool], is_output: &[bool]) {
    let uses = consumers(nodes, live);
    for i in 0..nodes.len() {
        if !live[i] || nodes[i].0 != Op::from(ElementwiseOp::BiasAdd) {
            continue;
        }
        let m = nodes[i].1[0].0;
        let Some(product) = plain_matmul(&nodes[m].0) else {
            continue;
        };
        if uses[m] != 1 || is_output[m] {
            continue;
        }
        let bias = nodes[i].1[1];
        let (a, b) = (nodes[m].1[0], nodes[m].1[1]);
        nodes[i] = (MatMulOp { bias: true, ..product }.into(), vec![a, b, bias]);
        live[m] = false;
    }
}

/// `Act(MatMul(..))` → `MatMul(.., epilogue)` for the activations with an epilogue, when nothing else
/// reads the pre-activation.
fn fuse_activation(nodes: &mut [(Op, Vec<NodeId>)], live: &mut [bool], is_output: &[bool]) {
    let uses = consumers(nodes, live);
    for i in 0..nodes.len() {
        let Op::Step(StepOp::Activation(act)) = nodes[i].0 else {
            continue;
        };
        let Some(epilogue) = act.epilogue() else { continue };
        if !live[i] {
            continue;
        }
        let m = nodes[i].1[0].0;
        let Some(product) = linear_matmul(&nodes[m].0) else {
            continue;
        };
        if uses[m] != 1 || is_output[m] {
            continue;
        }
        nodes[i] = (MatMulOp { epilogue, ..product }.into(), nodes[m].1.clone());
        live[m] = false;
    }
}

/// `Mean { axis: 1 }(Lookup(table, indices [n, steps]))` → `LookupMean(table, indices)` when
/// nothing else reads the lookup.
fn fuse_lookup_mean(g: &Graph, nodes: &mut [(Op, Vec<NodeId>)], live: &mut [bool], is_output: &[bool]) {
    let uses = consumers(nodes, live);
    for i in 0..nodes.len() {
        if !live[i] || nodes[i].0 != Op::from(ReduceOp::Mean { axis: 1 }) {
            continue;
        }
        let l = nodes[i].1[0].0;
        if nodes[l].0 != Op::from(EmbeddingOp::Lookup) || uses[l] != 1 || is_output[l] {
            continue;
        }
        if g.shape(nodes[l].1[1]).map_or(true, |indices| indices.rank() != 2) {
            continue;
        }
        nodes[i] = (EmbeddingOp::LookupMean.into(), nodes[l].1.clone());
        live[l] = false;
    }
}

/// An effect op that writes persistent `p` must come after every other reader of `p`, but for
/// later effect ops that update `p` in place themselves (a shared BatchNormalization's moving
/// statistics, updated once per application in call order: a chain of read-modify-writes); node
/// order is the execution order, so check it rather than trust it.
fn check_effect_order(nodes: &[(Op, Vec<NodeId>)], live: &[bool]) -> Result<()> {
    let pid = |n: NodeId| match &nodes[n.0].0 {
        Op::Leaf(Leaf::Persistent { id, .. }) => Some(*id),
        Op::Leaf(Leaf::Input { .. } | Leaf::Constant { .. }) | Op::Step(_) => None,
    };
    for (e, (op, ins)) in nodes.iter().enumerate() {
        if !live[e] {
            continue;
        }
        for &k in op.mutated_operands() {
            let Some(p) = pid(ins[k]) else {
                return Err(Error::invalid(
                    op.name(),
                    "can only update a persistent tensor in place",
                ));
            };
            let late_reader = nodes.iter().enumerate().skip(e + 1).any(|(r, (rop, rins))| {
                let updates_p = rop.mutated_operands().iter().any(|&m| pid(rins[m]) == Some(p));
                live[r] && !updates_p && rins.iter().any(|&x| pid(x) == Some(p))
            });
            if late_reader {
                return Err(Error::invalid(
                    op.name(),
                    format!("writes persistent #{} before another op reads it", p.0),
                ));
            }
        }
    }
    Ok(())
}

/// First-fit allocator over arena offsets (in elements).
#[derive(Default)]
struct Arena {
    free: Vec<(usize, usize)>,
    top: usize,
}

impl Arena {
    /// A slot of `len` values; [`check_sizes`] has bounded the sum of every request, so nothing
    /// here overflows.
    fn alloc(&mut self, len: usize) -> usize {
        let len = len.max(1).div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
        if let Some(k) = self.free.iter().position(|&(_, l)| l >= len) {
            let (off, l) = self.free[k];
            if l == len {
                self.free.remove(k);
            } else {
                self.free[k] = (off + len, l - len);
            }
            return off;
        }
        let off = self.top;
        self.top += len;
        off
    }

    fn free(&mut self, offset: usize, len: usize) {
        let len = len.max(1).div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
        let k = self.free.partition_point(|&(o, _)| o < offset);
        self.free.insert(k, (offset, len));
        // Merge with the neighbours so large tensors can reuse several freed small ones.
        if k + 1 < self.free.len() && self.free[k].0 + self.free[k].1 == self.free[k + 1].0 {
            self.free[k].1 += self.free[k + 1].1;
            self.free.remove(k + 1);
        }
        if k > 0 && self.free[k - 1].0 + self.free[k - 1].1 == self.free[k].0 {
            self.free[k - 1].1 += self.free[k].1;
            self.free.remove(k);
        }
    }
}
