//! Tensors that live across runs: parameters, optimizer state, layer state and metric accumulators.

use crate::Shape;

/// Index of a tensor that lives across steps (a parameter, optimizer state or metric accumulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistentId(pub usize);

/// What a persistent tensor holds; backends may place the kinds differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistentKind {
    /// A trainable weight.
    Parameter,
    /// Optimizer state (Adam moments, SGD velocity).
    OptimizerState,
    /// A metric or loss accumulator, reset by the host at the start of an epoch.
    Accumulator,
    /// A layer's non-trainable state, saved with the model and updated in place by the training
    /// step (BatchNormalization's moving statistics).
    State,
}

impl PersistentKind {
    /// Whether a restore point keeps it: the training state (weights and optimizer state), not the
    /// metric accumulators that every epoch resets.
    pub fn is_training_state(self) -> bool {
        match self {
            PersistentKind::Parameter | PersistentKind::OptimizerState | PersistentKind::State => true,
            PersistentKind::Accumulator => false,
        }
    }
}

/// Declaration of a persistent tensor, shared by every plan of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistentSpec {
    /// Path-like name, e.g. `dense_1/kernel` or `dense_1/kernel/adam_m`.
    pub name: String,
    pub shape: Shape,
    pub kind: PersistentKind,
}
