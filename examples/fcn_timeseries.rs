//! The fully convolutional network of keras.io's "Timeseries classification from scratch" on the
//! bundled UCR sets: three blocks of Conv1D(64, 3, same) → BatchNormalization → ReLU, then
//! GlobalAveragePooling1D → Dense(classes, softmax); Adam 1e-3, sparse categorical cross-entropy,
//! batch 16. Prints the test accuracy per seed and the mean, beside Keras 3.15.1's figures for the
//! same setup (`crates/kiln-data/data/ucr/README.md`).
//!
//! `cargo run --release --example fcn_timeseries [GunPoint|ItalyPowerDemand|BasicMotions|all]` —
//! `KILN_EPOCHS=n` (default 150), `KILN_SEEDS=0,1,2`, `KILN_MOMENTUM=m` (BatchNormalization's,
//! default Keras' 0.99), `KILN_DEVICE=cpu|gpu`.

use kiln::graph::Backend;
use kiln::prelude::*;

/// Keras 3.15.1's mean test accuracy over seeds 0, 1, 2 (150 epochs, batch 16).
fn keras_reference(set: &str) -> f32 {
    match set {
        "GunPoint" => 0.671,
        "ItalyPowerDemand" => 0.930,
        _ => 1.000,
    }
}

/// The FCN for sequences of `steps × channels` and `classes` classes.
pub fn fcn(steps: usize, channels: usize, classes: usize, momentum: f32, seed: u64) -> Sequential {
    let mut m = Sequential::new().seed(seed).input_shape([steps, channels]);
    for _ in 0..3 {
        m = m
            .add(Conv1D::new(64, 3).padding(Padding::Same))
            .add(BatchNormalization::new().momentum(momentum))
            .add(ActivationLayer::new(Activation::Relu));
    }
    m.add(GlobalAveragePooling1D::new())
        .add(Dense::new(classes).activation(Activation::Softmax))
}

/// Trains the FCN on `set` with `seed` for `epochs`; returns its test accuracy and the history.
pub fn run(device: &dyn Backend, set: &str, epochs: usize, momentum: f32, seed: u64) -> Result<(f32, History)> {
    let data = datasets::ucr(set)?;
    let dims = data.x_train.shape().to_vec();
    let classes = data.y_train.data().iter().fold(0.0f32, |m, &v| m.max(v)) as usize + 1;
    let mut model = fcn(dims[1], dims[2], classes, momentum, seed);
    model.compile(
        device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    let options = FitOptions::new(epochs, 16).seed(seed);
    let history = model.fit(&data.x_train, &data.y_train, &options)?;
    let result = model.evaluate(&data.x_test, &data.y_test, 64)?;
    Ok((result.get("accuracy").unwrap_or(0.0), history))
}

fn main() -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let epochs = env("KILN_EPOCHS").and_then(|e| e.parse().ok()).unwrap_or(150);
    let momentum = env("KILN_MOMENTUM").and_then(|e| e.parse().ok()).unwrap_or(0.99);
    let seeds: Vec<u64> = env("KILN_SEEDS")
        .unwrap_or_else(|| "0,1,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let which = std::env::args().nth(1).unwrap_or_else(|| "GunPoint".into());
    let sets: Vec<&str> = if which == "all" {
        datasets::UCR_SETS.to_vec()
    } else {
        vec![datasets::UCR_SETS
            .iter()
            .copied()
            .find(|s| *s == which)
            .ok_or_else(|| {
                Error::invalid(
                    "fcn_timeseries",
                    format!("unknown set {which}; one of {:?}", datasets::UCR_SETS),
                )
            })?]
    };
    let device = Device::auto()?;
    println!(
        "device: {}, {epochs} epochs, BatchNormalization momentum {momentum}",
        device.name()
    );
    for set in sets {
        let start = std::time::Instant::now();
        let mut accuracies = Vec::new();
        for &seed in &seeds {
            // `fit` has printed the doctor's warnings on stderr; here, how many there were.
            let (acc, history) = run(&device, set, epochs, momentum, seed)?;
            println!(
                "  {set} seed {seed}: test accuracy {acc:.4}, doctor warnings: {}",
                history.warnings.len()
            );
            accuracies.push(acc);
        }
        let mean = accuracies.iter().sum::<f32>() / accuracies.len().max(1) as f32;
        println!(
            "{set}: mean test accuracy {mean:.4} over seeds {seeds:?} (Keras 3.15.1: {:.3}) in {:.1}s",
            keras_reference(set),
            start.elapsed().as_secs_f32()
        );
    }
    Ok(())
}
