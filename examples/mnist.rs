//! A small CNN on the bundled MNIST sample (4000 training and 1000 test digits): Conv2D(16, 3×3,
//! relu) → MaxPooling2D(2×2) → Conv2D(32, 3×3, relu) → MaxPooling2D(2×2) → Flatten →
//! Dense(10, softmax), Adam, on the best device here; prints the test accuracy.
//!
//! `cargo run --release --example mnist` — `KILN_DEVICE=cpu` forces the CPU backend,
//! `KILN_EPOCHS=n` changes the number of epochs (default 6).

use kiln::graph::Backend;
use kiln::prelude::*;

/// The CNN, for 28×28 grey images.
pub fn cnn() -> Sequential {
    Sequential::new()
        .seed(1)
        .add(
            Conv2D::new(16, (3, 3))
                .activation(Activation::Relu)
                .input_shape([28, 28, 1]),
        )
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(32, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax))
}

/// Images as `[n, 28, 28, 1]` in [0, 1].
pub fn images(t: &Tensor) -> Result<Tensor> {
    t.map(|p| p / 255.0).reshape([t.rows(), 28, 28, 1])
}

/// Trains for `epochs` and returns the test evaluation.
pub fn train(device: &dyn Backend, epochs: usize, verbose: u8) -> Result<Evaluation> {
    let data = datasets::mnist()?;
    let (x_train, x_test) = (images(&data.x_train)?, images(&data.x_test)?);
    let mut model = cnn();
    model.compile(
        device,
        Optimizer::adam_lr(3e-3),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    if verbose > 0 {
        print!("{}", model.summary());
    }
    model.fit(&x_train, &data.y_train, &FitOptions::new(epochs, 32).verbose(verbose))?;
    model.evaluate(&x_test, &data.y_test, 250)
}

fn main() -> Result<()> {
    let epochs = std::env::var("KILN_EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(6);
    let device = Device::auto()?;
    println!("device: {}", device.name());
    let start = std::time::Instant::now();
    let result = train(&device, epochs, 1)?;
    println!("trained {epochs} epochs in {:.1}s", start.elapsed().as_secs_f32());
    println!(
        "test accuracy: {:.4} (loss {:.4})",
        result.get("accuracy").unwrap_or(0.0),
        result.loss()
    );
    Ok(())
}
