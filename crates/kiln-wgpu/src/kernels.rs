//! The one table from a plan step to its kernel: shader, entry point, override constants, params,
//! bindings and grid. Entry points carry the same names as the CPU reference functions.

use kiln_graph::{Epilogue, Op, Step, TensorRef, Window2d};

use crate::shaders::*;

/// Invocations per workgroup of the 1-D kernels (`WG` in common.wgsl).
pub const WG: u32 = 256;
/// Most workgroups per grid dimension that every backend accepts.
pub const MAX_GROUPS: u32 = 65535;
/// What the adapter offers that changes which kernel a step gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Subgroup operations with subgroups of exactly 8 invocations (lavapipe on AVX2).
    pub subgroup8: bool,
    /// Most rows a texel copy may have (`TEXEL_ROW` texels each), on adapters where operands read
    /// through textures are the fast path (software rasterisers); 0 elsewhere.
    pub texel_rows: u32,
}

/// Texels per row of a texel copy (`TEXEL_ROW_SHIFT` in matmul_texel.wgsl): a tensor's floats, four
/// per rgba32float texel, wrapped at this width whatever the tensor's shape.
pub const TEXEL_ROW: u32 = 1024;

impl Caps {
    /// Whether a tensor fits a texel copy on this adapter (with the spare row a copy may add).
    fn texel_fits(self, t: &TensorRef) -> bool {
        let texels = t.len().div_ceil(4);
        self.texel_rows > 0 && texels.div_ceil(TEXEL_ROW as usize) < self.texel_rows as usize
    }
}

/// Table columns one `embedding_grad` invocation owns: it scans the indices once for all of them,
/// so fewer, wider invocations read the indices fewer times.
const EMBEDDING_GRAD_DIMS: usize = 64;

/// Everything needed to record one dispatch.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    pub overrides: Vec<(&'static str, f64)>,
    pub params: Vec<u8>,
    /// Storage bindings 1.., in order: the output (or first written operand), then the operands.
    pub bindings: Vec<TensorRef>,
    /// Operands read through texel copies (see `TEXEL_ROW`), bound as textures after the storage
    /// bindings; the session copies each into its texture right before the dispatch.
    pub texels: Vec<TensorRef>,
    pub grid: [u32; 3],
}

/// Grid for `n` invocations of a 1-D kernel, folded into y past 65535 workgroups.
pub fn grid_1d(n: usize) -> [u32; 3] {
    let groups = n.div_ceil(WG as usize).max(1);
    let x = groups.min(MAX_GROUPS as usize);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

fn bytes<T: bytemuck::Pod>(p: T) -> Vec<u8> {
    bytemuck::bytes_of(&p).to_vec()
}

/// The kernel for one step on an adapter with `caps`.
pub fn kernel_for(step: &Step, caps: Caps) -> Kernel {
    through_texels(storage_kernel_for(step, caps), caps)
}

/// On adapters where texel fetches are the fast path, a family with a texel variant reads its
/// operands (the storage bindings after the output) through texel copies instead.
fn through_texels(mut k: Kernel, caps: Caps) -> Kernel {
    let Some(variant) = k.shader.texel_variant() else {
        return k;
    };
    if k.bindings.len() < 2 || !k.bindings[1..].iter().all(|t| caps.texel_fits(t)) {
        return k;
    }
    k.shader = variant;
    k.texels = k.bindings.split_off(1);
    k
}

/// The kernel for one step, reading operands from storage buffers (matmuls and Adam choose their
/// texel kernels here already).
fn storage_kernel_for(step: &Step, caps: Caps) -> Kernel {
    let ins = &step.inputs;
    let out = step.output.clone();
    let n = out.as_ref().map_or(0, TensorRef::len);
    let with_out = |operands: &[usize]| -> Vec<TensorRef> {
        out.iter()
            .cloned()
            .chain(operands.iter().map(|&k| ins[k].clone()))
            .collect()
    };
    let ew = |entry: &'static str, operands: &[usize], m: usize, alpha: f32| Kernel {
        texels: Vec::new(),
        shader: Shader::Elementwise,
        entry,
        overrides: vec![],
        params: bytes(ElementwiseParams {
            n: n as u32,
            m: m as u32,
            alpha,
            pad: 0,
        }),
        bindings: with_out(operands),
        grid: grid_1d(n),
    };
    let act = |entry: &'static str, operands: &[usize], rows: bool| {
        let cols = ins[0].shape.last();
        let count = if rows { n / cols.max(1) } else { n };
        Kernel {
            texels: Vec::new(),
            shader: Shader::Activation,
            entry,
            overrides: vec![],
            params: bytes(ActivationParams {
                n: count as u32,
                cols: cols as u32,
                ..Default::default()
            }),
            bindings: with_out(operands),
            grid: grid_1d(count),
        }
    };
    let reduce = |entry: &'static str, (outer, len, inner): (usize, usize, usize), scale: f32, threads: usize| Kernel {
        texels: Vec::new(),
        shader: Shader::Reduce,
        entry,
        overrides: vec![],
        params: bytes(ReduceParams {
            outer: outer as u32,
            len: len as u32,
            inner: inner as u32,
            scale,
        }),
        bindings: with_out(&[0]),
        grid: grid_1d(threads),
    };
    let loss = |entry: &'static str, operands: &[usize], sparse: Option<bool>| {
        let cols = ins[0].shape.last();
        let rows = ins[0].len() / cols.max(1);
        Kernel {
            texels: Vec::new(),
            shader: Shader::Loss,
            entry,
            overrides: sparse
                .map(|s| vec![("SPARSE", f64::from(u8::from(s)))])
                .unwrap_or_default(),
            params: bytes(LossParams {
                rows: rows as u32,
                cols: cols as u32,
                n: n as u32,
                pad: 0,
            }),
            bindings: with_out(operands),
            grid: grid_1d(if sparse.is_some() { rows } else { n }),
        }
    };
    let layout = |entry: &'static str,
                  operands: &[usize],
                  (outer, len_a, len_b, inner): (usize, usize, usize, usize),
                  start: usize| Kernel {
        texels: Vec::new(),
        shader: Shader::Layout,
        entry,
        overrides: vec![],
        params: bytes(LayoutParams {
            outer: outer as u32,
            len_a: len_a as u32,
            len_b: len_b as u32,
            inner: inner as u32,
            start: start as u32,
            pad: [0; 3],
        }),
        bindings: with_out(operands),
        grid: grid_1d(n),
    };
    let embedding = |entry: &'static str,
                     operands: &[usize],
                     (positions, dim, vocab): (usize, usize, usize),
                     threads: usize| Kernel {
        texels: Vec::new(),
        shader: Shader::Embedding,
        entry,
        overrides: vec![],
        params: bytes(EmbeddingParams {
            positions: positions as u32,
            dim: dim as u32,
            vocab: vocab as u32,
            pad: 0,
        }),
        bindings: with_out(operands),
        grid: grid_1d(threads),
    };
    let conv = |entry: &'static str, operands: &[usize], w: &Window2d, images: usize| Kernel {
        texels: Vec::new(),
        shader: Shader::Conv,
        entry,
        overrides: vec![("CHANNELS4", f64::from(u8::from(w.channels.is_multiple_of(4))))],
        params: bytes(ConvParams {
            n: images as u32,
            in_h: w.in_h as u32,
            in_w: w.in_w as u32,
            channels: w.channels as u32,
            kh: w.kh as u32,
            kw: w.kw as u32,
            sh: w.sh as u32,
            sw: w.sw as u32,
            pad_top: w.pad_top as u32,
            pad_left: w.pad_left as u32,
            out_h: w.out_h as u32,
            out_w: w.out_w as u32,
        }),
        bindings: with_out(operands),
        // One invocation per pixel (an im2col row) of the output, looping over its floats.
        grid: grid_1d(
            n / if entry == "im2col" {
                w.kh * w.kw * w.channels
            } else {
                w.channels
            },
        ),
    };
    let optim = |entry: &'static str, params: OptimParams, grid: [u32; 3]| Kernel {
        texels: Vec::new(),
        shader: Shader::Optim,
        entry,
        overrides: vec![],
        params: bytes(params),
        bindings: ins.clone(),
        grid,
    };
    match &step.op {
        Op::Fill { value, .. } => ew("fill", &[], 0, *value),
        Op::Add => ew("add", &[0, 1], 0, 0.0),
        Op::Sub => ew("sub", &[0, 1], 0, 0.0),
        Op::Mul => ew("mul", &[0, 1], 0, 0.0),
        Op::Equal => ew("equal", &[0, 1], 0, 0.0),
        Op::Scale { factor } => ew("scale", &[0], 0, *factor),
        Op::Sign => ew("signum", &[0], 0, 0.0),
        Op::Greater { threshold } => ew("greater", &[0], 0, *threshold),
        Op::Im2Col { window } => conv("im2col", &[0, 0], window, ins[0].shape.dims()[0]),
        Op::Col2Im { window } => conv(
            "col2im",
            &[0, 0],
            window,
            n / (window.in_h * window.in_w * window.channels),
        ),
        Op::MaxPool2d { window } => conv("max_pool2d", &[0, 0], window, ins[0].shape.dims()[0]),
        Op::MaxPool2dGrad { window } if window.sh >= window.kh && window.sw >= window.kw => {
            let mut k = conv("max_pool2d_grad_disjoint", &[0, 1], window, ins[0].shape.dims()[0]);
            // One invocation per window (output pixel of the forward pass), not per input pixel.
            k.grid = grid_1d(ins[1].len() / window.channels);
            k
        }
        Op::MaxPool2dGrad { window } => conv("max_pool2d_grad", &[0, 1], window, ins[0].shape.dims()[0]),
        Op::Reshape { .. } => layout("copy", &[0, 0], (n, 0, 0, 0), 0),
        Op::Embedding => {
            let (vocab, dim) = (ins[0].shape.dims()[0], ins[0].shape.dims()[1]);
            embedding("embedding", &[0, 1], (ins[1].len(), dim, vocab), n)
        }
        Op::EmbeddingGrad { vocab } => {
            let dim = ins[1].shape.last();
            Kernel {
                texels: Vec::new(),
                overrides: vec![("DIMS", EMBEDDING_GRAD_DIMS as f64)],
                ..embedding(
                    "embedding_grad",
                    &[0, 1],
                    (ins[0].len(), dim, *vocab),
                    vocab * dim.div_ceil(EMBEDDING_GRAD_DIMS),
                )
            }
        }
        Op::Div => ew("div", &[0, 1], 0, 0.0),
        Op::Log => ew("ln", &[0], 0, 0.0),
        Op::Clip { min, max } => ew("clip", &[0], max.to_bits() as usize, *min),
        Op::Dropout { rate, seed } => Kernel {
            texels: Vec::new(),
            params: bytes(ElementwiseParams {
                n: n as u32,
                m: *seed,
                alpha: 1.0 / (1.0 - rate),
                pad: kiln_graph::dropout_threshold(*rate),
            }),
            ..ew("dropout", &[0, 1], 0, 0.0)
        },
        Op::Concat { axis } => {
            let (outer, len_a, inner) = ins[0].shape.split_at_axis(*axis);
            layout("concat", &[0, 1], (outer, len_a, ins[1].shape.dims()[*axis], inner), 0)
        }
        Op::Slice { axis, start, len } => {
            let (outer, total, inner) = ins[0].shape.split_at_axis(*axis);
            layout("slice", &[0, 0], (outer, total, *len, inner), *start)
        }
        Op::BiasAdd => ew("bias_add", &[0, 1], ins[1].len(), 0.0),
        Op::Relu => act("relu", &[0], false),
        Op::Sigmoid => act("sigmoid", &[0], false),
        Op::ReluGrad => act("relu_grad", &[0, 1], false),
        Op::SigmoidGrad => act("sigmoid_grad", &[0, 1], false),
        Op::Softmax => act("softmax", &[0], true),
        Op::SoftmaxGrad => act("softmax_grad", &[0, 1], true),
        Op::Sum { axis } => reduce("sum", ins[0].shape.split_at_axis(*axis), 1.0, n),
        Op::Mean { axis } => {
            let dims = ins[0].shape.split_at_axis(*axis);
            reduce("sum", dims, 1.0 / dims.1 as f32, n)
        }
        Op::Broadcast { axis, .. } => {
            let dims = out
                .as_ref()
                .expect("broadcast has an output")
                .shape
                .split_at_axis(*axis);
            reduce("broadcast", dims, 1.0, n)
        }
        Op::ArgMax => {
            let len = ins[0].shape.last();
            reduce("argmax", (n, len, 1), 1.0, n)
        }
        Op::CountAbove { thresholds } => {
            let d = ins[0].shape.dims();
            Kernel {
                texels: Vec::new(),
                bindings: with_out(&[0, 1]),
                ..reduce("count_above", (d[0], d[1], *thresholds), 1.0, n)
            }
        }
        Op::SoftmaxCrossEntropy { sparse } => loss("softmax_cross_entropy", &[0, 1], Some(*sparse)),
        Op::SoftmaxCrossEntropyGrad { sparse } => loss("softmax_cross_entropy_grad", &[0, 1, 2], Some(*sparse)),
        Op::SigmoidBinaryCrossEntropy => loss("sigmoid_binary_cross_entropy", &[0, 1], None),
        Op::SigmoidBinaryCrossEntropyGrad => loss("sigmoid_binary_cross_entropy_grad", &[0, 1, 2], None),
        Op::SquaredError => loss("squared_error", &[0, 1], None),
        Op::AbsoluteError => loss("absolute_error", &[0, 1], None),
        Op::MatMul {
            trans_a,
            trans_b,
            bias,
            epilogue,
        } => {
            let (a, b) = (ins[0].shape.dims(), ins[1].shape.dims());
            let (m, k) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
            let nn = if *trans_b { b[0] } else { b[1] };
            let act = match epilogue {
                Epilogue::Linear => 0.0,
                Epilogue::Relu => 1.0,
                Epilogue::Sigmoid => 2.0,
            };
            // Without a bias, binding 4 still needs a buffer: A is bound there and never read.
            let bias_ref = if *bias { ins[2].clone() } else { ins[0].clone() };
            // The widest kernel the shapes allow: 16-byte loads need the contiguous dimensions to
            // divide by 4; the subgroup kernel needs plain layouts and 8-wide subgroups.
            let vec4 = nn % 4 == 0
                && match (*trans_a, *trans_b) {
                    (true, false) => m % 4 == 0,
                    (true, true) => false,
                    _ => k % 4 == 0,
                };
            let subgroup_grid = [(nn as u32).div_ceil(32), (m as u32).div_ceil(64), 1];
            if caps.subgroup8 && caps.texel_fits(&ins[0]) && caps.texel_fits(&ins[1]) {
                // Operands through texel copies: the vec4 kernels where rows of A and B fall on
                // whole texels, the scalar one for every other shape.
                // Rows of the stored A on whole texels; if not, the vec4 kernels read A float by float.
                let a_aligned = if *trans_a { m % 4 == 0 } else { k % 4 == 0 };
                let (shader, entry, grid) = match (*trans_a, *trans_b) {
                    _ if nn % 4 != 0 || (*trans_b && k % 4 != 0) || (*trans_a && *trans_b) => (
                        Shader::MatmulTexelScalar,
                        "matmul_texel_scalar",
                        [(nn as u32).div_ceil(8), (m as u32).div_ceil(64), 1],
                    ),
                    (false, false) => (Shader::MatmulTexel, "matmul_texel", subgroup_grid),
                    (true, false) => (Shader::MatmulTexel, "matmul_texel_tn", subgroup_grid),
                    _ => (Shader::MatmulTexel, "matmul_texel_nt", subgroup_grid),
                };
                let out = out.expect("matmul has an output");
                // Without a bias, binding 2 still needs a buffer: C is bound there and never read.
                let bias_ref = if *bias { ins[2].clone() } else { out.clone() };
                let mut overrides = vec![("HAS_BIAS", f64::from(u8::from(*bias))), ("ACT", act)];
                if shader == Shader::MatmulTexelScalar {
                    overrides.push(("TRANS_A", f64::from(u8::from(*trans_a))));
                    overrides.push(("TRANS_B", f64::from(u8::from(*trans_b))));
                } else {
                    overrides.push(("A_ALIGNED", f64::from(u8::from(a_aligned))));
                }
                return Kernel {
                    shader,
                    entry,
                    overrides,
                    params: bytes(MatmulParams {
                        m: m as u32,
                        k: k as u32,
                        n: nn as u32,
                        pad: 0,
                    }),
                    bindings: vec![out, bias_ref],
                    texels: vec![ins[0].clone(), ins[1].clone()],
                    grid,
                };
            }
            let (shader, entry, grid) = if vec4 && caps.subgroup8 && !*trans_a && !*trans_b {
                (Shader::MatmulSubgroup, "matmul_subgroup", subgroup_grid)
            } else if vec4 && caps.subgroup8 && *trans_a && !*trans_b && k % 4 == 0 {
                (Shader::MatmulSubgroup, "matmul_subgroup_tn", subgroup_grid)
            } else if vec4 {
                (
                    Shader::MatmulVec4,
                    "matmul_vec4",
                    [(nn as u32).div_ceil(32), (m as u32).div_ceil(32), 1],
                )
            } else {
                (
                    Shader::Matmul,
                    "matmul",
                    [(nn as u32).div_ceil(32), (m as u32).div_ceil(32), 1],
                )
            };
            Kernel {
                texels: Vec::new(),
                shader,
                entry,
                overrides: {
                    let mut o = vec![("HAS_BIAS", f64::from(u8::from(*bias))), ("ACT", act)];
                    if shader != Shader::MatmulSubgroup {
                        o.push(("TRANS_A", f64::from(u8::from(*trans_a))));
                        o.push(("TRANS_B", f64::from(u8::from(*trans_b))));
                    }
                    o
                },
                params: bytes(MatmulParams {
                    m: m as u32,
                    k: k as u32,
                    n: nn as u32,
                    pad: 0,
                }),
                bindings: vec![
                    out.expect("matmul has an output"),
                    ins[0].clone(),
                    ins[1].clone(),
                    bias_ref,
                ],
                grid,
            }
        }
        Op::AdamUpdate {
            lr,
            beta1,
            beta2,
            epsilon,
        } => {
            let params = OptimParams {
                n: ins[0].len() as u32,
                lr: *lr,
                beta1: *beta1,
                beta2: *beta2,
                epsilon: *epsilon,
                ..Default::default()
            };
            if !ins[..4].iter().all(|t| caps.texel_fits(t)) {
                return optim("adam_update", params, grid_1d(ins[0].len()));
            }
            // Parameter, moments and gradient through texel copies, a texel per invocation.
            Kernel {
                shader: Shader::OptimTexel,
                entry: "adam_update_texel",
                overrides: vec![],
                params: bytes(params),
                bindings: vec![ins[0].clone(), ins[1].clone(), ins[2].clone(), ins[4].clone()],
                texels: ins[..4].to_vec(),
                grid: grid_1d(ins[0].len().div_ceil(4)),
            }
        }
        Op::SgdUpdate { lr, momentum, nesterov } => optim(
            "sgd_update",
            OptimParams {
                n: ins[0].len() as u32,
                nesterov: u32::from(*nesterov),
                lr: *lr,
                momentum: *momentum,
                ..Default::default()
            },
            grid_1d(ins[0].len()),
        ),
        Op::AccumulateSum if ins[0].len() == 1 => optim(
            "accumulate_sum",
            OptimParams {
                n: ins[1].len() as u32,
                ..Default::default()
            },
            [1, 1, 1],
        ),
        Op::AccumulateSum => optim(
            "accumulate_rows",
            OptimParams {
                n: ins[1].len() as u32,
                width: ins[0].len() as u32,
                ..Default::default()
            },
            grid_1d(ins[0].len()),
        ),
        Op::Input { .. } | Op::Persistent { .. } | Op::Constant { .. } => unreachable!("leaves are not steps"),
    }
}
