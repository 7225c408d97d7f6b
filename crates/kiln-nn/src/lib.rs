//! What users touch: layers, models (sequential and functional), losses, metrics, optimizers, and
//! fit / evaluate / predict, in Keras' shape. Models compile into kiln-graph plans and run on any
//! [`kiln_graph::Backend`].

mod activation;
pub mod backend;
mod by_name;
mod callbacks;
mod confusion;
mod data_parallel;
pub mod doctor;
mod engine;
mod error;
mod feeds;
mod fit;
pub mod functional;
mod history;
mod init;
pub mod layers;
mod loss;
mod metrics;
pub mod mixed_precision;
mod model;
mod moving_stats;
mod network;
mod optimizer;
mod plot;
mod progress;
mod replicas;
mod saving;
mod schedules;
mod sequential;
mod weights;

pub use activation::Activation;
pub use callbacks::{
    BackupAndRestore, Callback, Control, CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler,
    ModelCheckpoint, ReduceLROnPlateau, SharedCallback, TerminateOnNaN,
};
pub use confusion::{ConfusionMatrix, MAX_CONFUSION_CLASSES, MAX_CONFUSION_LABELS};
pub use data_parallel::DataParallel;
pub use engine::{Inputs, Weight};
pub use error::{Error, Result};
pub use fit::FitOptions;
pub use functional::{Call, Input, Shared, SymbolicTensor};
pub use history::{Evaluation, History};
pub use init::Init;
pub use layers::{
    ActivationLayer, Add, Attention, Average, AveragePooling1D, AveragePooling2D, BatchNormalization, Bidirectional,
    Concatenate, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Cropping1D, Cropping2D, Dense, DepthwiseConv2D,
    Dropout, Embedding, FillMode, Flatten, FlipMode, GlobalAveragePooling1D, GlobalAveragePooling2D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, Interpolation, Layer, LayerNormalization, MaxPooling1D, MaxPooling2D,
    Maximum, Mean, Minimum, MultiHeadAttention, Multiply, Normalization, PReLU, Padding, Permute, PositionEmbedding,
    RandomFlip, RandomTranslation, RepeatVector, Rescaling, Reshape, SeparableConv2D, SpatialDropout, Subtract,
    TimeDistributed, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D, GRU, LSTM,
};
pub use loss::{CustomLoss, Loss, LossKind, EPSILON};
pub use metrics::{CustomMetric, Metric, AUC_THRESHOLDS};
pub use mixed_precision::{DTypePolicy, LossScale};
pub use model::{load_model, Model, Training};
pub use optimizer::{Clipping, Optimizer};
pub use saving::Precision;
pub use schedules::{LearningRate, Schedule};
pub use sequential::Sequential;
