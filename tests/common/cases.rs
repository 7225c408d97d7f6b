//! The op test table: every differentiable op and every metric op, on shapes that include 1,
//! primes and sizes that do not divide the workgroup. Parity (CPU vs GPU) and the f64 gradient
//! check both read it.
#![allow(dead_code)]

use kiln::graph::{
    ActivationOp, Attend, AttentionOp, ConvOp, ElementwiseOp, EmbeddingOp, Epilogue, Graph, LayoutOp, LossOp, NodeId,
    ReduceOp, Result, ScheduleOp, Shape, Window2d,
};
use kiln::nn::{GRU, LSTM};
use rand::rngs::StdRng;
use rand::RngExt;

/// How a test input is filled.
#[derive(Clone, Copy, Debug)]
pub enum Values {
    /// ±[0.1, 1]: away from the kinks of relu and abs.
    Signed,
    /// Class indices in 0..classes.
    Labels(usize),
    /// Rows (last axis) of probabilities summing to 1.
    Distribution,
    /// Targets in [0, 1].
    Unit,
    /// ±[60, 90]: extreme logits.
    Extreme,
    /// ±[0.1, 8], at least 0.1 from ±3 and ±6: across the pieces of hard_sigmoid and relu6.
    Wide,
    /// [0.2, 2]: strictly positive, for logarithms.
    Positive,
    /// Every element `v` (a step counter, say).
    Const(f32),
    /// Exactly these values (a schedule's table).
    Table(&'static [f32]),
}

impl Values {
    pub fn fill(self, shape: &Shape, rng: &mut StdRng) -> Vec<f32> {
        let n = shape.numel();
        match self {
            Values::Signed => (0..n)
                .map(|_| {
                    let m: f32 = rng.random_range(0.1..1.0);
                    if rng.random_bool(0.5) {
                        m
                    } else {
                        -m
                    }
                })
                .collect(),
            Values::Labels(c) => (0..n).map(|_| rng.random_range(0..c) as f32).collect(),
            Values::Distribution => {
                let cols = shape.last();
                let mut v: Vec<f32> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
                for row in v.chunks_mut(cols) {
                    let s: f32 = row.iter().sum();
                    row.iter_mut().for_each(|x| *x /= s);
                }
                v
            }
            Values::Unit => (0..n).map(|_| rng.random_range(0.0..1.0)).collect(),
            Values::Positive => (0..n).map(|_| rng.random_range(0.2..2.0)).collect(),
            Values::Const(v) => vec![v; n],
            Values::Table(t) => t.to_vec(),
            Values::Wide => (0..n)
                .map(|_| loop {
                    let m: f32 = rng.random_range(0.1..8.0);
                    if (m - 3.0).abs() > 0.1 && (m - 6.0).abs() > 0.1 {
                        break if rng.random_bool(0.5) { m } else { -m };
                    }
                })
                .collect(),
            Values::Extreme => (0..n)
                .map(|_| {
                    let m: f32 = rng.random_range(60.0..90.0);
                    if rng.random_bool(0.5) {
                        m
                    } else {
                        -m
                    }
                })
                .collect(),
        }
    }
}

/// One row of the table.
pub struct Case {
    pub name: &'static str,
    /// Input shapes and value kinds for size `s`.
    pub inputs: fn(usize) -> Vec<(Shape, Values)>,
    /// Builds the op under test on the input nodes.
    pub build: fn(&mut Graph, &[NodeId]) -> Result<NodeId>,
    /// Which inputs to differentiate with respect to (empty: forward only).
    pub diff: &'static [usize],
}

/// Sizes every case runs at: 1, a small prime, and sizes around the 64- and 256-wide workgroups.
pub const SIZES: [usize; 5] = [1, 7, 63, 65, 257];

fn mm(ta: bool, tb: bool) -> fn(&mut Graph, &[NodeId]) -> Result<NodeId> {
    match (ta, tb) {
        (false, false) => |g, x| g.matmul(x[0], x[1], false, false),
        (true, false) => |g, x| g.matmul(x[0], x[1], true, false),
        (false, true) => |g, x| g.matmul(x[0], x[1], false, true),
        (true, true) => |g, x| g.matmul(x[0], x[1], true, true),
    }
}

fn dense(g: &mut Graph, x: &[NodeId], act: Option<ActivationOp>) -> Result<NodeId> {
    let z = g.matmul(x[0], x[1], false, false)?;
    let z = g.bias_add(z, x[2])?;
    match act {
        Some(op) => g.unary(op, z),
        None => Ok(z),
    }
}

fn s(d: &[usize]) -> Shape {
    Shape::new(d.to_vec())
}

/// A row for a learning-rate schedule `op` on the step counter `n` (forward only).
macro_rules! schedule_case {
    ($name:expr, $op:expr) => {
        Case {
            name: $name,
            inputs: |n| vec![(s(&[1]), Values::Const(n as f32))],
            build: |g, x| g.push($op, &[x[0]]),
            diff: &[],
        }
    };
}

/// A row for `act(x · w + b)` with the activation fused into the matmul epilogue.
macro_rules! dense_case {
    ($name:expr, $op:expr, $diff:expr) => {
        Case {
            name: $name,
            inputs: |n| vec![(s(&[n, 13]), Signed), (s(&[13, 6]), Signed), (s(&[6]), Signed)],
            build: |g, x| dense(g, x, Some($op)),
            diff: $diff,
        }
    };
}

/// A row for the elementwise activation `op` on `[n, 3]` inputs of kind `values`, differentiated.
macro_rules! activation_case {
    ($name:expr, $values:expr, $op:expr) => {
        Case {
            name: $name,
            inputs: |n| vec![(s(&[n, 3]), $values)],
            build: |g, x| g.unary($op, x[0]),
            diff: &[0],
        }
    };
}

/// A row for a recurrent layer over `[n, 21, 2]` sequences, 3 units with `gates` gate blocks and
/// a bias of shape `bias`, differentiated in the input and every weight (gradients through time).
macro_rules! recurrent_case {
    ($name:expr, $gates:expr, $bias:expr, $layer:expr) => {
        Case {
            name: $name,
            inputs: |n| {
                vec![
                    (s(&[n, 21, 2]), Signed),
                    (s(&[2, 3 * $gates]), Signed),
                    (s(&[3, 3 * $gates]), Signed),
                    (s($bias), Signed),
                ]
            },
            build: |g, x| {
                let layer = kiln::nn::layers::recurrent::Wrapped::from($layer);
                let y = kiln::nn::layers::recurrent::recurrence(g, &layer, x[0], x[1], x[2], Some(x[3]));
                Ok(y.expect("the recurrence builds"))
            },
            diff: &[0, 1, 2, 3],
        }
    };
}

/// A row for a recurrent layer started from an initial state (`[n, 3]` tensors after the four
/// inputs of [`recurrent_case`], one per entry of `diff` past the fourth: the LSTM's h₀ and c₀,
/// the GRU's h₀) over `[n, 21, 2]` sequences: its output (flattened) joined with
/// its final state, differentiated in everything, so gradients reach the initial state through
/// every step and the final `c` carries a gradient of its own.
macro_rules! recurrent_state_case {
    ($name:expr, $gates:expr, $bias:expr, $diff:expr, $layer:expr) => {
        Case {
            name: $name,
            inputs: |n| {
                let mut inputs = vec![
                    (s(&[n, 21, 2]), Signed),
                    (s(&[2, 3 * $gates]), Signed),
                    (s(&[3, 3 * $gates]), Signed),
                    (s($bias), Signed),
                ];
                inputs.extend((4..$diff.len()).map(|_| (s(&[n, 3]), Signed)));
                inputs
            },
            build: |g, x| {
                let layer = kiln::nn::layers::recurrent::Wrapped::from($layer);
                let (y, last) = kiln::nn::layers::recurrent::recurrence_with_state(
                    g,
                    &layer,
                    x[0],
                    &x[4..],
                    [x[1], x[2]],
                    Some(x[3]),
                )
                .expect("the recurrence builds");
                let n = g.shape(y)?.dims()[0];
                let width = g.shape(y)?.numel() / n;
                let mut parts = vec![g.reshape(y, [n, width])?];
                parts.extend(last);
                g.concat(&parts, 1)
            },
            diff: $diff,
        }
    };
}

/// The fused attention op with these settings, on the case's inputs `q, k, v[, keep][, draw]`.
macro_rules! attention {
    ($scale:expr, $causal:expr, $masked:expr, $rate:expr) => {
        |g, x| {
            let attend = Attend {
                scale: $scale,
                causal: $causal,
                masked: $masked,
                rate: $rate,
                seed: 5,
            };
            g.push(AttentionOp::Attention(attend), x)
        }
    };
}

/// The table.
pub fn cases() -> Vec<Case> {
    use Values::*;
    vec![
        Case {
            name: "matmul",
            inputs: |n| vec![(s(&[n, 17]), Signed), (s(&[17, n + 2]), Signed)],
            build: mm(false, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul (a batch of 5 products)",
            inputs: |n| vec![(s(&[5, n, 7]), Signed), (s(&[5, 7, 6]), Signed)],
            build: mm(false, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_ta (a batch of 3)",
            inputs: |n| vec![(s(&[3, 7, n]), Signed), (s(&[3, 7, 5]), Signed)],
            build: mm(true, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_tb (a batch of 4: attention's q·kᵀ)",
            inputs: |n| vec![(s(&[4, n, 8]), Signed), (s(&[4, n + 2, 8]), Signed)],
            build: mm(false, true),
            diff: &[0, 1],
        },
        Case {
            name: "swap_axes (1 and 2 of [n, 3, 5, 2])",
            inputs: |n| vec![(s(&[n, 3, 5, 2]), Signed)],
            build: |g, x| g.push(LayoutOp::SwapAxes { axis: 1 }, &[x[0]]),
            diff: &[0],
        },
        Case {
            name: "swap_axes (the last two of [n, 7])",
            inputs: |n| vec![(s(&[n, 7]), Signed)],
            build: |g, x| g.push(LayoutOp::SwapAxes { axis: 0 }, &[x[0]]),
            diff: &[0],
        },
        Case {
            name: "matmul_ta",
            inputs: |n| vec![(s(&[13, n]), Signed), (s(&[13, 9]), Signed)],
            build: mm(true, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_tb",
            inputs: |n| vec![(s(&[n, 13]), Signed), (s(&[5, 13]), Signed)],
            build: mm(false, true),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_ta_tb",
            inputs: |n| vec![(s(&[11, n]), Signed), (s(&[6, 11]), Signed)],
            build: mm(true, true),
            diff: &[0, 1],
        },
        // Shapes whose contiguous dimensions divide by 4 take the vec4 (and, on 8-wide subgroups, the
        // subgroup) kernels.
        Case {
            name: "matmul (vec4 shapes)",
            inputs: |n| vec![(s(&[n, 16]), Signed), (s(&[16, 12]), Signed)],
            build: mm(false, false),
            diff: &[0, 1],
        },
        // An RGB im2col: rows of A that do not start on whole texels (k = 27), vec4 columns; its
        // weight gradient is the transposed case with m = 27 and k = n.
        Case {
            name: "matmul (27-wide rows, 32 columns)",
            inputs: |n| vec![(s(&[n, 27]), Signed), (s(&[27, 32]), Signed)],
            build: mm(false, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_ta (vec4 shapes)",
            inputs: |n| vec![(s(&[8, 4 * n]), Signed), (s(&[8, 12]), Signed)],
            build: mm(true, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_ta (subgroup shapes, several workgroups)",
            inputs: |n| vec![(s(&[36, 4 * n]), Signed), (s(&[36, 40]), Signed)],
            build: mm(true, false),
            diff: &[0, 1],
        },
        Case {
            name: "matmul_tb (vec4 shapes)",
            inputs: |n| vec![(s(&[n, 8]), Signed), (s(&[20, 8]), Signed)],
            build: mm(false, true),
            diff: &[0, 1],
        },
        Case {
            name: "dense_relu (vec4 shapes)",
            inputs: |n| vec![(s(&[n, 16]), Signed), (s(&[16, 36]), Signed), (s(&[36]), Signed)],
            build: |g, x| dense(g, x, Some(ActivationOp::Relu)),
            diff: &[0, 1, 2],
        },
        Case {
            name: "dense_linear (matmul + bias fused)",
            inputs: |n| vec![(s(&[n, 13]), Signed), (s(&[13, 10]), Signed), (s(&[10]), Signed)],
            build: |g, x| dense(g, x, None),
            diff: &[0, 1, 2],
        },
        Case {
            name: "dense_relu (matmul + bias + relu fused)",
            inputs: |n| vec![(s(&[n, 13]), Signed), (s(&[13, 10]), Signed), (s(&[10]), Signed)],
            build: |g, x| dense(g, x, Some(ActivationOp::Relu)),
            diff: &[0, 1, 2],
        },
        Case {
            name: "dense_sigmoid (matmul + bias + sigmoid fused)",
            inputs: |n| vec![(s(&[n, 13]), Signed), (s(&[13, 3]), Signed), (s(&[3]), Signed)],
            build: |g, x| dense(g, x, Some(ActivationOp::Sigmoid)),
            diff: &[0, 1, 2],
        },
        // The other epilogues whose gradient reads y, fused in training graphs too (gelu, softplus
        // and silu read their input, which keeps the product apart in training: tests/parity.rs
        // checks their inference-only fusion).
        dense_case!("dense_tanh (tanh fused)", ActivationOp::Tanh, &[0, 1, 2]),
        dense_case!("dense_selu (selu fused)", ActivationOp::Selu, &[0, 1, 2]),
        dense_case!(
            "dense_hard_sigmoid (hard_sigmoid fused)",
            ActivationOp::HardSigmoid,
            &[0, 1, 2]
        ),
        dense_case!("dense_relu6 (relu6 fused)", ActivationOp::Relu6, &[0, 1, 2]),
        dense_case!(
            "dense_leaky_relu (leaky_relu fused, its slope a pipeline constant)",
            ActivationOp::LeakyRelu { slope: 0.3 },
            &[0, 1, 2]
        ),
        dense_case!(
            "dense_elu (elu fused, its alpha a pipeline constant)",
            ActivationOp::Elu { alpha: 0.6 },
            &[0, 1, 2]
        ),
        Case {
            name: "matmul_relu (no bias, relu fused)",
            inputs: |n| vec![(s(&[n, 5]), Signed), (s(&[5, 4]), Signed)],
            build: |g, x| {
                let z = g.matmul(x[0], x[1], false, false)?;
                g.unary(ActivationOp::Relu, z)
            },
            diff: &[0, 1],
        },
        Case {
            name: "bias_add",
            inputs: |n| vec![(s(&[n, 5]), Signed), (s(&[5]), Signed)],
            build: |g, x| g.bias_add(x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "relu",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.unary(ActivationOp::Relu, x[0]),
            diff: &[0],
        },
        Case {
            name: "sigmoid",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.unary(ActivationOp::Sigmoid, x[0]),
            diff: &[0],
        },
        Case {
            name: "softmax",
            inputs: |n| vec![(s(&[n, 10]), Signed)],
            build: |g, x| g.unary(ActivationOp::Softmax, x[0]),
            diff: &[0],
        },
        Case {
            name: "add",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.add(x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "sub",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.binary(ElementwiseOp::Sub, x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "mul",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.binary(ElementwiseOp::Mul, x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "im2col 3×3 valid, 3 channels",
            inputs: |n| vec![(s(&[n, 5, 6, 3]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::Im2Col {
                        window: Window2d::new(5, 6, 3, (3, 3), (1, 1), false)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "im2col 1×3 causal (left padding only), stride 2, 6 channels",
            inputs: |n| vec![(s(&[n, 1, 9, 6]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::Im2Col {
                        window: Window2d::left_padded(1, 9, 6, (1, 3), (1, 2), 2)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "dilated window columns (1×3 taps 2 apart, causal: a dilated Conv1D's)",
            inputs: |n| vec![(s(&[n, 1, 9, 5]), Signed)],
            build: |g, x| {
                use kiln::nn::layers::{dilated::Dilated, Padding};
                let d = Dilated::new("case", (1, 9, 5), (1, 3), (1, 2), Padding::Causal).expect("geometry");
                Ok(d.columns(g, x[0]).expect("columns build"))
            },
            diff: &[0],
        },
        Case {
            name: "dilated window columns (3×2 taps 2×3 apart, same)",
            inputs: |n| vec![(s(&[n, 6, 7, 3]), Signed)],
            build: |g, x| {
                use kiln::nn::layers::{dilated::Dilated, Padding};
                let d = Dilated::new("case", (6, 7, 3), (3, 2), (2, 3), Padding::Same).expect("geometry");
                Ok(d.columns(g, x[0]).expect("columns build"))
            },
            diff: &[0],
        },
        Case {
            name: "max_pool 1×3 over 1×10 rows, stride 2, same (a 1-D pool)",
            inputs: |n| vec![(s(&[n, 1, 10, 4]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::MaxPool2d {
                        window: Window2d::new(1, 10, 4, (1, 3), (1, 2), true)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "im2col 3×2 stride 2 same, 5 channels",
            inputs: |n| vec![(s(&[n, 5, 7, 5]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::Im2Col {
                        window: Window2d::new(5, 7, 5, (3, 2), (2, 2), true)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "im2col 7×7 same over a 4×5 input (kernel larger than the input), 1 channel",
            inputs: |n| vec![(s(&[n, 4, 5, 1]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::Im2Col {
                        window: Window2d::new(4, 5, 1, (7, 7), (1, 1), true)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "im2col 1×1 stride 3",
            inputs: |n| vec![(s(&[n, 7, 7, 2]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::Im2Col {
                        window: Window2d::new(7, 7, 2, (1, 1), (3, 3), false)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "im2col 3×3 same, 64 channels",
            inputs: |n| vec![(s(&[n, 4, 4, 64]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::Im2Col {
                        window: Window2d::new(4, 4, 64, (3, 3), (1, 1), true)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "max_pool2d 2×2, 64 channels",
            inputs: |n| vec![(s(&[n, 4, 4, 64]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::MaxPool2d {
                        window: Window2d::new(4, 4, 64, (2, 2), (2, 2), false)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "max_pool2d 2×2",
            inputs: |n| vec![(s(&[n, 6, 5, 3]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::MaxPool2d {
                        window: Window2d::new(6, 5, 3, (2, 2), (2, 2), false)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "max_pool2d 2×2 same (padded, a row and column past the last window)",
            inputs: |n| vec![(s(&[n, 5, 5, 2]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::MaxPool2d {
                        window: Window2d::new(5, 5, 2, (2, 2), (2, 2), true)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "max_pool2d 2×2 stride 3 (gaps between windows)",
            inputs: |n| vec![(s(&[n, 7, 8, 3]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::MaxPool2d {
                        window: Window2d::new(7, 8, 3, (2, 2), (3, 3), false)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "max_pool2d 3×3 stride 2 same",
            inputs: |n| vec![(s(&[n, 5, 5, 1]), Signed)],
            build: |g, x| {
                g.unary(
                    ConvOp::MaxPool2d {
                        window: Window2d::new(5, 5, 1, (3, 3), (2, 2), true)?,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "reshape",
            inputs: |n| vec![(s(&[n, 2, 3]), Signed)],
            build: |g, x| {
                let rows = g.shape(x[0])?.dims()[0];
                g.unary(
                    LayoutOp::Reshape {
                        shape: Shape::new([rows, 6]),
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        Case {
            name: "dropout",
            inputs: |n| vec![(s(&[n, 5]), Signed), (s(&[3]), Labels(1000))],
            build: |g, x| g.push(ElementwiseOp::Dropout { rate: 0.3, seed: 7 }, &[x[0], x[1]]),
            diff: &[0],
        },
        Case {
            // The draw's values added to x, so the row has a gradient to check (x's).
            name: "uniform",
            inputs: |n| vec![(s(&[n, 5]), Signed), (s(&[3]), Labels(1000))],
            build: |g, x| {
                let op = ElementwiseOp::Uniform {
                    low: -1.5,
                    high: 2.5,
                    seed: 11,
                    shape: g.shape(x[0])?.clone(),
                };
                let u = g.push(op, &[x[1]])?;
                g.add(x[0], u)
            },
            diff: &[0],
        },
        Case {
            // x, and x scaled by powers of two (exact on every backend) into f16's subnormals
            // (2⁻¹⁴·x) and down to its last bits (2⁻²⁰·x), each rounded.
            name: "round_f16",
            inputs: |n| vec![(s(&[n, 5]), Wide)],
            build: |g, x| {
                let mut sum = g.unary(ElementwiseOp::RoundF16, x[0])?;
                for factor in [1.0 / 16384.0, 1.0 / 1_048_576.0] {
                    let scaled = g.scale(x[0], factor)?;
                    let rounded = g.unary(ElementwiseOp::RoundF16, scaled)?;
                    sum = g.add(sum, rounded)?;
                }
                Ok(sum)
            },
            diff: &[0],
        },
        Case {
            // Its output counted as 0 everywhere on finite inputs; the overflow row is below.
            name: "non_finite",
            inputs: |n| vec![(s(&[n, 3]), Extreme)],
            build: |g, x| g.unary(ElementwiseOp::NonFinite, x[0]),
            diff: &[],
        },
        Case {
            name: "scale",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.scale(x[0], -2.5),
            diff: &[0],
        },
        Case {
            name: "sum_axis0",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.unary(ReduceOp::Sum { axis: 0 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "sum_axis1",
            inputs: |n| vec![(s(&[n, 3, 2]), Signed)],
            build: |g, x| g.unary(ReduceOp::Sum { axis: 1 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "mean_axis0",
            inputs: |n| vec![(s(&[n, 4]), Signed)],
            build: |g, x| g.unary(ReduceOp::Mean { axis: 0 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "mean_axis1",
            inputs: |n| vec![(s(&[n, 4]), Signed)],
            build: |g, x| g.unary(ReduceOp::Mean { axis: 1 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "broadcast",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.unary(ReduceOp::Broadcast { axis: 1, size: 4 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "softmax_cross_entropy (sparse)",
            inputs: |n| vec![(s(&[n, 10]), Signed), (s(&[n]), Labels(10))],
            build: |g, x| g.binary(LossOp::SoftmaxCrossEntropy { sparse: true }, x[0], x[1]),
            diff: &[0],
        },
        Case {
            name: "softmax_cross_entropy (one-hot)",
            inputs: |n| vec![(s(&[n, 6]), Signed), (s(&[n, 6]), Distribution)],
            build: |g, x| g.binary(LossOp::SoftmaxCrossEntropy { sparse: false }, x[0], x[1]),
            diff: &[0],
        },
        Case {
            name: "softmax_cross_entropy (logits ±90)",
            inputs: |n| vec![(s(&[n, 5]), Extreme), (s(&[n]), Labels(5))],
            build: |g, x| g.binary(LossOp::SoftmaxCrossEntropy { sparse: true }, x[0], x[1]),
            diff: &[0],
        },
        Case {
            name: "sigmoid_binary_cross_entropy",
            inputs: |n| vec![(s(&[n, 4]), Signed), (s(&[n, 4]), Unit)],
            build: |g, x| g.binary(LossOp::SigmoidBinaryCrossEntropy, x[0], x[1]),
            diff: &[0],
        },
        Case {
            name: "sigmoid_binary_cross_entropy (logits ±90)",
            inputs: |n| vec![(s(&[n, 4]), Extreme), (s(&[n, 4]), Unit)],
            build: |g, x| g.binary(LossOp::SigmoidBinaryCrossEntropy, x[0], x[1]),
            diff: &[0],
        },
        Case {
            name: "squared_error",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.binary(LossOp::SquaredError, x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "absolute_error",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.binary(LossOp::AbsoluteError, x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "argmax",
            inputs: |n| vec![(s(&[n, 10]), Signed)],
            build: |g, x| g.unary(ReduceOp::ArgMax, x[0]),
            diff: &[],
        },
        Case {
            name: "sign",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.unary(ElementwiseOp::Sign, x[0]),
            diff: &[],
        },
        Case {
            name: "equal",
            inputs: |n| vec![(s(&[n]), Labels(3)), (s(&[n]), Labels(3))],
            build: |g, x| g.binary(ElementwiseOp::Equal, x[0], x[1]),
            diff: &[],
        },
        Case {
            name: "count_above (ROC counts)",
            inputs: |n| vec![(s(&[n, 3]), Unit), (s(&[n, 3]), Unit)],
            build: |g, x| g.binary(ReduceOp::CountAbove { thresholds: 37 }, x[0], x[1]),
            diff: &[],
        },
        Case {
            name: "greater",
            inputs: |n| vec![(s(&[n, 3]), Unit)],
            build: |g, x| g.unary(ElementwiseOp::Greater { threshold: 0.5 }, x[0]),
            diff: &[],
        },
        // Huber against a zero target, so |d| ∈ [0.1, 1] stays clear of the kink at δ: wholly past
        // it, then wholly inside it.
        Case {
            name: "huber (linear part)",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| {
                let zero = g.fill(0.0, g.shape(x[0])?.clone());
                g.binary(LossOp::Huber { delta: 0.05 }, x[0], zero)
            },
            diff: &[0],
        },
        Case {
            name: "huber (quadratic part)",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| {
                let zero = g.fill(0.0, g.shape(x[0])?.clone());
                g.binary(LossOp::Huber { delta: 2.0 }, x[0], zero)
            },
            diff: &[0],
        },
        Case {
            name: "log_cosh",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.binary(LossOp::LogCosh, x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "log_cosh (differences ±90)",
            inputs: |n| vec![(s(&[n, 3]), Extreme), (s(&[n, 3]), Signed)],
            build: |g, x| g.binary(LossOp::LogCosh, x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "pow",
            inputs: |n| vec![(s(&[n, 3]), Positive)],
            build: |g, x| g.unary(ElementwiseOp::Pow { exponent: 2.5 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "pow (square root)",
            inputs: |n| vec![(s(&[n, 3]), Positive)],
            build: |g, x| g.unary(ElementwiseOp::Pow { exponent: 0.5 }, x[0]),
            diff: &[0],
        },
        // Gradient clipping's pieces: a squared norm, a rescale, and the factor on both sides of
        // its limit (the kink itself is left out of the gradient check).
        Case {
            name: "dot",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Signed)],
            build: |g, x| g.push(ReduceOp::Dot, &[x[0], x[1]]),
            diff: &[0, 1],
        },
        Case {
            name: "scale_by_scalar",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[1]), Signed)],
            build: |g, x| g.push(ElementwiseOp::ScaleByScalar, &[x[0], x[1]]),
            diff: &[0, 1],
        },
        Case {
            name: "clip_norm_factor (past the limit)",
            inputs: |_| vec![(s(&[1]), Positive)],
            build: |g, x| g.unary(ElementwiseOp::ClipNormFactor { max_norm: 0.3 }, x[0]),
            diff: &[0],
        },
        Case {
            name: "clip_norm_factor (within the limit)",
            inputs: |_| vec![(s(&[1]), Positive)],
            build: |g, x| g.unary(ElementwiseOp::ClipNormFactor { max_norm: 2.0 }, x[0]),
            diff: &[0],
        },
        // Learning-rate schedules at steps 1, 7, 63, 65 and 257: before, inside and past each
        // schedule's decay, warmup, boundaries and restarts.
        schedule_case!(
            "exponential_decay",
            ScheduleOp::ExponentialDecay {
                initial: 0.1,
                decay_steps: 10.0,
                decay_rate: 0.8,
                staircase: false,
            }
        ),
        schedule_case!(
            "exponential_decay (staircase)",
            ScheduleOp::ExponentialDecay {
                initial: 0.1,
                decay_steps: 10.0,
                decay_rate: 0.8,
                staircase: true,
            }
        ),
        Case {
            name: "piecewise_constant",
            inputs: |n| {
                vec![
                    (s(&[1]), Const(n as f32)),
                    (s(&[7]), Table(&[5.0, 62.0, 64.0, 1.0, 0.5, 0.25, 0.1])),
                ]
            },
            build: |g, x| g.push(ScheduleOp::PiecewiseConstant { pieces: 4 }, &[x[0], x[1]]),
            diff: &[],
        },
        schedule_case!(
            "polynomial_decay",
            ScheduleOp::PolynomialDecay {
                initial: 0.1,
                decay_steps: 100.0,
                end: 0.001,
                power: 2.0,
                cycle: false,
            }
        ),
        schedule_case!(
            "polynomial_decay (cycle)",
            ScheduleOp::PolynomialDecay {
                initial: 0.1,
                decay_steps: 30.0,
                end: 0.001,
                power: 0.5,
                cycle: true,
            }
        ),
        schedule_case!(
            "inverse_time_decay",
            ScheduleOp::InverseTimeDecay {
                initial: 0.1,
                decay_steps: 10.0,
                decay_rate: 0.5,
                staircase: true,
            }
        ),
        schedule_case!(
            "cosine_decay (warmup)",
            ScheduleOp::CosineDecay {
                initial: 0.0,
                decay_steps: 100.0,
                alpha: 0.1,
                warmup_target: 0.1,
                warmup_steps: 10.0,
            }
        ),
        schedule_case!(
            "cosine_decay_restarts",
            ScheduleOp::CosineDecayRestarts {
                initial: 0.1,
                first_decay_steps: 20.0,
                t_mul: 2.0,
                m_mul: 0.5,
                alpha: 0.01,
            }
        ),
        schedule_case!(
            "cosine_decay_restarts (fixed periods)",
            ScheduleOp::CosineDecayRestarts {
                initial: 0.1,
                first_decay_steps: 20.0,
                t_mul: 1.0,
                m_mul: 0.9,
                alpha: 0.0,
            }
        ),
        Case {
            name: "tanh",
            inputs: |n| vec![(s(&[n, 3]), Signed)],
            build: |g, x| g.unary(ActivationOp::Tanh, x[0]),
            diff: &[0],
        },
        Case {
            name: "tanh (inputs ±90)",
            inputs: |n| vec![(s(&[n, 3]), Extreme)],
            build: |g, x| g.unary(ActivationOp::Tanh, x[0]),
            diff: &[0],
        },
        Case {
            name: "batch_normalization (training: batch moments, gamma, beta)",
            inputs: |n| vec![(s(&[n + 1, 5]), Wide), (s(&[5]), Positive), (s(&[5]), Signed)],
            build: |g, x| {
                use kiln::nn::layers::batch_norm::{moments, normalize};
                let (mean, variance) = moments(g, x[0]).expect("moments build");
                Ok(normalize(g, x[0], mean, variance, Some(x[1]), Some(x[2]), 1e-3).expect("normalize builds"))
            },
            diff: &[0, 1, 2],
        },
        Case {
            name: "layer_normalization (rows of 6 features, gamma, beta)",
            inputs: |n| vec![(s(&[n, 6]), Wide), (s(&[6]), Positive), (s(&[6]), Signed)],
            build: |g, x| {
                let y = kiln::nn::layers::layer_norm::normalize_rows(g, x[0], Some(x[1]), Some(x[2]), 1e-3);
                Ok(y.expect("normalize_rows builds"))
            },
            diff: &[0, 1, 2],
        },
        recurrent_case!(
            "lstm (fused, 21 steps, every step's output)",
            4,
            &[12],
            LSTM::new(3).return_sequences(true)
        ),
        recurrent_case!(
            "lstm (fused, 21 steps backwards, last output)",
            4,
            &[12],
            LSTM::new(3).go_backwards(true)
        ),
        recurrent_case!(
            "lstm (fused, 21 steps backwards, every step's output)",
            4,
            &[12],
            LSTM::new(3).go_backwards(true).return_sequences(true)
        ),
        recurrent_case!(
            "lstm unrolled (21 steps, every step's output)",
            4,
            &[12],
            LSTM::new(3).unroll(true).return_sequences(true)
        ),
        recurrent_case!(
            "lstm unrolled (21 steps backwards, last output)",
            4,
            &[12],
            LSTM::new(3).unroll(true).go_backwards(true)
        ),
        recurrent_case!(
            "gru (fused, 21 steps, every step's output)",
            3,
            &[2, 9],
            GRU::new(3).return_sequences(true)
        ),
        recurrent_case!(
            "gru (fused, 21 steps backwards, last output)",
            3,
            &[2, 9],
            GRU::new(3).go_backwards(true)
        ),
        recurrent_case!(
            "gru unrolled (reset after, 21 steps, every step's output)",
            3,
            &[2, 9],
            GRU::new(3).unroll(true).return_sequences(true)
        ),
        recurrent_case!(
            "gru (reset before, 21 steps backwards, last output)",
            3,
            &[9],
            GRU::new(3).reset_after(false).go_backwards(true)
        ),
        recurrent_state_case!(
            "lstm (fused, from h0 and c0, 21 steps, every step's output and the final h and c)",
            4,
            &[12],
            &[0, 1, 2, 3, 4, 5],
            LSTM::new(3).return_sequences(true)
        ),
        recurrent_state_case!(
            "lstm (fused, from h0 and c0, 21 steps backwards, last output and final state)",
            4,
            &[12],
            &[0, 1, 2, 3, 4, 5],
            LSTM::new(3).go_backwards(true)
        ),
        recurrent_state_case!(
            "lstm unrolled (from h0 and c0, 21 steps, last output and final state)",
            4,
            &[12],
            &[0, 1, 2, 3, 4, 5],
            LSTM::new(3).unroll(true)
        ),
        recurrent_state_case!(
            "gru (fused, from h0, 21 steps, every step's output and the final h)",
            3,
            &[2, 9],
            &[0, 1, 2, 3, 4],
            GRU::new(3).return_sequences(true)
        ),
        recurrent_state_case!(
            "gru (fused, from h0, 21 steps backwards, last output and final h)",
            3,
            &[2, 9],
            &[0, 1, 2, 3, 4],
            GRU::new(3).go_backwards(true)
        ),
        recurrent_state_case!(
            "gru (reset before, from h0, 21 steps, every step's output and final h)",
            3,
            &[9],
            &[0, 1, 2, 3, 4],
            GRU::new(3).reset_after(false).return_sequences(true)
        ),
        Case {
            name: "multi_head_attention (2 heads, causal, 5 steps of 4 features)",
            inputs: |n| {
                vec![
                    (s(&[n, 5, 4]), Signed),
                    (s(&[4, 2, 3]), Signed),
                    (s(&[2, 3]), Signed),
                    (s(&[4, 2, 3]), Signed),
                    (s(&[2, 3]), Signed),
                    (s(&[4, 2, 3]), Signed),
                    (s(&[2, 3]), Signed),
                    (s(&[2, 3, 4]), Signed),
                    (s(&[4]), Signed),
                ]
            },
            build: |g, x| {
                use kiln::nn::Layer;
                let mha = kiln::nn::MultiHeadAttention::new(2, 3).causal(true);
                let y = mha.build(g, &[x[0], x[0]], &x[1..], false).expect("attention builds");
                Ok(y.output)
            },
            diff: &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        },
        Case {
            name: "multi_head_attention (cross: 3 query steps over 7 key/value steps)",
            inputs: |n| {
                vec![
                    (s(&[n, 3, 2]), Signed),
                    (s(&[n, 7, 3]), Signed),
                    (s(&[2, 1, 2]), Signed),
                    (s(&[3, 1, 2]), Signed),
                    (s(&[3, 1, 2]), Signed),
                    (s(&[1, 2, 2]), Signed),
                ]
            },
            build: |g, x| {
                use kiln::nn::Layer;
                let mha = kiln::nn::MultiHeadAttention::new(1, 2).without_bias();
                let y = mha.build(g, &[x[0], x[1]], &x[2..], false).expect("attention builds");
                Ok(y.output)
            },
            diff: &[0, 1, 2, 3, 4, 5],
        },
        // The attention op alone: more keys (and queries) than a workgroup's 64 lanes, random
        // padding masks (rows with nothing to attend to among them), dropout, heads wider than 64.
        Case {
            name: "attention (cross: 3 queries over 67 keys, 2 heads, masked)",
            inputs: |n| {
                vec![
                    (s(&[n, 3, 2, 2]), Signed),
                    (s(&[n, 67, 2, 2]), Signed),
                    (s(&[n, 67, 2, 3]), Signed),
                    (s(&[n, 3, 67]), Labels(2)),
                ]
            },
            build: attention!(0.7, false, true, 0.0),
            diff: &[0, 1, 2],
        },
        Case {
            name: "attention (causal over 66 steps, masked, dropout 0.3)",
            inputs: |n| {
                vec![
                    (s(&[n, 66, 1, 2]), Signed),
                    (s(&[n, 66, 1, 2]), Signed),
                    (s(&[n, 66, 1, 2]), Signed),
                    (s(&[n, 66, 66]), Labels(2)),
                    (s(&[3]), Labels(1000)),
                ]
            },
            build: attention!(0.7, true, true, 0.3),
            diff: &[0, 1, 2],
        },
        Case {
            name: "attention (65-wide keys, 66-wide values, 3 queries over 4 keys)",
            inputs: |n| {
                vec![
                    (s(&[n, 3, 1, 65]), Signed),
                    (s(&[n, 4, 1, 65]), Signed),
                    (s(&[n, 4, 1, 66]), Signed),
                ]
            },
            build: attention!(0.125, false, false, 0.0),
            diff: &[0, 1, 2],
        },
        Case {
            // Widths that are multiples of 4: the GPU reads whole vec4s (keys wider than 64 too).
            name: "attention (68-wide keys, 8-wide values, masked, dropout 0.2)",
            inputs: |n| {
                vec![
                    (s(&[n, 5, 2, 68]), Signed),
                    (s(&[n, 9, 2, 68]), Signed),
                    (s(&[n, 9, 2, 8]), Signed),
                    (s(&[n, 5, 9]), Labels(2)),
                    (s(&[3]), Labels(1000)),
                ]
            },
            build: attention!(0.125, false, true, 0.2),
            diff: &[0, 1, 2],
        },
        Case {
            // Widths multiples of 4 and at most 64: the GPU's register-cached kernels, over more
            // queries and keys than a workgroup has lanes.
            name: "attention (4-wide keys, 8-wide values, causal over 66 steps, masked, dropout 0.3)",
            inputs: |n| {
                vec![
                    (s(&[n, 66, 1, 4]), Signed),
                    (s(&[n, 66, 1, 4]), Signed),
                    (s(&[n, 66, 1, 8]), Signed),
                    (s(&[n, 66, 66]), Labels(2)),
                    (s(&[3]), Labels(1000)),
                ]
            },
            build: attention!(0.5, true, true, 0.3),
            diff: &[0, 1, 2],
        },
        Case {
            name: "attention (16-wide heads, 2 heads, 5 queries over 7 keys)",
            inputs: |n| {
                vec![
                    (s(&[n, 5, 2, 16]), Signed),
                    (s(&[n, 7, 2, 16]), Signed),
                    (s(&[n, 7, 2, 16]), Signed),
                ]
            },
            build: attention!(0.25, false, false, 0.0),
            diff: &[0, 1, 2],
        },
        Case {
            // Shifts of up to a pixel either way (Signed): interpolation matrices built on the
            // device, then a batched product per axis (RandomTranslation's transform).
            name: "random_translation (reflect, bilinear; given shifts)",
            inputs: |n| vec![(s(&[n, 4, 5, 2]), Signed), (s(&[n]), Signed), (s(&[n]), Signed)],
            build: |g, x| {
                let layer = kiln::nn::RandomTranslation::new(1.0, 1.0);
                Ok(layer.translate(g, x[0], x[1], x[2]).expect("translation builds"))
            },
            diff: &[0],
        },
        Case {
            name: "random_translation (constant 0.5, nearest; given shifts)",
            inputs: |n| vec![(s(&[n, 3, 3, 1]), Signed), (s(&[n]), Signed), (s(&[n]), Signed)],
            build: |g, x| {
                let layer = kiln::nn::RandomTranslation::new(1.0, 1.0)
                    .fill_mode(kiln::nn::FillMode::Constant)
                    .fill_value(0.5)
                    .interpolation(kiln::nn::Interpolation::Nearest);
                Ok(layer.translate(g, x[0], x[1], x[2]).expect("translation builds"))
            },
            diff: &[0],
        },
        Case {
            name: "batch_normalization (inference: given statistics, no gamma or beta)",
            inputs: |n| vec![(s(&[n, 4]), Signed), (s(&[4]), Signed), (s(&[4]), Positive)],
            build: |g, x| {
                let y = kiln::nn::layers::batch_norm::normalize(g, x[0], x[1], x[2], None, None, 1e-3);
                Ok(y.expect("normalize builds"))
            },
            diff: &[0, 1, 2],
        },
        activation_case!("gelu", Wide, ActivationOp::Gelu { approximate: false }),
        activation_case!("gelu (inputs ±90)", Extreme, ActivationOp::Gelu { approximate: false }),
        activation_case!("gelu_approximate", Wide, ActivationOp::Gelu { approximate: true }),
        activation_case!(
            "gelu_approximate (inputs ±90)",
            Extreme,
            ActivationOp::Gelu { approximate: true }
        ),
        activation_case!("leaky_relu", Signed, ActivationOp::LeakyRelu { slope: 0.2 }),
        activation_case!("elu", Wide, ActivationOp::Elu { alpha: 1.0 }),
        activation_case!("elu (alpha 0.5)", Signed, ActivationOp::Elu { alpha: 0.5 }),
        activation_case!("selu", Wide, ActivationOp::Selu),
        activation_case!("softplus", Wide, ActivationOp::Softplus),
        activation_case!("softplus (inputs ±90)", Extreme, ActivationOp::Softplus),
        activation_case!("silu", Wide, ActivationOp::Silu),
        activation_case!("silu (inputs ±90)", Extreme, ActivationOp::Silu),
        activation_case!("hard_sigmoid", Wide, ActivationOp::HardSigmoid),
        activation_case!("relu6", Wide, ActivationOp::Relu6),
        Case {
            name: "div",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[n, 3]), Positive)],
            build: |g, x| g.div(x[0], x[1]),
            diff: &[0, 1],
        },
        Case {
            name: "log",
            inputs: |n| vec![(s(&[n, 3]), Positive)],
            build: |g, x| g.log(x[0]),
            diff: &[0],
        },
        // Bounds inside the values' range, so some elements pass and some are clipped on each side.
        Case {
            name: "clip",
            inputs: |n| vec![(s(&[n, 4]), Signed)],
            build: |g, x| g.clip(x[0], -0.5, 0.45),
            diff: &[0],
        },
        Case {
            name: "concat (axis 1)",
            inputs: |n| vec![(s(&[n, 2, 3]), Signed), (s(&[n, 5, 3]), Signed)],
            build: |g, x| g.push(LayoutOp::Concat { axis: 1 }, &[x[0], x[1]]),
            diff: &[0, 1],
        },
        Case {
            name: "concat (axis 0)",
            inputs: |n| vec![(s(&[n, 3]), Signed), (s(&[2, 3]), Signed)],
            build: |g, x| g.push(LayoutOp::Concat { axis: 0 }, &[x[0], x[1]]),
            diff: &[0, 1],
        },
        Case {
            name: "slice (axis 1, middle)",
            inputs: |n| vec![(s(&[n, 6, 2]), Signed)],
            build: |g, x| {
                g.unary(
                    LayoutOp::Slice {
                        axis: 1,
                        start: 2,
                        len: 3,
                    },
                    x[0],
                )
            },
            diff: &[0],
        },
        // Indices into a 9-row table; its gradient is the scatter-add `embedding_grad`.
        Case {
            name: "embedding",
            inputs: |n| vec![(s(&[9, 5]), Signed), (s(&[n, 4]), Labels(9))],
            build: |g, x| g.push(EmbeddingOp::Lookup, &[x[0], x[1]]),
            diff: &[0],
        },
        Case {
            // Seven steps (a prime), a table wider than a workgroup's row of 256 is not needed:
            // one invocation per output element.
            name: "embedding_mean",
            inputs: |n| vec![(s(&[9, 5]), Signed), (s(&[n, 7]), Labels(9))],
            build: |g, x| g.push(EmbeddingOp::LookupMean, &[x[0], x[1]]),
            diff: &[0],
        },
        Case {
            name: "fill",
            inputs: |n| vec![(s(&[n, 2]), Signed)],
            build: |g, x| {
                let shape = g.shape(x[0])?.clone();
                let f = g.fill(0.25, shape);
                g.add(f, x[0])
            },
            diff: &[0],
        },
    ]
}

/// A case built at size `n` into a graph whose outputs are `[y, loss?, grads...]`; the loss is
/// `Σ y·w` with a random weight input `w`, so every gradient element is exercised.
pub struct Built {
    pub graph: Graph,
    pub outputs: Vec<NodeId>,
    pub inputs: Vec<(String, Shape, Values)>,
    pub has_loss: bool,
}

pub fn build(case: &Case, n: usize) -> Built {
    let mut g = Graph::new(Vec::new());
    let mut inputs = Vec::new();
    let mut nodes = Vec::new();
    for (i, (shape, values)) in (case.inputs)(n).into_iter().enumerate() {
        let name = format!("x{i}");
        nodes.push(g.input(&name, shape.clone()));
        inputs.push((name, shape, values));
    }
    let y = (case.build)(&mut g, &nodes).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut outputs = vec![y];
    let has_loss = !case.diff.is_empty();
    if has_loss {
        let shape = g.shape(y).unwrap().clone();
        let w = g.input("w", shape.clone());
        inputs.push(("w".into(), shape, Values::Signed));
        let yw = g.binary(ElementwiseOp::Mul, y, w).unwrap();
        let loss = g.sum_all(yw).unwrap();
        let wrt: Vec<NodeId> = case.diff.iter().map(|&k| nodes[k]).collect();
        let grads = kiln::graph::gradients(&mut g, loss, &wrt).unwrap();
        outputs.push(loss);
        outputs.extend(grads);
    }
    let _ = Epilogue::Linear;
    Built {
        graph: g,
        outputs,
        inputs,
        has_loss,
    }
}
