//! A `Plan`: what a backend executes — ordered steps over one arena of transient tensors plus the
//! model's persistent tensors.

use crate::ops::StepOp;
use crate::{Error, PersistentId, PersistentSpec, Result, Shape};

/// Arena offsets are multiples of this many f32 elements (256 bytes), the strictest storage-buffer
/// offset alignment wgpu adapters report.
pub const ARENA_ALIGN: usize = 64;

/// Where a tensor lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// `offset` elements into the plan's arena.
    Arena { offset: usize },
    /// A persistent tensor of the model.
    Persistent(PersistentId),
}

/// A tensor a step reads or writes.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub location: Location,
    pub shape: Shape,
}

impl TensorRef {
    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.shape.numel()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tensor in the plan's arena: every step output, host input, plan output and constant is one.
#[derive(Clone, Debug, PartialEq)]
pub struct ArenaRef {
    /// Offset in f32 elements.
    pub offset: usize,
    pub shape: Shape,
}

impl ArenaRef {
    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.shape.numel()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its element range in the arena.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }

    /// The same tensor as an operand reference.
    pub fn tensor(&self) -> TensorRef {
        TensorRef {
            location: Location::Arena { offset: self.offset },
            shape: self.shape.clone(),
        }
    }
}

/// One kernel launch.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub op: StepOp,
    pub inputs: Vec<TensorRef>,
    /// `None` for effect ops, which write some of `inputs` instead.
    pub output: Option<ArenaRef>,
}

/// A scheduled graph, ready for a backend to turn into an executable once and run many times.
#[derive(Clone, Debug)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Arena size in f32 elements.
    pub arena_len: usize,
    /// Host-fed inputs, by name: uploaded into the arena before the steps run.
    pub inputs: Vec<(String, ArenaRef)>,
    /// Tensors the host may read after a run, in the order they were requested.
    pub outputs: Vec<ArenaRef>,
    /// Fixed tensors, written once when the plan is loaded; their slots are never reused.
    pub constants: Vec<(ArenaRef, std::sync::Arc<[f32]>)>,
    /// The model's persistent tensors (indexed by [`PersistentId`]).
    pub persistents: Vec<PersistentSpec>,
}

impl Plan {
    /// Pairs each of the plan's inputs with its data from `feeds` (by name; extra feeds are
    /// ignored) as `(arena offset, data)`, checking that none is missing and every length fits.
    pub fn match_inputs<'a, T>(&self, feeds: &[(&str, &'a [T])]) -> Result<Vec<(usize, &'a [T])>> {
        self.inputs
            .iter()
            .map(|(name, r)| {
                let data = feeds
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, d)| *d)
                    .ok_or_else(|| Error::invalid("run", format!("input `{name}` was not given")))?;
                if data.len() != r.len() {
                    return Err(Error::shape(
                        name,
                        format!("{} values", data.len()),
                        format!("{} for shape {}", r.len(), r.shape),
                    ));
                }
                Ok((r.offset, data))
            })
            .collect()
    }

    /// Arena size in bytes.
    pub fn arena_bytes(&self) -> usize {
        self.arena_len * 4
    }
}
