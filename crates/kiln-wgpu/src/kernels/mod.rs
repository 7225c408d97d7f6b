//! The kernel table: from a plan step to its kernel (shader, entry point, override constants,
//! params, bindings and grid), one module per op family. Entry points carry the same names as the
//! CPU reference functions. How operands are read (storage buffers, or texel copies on software
//! rasterisers) is decided in [`operands`].

mod activation;
mod attention;
mod conv;
mod elementwise;
mod embedding;
mod layout;
mod loss;
pub mod matmul;
pub mod operands;
mod recurrent;
mod reduce;
mod schedule;
mod update;

use kiln_graph::{ArenaRef, Step, StepOp, TensorRef};

pub use operands::{Caps, TEXEL_ROW};

use crate::shaders::Shader;

/// Invocations per workgroup of the 1-D kernels (`WG` in common.wgsl).
pub const WG: u32 = 256;
/// Most workgroups per grid dimension that every backend accepts.
pub const MAX_GROUPS: u32 = 65535;

/// Everything needed to record one dispatch.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    pub overrides: Vec<(&'static str, f64)>,
    pub params: Vec<u8>,
    /// Storage bindings 1.., in order: the output (or first written operand), then the operands.
    pub bindings: Vec<TensorRef>,
    /// Operands read through texel copies (see [`TEXEL_ROW`]), bound as textures after the storage
    /// bindings; the session copies each into its texture right before the dispatch.
    pub texels: Vec<TensorRef>,
    pub grid: [u32; 3],
}

impl Kernel {
    /// A kernel with no override constants that reads every operand from storage buffers.
    fn new(
        shader: Shader,
        entry: &'static str,
        params: impl bytemuck::Pod,
        bindings: Vec<TensorRef>,
        grid: [u32; 3],
    ) -> Self {
        Kernel {
            shader,
            entry,
            overrides: Vec::new(),
            params: bytemuck::bytes_of(&params).to_vec(),
            bindings,
            texels: Vec::new(),
            grid,
        }
    }

    /// The same kernel with one more pipeline-override constant.
    fn with(mut self, name: &'static str, value: f64) -> Self {
        self.overrides.push((name, value));
        self
    }
}

/// Grid for `n` invocations of a 1-D kernel, folded into y past 65535 workgroups.
pub fn grid_1d(n: usize) -> [u32; 3] {
    grid_groups(n.div_ceil(WG as usize))
}

/// Grid of `groups` workgroups (at least one), folded into y past 65535.
pub fn grid_groups(groups: usize) -> [u32; 3] {
    let groups = groups.max(1);
    let x = groups.min(MAX_GROUPS as usize);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// A step's tensors as a family's table binds them.
struct Io<'a> {
    ins: &'a [TensorRef],
    out: Option<&'a ArenaRef>,
}

impl Io<'_> {
    /// Elements of the output (0 for updates).
    fn n(&self) -> usize {
        self.out.map_or(0, ArenaRef::len)
    }

    /// Every operand's shape.
    fn shapes(&self) -> Vec<&kiln_graph::Shape> {
        self.ins.iter().map(|t| &t.shape).collect()
    }

    /// The output.
    fn out(&self) -> TensorRef {
        self.out.expect("pure ops have an output").tensor()
    }

    /// The output followed by the operands at `operands` (an operand may repeat to fill a binding
    /// the entry point never reads).
    fn with_out(&self, operands: &[usize]) -> Vec<TensorRef> {
        let out = self.out.map(ArenaRef::tensor);
        out.into_iter()
            .chain(operands.iter().map(|&k| self.ins[k].clone()))
            .collect()
    }
}

/// The kernel for one step on an adapter with `caps`.
pub fn kernel_for(step: &Step, caps: Caps) -> Kernel {
    let io = Io {
        ins: &step.inputs,
        out: step.output.as_ref(),
    };
    let kernel = match &step.op {
        StepOp::MatMul(op) => matmul::kernel(op, &io, caps),
        StepOp::Activation(op) => activation::kernel(*op, &io),
        StepOp::Elementwise(op) => elementwise::kernel(op, &io),
        StepOp::Conv(op) => conv::kernel(op, &io),
        StepOp::Layout(op) => layout::kernel(op, &io),
        StepOp::Reduce(op) => reduce::kernel(op, &io),
        StepOp::Embedding(op) => embedding::kernel(op, &io),
        StepOp::Loss(op) => loss::kernel(op, &io),
        StepOp::Update(op) => update::kernel(op, &io, caps),
        StepOp::Schedule(op) => schedule::kernel(op, &io),
        StepOp::Recurrent(op) => recurrent::kernel(op, &io),
        StepOp::Attention(op) => attention::kernel(op, &io),
    };
    operands::through_texels(kernel, caps)
}
