//! The main job: trains Dense(64, relu) → Dense(10, softmax) on the bundled 8×8 digits (1437 train,
//! 360 test samples) on the best device here, and prints the test accuracy.
//!
//! `cargo run --release --example digits` — `KILN_DEVICE=cpu` forces the CPU backend,
//! `KILN_EPOCHS=n` changes the number of epochs (default 30).

use kiln::graph::Backend;
use kiln::prelude::*;

fn main() -> Result<()> {
    let epochs = std::env::var("KILN_EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(30);
    let data = datasets::digits()?;
    // Pixels are 0..16; scale them to [0, 1].
    let scale = |t: &Tensor| {
        let mut t = t.clone();
        t.data_mut().iter_mut().for_each(|v| *v /= 16.0);
        t
    };
    let (x_train, x_test) = (scale(&data.x_train), scale(&data.x_test));

    let device = Device::auto()?;
    println!("device: {}", device.name());
    let mut model = Sequential::new()
        .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(
        &device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    print!("{}", model.summary());

    let start = std::time::Instant::now();
    let options = FitOptions::new(epochs, 32)
        .verbose(1)
        .validation_data(x_test.clone(), data.y_test.clone());
    model.fit(&x_train, &data.y_train, &options)?;
    let seconds = start.elapsed().as_secs_f32();

    let result = model.evaluate(&x_test, &data.y_test, 128)?;
    println!(
        "trained {epochs} epochs in {seconds:.1}s ({:.0} samples/s)",
        (epochs * x_train.rows()) as f32 / seconds
    );
    println!(
        "test accuracy: {:.4} (loss {:.4})",
        result.get("accuracy").unwrap_or(0.0),
        result.loss()
    );
    Ok(())
}
