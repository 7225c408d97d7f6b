//! What each fuzz target does with its input. The fuzz targets call these under libFuzzer; the
//! workspace test `tests/fuzz_replay.rs` runs them on every checked-in corpus file and crash, so a
//! stable `cargo test` keeps what fuzzing found fixed. Each reader must answer `Ok` or `Err` —
//! a panic, an abort or a hang is the bug.

use std::path::Path;

/// The CSV reader, on inputs that are text.
pub fn csv(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kiln_data::parse_csv("fuzz.csv", text, "label");
    }
}

/// The IDX reader (plain and gzip).
pub fn idx(data: &[u8]) {
    let _ = kiln_data::parse_idx("fuzz.idx", data);
}

/// The NPY reader.
pub fn npy(data: &[u8]) {
    let _ = kiln_data::parse_npy("fuzz.npy", data);
}

/// `load_model` on the bytes as a model file at `scratch`, on the CPU backend.
pub fn load_model(data: &[u8], scratch: &Path) {
    std::fs::write(scratch, data).expect("scratch file");
    if let Ok(mut m) = kiln_nn::load_model(scratch, &kiln_cpu::CpuBackend) {
        // Whatever loads must run: a forward pass on one sample of zeros per input.
        let xs: Option<Vec<kiln_data::Tensor>> = m
            .input_shapes()
            .into_iter()
            .map(|shape| {
                let n: usize = shape.iter().product();
                let dims: Vec<usize> = std::iter::once(1).chain(shape).collect();
                kiln_data::Tensor::new(dims, vec![0.0; n]).ok()
            })
            .collect();
        if let Some(xs) = xs {
            let _ = m.predict(&xs, 1);
        }
    }
}

/// `load_weights` of the bytes as a weights file at `scratch` into a small dense model.
pub fn load_weights(data: &[u8], scratch: &Path) {
    use kiln_nn::{Activation, Dense, Loss, Optimizer, Sequential};
    std::fs::write(scratch, data).expect("scratch file");
    let mut m = Sequential::new()
        .add(Dense::new(3).activation(Activation::Relu).input_dim(2))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(&kiln_cpu::CpuBackend, Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .expect("a valid model");
    let _ = m.load_weights(scratch);
}

pub use description::model_description;

/// Model descriptions built through the public API from structured input (`arbitrary`): a layer
/// stack, loss, optimizer, metrics and data, each chosen by the fuzzer, then compiled, fitted,
/// evaluated and run on the CPU backend. Every stage must answer `Ok` or `Err`.
mod description {
    use arbitrary::{Arbitrary, Unstructured};
    use kiln_data::Tensor;
    use kiln_graph::{Graph, NodeId};
    use kiln_nn::layers::{LayerConfig, LayerOut, ParamDecl};
    use kiln_nn::{
        Activation, ActivationLayer, Add, Attention, Average, AveragePooling1D, AveragePooling2D, BatchNormalization,
        Bidirectional, Concatenate, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Cropping1D, Cropping2D,
        DTypePolicy, Dense, DepthwiseConv2D, Dropout, Embedding, FillMode, FitOptions, Flatten, FlipMode,
        GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, Input, Interpolation,
        Layer, LayerNormalization, Loss, LossScale, MaxPooling1D, MaxPooling2D, Maximum, Mean, Metric, Minimum, Model,
        MultiHeadAttention, Multiply, Normalization, Optimizer, PReLU, Padding, Permute, RandomFlip, RandomTranslation,
        RepeatVector, Rescaling, Reshape, SeparableConv2D, Sequential, Shared, SpatialDropout, Subtract,
        SymbolicTensor, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D, GRU, LSTM,
    };

    /// Most sizes are small, so models build and train in microseconds; a few are astronomically
    /// large, which every size check must refuse before anything is allocated. (Merely large
    /// sizes, gigabytes, would be legitimate requests and only slow the fuzzer down.)
    #[derive(Arbitrary, Debug, Clone, Copy)]
    enum Dim {
        Small(u8),
        Huge(Huge),
    }

    #[derive(Arbitrary, Debug, Clone, Copy)]
    enum Huge {
        Max,
        Pow40,
        Pow62,
    }

    impl Dim {
        fn get(self) -> usize {
            match self {
                Dim::Small(d) => (d % 17) as usize,
                Dim::Huge(Huge::Max) => usize::MAX,
                Dim::Huge(Huge::Pow40) => 1 << 40,
                Dim::Huge(Huge::Pow62) => 1 << 62,
            }
        }
    }

    #[derive(Arbitrary, Debug, Clone, Copy)]
    enum Act {
        Linear,
        Relu,
        Sigmoid,
        Softmax,
        Tanh,
        Gelu(bool),
        LeakyRelu(f32),
        Elu(f32),
        Selu,
        Softplus,
        Silu,
        HardSigmoid,
        Relu6,
    }

    impl From<Act> for Activation {
        fn from(a: Act) -> Self {
            match a {
                Act::Linear => Activation::Linear,
                Act::Relu => Activation::Relu,
                Act::Sigmoid => Activation::Sigmoid,
                Act::Softmax => Activation::Softmax,
                Act::Tanh => Activation::Tanh,
                Act::Gelu(approximate) => Activation::Gelu { approximate },
                Act::LeakyRelu(negative_slope) => Activation::LeakyRelu { negative_slope },
                Act::Elu(alpha) => Activation::Elu { alpha },
                Act::Selu => Activation::Selu,
                Act::Softplus => Activation::Softplus,
                Act::Silu => Activation::Silu,
                Act::HardSigmoid => Activation::HardSigmoid,
                Act::Relu6 => Activation::Relu6,
            }
        }
    }

    #[derive(Arbitrary, Debug)]
    enum LayerSpec {
        Dense {
            units: Dim,
            activation: Act,
            bias: bool,
        },
        Conv2D {
            filters: Dim,
            kernel: (Dim, Dim),
            strides: (Dim, Dim),
            same: bool,
            activation: Act,
        },
        MaxPooling2D {
            pool: (Dim, Dim),
            strides: (Dim, Dim),
            same: bool,
        },
        Flatten,
        Reshape(Vec<Dim>),
        Embedding {
            input_dim: Dim,
            output_dim: Dim,
            mask_zero: bool,
        },
        Mean(u8),
        GlobalAveragePooling1D,
        GlobalAveragePooling2D,
        Dropout(f32),
        Conv1D {
            filters: Dim,
            kernel: Dim,
            stride: Dim,
            dilation: Dim,
            padding: u8,
            activation: Act,
        },
        DilatedConv2D {
            filters: Dim,
            kernel: (Dim, Dim),
            dilation: (Dim, Dim),
            same: bool,
        },
        BatchNormalization {
            momentum: f32,
            epsilon: f32,
            center: bool,
            scale: bool,
        },
        Pooling {
            kind: u8,
            pool: Dim,
            stride: Dim,
            same: bool,
        },
        Activation(Act),
        Rescaling(f32, f32),
        Depthwise {
            kernel: (Dim, Dim),
            strides: (Dim, Dim),
            same: bool,
            multiplier: Dim,
        },
        Separable {
            filters: Dim,
            kernel: (Dim, Dim),
            same: bool,
        },
        LayerNormalization(f32, bool, bool),
        RandomFlip(u8, u32),
        Recurrent {
            kind: u8,
            units: Dim,
            sequences: bool,
            backwards: bool,
        },
        Attention {
            heads: Dim,
            key_dim: Dim,
            causal: bool,
            dropout: f32,
        },
        /// RandomTranslation: fill and interpolation from the byte, factors as drawn (any f32).
        Translation(u8, f32, f32),
        /// A merge (Add, Subtract, Multiply, Average, Maximum, Minimum) or Concatenate, by the
        /// byte; in a chain it has one input, which most of them refuse.
        Merge(u8),
        /// Attention over two inputs (query, value) as the functional API applies it.
        CrossAttention {
            heads: Dim,
            key_dim: Dim,
        },
        /// A layer that resizes samples or names their axes, by the byte: Conv2DTranspose,
        /// Conv1DTranspose, UpSampling2D/1D, ZeroPadding2D/1D, Cropping2D/1D, RepeatVector,
        /// Permute or PReLU (shared axes).
        Resizing {
            kind: u8,
            filters: Dim,
            kernel: Dim,
            stride: Dim,
            same: bool,
        },
    }

    /// Self-attention as one link of a chain: MultiHeadAttention over its input twice (a
    /// Sequential model has one input per layer, attention takes two).
    #[derive(Debug)]
    struct SelfAttention(MultiHeadAttention);

    impl Layer for SelfAttention {
        fn kind(&self) -> &'static str {
            "self_attention"
        }

        fn config(&self) -> LayerConfig {
            self.0.config()
        }

        fn output_shape(&self, inputs: &[Vec<usize>]) -> kiln_nn::Result<Vec<usize>> {
            self.0.output_shape(&[inputs.concat(), inputs.concat()])
        }

        fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
            self.0.params(&[inputs.concat(), inputs.concat()])
        }

        fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], training: bool) -> kiln_nn::Result<LayerOut> {
            self.0.build(g, &[xs[0], xs[0]], params, training)
        }
    }

    #[derive(Arbitrary, Debug)]
    enum LossSpec {
        Binary,
        Categorical,
        Sparse,
        Mse,
        Mae,
        BinaryLogits,
        CategoricalLogits,
        SparseLogits,
        Weighted(Vec<f32>),
        Huber(f32),
        LogCosh,
        Poisson,
        KLDivergence,
        CosineSimilarity,
        Hinge,
        SquaredHinge,
        BinaryFocal(f32, f32, bool),
        CategoricalFocal(f32, f32),
        Smoothed(f32, bool),
    }

    #[derive(Arbitrary, Debug)]
    enum OptimizerSpec {
        Adam(f32, bool),
        Sgd(f32),
        Momentum(f32, f32, bool),
        RmsProp(f32, f32, bool),
        Adagrad(f32),
        Nadam(f32),
        Adamax(f32),
        Lion(f32),
    }

    #[derive(Arbitrary, Debug)]
    enum ClipSpec {
        None,
        Norm(f32),
        GlobalNorm(f32),
        Value(f32),
    }

    #[derive(Arbitrary, Debug)]
    struct Description {
        input: Vec<Dim>,
        layers: Vec<LayerSpec>,
        loss: LossSpec,
        optimizer: OptimizerSpec,
        weight_decay: f32,
        clipping: ClipSpec,
        accuracy: bool,
        samples: u8,
        batch: Dim,
        /// `mixed_float16` with this initial loss scale and growth interval.
        mixed: Option<(f32, u16)>,
        /// A functional graph instead of a chain: for each layer, bytes choose how many inputs it
        /// takes and which earlier tensors (a recurrent layer's returned states among them).
        functional: Option<Vec<u8>>,
        x: Vec<f32>,
        y: Vec<f32>,
    }

    fn padding(same: bool) -> Padding {
        if same {
            Padding::Same
        } else {
            Padding::Valid
        }
    }

    /// Where a described layer goes: appended to a chain, or applied in a functional graph.
    trait Sink: Sized {
        fn put<L: Layer + 'static>(self, layer: L) -> Self;
    }

    impl Sink for Sequential {
        fn put<L: Layer + 'static>(self, layer: L) -> Self {
            self.add(layer)
        }
    }

    /// A functional graph being built: every tensor so far (the input first), and the wiring
    /// bytes still to read.
    struct Functional {
        tensors: Vec<SymbolicTensor>,
        wiring: std::vec::IntoIter<u8>,
    }

    impl Sink for Functional {
        /// Applies the layer to 1–4 earlier tensors (the last one by default), and with the
        /// count byte's top bit a second time, to tensors chosen anew, with the same weights (a
        /// shared layer); what it refuses is left out, and everything it gives, states included,
        /// can feed later layers.
        fn put<L: Layer + 'static>(mut self, layer: L) -> Self {
            let byte = self.wiring.next().unwrap_or(0);
            let count = 1 + byte as usize % 4;
            let layer = Shared::new(layer);
            for _ in 0..1 + usize::from(byte >= 0x80) {
                let last = self.tensors.len() - 1;
                let chosen: Vec<SymbolicTensor> = (0..count)
                    .map(|_| match self.wiring.next() {
                        Some(b) => self.tensors[b as usize % self.tensors.len()].clone(),
                        None => self.tensors[last].clone(),
                    })
                    .collect();
                let inputs: Vec<&SymbolicTensor> = chosen.iter().collect();
                if let Ok(all) = layer.call_states(&inputs) {
                    self.tensors.extend(all);
                }
            }
            self
        }
    }

    fn add<S: Sink>(m: S, spec: &LayerSpec) -> S {
        match *spec {
            LayerSpec::Dense {
                units,
                activation,
                bias,
            } => {
                let d = Dense::new(units.get()).activation(activation.into());
                m.put(if bias { d } else { d.without_bias() })
            }
            LayerSpec::Conv2D {
                filters,
                kernel,
                strides,
                same,
                activation,
            } => m.put(
                Conv2D::new(filters.get(), (kernel.0.get(), kernel.1.get()))
                    .strides((strides.0.get(), strides.1.get()))
                    .padding(padding(same))
                    .activation(activation.into()),
            ),
            LayerSpec::MaxPooling2D { pool, strides, same } => m.put(
                MaxPooling2D::new((pool.0.get(), pool.1.get()))
                    .strides((strides.0.get(), strides.1.get()))
                    .padding(padding(same)),
            ),
            LayerSpec::Flatten => m.put(Flatten::new()),
            LayerSpec::Reshape(ref target) => {
                m.put(Reshape::new(target.iter().take(4).map(|d| d.get()).collect::<Vec<_>>()))
            }
            LayerSpec::Embedding {
                input_dim,
                output_dim,
                mask_zero,
            } => m.put(Embedding::new(input_dim.get(), output_dim.get()).mask_zero(mask_zero)),
            LayerSpec::Mean(axis) => m.put(Mean::over(axis as usize % 5)),
            LayerSpec::GlobalAveragePooling1D => m.put(GlobalAveragePooling1D::new()),
            LayerSpec::GlobalAveragePooling2D => m.put(GlobalAveragePooling2D::new()),
            // The rate's low bits pick SpatialDropout2D or 1D (whole channels) now and then.
            LayerSpec::Dropout(rate) => match rate.to_bits() % 4 {
                1 => m.put(SpatialDropout::two_d(rate)),
                2 => m.put(SpatialDropout::one_d(rate)),
                _ => m.put(Dropout::new(rate)),
            },
            LayerSpec::Conv1D {
                filters,
                kernel,
                stride,
                dilation,
                padding,
                activation,
            } => m.put(
                Conv1D::new(filters.get(), kernel.get())
                    .strides(stride.get())
                    .dilation_rate(dilation.get())
                    .padding([Padding::Valid, Padding::Same, Padding::Causal][padding as usize % 3])
                    .activation(activation.into()),
            ),
            LayerSpec::DilatedConv2D {
                filters,
                kernel,
                dilation,
                same,
            } => m.put(
                Conv2D::new(filters.get(), (kernel.0.get(), kernel.1.get()))
                    .dilation_rate((dilation.0.get(), dilation.1.get()))
                    .padding(padding(same)),
            ),
            LayerSpec::BatchNormalization {
                momentum,
                epsilon,
                center,
                scale,
            } => m.put(
                BatchNormalization::new()
                    .momentum(momentum)
                    .epsilon(epsilon)
                    .center(center)
                    .scale(scale),
            ),
            LayerSpec::Pooling {
                kind,
                pool,
                stride,
                same,
            } => {
                let (p, s, pad) = (pool.get(), stride.get(), padding(same));
                match kind % 6 {
                    0 => m.put(MaxPooling1D::new(p).strides(s).padding(pad)),
                    1 => m.put(AveragePooling1D::new(p).strides(s).padding(pad)),
                    2 => m.put(AveragePooling2D::new((p, p)).strides((s, s)).padding(pad)),
                    3 => m.put(GlobalMaxPooling1D::new()),
                    4 => m.put(GlobalMaxPooling2D::new()),
                    _ => m.put(MaxPooling2D::new((p, p)).strides((s, s)).padding(pad)),
                }
            }
            LayerSpec::Activation(a) => m.put(ActivationLayer::new(a.into())),
            // Now and then a Normalization with given statistics instead (any count of them, any
            // values: too few, negative or non-finite variances must be refused).
            LayerSpec::Rescaling(scale, offset) if scale.to_bits() % 3 == 0 => {
                let features = (offset.to_bits() % 8) as usize;
                m.put(Normalization::with_stats(vec![offset; features], vec![scale; features]))
            }
            LayerSpec::Rescaling(scale, offset) => m.put(Rescaling::new(scale, offset)),
            LayerSpec::Depthwise {
                kernel,
                strides,
                same,
                multiplier,
            } => m.put(
                DepthwiseConv2D::new((kernel.0.get(), kernel.1.get()))
                    .strides((strides.0.get(), strides.1.get()))
                    .padding(padding(same))
                    .depth_multiplier(multiplier.get()),
            ),
            LayerSpec::LayerNormalization(epsilon, center, scale) => {
                m.put(LayerNormalization::new().epsilon(epsilon).center(center).scale(scale))
            }
            LayerSpec::RandomFlip(mode, seed) => {
                let modes = [
                    FlipMode::Horizontal,
                    FlipMode::Vertical,
                    FlipMode::HorizontalAndVertical,
                ];
                m.put(RandomFlip::new(modes[mode as usize % 3]).seed(seed))
            }
            LayerSpec::Recurrent {
                kind,
                units,
                sequences,
                backwards,
            } => {
                let units = units.get();
                match kind % 6 {
                    0 => m.put(
                        LSTM::new(units)
                            .return_sequences(sequences)
                            .go_backwards(backwards)
                            .return_state(backwards),
                    ),
                    1 => m.put(GRU::new(units).return_sequences(sequences).go_backwards(backwards)),
                    2 => m.put(GRU::new(units).reset_after(false).return_sequences(sequences)),
                    3 => m.put(Bidirectional::new(LSTM::new(units).return_sequences(sequences))),
                    // Keras' per-gate implementation: input and recurrent dropout together.
                    4 => m.put(
                        LSTM::new(units)
                            .dropout(0.25)
                            .recurrent_dropout(0.5)
                            .return_sequences(sequences),
                    ),
                    _ => m.put(GRU::new(units).recurrent_dropout(0.3).go_backwards(backwards)),
                }
            }
            LayerSpec::Attention {
                heads,
                key_dim,
                causal,
                dropout,
            } => m.put(SelfAttention(
                MultiHeadAttention::new(heads.get(), key_dim.get())
                    .causal(causal)
                    .dropout(dropout),
            )),
            LayerSpec::Translation(mode, height, width) => {
                let fills = [FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest];
                let interpolation = if mode & 4 == 0 {
                    Interpolation::Bilinear
                } else {
                    Interpolation::Nearest
                };
                m.put(
                    RandomTranslation::new(height, width)
                        .fill_mode(fills[mode as usize % 4])
                        .interpolation(interpolation)
                        .fill_value(0.5),
                )
            }
            LayerSpec::Separable { filters, kernel, same } => {
                m.put(SeparableConv2D::new(filters.get(), (kernel.0.get(), kernel.1.get())).padding(padding(same)))
            }
            LayerSpec::Merge(kind) => match kind % 7 {
                0 => m.put(Add::new()),
                1 => m.put(Subtract::new()),
                2 => m.put(Multiply::new()),
                3 => m.put(Average::new()),
                4 => m.put(Maximum::new()),
                5 => m.put(Minimum::new()),
                _ => m.put(Concatenate::new()),
            },
            // Now and then Keras' Attention (no projections) instead.
            LayerSpec::CrossAttention { heads, key_dim } if heads.get() % 4 == 0 => m.put(
                Attention::new()
                    .use_scale(key_dim.get() % 2 == 1)
                    .causal(key_dim.get() % 3 == 0),
            ),
            LayerSpec::CrossAttention { heads, key_dim } => m.put(MultiHeadAttention::new(heads.get(), key_dim.get())),
            LayerSpec::Resizing {
                kind,
                filters,
                kernel,
                stride,
                same,
            } => {
                let (f, k, s) = (filters.get(), kernel.get(), stride.get());
                // Some axis lists valid, some not: repeated, zero or out-of-range axes.
                let axes = [f % 4, k % 4, s % 4][..1 + usize::from(same) + f % 2].to_vec();
                match kind % 11 {
                    0 => m.put(Conv2DTranspose::new(f, (k, k)).strides((s, s)).padding(padding(same))),
                    1 => m.put(Conv1DTranspose::new(f, k).strides(s).padding(padding(same))),
                    2 => m.put(UpSampling2D::new((k, s))),
                    3 => m.put(UpSampling1D::new(s)),
                    4 => m.put(ZeroPadding2D::new(((f, k), (s, f)))),
                    5 => m.put(ZeroPadding1D::new((k, s))),
                    6 => m.put(Cropping2D::new(((f, k), (s, f)))),
                    7 => m.put(Cropping1D::new((k, s))),
                    8 => m.put(RepeatVector::new(f)),
                    9 => m.put(Permute::new(axes)),
                    _ => m.put(PReLU::new().shared_axes(axes)),
                }
            }
        }
    }

    fn loss(spec: LossSpec) -> Loss {
        match spec {
            LossSpec::Binary => Loss::BinaryCrossentropy,
            LossSpec::Categorical => Loss::CategoricalCrossentropy,
            LossSpec::Sparse => Loss::SparseCategoricalCrossentropy,
            LossSpec::Mse => Loss::MeanSquaredError,
            LossSpec::Mae => Loss::MeanAbsoluteError,
            LossSpec::BinaryLogits => Loss::BinaryCrossentropy.from_logits(),
            LossSpec::CategoricalLogits => Loss::CategoricalCrossentropy.from_logits(),
            LossSpec::SparseLogits => Loss::SparseCategoricalCrossentropy.from_logits(),
            LossSpec::Weighted(w) => Loss::WeightedBinaryCrossentropy(w.into_iter().take(64).collect()),
            LossSpec::Huber(delta) => Loss::huber(delta),
            LossSpec::LogCosh => Loss::LogCosh,
            LossSpec::Poisson => Loss::Poisson,
            LossSpec::KLDivergence => Loss::KLDivergence,
            LossSpec::CosineSimilarity => Loss::CosineSimilarity,
            LossSpec::Hinge => Loss::Hinge,
            LossSpec::SquaredHinge => Loss::SquaredHinge,
            LossSpec::BinaryFocal(alpha, gamma, apply_class_balancing) => Loss::BinaryFocalCrossentropy {
                alpha,
                gamma,
                apply_class_balancing,
            },
            LossSpec::CategoricalFocal(alpha, gamma) => Loss::CategoricalFocalCrossentropy { alpha, gamma },
            LossSpec::Smoothed(amount, categorical) if categorical => {
                Loss::CategoricalCrossentropy.label_smoothing(amount)
            }
            LossSpec::Smoothed(amount, _) => Loss::BinaryCrossentropy.label_smoothing(amount),
        }
    }

    /// `n` samples of `shape`, filled cyclically from `values` (zeros when there are none); `None`
    /// past a few thousand values, which only the huge sizes reach.
    fn tensor(n: usize, shape: &[usize], values: &[f32]) -> Option<Tensor> {
        let dims: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
        let len = kiln_data::tensor::numel(&dims).ok().filter(|&l| l <= 1 << 14)?;
        let data = (0..len)
            .map(|i| values.get(i % values.len().max(1)).copied().unwrap_or(0.0))
            .collect();
        Tensor::new(dims, data).ok()
    }

    /// Builds, compiles, fits, evaluates and predicts the description in `data`.
    pub fn model_description(data: &[u8]) {
        let Ok(d) = Description::arbitrary_take_rest(Unstructured::new(data)) else {
            return;
        };
        let input: Vec<usize> = d.input.iter().take(4).map(|d| d.get()).collect();
        let layers = d.layers.iter().take(6);
        let mut m = match d.functional {
            None => layers
                .fold(Sequential::new().input_shape(input.clone()), add)
                .into_model(),
            // The chain applied as a layer of an outer model, twice when the batch byte is odd
            // (a siamese pair whose two outputs are added).
            Some(wiring) if wiring.first().is_some_and(|w| w & 0x40 != 0) => {
                let mut inner = layers
                    .fold(Sequential::new().input_shape(input.clone()), add)
                    .into_model();
                let x = Input::new(input.clone());
                let Ok(once) = inner.call(&x) else { return };
                let out = if d.samples % 2 == 1 {
                    let Ok(twice) = inner.call(&x) else { return };
                    let Ok(sum) = Shared::new(Add::new()).call_many(&[&once, &twice]) else {
                        return;
                    };
                    sum
                } else {
                    once
                };
                let Ok(model) = Model::new(&[x], &out) else { return };
                model
            }
            Some(wiring) => {
                let x = Input::new(input.clone());
                let start = Functional {
                    tensors: vec![x.clone()],
                    wiring: wiring.into_iter(),
                };
                let built = layers.fold(start, add);
                let Ok(model) = Model::new(&[x], built.tensors.last().expect("the input")) else {
                    return;
                };
                model
            }
        };
        let optimizer = match d.optimizer {
            OptimizerSpec::Adam(lr, amsgrad) => Optimizer::adam_lr(lr).with_amsgrad(amsgrad),
            OptimizerSpec::Sgd(lr) => Optimizer::sgd(lr),
            OptimizerSpec::Momentum(lr, momentum, nesterov) => Optimizer::sgd_momentum(lr, momentum, nesterov),
            OptimizerSpec::RmsProp(lr, momentum, centered) => {
                Optimizer::rmsprop_with(momentum, centered).with_learning_rate(lr)
            }
            OptimizerSpec::Adagrad(lr) => Optimizer::adagrad().with_learning_rate(lr),
            OptimizerSpec::Nadam(lr) => Optimizer::nadam().with_learning_rate(lr),
            OptimizerSpec::Adamax(lr) => Optimizer::adamax().with_learning_rate(lr),
            OptimizerSpec::Lion(lr) => Optimizer::lion().with_learning_rate(lr),
        }
        .with_weight_decay(d.weight_decay);
        let optimizer = match d.clipping {
            ClipSpec::None => optimizer,
            ClipSpec::Norm(c) => optimizer.with_clipnorm(c),
            ClipSpec::GlobalNorm(c) => optimizer.with_global_clipnorm(c),
            ClipSpec::Value(c) => optimizer.with_clipvalue(c),
        };
        let loss = loss(d.loss);
        let metrics = if d.accuracy { vec![Metric::Accuracy] } else { Vec::new() };
        if let Some((initial, growth_steps)) = d.mixed {
            m.set_dtype_policy(DTypePolicy::MixedFloat16);
            m.set_loss_scale(LossScale {
                initial,
                growth_steps: u32::from(growth_steps),
            });
        }
        if m.compile(&kiln_cpu::CpuBackend, optimizer, loss.clone(), &metrics)
            .is_err()
        {
            return;
        }
        let n = d.samples as usize % 9;
        let Some(x) = tensor(n, &input, &d.x) else { return };
        let Ok(out) = m.predict(&x, d.batch.get()) else { return };
        let Some(y) = tensor(n, &loss.label_shape(&out.shape()[1..]), &d.y) else {
            return;
        };
        let _ = m.fit(&x, &y, &FitOptions::new(1, d.batch.get()).verbose(0));
        let _ = m.evaluate(&x, &y, d.batch.get());
        let _ = m.predict(&x, d.batch.get());
    }
}
