//! LSTM(64) → Dense(4, softmax) and GRU(64) → Dense(4, softmax) on the bundled BasicMotions set
//! (6-channel accelerometer and gyroscope series of 100 steps, 4 activities); Adam 1e-3, sparse
//! categorical cross-entropy, batch 16, 100 epochs. Prints the test accuracy per seed and the
//! mean, beside Keras 3.15.1's figures for the same setup (`crates/kiln-data/data/ucr/README.md`).
//!
//! `cargo run --release --example lstm_timeseries [lstm|gru|all]` — `KILN_EPOCHS=n` (default 100),
//! `KILN_SEEDS=0,1,2`, `KILN_DEVICE=cpu|gpu`.

use kiln::graph::Backend;
use kiln::prelude::*;

/// The recurrent layer kinds this example trains, with Keras 3.15.1's mean test accuracy over
/// seeds 0, 1, 2.
const KINDS: [(&str, f32); 2] = [("lstm", 0.983), ("gru", 0.958)];

/// `kind` (64 units) over sequences of `steps × channels`, then a softmax over `classes`.
pub fn model(kind: &str, steps: usize, channels: usize, classes: usize, seed: u64) -> Sequential {
    let m = Sequential::new().seed(seed).input_shape([steps, channels]);
    let m = if kind == "gru" {
        m.add(GRU::new(64))
    } else {
        m.add(LSTM::new(64))
    };
    m.add(Dense::new(classes).activation(Activation::Softmax))
}

/// Trains `kind` on BasicMotions with `seed` for `epochs`; returns its test accuracy.
pub fn run(device: &dyn Backend, kind: &str, epochs: usize, seed: u64) -> Result<f32> {
    let data = datasets::ucr("BasicMotions")?;
    let dims = data.x_train.shape().to_vec();
    let classes = data.y_train.data().iter().fold(0.0f32, |m, &v| m.max(v)) as usize + 1;
    let mut m = model(kind, dims[1], dims[2], classes, seed);
    m.compile(
        device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    m.fit(&data.x_train, &data.y_train, &FitOptions::new(epochs, 16).seed(seed))?;
    let result = m.evaluate(&data.x_test, &data.y_test, 64)?;
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
    let which = std::env::args().nth(1).unwrap_or_else(|| "lstm".into());
    let kinds: Vec<(&str, f32)> = KINDS
        .iter()
        .copied()
        .filter(|(k, _)| which == "all" || *k == which)
        .collect();
    if kinds.is_empty() {
        return Err(Error::invalid(
            "lstm_timeseries",
            format!("unknown layer {which}; lstm, gru or all"),
        ));
    }
    let device = Device::auto()?;
    println!("device: {}, BasicMotions, {epochs} epochs", device.name());
    for (kind, keras) in kinds {
        let start = std::time::Instant::now();
        let mut accuracies = Vec::new();
        for &seed in &seeds {
            let acc = run(&device, kind, epochs, seed)?;
            println!("  {kind} seed {seed}: test accuracy {acc:.4}");
            accuracies.push(acc);
        }
        let mean = accuracies.iter().sum::<f32>() / accuracies.len().max(1) as f32;
        println!(
            "{kind}: mean test accuracy {mean:.4} over seeds {seeds:?} (Keras 3.15.1: {keras:.3}) in {:.1}s",
            start.elapsed().as_secs_f32()
        );
    }
    Ok(())
}
