//! The WGSL sources, one file per op family, and the `#[repr(C)]` twins of their `Params` structs.

use bytemuck::{Pod, Zeroable};

/// A shader family: one `.wgsl` file in `shaders/`, every forward and backward entry point together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Elementwise,
    /// elementwise.wgsl with its operands read through texel copies.
    ElementwiseTexel,
    Activation,
    /// activation.wgsl with its operands read through texel copies.
    ActivationTexel,
    Reduce,
    /// reduce.wgsl with its operands read through texel copies.
    ReduceTexel,
    Loss,
    Optim,
    /// The Adam update reading texel copies.
    OptimTexel,
    Layout,
    Embedding,
    Schedule,
    Conv,
    /// conv.wgsl with its operands read through texel copies.
    ConvTexel,
    Matmul,
    MatmulVec4,
    MatmulSubgroup,
    MatmulTexel,
    MatmulTexelScalar,
    MatmulTiled,
    Recurrent,
    Attention,
    /// attention.wgsl with its operands read through texel copies.
    AttentionTexel,
}

/// Helpers every family uses; prepended to each family's source.
pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");
/// `load_a` / `load_b` from storage buffers.
const OPERANDS_STORAGE: &str = include_str!("../../../shaders/operands_storage.wgsl");
/// `load_a` / `load_b` from texel copies.
const OPERANDS_TEXEL: &str = include_str!("../../../shaders/operands_texel.wgsl");
/// attention.wgsl's operands from storage buffers.
const ATTENTION_STORAGE: &str = include_str!("../../../shaders/attention_storage.wgsl");
/// attention.wgsl's operands from texel copies.
const ATTENTION_TEXEL: &str = include_str!("../../../shaders/attention_texel.wgsl");
/// Params of the optimizer families.
const OPTIM_COMMON: &str = include_str!("../../../shaders/optim_common.wgsl");
/// Params and epilogue overrides of every matmul family.
const MATMUL_COMMON: &str = include_str!("../../../shaders/matmul_common.wgsl");
/// The vec4 epilogue and subgroup helpers of the vec4 matmul families.
const MATMUL_VEC4_COMMON: &str = include_str!("../../../shaders/matmul_vec4_common.wgsl");

impl Shader {
    /// Every family, for validation tests.
    pub const ALL: [Shader; 23] = [
        Shader::Elementwise,
        Shader::ElementwiseTexel,
        Shader::Activation,
        Shader::ActivationTexel,
        Shader::Reduce,
        Shader::ReduceTexel,
        Shader::Loss,
        Shader::Optim,
        Shader::OptimTexel,
        Shader::Layout,
        Shader::Embedding,
        Shader::Schedule,
        Shader::Conv,
        Shader::ConvTexel,
        Shader::Matmul,
        Shader::MatmulVec4,
        Shader::MatmulSubgroup,
        Shader::MatmulTexel,
        Shader::MatmulTexelScalar,
        Shader::MatmulTiled,
        Shader::Recurrent,
        Shader::Attention,
        Shader::AttentionTexel,
    ];

    /// File name under `shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Shader::Elementwise | Shader::ElementwiseTexel => "elementwise.wgsl",
            Shader::Activation | Shader::ActivationTexel => "activation.wgsl",
            Shader::Reduce | Shader::ReduceTexel => "reduce.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::OptimTexel => "optim_texel.wgsl",
            Shader::Layout => "layout.wgsl",
            Shader::Embedding => "embedding.wgsl",
            Shader::Schedule => "schedule.wgsl",
            Shader::Conv | Shader::ConvTexel => "conv.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::MatmulVec4 => "matmul_vec4.wgsl",
            Shader::MatmulSubgroup => "matmul_subgroup.wgsl",
            Shader::MatmulTexel => "matmul_texel.wgsl",
            Shader::MatmulTexelScalar => "matmul_texel_scalar.wgsl",
            Shader::MatmulTiled => "matmul_tiled.wgsl",
            Shader::Recurrent => "recurrent.wgsl",
            Shader::Attention | Shader::AttentionTexel => "attention.wgsl",
        }
    }

    /// The family's own source, without the common prelude.
    pub fn family_source(self) -> &'static str {
        match self {
            Shader::Elementwise | Shader::ElementwiseTexel => include_str!("../../../shaders/elementwise.wgsl"),
            Shader::Activation | Shader::ActivationTexel => include_str!("../../../shaders/activation.wgsl"),
            Shader::Reduce | Shader::ReduceTexel => include_str!("../../../shaders/reduce.wgsl"),
            Shader::Loss => include_str!("../../../shaders/loss.wgsl"),
            Shader::Optim => include_str!("../../../shaders/optim.wgsl"),
            Shader::OptimTexel => include_str!("../../../shaders/optim_texel.wgsl"),
            Shader::Layout => include_str!("../../../shaders/layout.wgsl"),
            Shader::Embedding => include_str!("../../../shaders/embedding.wgsl"),
            Shader::Schedule => include_str!("../../../shaders/schedule.wgsl"),
            Shader::Conv | Shader::ConvTexel => include_str!("../../../shaders/conv.wgsl"),
            Shader::Matmul => include_str!("../../../shaders/matmul.wgsl"),
            Shader::MatmulVec4 => include_str!("../../../shaders/matmul_vec4.wgsl"),
            Shader::MatmulSubgroup => include_str!("../../../shaders/matmul_subgroup.wgsl"),
            Shader::MatmulTexel => include_str!("../../../shaders/matmul_texel.wgsl"),
            Shader::MatmulTexelScalar => include_str!("../../../shaders/matmul_texel_scalar.wgsl"),
            Shader::MatmulTiled => include_str!("../../../shaders/matmul_tiled.wgsl"),
            Shader::Recurrent => include_str!("../../../shaders/recurrent.wgsl"),
            Shader::Attention | Shader::AttentionTexel => include_str!("../../../shaders/attention.wgsl"),
        }
    }

    /// The family's prelude: how it reads operands A and B (`load_a` / `load_b`: storage buffers,
    /// or texel copies on software rasterisers), or what the vec4 matmul families share.
    pub fn prelude(self) -> &'static [&'static str] {
        match self {
            Shader::Optim | Shader::OptimTexel => &[OPTIM_COMMON],
            Shader::Matmul | Shader::MatmulTexelScalar | Shader::MatmulTiled => &[MATMUL_COMMON],
            Shader::MatmulVec4 | Shader::MatmulSubgroup | Shader::MatmulTexel => &[MATMUL_COMMON, MATMUL_VEC4_COMMON],
            Shader::Elementwise | Shader::Activation | Shader::Reduce | Shader::Conv => &[OPERANDS_STORAGE],
            Shader::ElementwiseTexel | Shader::ActivationTexel | Shader::ReduceTexel | Shader::ConvTexel => {
                &[OPERANDS_TEXEL]
            }
            Shader::Attention => &[ATTENTION_STORAGE],
            Shader::AttentionTexel => &[ATTENTION_TEXEL],
            Shader::Loss | Shader::Layout | Shader::Embedding | Shader::Schedule | Shader::Recurrent => &[],
        }
    }

    /// The same family reading its operands through texel copies, where there is one.
    pub fn texel_variant(self) -> Option<Shader> {
        match self {
            Shader::Elementwise => Some(Shader::ElementwiseTexel),
            Shader::Activation => Some(Shader::ActivationTexel),
            Shader::Reduce => Some(Shader::ReduceTexel),
            Shader::Conv => Some(Shader::ConvTexel),
            Shader::Attention => Some(Shader::AttentionTexel),
            Shader::ElementwiseTexel
            | Shader::ActivationTexel
            | Shader::ReduceTexel
            | Shader::ConvTexel
            | Shader::Loss
            | Shader::Optim
            | Shader::OptimTexel
            | Shader::Layout
            | Shader::Embedding
            | Shader::Schedule
            | Shader::Matmul
            | Shader::MatmulVec4
            | Shader::MatmulSubgroup
            | Shader::MatmulTexel
            | Shader::MatmulTexelScalar
            | Shader::MatmulTiled
            | Shader::Recurrent
            | Shader::AttentionTexel => None,
        }
    }

    /// The complete module source: the common prelude, the family's prelude, then its file.
    pub fn source(self) -> String {
        format!("{COMMON}\n{}\n{}", self.prelude().join("\n"), self.family_source())
    }

    /// Whether the family's indexing is proven in bounds by its own guards (checked by the parity
    /// tests at edge sizes), so wgpu's runtime bounds checks can be left out.
    pub fn trusted(self) -> bool {
        matches!(
            self,
            Shader::Matmul
                | Shader::MatmulVec4
                | Shader::MatmulSubgroup
                | Shader::MatmulTexel
                | Shader::MatmulTexelScalar
                | Shader::MatmulTiled
        )
    }

    /// Size in bytes of the family's `Params` struct on the host side.
    pub fn params_size(self) -> usize {
        match self {
            Shader::Elementwise | Shader::ElementwiseTexel => size_of::<ElementwiseParams>(),
            Shader::Activation | Shader::ActivationTexel => size_of::<ActivationParams>(),
            Shader::Reduce | Shader::ReduceTexel => size_of::<ReduceParams>(),
            Shader::Loss => size_of::<LossParams>(),
            Shader::Optim | Shader::OptimTexel => size_of::<OptimParams>(),
            Shader::Layout => size_of::<LayoutParams>(),
            Shader::Embedding => size_of::<EmbeddingParams>(),
            Shader::Schedule => size_of::<ScheduleParams>(),
            Shader::Conv | Shader::ConvTexel => size_of::<ConvParams>(),
            Shader::Recurrent => size_of::<RecurrentParams>(),
            Shader::Attention | Shader::AttentionTexel => size_of::<AttentionParams>(),
            Shader::Matmul
            | Shader::MatmulVec4
            | Shader::MatmulSubgroup
            | Shader::MatmulTexel
            | Shader::MatmulTexelScalar
            | Shader::MatmulTiled => size_of::<MatmulParams>(),
        }
    }
}

/// `Params` of `elementwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ElementwiseParams {
    pub n: u32,
    pub bias_len: u32,
    pub seed: u32,
    pub keep_at: u32,
    pub scalar: f32,
    pub lo: f32,
    pub hi: f32,
    pub uniform_low: f32,
    pub uniform_span: f32,
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// `Params` of `recurrent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RecurrentParams {
    pub n: u32,
    pub steps: u32,
    pub units: u32,
    /// 1: the steps are read from the last to the first; 2: the state starts from an initial
    /// state operand.
    pub flags: u32,
}

/// `Params` of `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AttentionParams {
    pub n: u32,
    pub tq: u32,
    pub tk: u32,
    pub heads: u32,
    pub d: u32,
    pub dv: u32,
    /// 1 causal, 2 masked, 4 dropout, 8 head widths that are multiples of 4, 16 rows cached in
    /// registers (those widths at most 64).
    pub flags: u32,
    pub seed: u32,
    pub scale: f32,
    pub keep_at: u32,
    pub drop_scale: f32,
    /// `n·heads·tq·tk`, the dropout tensor's elements.
    pub weights: u32,
}

/// `Params` of `activation.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ActivationParams {
    pub n: u32,
    pub cols: u32,
    pub slope: f32,
    pub alpha: f32,
}

/// `Params` of `reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ReduceParams {
    pub outer: u32,
    pub len: u32,
    pub inner: u32,
    pub scale: f32,
}

/// `Params` of `loss.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LossParams {
    pub rows: u32,
    pub cols: u32,
    pub n: u32,
    /// Huber's delta.
    pub delta: f32,
}

/// `Params` of `optim.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct OptimParams {
    pub n: u32,
    pub nesterov: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    pub momentum: f32,
    pub width: u32,
    pub weight_decay: f32,
    pub rho: f32,
    pub pad: [u32; 3],
}

/// `Params` of `schedule.wgsl`: each schedule's hyper-parameters in the fields named for them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ScheduleParams {
    pub kind: u32,
    /// `staircase` or `cycle`.
    pub flag: u32,
    pub pieces: u32,
    pub pad: u32,
    pub initial: f32,
    pub steps: f32,
    pub rate: f32,
    pub end: f32,
    pub power: f32,
    pub alpha: f32,
    pub warmup_target: f32,
    pub warmup: f32,
    pub t_mul: f32,
    pub m_mul: f32,
    pub pad2: [u32; 2],
}

/// `Params` of `layout.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LayoutParams {
    pub outer: u32,
    pub len_a: u32,
    pub len_b: u32,
    pub inner: u32,
    pub start: u32,
    pub pad: [u32; 3],
}

/// `Params` of `embedding.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EmbeddingParams {
    pub positions: u32,
    pub dim: u32,
    pub vocab: u32,
    pub steps: u32,
}

/// `Params` of `conv.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConvParams {
    pub n: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub channels: u32,
    pub kh: u32,
    pub kw: u32,
    pub sh: u32,
    pub sw: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub out_h: u32,
    pub out_w: u32,
}

/// `Params` of `matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub k: u32,
    pub n: u32,
    pub pad: u32,
}
