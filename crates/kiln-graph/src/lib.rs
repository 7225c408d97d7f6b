//! What to compute: shapes, the op registry (one module per op family, [`ops`]), the graph builder, reverse-mode autodiff, the scheduler
//! that turns a graph into a [`Plan`], and the backend traits that execute plans.
//!
//! This crate knows no GPU API and no layer; kiln-cpu and kiln-wgpu execute its plans and kiln-nn
//! builds its graphs.

pub mod autodiff;
pub mod backend;
pub mod error;
pub mod graph;
pub mod ops;
pub mod persistent;
pub mod plan;
pub mod schedule;
pub mod shape;

pub use autodiff::gradients;
pub use backend::{run_batches, Backend, Collective, Counters, KernelTime, PlanId, Session};
pub use error::{Error, Result};
pub use graph::{Graph, Node, NodeId};
pub use ops::{
    draw_key, dropout_element, dropout_keeps, dropout_threshold, keeps_from_key, lowbias32, roc_threshold, round_f16,
    uniform_from_key, uniform_unit, ActivationOp, Attend, AttentionDims, AttentionOp, AxisView, ConvOp, ElementwiseOp,
    EmbeddingOp, Epilogue, Family, LayoutOp, LayoutView, Leaf, LossOp, MatMulOp, Op, Param, RecurrentOp, ReduceOp,
    ScheduleOp, StepOp, UpdateOp, Window2d, SELU_ALPHA, SELU_SCALE,
};
pub use persistent::{PersistentId, PersistentKind, PersistentSpec};
pub use plan::{ArenaRef, Location, Plan, Step, TensorRef, ARENA_ALIGN};
pub use schedule::schedule;
pub use shape::{DType, Shape};
