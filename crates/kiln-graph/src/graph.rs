//! The static graph builder: nodes are appended in dependency order and shape-checked on the way in.

use crate::ops::{ElementwiseOp, LayoutOp, Leaf, MatMulOp, ReduceOp};
use crate::{Error, Op, PersistentId, PersistentSpec, Result, Shape};

/// Handle of a node in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// One op applied to earlier nodes.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    /// Output shape; `None` for effect ops.
    pub shape: Option<Shape>,
}

/// A static computation graph. Nodes only refer to earlier nodes, so the node order is a valid
/// evaluation order; effect ops appended last run after every reader of what they write.
#[derive(Clone, Debug)]
pub struct Graph {
    nodes: Vec<Node>,
    persistents: Vec<PersistentSpec>,
}

impl Graph {
    /// An empty graph over a model's persistent tensors (shared by all of that model's graphs).
    pub fn new(persistents: Vec<PersistentSpec>) -> Self {
        Graph {
            nodes: Vec::new(),
            persistents,
        }
    }

    /// The input `name`, created on first use and shared after (a step counter that several
    /// ops read, say).
    pub fn shared_input(&mut self, name: &str, shape: impl Into<Shape>) -> NodeId {
        let found = self
            .nodes
            .iter()
            .position(|n| matches!(&n.op, Op::Leaf(Leaf::Input { name: m, .. }) if m == name));
        match found {
            Some(i) => NodeId(i),
            None => self.input(name, shape),
        }
    }

    /// All nodes, in creation order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The persistent tensors this graph may refer to.
    pub fn persistents(&self) -> &[PersistentSpec] {
        &self.persistents
    }

    /// Declares a new persistent tensor and returns its id.
    pub fn declare_persistent(&mut self, spec: PersistentSpec) -> PersistentId {
        self.persistents.push(spec);
        PersistentId(self.persistents.len() - 1)
    }

    /// Shape of a node's output; an error for effect ops, which have none.
    pub fn shape(&self, id: NodeId) -> Result<&Shape> {
        let n = self.nodes.get(id.0).ok_or_else(|| {
            Error::invalid(
                "graph",
                format!(
                    "node #{} is not in this graph (it has {}): a node from another graph?",
                    id.0,
                    self.nodes.len()
                ),
            )
        })?;
        n.shape
            .as_ref()
            .ok_or_else(|| Error::invalid(n.op.name(), "has no output to use as an operand"))
    }

    /// Appends `op` applied to `inputs` after checking their shapes.
    pub fn push(&mut self, op: impl Into<Op>, inputs: &[NodeId]) -> Result<NodeId> {
        let op = op.into();
        let shapes = inputs.iter().map(|&i| self.shape(i)).collect::<Result<Vec<_>>>()?;
        let shape = op.output_shape(&shapes)?;
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            shape,
        });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// A host-fed input.
    pub fn input(&mut self, name: &str, shape: impl Into<Shape>) -> NodeId {
        let shape = shape.into();
        self.push_leaf(Leaf::Input {
            name: name.to_string(),
            shape,
        })
    }

    /// A reference to persistent tensor `id`.
    pub fn persistent(&mut self, id: PersistentId) -> NodeId {
        let shape = self.persistents[id.0].shape.clone();
        self.push_leaf(Leaf::Persistent { id, shape })
    }

    /// A constant-filled tensor.
    pub fn fill(&mut self, value: f32, shape: impl Into<Shape>) -> NodeId {
        let fill = ElementwiseOp::Fill {
            value,
            shape: shape.into(),
        };
        self.push(fill, &[]).expect("a fill takes no operands")
    }

    /// A tensor of fixed values.
    pub fn constant(&mut self, data: &[f32], shape: impl Into<Shape>) -> Result<NodeId> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::shape(
                "constant",
                format!("{} values", data.len()),
                format!("{} for shape {shape}", shape.numel()),
            ));
        }
        Ok(self.push_leaf(Leaf::Constant {
            data: data.into(),
            shape,
        }))
    }

    fn push_leaf(&mut self, leaf: Leaf) -> NodeId {
        let shape = leaf.shape().clone();
        self.nodes.push(Node {
            op: Op::Leaf(leaf),
            inputs: Vec::new(),
            shape: Some(shape),
        });
        NodeId(self.nodes.len() - 1)
    }

    /// `op(a) · op(b)`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId, trans_a: bool, trans_b: bool) -> Result<NodeId> {
        self.push(MatMulOp::plain(trans_a, trans_b), &[a, b])
    }

    /// `parts` joined along `axis`, pairwise in a balanced tree, so each value is copied
    /// `log₂(parts)` times rather than once per part after it.
    pub fn concat(&mut self, parts: &[NodeId], axis: usize) -> Result<NodeId> {
        match parts {
            [] => Err(Error::invalid("concat", "nothing to join")),
            [one] => Ok(*one),
            _ => {
                let (a, b) = parts.split_at(parts.len() / 2);
                let (a, b) = (self.concat(a, axis)?, self.concat(b, axis)?);
                self.push(LayoutOp::Concat { axis }, &[a, b])
            }
        }
    }

    /// `len` entries of `x` along `axis`, from `start`.
    pub fn slice(&mut self, x: NodeId, axis: usize, start: usize, len: usize) -> Result<NodeId> {
        self.push(LayoutOp::Slice { axis, start, len }, &[x])
    }

    /// `x` viewed with the dimensions `shape` (the same element count).
    pub fn reshape(&mut self, x: NodeId, shape: impl Into<Shape>) -> Result<NodeId> {
        self.push(LayoutOp::Reshape { shape: shape.into() }, &[x])
    }

    /// `x + bias` over the last axis.
    pub fn bias_add(&mut self, x: NodeId, bias: NodeId) -> Result<NodeId> {
        self.push(ElementwiseOp::BiasAdd, &[x, bias])
    }

    /// Applies a one-operand op.
    pub fn unary(&mut self, op: impl Into<Op>, x: NodeId) -> Result<NodeId> {
        self.push(op, &[x])
    }

    /// Applies a two-operand op.
    pub fn binary(&mut self, op: impl Into<Op>, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push(op, &[a, b])
    }

    /// Elementwise sum.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push(ElementwiseOp::Add, &[a, b])
    }

    /// `factor · x`.
    pub fn scale(&mut self, x: NodeId, factor: f32) -> Result<NodeId> {
        self.push(ElementwiseOp::Scale { factor }, &[x])
    }

    /// Elementwise `a - b`.
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push(ElementwiseOp::Sub, &[a, b])
    }

    /// Elementwise `a · b`.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push(ElementwiseOp::Mul, &[a, b])
    }

    /// Elementwise `a / b`.
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push(ElementwiseOp::Div, &[a, b])
    }

    /// Natural logarithm.
    pub fn log(&mut self, x: NodeId) -> Result<NodeId> {
        self.push(ElementwiseOp::Log, &[x])
    }

    /// `x` clamped to `[min, max]`.
    pub fn clip(&mut self, x: NodeId, min: f32, max: f32) -> Result<NodeId> {
        self.push(ElementwiseOp::Clip { min, max }, &[x])
    }

    /// Mean over `axis`, which is removed.
    pub fn mean(&mut self, x: NodeId, axis: usize) -> Result<NodeId> {
        self.push(ReduceOp::Mean { axis }, &[x])
    }

    /// `x` repeated along a new leading axis of `size` (a per-label vector over a batch, say).
    pub fn broadcast_rows(&mut self, x: NodeId, size: usize) -> Result<NodeId> {
        self.push(ReduceOp::Broadcast { axis: 0, size }, &[x])
    }

    /// Mean over every axis, down to a scalar.
    pub fn mean_all(&mut self, mut x: NodeId) -> Result<NodeId> {
        while self.shape(x)?.rank() > 0 {
            let last = self.shape(x)?.rank() - 1;
            x = self.push(ReduceOp::Mean { axis: last }, &[x])?;
        }
        Ok(x)
    }

    /// Sum over every axis, down to a scalar.
    pub fn sum_all(&mut self, mut x: NodeId) -> Result<NodeId> {
        while self.shape(x)?.rank() > 0 {
            let last = self.shape(x)?.rank() - 1;
            x = self.push(ReduceOp::Sum { axis: last }, &[x])?;
        }
        Ok(x)
    }
}
