//! The standard workloads: the shapes of the seed programs, on synthetic data of the right kind.

use kiln::graph::{schedule, Backend, Graph, PersistentId, PersistentKind, PersistentSpec, Plan, Shape};
use kiln::prelude::*;

/// A training workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Dense(784→128, relu) → Dense(10, softmax), sparse categorical cross-entropy, batch 128.
    Mlp,
    /// The seed-004 CNN on 64×64×3 images, five sigmoid outputs, binary cross-entropy, batch 32.
    Cnn,
    /// Embedding(1000, 64) over 20 tokens → GlobalAveragePooling1D → Dense(5, sigmoid), batch 32.
    Embed,
    /// The residual CNN of `examples/residual_cnn.rs` on 28×28×1 images: Conv2D(32, 3, same) → BN →
    /// ReLU, a residual block of two such convolutions joined by Add → ReLU, MaxPooling2D,
    /// Conv2D(64, 3, same) → BN → ReLU, GlobalAveragePooling2D, Dense(10, softmax); batch 32.
    Resnet,
    /// LSTM(64) → Dense(4, softmax) on sequences of 100 steps × 6 channels (BasicMotions' shape),
    /// sparse categorical cross-entropy, batch 16; the recurrence runs as one fused step.
    Lstm,
    /// The same LSTM with Keras' `unroll=True`: every time step built into the graph.
    LstmUnrolled,
    /// GRU(64) (`reset_after`) → Dense(4, softmax), as [`Workload::Lstm`]; one fused step.
    Gru,
    /// The same GRU unrolled.
    GruUnrolled,
    /// The Transformer classifier of `examples/transformer_timeseries.rs` on sequences of 24 steps
    /// × 1 channel (ItalyPowerDemand's shape): Dense(16), two encoder blocks of
    /// MultiHeadAttention(2 heads, key_dim 16, dropout 0.1) with Add + LayerNormalization and a
    /// Conv1D feed-forward, GlobalAveragePooling1D, Dense(32, relu), Dense(2, softmax); batch 16.
    Transformer,
    /// The same classifier on sequences of 256 steps: attention's scores, `[16, 2, 256, 256]` per
    /// layer, outweigh everything else.
    TransformerLong,
}

impl Workload {
    pub const ALL: [Workload; 10] = [
        Workload::Mlp,
        Workload::Cnn,
        Workload::Embed,
        Workload::Resnet,
        Workload::Lstm,
        Workload::LstmUnrolled,
        Workload::Gru,
        Workload::GruUnrolled,
        Workload::Transformer,
        Workload::TransformerLong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Mlp => "mlp",
            Workload::Cnn => "cnn",
            Workload::Embed => "embed",
            Workload::Resnet => "resnet",
            Workload::Lstm => "lstm",
            Workload::LstmUnrolled => "lstm_unrolled",
            Workload::Gru => "gru",
            Workload::GruUnrolled => "gru_unrolled",
            Workload::Transformer => "transformer",
            Workload::TransformerLong => "transformer_long",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Training batch size.
    pub fn batch(self) -> usize {
        match self {
            Workload::Mlp => 128,
            Workload::Cnn | Workload::Embed | Workload::Resnet => 32,
            Workload::Lstm
            | Workload::LstmUnrolled
            | Workload::Gru
            | Workload::GruUnrolled
            | Workload::Transformer
            | Workload::TransformerLong => 16,
        }
    }

    /// Steps per sequence of the transformer workloads.
    fn steps(self) -> usize {
        if self == Workload::TransformerLong {
            256
        } else {
            24
        }
    }

    /// The uncompiled model, seeded.
    pub fn model(self) -> Result<Model> {
        let stack = match self {
            Workload::Mlp => Sequential::new()
                .add(Dense::new(128).activation(Activation::Relu).input_dim(784))
                .add(Dense::new(10).activation(Activation::Softmax)),
            Workload::Cnn => Sequential::new()
                .add(
                    Conv2D::new(32, (3, 3))
                        .activation(Activation::Relu)
                        .input_shape([64, 64, 3]),
                )
                .add(MaxPooling2D::new((2, 2)))
                .add(Conv2D::new(64, (3, 3)).activation(Activation::Relu))
                .add(MaxPooling2D::new((2, 2)))
                .add(Flatten::new())
                .add(Dense::new(128).activation(Activation::Relu))
                .add(Dense::new(5).activation(Activation::Sigmoid)),
            Workload::Embed => Sequential::new()
                .add(Embedding::new(1000, 64).input_length(20))
                .add(GlobalAveragePooling1D::new())
                .add(Dense::new(5).activation(Activation::Sigmoid)),
            Workload::Resnet => return residual_cnn(),
            Workload::Transformer | Workload::TransformerLong => return transformer(self.steps()),
            Workload::Lstm | Workload::LstmUnrolled => Sequential::new()
                .input_shape([100, 6])
                .add(LSTM::new(64).unroll(self == Workload::LstmUnrolled))
                .add(Dense::new(4).activation(Activation::Softmax)),
            Workload::Gru | Workload::GruUnrolled => Sequential::new()
                .input_shape([100, 6])
                .add(GRU::new(64).unroll(self == Workload::GruUnrolled))
                .add(Dense::new(4).activation(Activation::Softmax)),
        };
        Ok(stack.seed(1).into_model())
    }

    fn loss(self) -> Loss {
        match self {
            Workload::Mlp
            | Workload::Resnet
            | Workload::Lstm
            | Workload::LstmUnrolled
            | Workload::Gru
            | Workload::GruUnrolled
            | Workload::Transformer
            | Workload::TransformerLong => Loss::SparseCategoricalCrossentropy,
            Workload::Cnn | Workload::Embed => Loss::BinaryCrossentropy,
        }
    }

    /// The model compiled on `device` with Adam (Keras defaults) and the workload's loss.
    pub fn compile(self, device: &dyn Backend) -> Result<Model> {
        self.compile_with(device, DTypePolicy::Float32)
    }

    /// [`Workload::compile`] under a precision `policy`.
    pub fn compile_with(self, device: &dyn Backend, policy: DTypePolicy) -> Result<Model> {
        let mut model = self.model()?;
        model.set_dtype_policy(policy);
        model.compile(device, Optimizer::adam(), self.loss(), &[])?;
        Ok(model)
    }

    /// `samples` synthetic samples and labels of the workload's shapes.
    pub fn data(self, samples: usize, seed: u64) -> (Tensor, Tensor) {
        match self {
            Workload::Mlp => (
                random::uniform([samples, 784], seed),
                random::integers(0, 10, [samples], seed + 1),
            ),
            Workload::Cnn => (
                random::uniform([samples, 64, 64, 3], seed),
                random::integers(0, 2, [samples, 5], seed + 1),
            ),
            Workload::Embed => (
                random::integers(0, 1000, [samples, 20], seed),
                random::integers(0, 2, [samples, 5], seed + 1),
            ),
            Workload::Resnet => (
                random::uniform([samples, 28, 28, 1], seed),
                random::integers(0, 10, [samples], seed + 1),
            ),
            Workload::Lstm | Workload::LstmUnrolled | Workload::Gru | Workload::GruUnrolled => (
                random::normal([samples, 100, 6], seed),
                random::integers(0, 4, [samples], seed + 1),
            ),
            Workload::Transformer | Workload::TransformerLong => (
                random::normal([samples, self.steps(), 1], seed),
                random::integers(0, 2, [samples], seed + 1),
            ),
        }
    }
}

/// The models of the examples, built by the examples' own functions.
#[path = "../../../examples/residual_cnn.rs"]
#[allow(dead_code)]
mod residual_example;
#[path = "../../../examples/transformer_timeseries.rs"]
#[allow(dead_code)]
mod transformer_example;

/// The residual CNN of [`Workload::Resnet`]: Keras' BatchNormalization momentum, seed 1.
fn residual_cnn() -> Result<Model> {
    residual_example::residual_cnn(0.99, 1)
}

/// The Transformer classifier of [`Workload::Transformer`] on `steps` × 1 sequences, 2 classes,
/// seed 1.
fn transformer(steps: usize) -> Result<Model> {
    transformer_example::transformer(steps, 1, 2, 0.1, 1)
}

/// Square matmul `[n, n] · [n, n]` of two persistent tensors: the plan, and the specs of a session
/// to run it in.
pub fn matmul_plan(n: usize) -> Result<(Plan, Vec<PersistentSpec>)> {
    let spec = |name: &str| PersistentSpec {
        name: name.into(),
        shape: Shape::new([n, n]),
        kind: PersistentKind::Parameter,
    };
    let specs = vec![spec("a"), spec("b")];
    let mut g = Graph::new(specs.clone());
    let (a, b) = (g.persistent(PersistentId(0)), g.persistent(PersistentId(1)));
    let c = g.matmul(a, b, false, false)?;
    Ok((schedule(&g, &[c])?, specs))
}
