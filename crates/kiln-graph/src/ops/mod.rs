//! The op registry, one module per op family.
//!
//! [`Op`] is what a graph node holds: a [`Leaf`] (a tensor the host or the model provides) or a
//! [`StepOp`], one computation that the scheduler turns into a plan step. `StepOp` has one variant
//! per family, and each family is an enum in its own module holding, side by side, its variants'
//! shape rules, validation, metadata and backward rules (the [`Family`] trait). Every `match` on a
//! family or on `StepOp` in the workspace is exhaustive, so a new variant makes the compiler list
//! each place left to write: its executor functions on the CPU, its kernel entry on the GPU.
//!
//! `docs/adding-an-op.md` walks through adding one.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod embedding;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod recurrent;
pub mod reduce;
pub mod schedule;
pub mod update;

use crate::error::shapes_list;
use crate::{Error, Graph, NodeId, PersistentId, Result, Shape};

pub use activation::{ActivationOp, SELU_ALPHA, SELU_SCALE};
pub use attention::{Attend, AttentionDims, AttentionOp};
pub use conv::{ConvOp, Window2d};
pub use elementwise::{
    draw_key, dropout_element, dropout_keeps, dropout_threshold, keeps_from_key, lowbias32, round_f16,
    uniform_from_key, uniform_unit, ElementwiseOp,
};
pub use embedding::EmbeddingOp;
pub use layout::{LayoutOp, LayoutView};
pub use loss::LossOp;
pub use matmul::{Epilogue, MatMulOp, Param};
pub use recurrent::RecurrentOp;
pub use reduce::{roc_threshold, AxisView, ReduceOp};
pub use schedule::ScheduleOp;
pub use update::UpdateOp;

/// What every op family tells the graph, the scheduler and autodiff about its variants.
pub trait Family {
    /// Short name used in labels, errors, timings and kernel lookups.
    fn name(&self) -> &'static str;
    /// Number of operands.
    fn arity(&self) -> usize;
    /// Operand positions the op writes in place; empty for pure ops (every family but updates).
    fn mutated_operands(&self) -> &'static [usize] {
        &[]
    }
    /// The output shape for these operand shapes (already checked for count), `None` for ops that
    /// write operands instead of producing an output.
    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>>;
    /// The gradient contribution to each operand, built from other ops of the same graph.
    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>>;
}

/// Where a backward rule is applied: the node's operands `x`, its output `y` and the gradient `dy`
/// of the loss with respect to `y`.
pub struct Backward<'a> {
    pub x: &'a [NodeId],
    pub y: NodeId,
    pub dy: NodeId,
}

/// A tensor that is not computed by a step: it is uploaded, persistent or fixed.
#[derive(Clone, Debug, PartialEq)]
pub enum Leaf {
    /// A tensor uploaded by the host before every run (a batch of x, labels, the step counter).
    Input { name: String, shape: Shape },
    /// A tensor that lives across runs.
    Persistent { id: PersistentId, shape: Shape },
    /// Fixed values (class weights of a loss, say), uploaded once when a plan is loaded.
    Constant { data: std::sync::Arc<[f32]>, shape: Shape },
}

impl Leaf {
    /// Short name used in labels and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Leaf::Input { .. } => "input",
            Leaf::Persistent { .. } => "persistent",
            Leaf::Constant { .. } => "constant",
        }
    }

    /// The leaf's shape.
    pub fn shape(&self) -> &Shape {
        match self {
            Leaf::Input { shape, .. } | Leaf::Persistent { shape, .. } | Leaf::Constant { shape, .. } => shape,
        }
    }
}

/// Writes a family's `name` match and, from the same list, `NAMES`: the compiler makes the match
/// name every variant, so `NAMES` does too (the op coverage test reads it).
macro_rules! op_names {
    ($ty:ident { $($variant:ident => $name:literal,)* }) => {
        impl $ty {
            /// Every variant's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            fn variant_name(&self) -> &'static str {
                match self {
                    $($ty::$variant { .. } => $name,)*
                }
            }
        }
    };
}
pub(crate) use op_names;

/// Lists the families once: the [`StepOp`] enum, its dispatch to [`Family`] and the `From`
/// conversions that let `g.push(ActivationOp::Relu, ..)` take a family's variant directly.
macro_rules! families {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// One computation: a plan step runs exactly one.
        #[derive(Clone, Debug, PartialEq)]
        pub enum StepOp {
            $($(#[$doc])* $variant($ty),)*
        }

        impl StepOp {
            /// The name of every op variant of every family.
            pub fn all_names() -> Vec<&'static str> {
                [$(<$ty>::NAMES,)*].concat()
            }

            /// The family's facts about this op.
            pub fn family(&self) -> &dyn Family {
                match self {
                    $(StepOp::$variant(op) => op,)*
                }
            }
        }

        $(
            impl From<$ty> for StepOp {
                fn from(op: $ty) -> Self {
                    StepOp::$variant(op)
                }
            }

            impl From<$ty> for Op {
                fn from(op: $ty) -> Self {
                    Op::Step(StepOp::$variant(op))
                }
            }
        )*
    };
}

families! {
    /// Matrix products with fused bias and activation epilogues.
    MatMul(MatMulOp),
    /// Activations and their gradients in terms of the forward output.
    Activation(ActivationOp),
    /// Elementwise arithmetic, comparisons, fills and dropout.
    Elementwise(ElementwiseOp),
    /// Windows over NHWC images: im2col, col2im, max pooling.
    Conv(ConvOp),
    /// Moving values without arithmetic: reshape, concat, slice.
    Layout(LayoutOp),
    /// Reductions over an axis and their adjoints.
    Reduce(ReduceOp),
    /// Table lookups and their scatter-add gradient.
    Embedding(EmbeddingOp),
    /// Per-element or per-row losses and their fused gradients.
    Loss(LossOp),
    /// In-place updates of persistent tensors: optimizers and metric accumulators.
    Update(UpdateOp),
    /// Learning rates from the step counter.
    Schedule(ScheduleOp),
    /// Whole recurrences in one step (an LSTM over every time step) and their backward.
    Recurrent(RecurrentOp),
    /// Scaled dot-product attention of every head in one step, and its backward.
    Attention(AttentionOp),
}

impl StepOp {
    /// Short name used in labels, errors, timings and kernel lookups.
    pub fn name(&self) -> &'static str {
        self.family().name()
    }
}

/// One graph node's operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Leaf(Leaf),
    Step(StepOp),
}

impl From<Leaf> for Op {
    fn from(leaf: Leaf) -> Self {
        Op::Leaf(leaf)
    }
}

impl From<StepOp> for Op {
    fn from(op: StepOp) -> Self {
        Op::Step(op)
    }
}

impl Op {
    /// Short name used in labels, errors and kernel lookups.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Leaf(leaf) => leaf.name(),
            Op::Step(op) => op.name(),
        }
    }

    /// Number of operands the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Leaf(_) => 0,
            Op::Step(op) => op.family().arity(),
        }
    }

    /// Operand positions the op writes in place; empty for pure ops.
    pub fn mutated_operands(&self) -> &'static [usize] {
        match self {
            Op::Leaf(_) => &[],
            Op::Step(op) => op.family().mutated_operands(),
        }
    }

    /// True for ops that write operands instead of producing an output.
    pub fn is_effect(&self) -> bool {
        !self.mutated_operands().is_empty()
    }

    /// The output shape for these operand shapes, `None` for effect ops, or an error naming the op
    /// and the shapes it was given.
    pub fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        if s.len() != self.arity() {
            return Err(Error::invalid(
                self.name(),
                format!("takes {} operands, got {}", self.arity(), s.len()),
            ));
        }
        match self {
            Op::Leaf(leaf) => Ok(Some(leaf.shape().clone())),
            Op::Step(op) => op.family().output_shape(s),
        }
    }
}

/// Shape checks the families share.
pub(crate) mod check {
    use super::*;

    /// `a` and `b` must be the same shape.
    pub fn same(op: &str, a: &Shape, b: &Shape) -> Result<()> {
        if a == b {
            Ok(())
        } else {
            Err(Error::shape(op, shapes_list(&[a, b]), "identical shapes"))
        }
    }

    /// `axis` must be an axis of `x`.
    pub fn axis(op: &str, x: &Shape, axis: usize) -> Result<()> {
        if axis < x.rank() {
            Ok(())
        } else {
            Err(Error::shape(
                op,
                format!("axis {axis} of {x}"),
                format!("an axis below {}", x.rank()),
            ))
        }
    }

    /// `x` must have at least one axis.
    pub fn not_scalar(op: &str, x: &Shape, what: &str) -> Result<()> {
        if x.rank() == 0 {
            return Err(Error::shape(op, x.to_string(), what));
        }
        Ok(())
    }

    /// The error of a backward rule asked of an op that has none.
    pub fn not_differentiable(op: &str, why: &str) -> Error {
        Error::NotDifferentiable {
            op: op.to_string(),
            why: why.to_string(),
        }
    }

    /// Why gradient ops have no backward rule of their own.
    pub const SECOND_ORDER: &str = "second derivatives are not supported";
}
