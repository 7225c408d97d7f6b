//! keras.io's "Timeseries classification with a Transformer model" shape on the bundled
//! ItalyPowerDemand set (24-step daily power-demand series, 2 classes): a Dense(16) projection,
//! two encoder blocks — MultiHeadAttention(2 heads, key_dim 16, dropout 0.1) → Dropout(0.1) → Add →
//! LayerNormalization(1e-6) → Conv1D(8, 1, relu) → Conv1D(16, 1) → Add → LayerNormalization(1e-6)
//! — then GlobalAveragePooling1D → Dense(32, relu) → Dense(2, softmax). Adam 1e-3, sparse
//! categorical cross-entropy, batch 16, 100 epochs. Prints the test accuracy per seed and the mean
//! beside Keras 3.15.1's figure for the same setup (`crates/kiln-data/data/ucr/README.md`).
//!
//! `cargo run --release --example transformer_timeseries` — `KILN_EPOCHS=n` (default 100),
//! `KILN_SEEDS=0,1,2`, `KILN_DEVICE=cpu|gpu`.

use kiln::graph::Backend;
use kiln::nn::SymbolicTensor;
use kiln::prelude::*;

/// Keras 3.15.1's mean test accuracy over seeds 0, 1, 2.
const KERAS: f32 = 0.710;

/// One post-norm encoder block over `x [steps, 16]`.
fn encoder(x: &SymbolicTensor, dropout: f32) -> Result<SymbolicTensor> {
    let attention = MultiHeadAttention::new(2, 16).dropout(dropout).call_many(&[x, x])?;
    let attention = Dropout::new(dropout).call(&attention)?;
    let h = Add::new().call_many(&[x, &attention])?;
    let h = LayerNormalization::new().epsilon(1e-6).call(&h)?;
    let ff = Conv1D::new(8, 1).activation(Activation::Relu).call(&h)?;
    let ff = Conv1D::new(16, 1).call(&ff)?;
    let h = Add::new().call_many(&[&h, &ff])?;
    LayerNormalization::new().epsilon(1e-6).call(&h)
}

/// The classifier for sequences of `steps × channels` and `classes` classes.
/// The classifier; `dropout` is the attention's and the Dropout layer's rate (0.1 in the keras.io
/// setup; 0 for a run that `keras_replay` can repeat step for step).
pub fn transformer(steps: usize, channels: usize, classes: usize, dropout: f32, seed: u64) -> Result<Model> {
    let input = Input::new([steps, channels]);
    let mut h = Dense::new(16).call(&input)?;
    for _ in 0..2 {
        h = encoder(&h, dropout)?;
    }
    let h = GlobalAveragePooling1D::new().call(&h)?;
    let h = Dense::new(32).activation(Activation::Relu).call(&h)?;
    let out = Dense::new(classes).activation(Activation::Softmax).call(&h)?;
    Ok(Model::new(&[input], &out)?.with_seed(seed))
}

/// Trains the classifier on ItalyPowerDemand with `seed` for `epochs`; returns its test accuracy.
pub fn run(device: &dyn Backend, epochs: usize, seed: u64) -> Result<f32> {
    let data = datasets::ucr("ItalyPowerDemand")?;
    let dims = data.x_train.shape().to_vec();
    let classes = data.y_train.data().iter().fold(0.0f32, |m, &v| m.max(v)) as usize + 1;
    let mut m = transformer(dims[1], dims[2], classes, 0.1, seed)?;
    m.compile(
        device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    m.fit(&data.x_train, &data.y_train, &FitOptions::new(epochs, 16).seed(seed))?;
    let result = m.evaluate(&data.x_test, &data.y_test, 256)?;
    Ok(result.get("accuracy").unwrap_or(0.0))
}

fn main() -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let epochs = env("KILN_EPOCHS").and_then(|e| e.parse().ok()).unwrap_or(100);
    let seeds: Vec<u64> = env("KILN_SEEDS")
        .unwrap_or_else(|| "0,1,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let device = Device::auto()?;
    println!("device: {}, ItalyPowerDemand, {epochs} epochs", device.name());
    let start = std::time::Instant::now();
    let mut accuracies = Vec::new();
    for &seed in &seeds {
        let acc = run(&device, epochs, seed)?;
        println!("  seed {seed}: test accuracy {acc:.4}");
        accuracies.push(acc);
    }
    let mean = accuracies.iter().sum::<f32>() / accuracies.len().max(1) as f32;
    println!(
        "transformer: mean test accuracy {mean:.4} over seeds {seeds:?} (Keras 3.15.1: {KERAS:.3}) in {:.1}s",
        start.elapsed().as_secs_f32()
    );
    Ok(())
}
