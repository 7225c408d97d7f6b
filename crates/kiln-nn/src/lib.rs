//! What users touch: layers, models, losses, metrics, optimizers, and fit / evaluate / predict, in
//! Keras' shape. Models compile into kiln-graph plans and run on any [`kiln_graph::Backend`].

mod activation;
mod fit;
mod history;
mod init;
pub mod layers;
mod loss;
mod metrics;
mod model;
mod optimizer;

pub use activation::Activation;
pub use fit::FitOptions;
pub use history::{Evaluation, History};
pub use init::Init;
pub use layers::{Dense, Layer};
pub use loss::Loss;
pub use metrics::Metric;
pub use model::{Sequential, Weight};
pub use optimizer::Optimizer;
