#![doc = include_str!("../README.md")]
//!
//! The workspace crates are re-exported whole (`kiln::graph`, `kiln::cpu`, `kiln::wgpu`,
//! `kiln::nn`, `kiln::data`); most programs need only the [`prelude`].

mod device;
#[cfg(feature = "mpi")]
pub mod mpi;

pub use device::Device;
pub use kiln_cpu as cpu;
pub use kiln_data as data;
pub use kiln_graph as graph;
pub use kiln_nn as nn;
pub use kiln_wgpu as wgpu;

pub use kiln_nn::load_model;
pub use kiln_nn::{Error, Result};

/// What a training program needs.
pub mod prelude {
    pub use crate::Device;
    pub use kiln_data::{
        datasets, random, rank_shard, shifted_copies, to_categorical, train_test_split, Standardizer, Tensor,
    };
    pub use kiln_nn::{
        load_model, Activation, ActivationLayer, Add, Attention, Average, AveragePooling1D, AveragePooling2D,
        BatchNormalization, Bidirectional, Call, Concatenate, ConfusionMatrix, Conv1D, Conv1DTranspose, Conv2D,
        Conv2DTranspose, Cropping1D, Cropping2D, DTypePolicy, DataParallel, Dense, DepthwiseConv2D, Dropout,
        EarlyStopping, Embedding, Evaluation, FitOptions, Flatten, FlipMode, GlobalAveragePooling1D,
        GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, History, Init, Input, Layer,
        LayerNormalization, LearningRate, LearningRateScheduler, Loss, LossScale, MaxPooling1D, MaxPooling2D, Maximum,
        Mean, Metric, Minimum, Model, ModelCheckpoint, MultiHeadAttention, Multiply, Normalization, Optimizer, PReLU,
        Padding, Permute, PositionEmbedding, Precision, RandomFlip, RandomTranslation, ReduceLROnPlateau, RepeatVector,
        Rescaling, Reshape, Schedule, SeparableConv2D, Sequential, Shared, SpatialDropout, Subtract, TimeDistributed,
        UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D, GRU, LSTM,
    };
    pub use kiln_nn::{Error, Result};
}
