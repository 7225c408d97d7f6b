//! The op registry: every operation a graph can hold, with its shape rule and validation.
//!
//! Every `match` on [`Op`] in the workspace is exhaustive, so adding a variant makes the compiler list
//! each place (autodiff, both executors, the kernel table) that must learn it.

use crate::error::shapes_list;
use crate::{Error, Result, Shape};

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
}

/// Declaration of a persistent tensor, shared by every plan of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistentSpec {
    /// Path-like name, e.g. `dense_1/kernel` or `dense_1/kernel/adam_m`.
    pub name: String,
    pub shape: Shape,
    pub kind: PersistentKind,
}

/// Where a 2-D window (convolution kernel or pooling window) goes over an NHWC image: the input's
/// height, width and channels, the window and stride, the padding before the first row and
/// column, and the output's height and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Window2d {
    /// The geometry of a `kh × kw` window with strides `(sh, sw)` over `in_h × in_w × channels`,
    /// `same` padding (output `ceil(in / stride)`, padding split as TensorFlow does) or `valid` (no
    /// padding; the window must fit).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_h: usize,
        in_w: usize,
        channels: usize,
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        same: bool,
    ) -> Result<Self> {
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(Error::invalid("window", "kernel and stride sizes must be at least 1"));
        }
        let (out_h, out_w, pad_top, pad_left) = if same {
            let (oh, ow) = (in_h.div_ceil(sh), in_w.div_ceil(sw));
            let pad_h = ((oh - 1) * sh + kh).saturating_sub(in_h);
            let pad_w = ((ow - 1) * sw + kw).saturating_sub(in_w);
            (oh, ow, pad_h / 2, pad_w / 2)
        } else {
            if kh > in_h || kw > in_w {
                return Err(Error::shape(
                    "window",
                    format!("a {kh}×{kw} window over a {in_h}×{in_w} input with valid padding"),
                    "a window no larger than the input (or padding \"same\")",
                ));
            }
            ((in_h - kh) / sh + 1, (in_w - kw) / sw + 1, 0, 0)
        };
        Ok(Window2d {
            in_h,
            in_w,
            channels,
            kh,
            kw,
            sh,
            sw,
            pad_top,
            pad_left,
            out_h,
            out_w,
        })
    }
}

/// Activation fused into a matmul epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    Linear,
    Relu,
    Sigmoid,
}

/// One operation. Leaves (`Input`, `Persistent`, `Fill`) take no operands; effect ops (`AdamUpdate`,
/// `SgdUpdate`, `AccumulateSum`) have no output and write some of their operands in place.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A tensor uploaded by the host before every run (a batch of x, labels, the step counter).
    Input { name: String, shape: Shape },
    /// A tensor that lives across runs.
    Persistent { id: PersistentId, shape: Shape },
    /// A tensor with every element equal to `value`.
    Fill { value: f32, shape: Shape },
    /// Fixed values (class weights of a loss, say), uploaded once when a plan is loaded.
    Constant { data: std::sync::Arc<[f32]>, shape: Shape },

    /// `C = op(A) · op(B)` on 2-D operands, `op` transposing where asked; the scheduler may fuse a
    /// bias (third operand, `[n]`) and an activation into it.
    MatMul {
        trans_a: bool,
        trans_b: bool,
        bias: bool,
        epilogue: Epilogue,
    },
    /// `x[..., n] + b[n]`.
    BiasAdd,

    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
    /// `dy · [y > 0]`, operands `(y, dy)` where `y = relu(x)`.
    ReluGrad,
    /// `dy · y · (1 - y)`, operands `(y, dy)` where `y = sigmoid(x)`.
    SigmoidGrad,
    /// `y · (dy - Σ dy·y)` over the last axis, operands `(y, dy)` where `y = softmax(x)`.
    SoftmaxGrad,

    /// Elementwise `a + b` (same shapes).
    Add,
    /// Elementwise `a - b`.
    Sub,
    /// Elementwise `a · b`.
    Mul,
    /// `s · x`.
    Scale { factor: f32 },
    /// `sign(x)` in {-1, 0, 1}.
    Sign,
    /// `1` where `a == b`, else `0`.
    Equal,
    /// `1` where `x > threshold`, else `0`.
    Greater { threshold: f32 },
    /// Rows of a table picked by index: operands `(table [v, d], indices [..])` (indices as f32
    /// integers), output `[.., d]`.
    Embedding,
    /// The table gradient of [`Op::Embedding`]: operands `(indices [..], dy [.., d])`, output
    /// `[vocab, d]` where row `v` sums the `dy` rows whose index is `v` (a deterministic
    /// scatter-add).
    EmbeddingGrad { vocab: usize },
    /// Windows of an NHWC image as rows (im2col): operand `x [n, in_h, in_w, c]`, output
    /// `[n·out_h·out_w, kh·kw·c]`, zeros where a window hangs over the padding.
    Im2Col { window: Window2d },
    /// The adjoint of [`Op::Im2Col`]: operand `cols [n·out_h·out_w, kh·kw·c]`, output
    /// `[n, in_h, in_w, c]` where each pixel sums the column entries it was copied to.
    Col2Im { window: Window2d },
    /// Max over each window: operand `x [n, in_h, in_w, c]`, output `[n, out_h, out_w, c]`;
    /// padding never wins.
    MaxPool2d { window: Window2d },
    /// Gradient of [`Op::MaxPool2d`]: operands `(x, dy)`, output shaped like `x`; each window's
    /// gradient goes to its first maximum in row-major window order.
    MaxPool2dGrad { window: Window2d },
    /// The same values under another shape with as many elements.
    Reshape { shape: Shape },
    /// Elementwise `a / b`.
    Div,
    /// Natural logarithm (the caller keeps the operand positive, e.g. with `Clip`).
    Log,
    /// `x` clamped to `[min, max]`.
    Clip { min: f32, max: f32 },
    /// Inverted dropout: operands `(x, step [1])`; keeps element `i` with probability `1 - rate`,
    /// scaled by `1 / (1 - rate)`, and zeroes the rest. The mask is a hash of `(seed, step, i)`
    /// ([`dropout_keeps`]): the CPU and the GPU drop the same elements, every step draws a new
    /// mask, and the backward pass (this same op on `dy`) recomputes the forward's mask.
    Dropout { rate: f32, seed: u32 },

    /// `a` and `b` joined along `axis` (every other dimension equal).
    Concat { axis: usize },
    /// `len` entries of `x` along `axis`, from `start` (the adjoint of `Concat`).
    Slice { axis: usize, start: usize, len: usize },

    /// Sum over one axis, which is removed.
    Sum { axis: usize },
    /// Mean over one axis, which is removed.
    Mean { axis: usize },
    /// Repeats `x` `size` times along a new axis inserted at `axis` (the adjoint of `Sum`).
    Broadcast { axis: usize, size: usize },
    /// Index of the largest element over the last axis (first one on ties), as f32.
    ArgMax,

    /// Cross-entropy of `softmax(logits)` against labels, per row: operands `(logits[.., C], labels)`
    /// with labels `[..]` class indices (`sparse`) or `[.., C]` probabilities.
    SoftmaxCrossEntropy { sparse: bool },
    /// `(softmax(logits) - onehot(labels)) · g`, operands `(logits, labels, g[..])`.
    SoftmaxCrossEntropyGrad { sparse: bool },
    /// Binary cross-entropy of `sigmoid(logits)` against targets in [0, 1], elementwise.
    SigmoidBinaryCrossEntropy,
    /// `(sigmoid(logits) - t) · g`, operands `(logits, t, g)`.
    SigmoidBinaryCrossEntropyGrad,
    /// `(a - b)²` elementwise.
    SquaredError,
    /// `|a - b|` elementwise.
    AbsoluteError,

    /// Adam in Keras' form, in place on `(param, m, v)`; operands `(param, m, v, grad, step[1])`
    /// where `step` is the 1-based update count.
    AdamUpdate {
        lr: f32,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
    /// SGD with (optionally Nesterov) momentum, in place on `(param, velocity)`; operands
    /// `(param, velocity, grad)`.
    SgdUpdate { lr: f32, momentum: f32, nesterov: bool },
    /// `acc[j] += Σ_r x[r·m + j]` where `m` is the accumulator's element count (a scalar
    /// accumulator sums all of `x`), in place on `acc`; operands `(acc, x)`.
    AccumulateSum,
    /// ROC counts over `thresholds` thresholds ([`roc_threshold`]): operands `(scores [r, k], labels
    /// [r, k])`, output `[2, k, thresholds]` holding, per label and threshold, how many positive
    /// (label > 0.5) and how many negative samples score above it.
    CountAbove { thresholds: usize },
}

impl Op {
    /// Short name used in labels, errors and kernel lookups.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Persistent { .. } => "persistent",
            Op::Fill { .. } => "fill",
            Op::Constant { .. } => "constant",
            Op::MatMul { .. } => "matmul",
            Op::BiasAdd => "bias_add",
            Op::Relu => "relu",
            Op::Sigmoid => "sigmoid",
            Op::Softmax => "softmax",
            Op::ReluGrad => "relu_grad",
            Op::SigmoidGrad => "sigmoid_grad",
            Op::SoftmaxGrad => "softmax_grad",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Scale { .. } => "scale",
            Op::Sign => "sign",
            Op::Equal => "equal",
            Op::Greater { .. } => "greater",
            Op::Embedding => "embedding",
            Op::EmbeddingGrad { .. } => "embedding_grad",
            Op::Im2Col { .. } => "im2col",
            Op::Col2Im { .. } => "col2im",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::MaxPool2dGrad { .. } => "max_pool2d_grad",
            Op::Reshape { .. } => "reshape",
            Op::Div => "div",
            Op::Log => "log",
            Op::Clip { .. } => "clip",
            Op::Dropout { .. } => "dropout",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Sum { .. } => "sum",
            Op::Mean { .. } => "mean",
            Op::Broadcast { .. } => "broadcast",
            Op::ArgMax => "argmax",
            Op::SoftmaxCrossEntropy { .. } => "softmax_cross_entropy",
            Op::SoftmaxCrossEntropyGrad { .. } => "softmax_cross_entropy_grad",
            Op::SigmoidBinaryCrossEntropy => "sigmoid_binary_cross_entropy",
            Op::SigmoidBinaryCrossEntropyGrad => "sigmoid_binary_cross_entropy_grad",
            Op::SquaredError => "squared_error",
            Op::AbsoluteError => "absolute_error",
            Op::AdamUpdate { .. } => "adam_update",
            Op::SgdUpdate { .. } => "sgd_update",
            Op::AccumulateSum => "accumulate_sum",
            Op::CountAbove { .. } => "count_above",
        }
    }

    /// Number of operands the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input { .. } | Op::Persistent { .. } | Op::Fill { .. } | Op::Constant { .. } => 0,
            Op::MatMul { bias, .. } => 2 + usize::from(*bias),
            Op::Relu
            | Op::Sigmoid
            | Op::Softmax
            | Op::Scale { .. }
            | Op::Sign
            | Op::Greater { .. }
            | Op::Log
            | Op::Clip { .. }
            | Op::Im2Col { .. }
            | Op::Col2Im { .. }
            | Op::MaxPool2d { .. }
            | Op::Reshape { .. }
            | Op::Slice { .. }
            | Op::Sum { .. }
            | Op::Mean { .. }
            | Op::Broadcast { .. }
            | Op::ArgMax => 1,
            Op::BiasAdd
            | Op::ReluGrad
            | Op::SigmoidGrad
            | Op::SoftmaxGrad
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Concat { .. }
            | Op::Equal
            | Op::SoftmaxCrossEntropy { .. }
            | Op::SigmoidBinaryCrossEntropy
            | Op::SquaredError
            | Op::AbsoluteError
            | Op::AccumulateSum
            | Op::Embedding
            | Op::EmbeddingGrad { .. }
            | Op::MaxPool2dGrad { .. }
            | Op::Dropout { .. }
            | Op::CountAbove { .. } => 2,
            Op::SoftmaxCrossEntropyGrad { .. } | Op::SigmoidBinaryCrossEntropyGrad | Op::SgdUpdate { .. } => 3,
            Op::AdamUpdate { .. } => 5,
        }
    }

    /// Operand positions the op writes in place; empty for pure ops.
    pub fn mutated_operands(&self) -> &'static [usize] {
        match self {
            Op::AdamUpdate { .. } => &[0, 1, 2],
            Op::SgdUpdate { .. } => &[0, 1],
            Op::AccumulateSum => &[0],
            Op::Input { .. }
            | Op::Persistent { .. }
            | Op::Fill { .. }
            | Op::Constant { .. }
            | Op::MatMul { .. }
            | Op::BiasAdd
            | Op::Relu
            | Op::Sigmoid
            | Op::Softmax
            | Op::ReluGrad
            | Op::SigmoidGrad
            | Op::SoftmaxGrad
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Scale { .. }
            | Op::Sign
            | Op::Equal
            | Op::Greater { .. }
            | Op::Div
            | Op::Log
            | Op::Clip { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Sum { .. }
            | Op::Mean { .. }
            | Op::Broadcast { .. }
            | Op::ArgMax
            | Op::SoftmaxCrossEntropy { .. }
            | Op::SoftmaxCrossEntropyGrad { .. }
            | Op::SigmoidBinaryCrossEntropy
            | Op::SigmoidBinaryCrossEntropyGrad
            | Op::SquaredError
            | Op::AbsoluteError
            | Op::Embedding
            | Op::EmbeddingGrad { .. }
            | Op::Im2Col { .. }
            | Op::Col2Im { .. }
            | Op::MaxPool2d { .. }
            | Op::MaxPool2dGrad { .. }
            | Op::Reshape { .. }
            | Op::Dropout { .. }
            | Op::CountAbove { .. } => &[],
        }
    }

    /// True for ops that write operands instead of producing an output.
    pub fn is_effect(&self) -> bool {
        !self.mutated_operands().is_empty()
    }

    /// The output shape for these operand shapes, `None` for effect ops, or an error naming the op
    /// and the shapes it was given.
    pub fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        if s.len() != self.arity() {
            return Err(Error::invalid(
                name,
                format!("takes {} operands, got {}", self.arity(), s.len()),
            ));
        }
        let same = |a: &Shape, b: &Shape| -> Result<()> {
            if a == b {
                Ok(())
            } else {
                Err(Error::shape(name, shapes_list(&[a, b]), "identical shapes"))
            }
        };
        let axis_ok = |x: &Shape, axis: usize| -> Result<()> {
            if axis < x.rank() {
                Ok(())
            } else {
                Err(Error::shape(
                    name,
                    format!("axis {axis} of {x}"),
                    format!("an axis below {}", x.rank()),
                ))
            }
        };
        let out = match self {
            Op::Input { shape, .. }
            | Op::Persistent { shape, .. }
            | Op::Fill { shape, .. }
            | Op::Constant { shape, .. } => shape.clone(),
            Op::MatMul {
                trans_a, trans_b, bias, ..
            } => {
                let (a, b) = (s[0], s[1]);
                if a.rank() != 2 || b.rank() != 2 {
                    return Err(Error::shape(name, shapes_list(&[a, b]), "two 2-D operands"));
                }
                let (m, ka) = if *trans_a { (a.0[1], a.0[0]) } else { (a.0[0], a.0[1]) };
                let (kb, n) = if *trans_b { (b.0[1], b.0[0]) } else { (b.0[0], b.0[1]) };
                if ka != kb {
                    return Err(Error::shape(
                        name,
                        format!(
                            "{a}{} · {b}{}",
                            if *trans_a { "ᵀ" } else { "" },
                            if *trans_b { "ᵀ" } else { "" }
                        ),
                        format!("inner dimensions to agree ({ka} vs {kb})"),
                    ));
                }
                if *bias && s[2].0 != [n] {
                    return Err(Error::shape(name, format!("bias {}", s[2]), format!("[{n}]")));
                }
                Shape::new([m, n])
            }
            Op::BiasAdd => {
                let (x, b) = (s[0], s[1]);
                if x.rank() == 0 || b.0 != [x.last()] {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[x, b]),
                        format!("x [.., n] and bias [{}]", x.last()),
                    ));
                }
                x.clone()
            }
            Op::Relu | Op::Sigmoid | Op::Scale { .. } | Op::Sign | Op::Greater { .. } | Op::Log | Op::Clip { .. } => {
                s[0].clone()
            }
            Op::Dropout { rate, .. } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(Error::invalid(name, format!("rate {rate} is not in [0, 1)")));
                }
                if s[1].numel() != 1 {
                    return Err(Error::shape(name, format!("step {}", s[1]), "[1]"));
                }
                s[0].clone()
            }
            Op::Concat { axis } => {
                let (a, b) = (s[0], s[1]);
                axis_ok(a, *axis)?;
                if a.rank() != b.rank() || a.without_axis(*axis) != b.without_axis(*axis) {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[a, b]),
                        format!("shapes equal except along axis {axis}"),
                    ));
                }
                let mut d = a.0.clone();
                d[*axis] += b.0[*axis];
                Shape(d)
            }
            Op::Slice { axis, start, len } => {
                axis_ok(s[0], *axis)?;
                if start + len > s[0].0[*axis] {
                    return Err(Error::shape(
                        name,
                        format!("{start}..{} of axis {axis} of {}", start + len, s[0]),
                        "a range inside the axis",
                    ));
                }
                let mut d = s[0].0.clone();
                d[*axis] = *len;
                Shape(d)
            }
            Op::Softmax => {
                if s[0].rank() == 0 {
                    return Err(Error::shape(name, s[0].to_string(), "at least one axis"));
                }
                s[0].clone()
            }
            Op::ReluGrad
            | Op::SigmoidGrad
            | Op::SoftmaxGrad
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Equal
            | Op::SigmoidBinaryCrossEntropy
            | Op::SquaredError
            | Op::AbsoluteError => {
                same(s[0], s[1])?;
                s[0].clone()
            }
            Op::Sum { axis } | Op::Mean { axis } => {
                axis_ok(s[0], *axis)?;
                s[0].without_axis(*axis)
            }
            Op::Broadcast { axis, size } => {
                if *axis > s[0].rank() {
                    return Err(Error::shape(
                        name,
                        format!("axis {axis} of {}", s[0]),
                        "an axis at most the rank",
                    ));
                }
                s[0].with_axis(*axis, *size)
            }
            Op::ArgMax => {
                if s[0].rank() == 0 {
                    return Err(Error::shape(name, s[0].to_string(), "at least one axis"));
                }
                s[0].without_axis(s[0].rank() - 1)
            }
            Op::SoftmaxCrossEntropy { sparse } | Op::SoftmaxCrossEntropyGrad { sparse } => {
                let (logits, labels) = (s[0], s[1]);
                if logits.rank() == 0 {
                    return Err(Error::shape(name, logits.to_string(), "logits [.., classes]"));
                }
                let rows = logits.without_axis(logits.rank() - 1);
                if *sparse && *labels != rows {
                    return Err(Error::shape(
                        name,
                        format!("logits {logits}, labels {labels}"),
                        format!("one integer label per row: {rows}"),
                    ));
                }
                if !*sparse && labels != logits {
                    return Err(Error::shape(
                        name,
                        format!("logits {logits}, labels {labels}"),
                        format!("one-hot labels of the logits' shape {logits}"),
                    ));
                }
                if let Op::SoftmaxCrossEntropyGrad { .. } = self {
                    same(s[2], &rows)?;
                    logits.clone()
                } else {
                    rows
                }
            }
            Op::SigmoidBinaryCrossEntropyGrad => {
                same(s[0], s[1])?;
                same(s[0], s[2])?;
                s[0].clone()
            }
            Op::AdamUpdate { .. } => {
                for m in &s[1..4] {
                    same(s[0], m)?;
                }
                if s[4].numel() != 1 {
                    return Err(Error::shape(
                        name,
                        format!("step {}", s[4]),
                        "a one-element step counter",
                    ));
                }
                return Ok(None);
            }
            Op::SgdUpdate { .. } => {
                same(s[0], s[1])?;
                same(s[0], s[2])?;
                return Ok(None);
            }
            Op::AccumulateSum => {
                let m = s[0].numel();
                if m == 0 || !s[1].numel().is_multiple_of(m) {
                    return Err(Error::shape(
                        name,
                        format!("accumulator {}, values {}", s[0], s[1]),
                        "values in whole rows of the accumulator's size",
                    ));
                }
                return Ok(None);
            }
            Op::Im2Col { window: w } | Op::MaxPool2d { window: w } | Op::MaxPool2dGrad { window: w } => {
                let x = s[0];
                let d = x.dims();
                if x.rank() != 4 || d[1] != w.in_h || d[2] != w.in_w || d[3] != w.channels {
                    return Err(Error::shape(
                        name,
                        x.to_string(),
                        format!("[n, {}, {}, {}] (NHWC)", w.in_h, w.in_w, w.channels),
                    ));
                }
                match self {
                    Op::Im2Col { .. } => Shape::new([d[0] * w.out_h * w.out_w, w.kh * w.kw * w.channels]),
                    Op::MaxPool2d { .. } => Shape::new([d[0], w.out_h, w.out_w, w.channels]),
                    _ => {
                        same(s[1], &Shape::new([d[0], w.out_h, w.out_w, w.channels]))?;
                        x.clone()
                    }
                }
            }
            Op::Col2Im { window: w } => {
                let cols = s[0];
                let per = w.out_h * w.out_w;
                if cols.rank() != 2 || cols.dims()[1] != w.kh * w.kw * w.channels || !cols.dims()[0].is_multiple_of(per)
                {
                    return Err(Error::shape(
                        name,
                        cols.to_string(),
                        format!("[n·{per}, {}]", w.kh * w.kw * w.channels),
                    ));
                }
                Shape::new([cols.dims()[0] / per, w.in_h, w.in_w, w.channels])
            }
            Op::Reshape { shape } => {
                if shape.numel() != s[0].numel() {
                    return Err(Error::shape(name, format!("{} to {shape}", s[0]), "as many elements"));
                }
                shape.clone()
            }
            Op::Embedding => {
                let (table, idx) = (s[0], s[1]);
                if table.rank() != 2 {
                    return Err(Error::shape(name, format!("table {table}"), "a [vocab, dim] table"));
                }
                idx.with_axis(idx.rank(), table.dims()[1])
            }
            Op::EmbeddingGrad { vocab } => {
                let (idx, dy) = (s[0], s[1]);
                if dy.rank() != idx.rank() + 1 || dy.without_axis(dy.rank() - 1) != *idx {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[idx, dy]),
                        "dy shaped like the indices plus one axis",
                    ));
                }
                Shape::new([*vocab, dy.last()])
            }
            Op::CountAbove { thresholds } => {
                same(s[0], s[1])?;
                if s[0].rank() != 2 || *thresholds < 2 {
                    return Err(Error::shape(
                        name,
                        format!("scores {} with {thresholds} thresholds", s[0]),
                        "[rows, labels] and at least 2 thresholds",
                    ));
                }
                Shape::new([2, s[0].dims()[1], *thresholds])
            }
        };
        Ok(Some(out))
    }
}

/// A 32-bit integer hash with good avalanche (Chris Wellons' "lowbias32"); `shaders/elementwise.wgsl`
/// has the same function.
pub fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// Hashes at or above this keep their element under [`Op::Dropout`] with `rate`.
pub fn dropout_threshold(rate: f32) -> u32 {
    (f64::from(rate) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32
}

/// Whether [`Op::Dropout`] keeps element `i` at `step`: integer arithmetic only, so every backend
/// draws the same mask.
pub fn dropout_keeps(seed: u32, step: u32, i: u32, threshold: u32) -> bool {
    lowbias32(i ^ lowbias32(step ^ lowbias32(seed))) >= threshold
}

/// Threshold `t` of `n` used by [`Op::CountAbove`]: just below 0, evenly spaced inside (0, 1), and
/// just above 1, so the ROC curve runs from (1, 1) to (0, 0). Both backends compute it this way.
pub fn roc_threshold(t: usize, n: usize) -> f32 {
    if t == 0 {
        -1e-7
    } else if t + 1 == n {
        1.0 + 1e-7
    } else {
        t as f32 / (n - 1) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_keeps_about_one_minus_rate_and_draws_a_new_mask_each_step() {
        for rate in [0.1f32, 0.5, 0.8] {
            let t = dropout_threshold(rate);
            let kept = (0..100_000u32).filter(|&i| dropout_keeps(3, 1, i, t)).count() as f32 / 1e5;
            assert!((kept - (1.0 - rate)).abs() < 0.01, "rate {rate}: kept {kept}");
        }
        let t = dropout_threshold(0.5);
        let mask = |seed, step| (0..256u32).map(|i| dropout_keeps(seed, step, i, t)).collect::<Vec<_>>();
        assert_eq!(mask(3, 1), mask(3, 1));
        assert_ne!(mask(3, 1), mask(3, 2));
        assert_ne!(mask(3, 1), mask(4, 1));
        assert!((0..1000u32).all(|i| dropout_keeps(9, 9, i, dropout_threshold(0.0))));
    }
}
