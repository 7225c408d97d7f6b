//! The main job: a small CNN on the bundled MNIST sample (4000 training and 1000 test digits),
//! Conv2D(32, 3×3, relu) → MaxPooling2D(2×2) → Conv2D(64, 3×3, relu) → MaxPooling2D(2×2) →
//! Flatten → Dense(128, relu) → Dropout(0.5) → Dense(10, softmax), Adam, on the best device here.
//! The 4000 training digits are stretched to 12000 with two shifted copies of each. Prints the
//! test accuracy, saves the model, and writes the training curves as PNG and CSV.
//!
//! `cargo run --release --example mnist` — `KILN_DEVICE=cpu|gpu` forces a backend, `KILN_EPOCHS=n`
//! changes the number of epochs (default 6), `KILN_OUT=dir` where the files go (default
//! `target/mnist`).

use kiln::graph::Backend;
use kiln::prelude::*;

/// The CNN, for 28×28 grey images.
pub fn cnn() -> Sequential {
    Sequential::new()
        .seed(1)
        .add(
            Conv2D::new(32, (3, 3))
                .activation(Activation::Relu)
                .input_shape([28, 28, 1]),
        )
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(10).activation(Activation::Softmax))
}

/// Images as `[n, 28, 28, 1]` in [0, 1].
pub fn images(t: &Tensor) -> Result<Tensor> {
    Ok(t.map(|p| p / 255.0).reshape([t.rows(), 28, 28, 1])?)
}

/// Trains for `epochs` (validating on the test digits each epoch) and returns the model, its
/// history and the test evaluation.
pub fn train(device: &dyn Backend, epochs: usize, verbose: u8) -> Result<(Sequential, History, Evaluation)> {
    let data = datasets::mnist()?;
    let (x_train, x_test) = (images(&data.x_train)?, images(&data.x_test)?);
    let mut model = cnn();
    model.compile(
        device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    if verbose > 0 {
        print!("{}", model.summary());
    }
    let options = FitOptions::new(epochs, 32)
        .verbose(verbose)
        .validation_data(x_test.clone(), data.y_test.clone());
    let (x_train, y_train) = shifted_copies(&x_train, &data.y_train, 2, 2, 5)?;
    let history = model.fit(&x_train, &y_train, &options)?;
    let result = model.evaluate(&x_test, &data.y_test, 250)?;
    Ok((model, history, result))
}

fn main() -> Result<()> {
    let epochs = std::env::var("KILN_EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(6);
    let out = std::path::PathBuf::from(std::env::var("KILN_OUT").unwrap_or_else(|_| "target/mnist".into()));
    std::fs::create_dir_all(&out).map_err(|e| Error::Io {
        path: out.display().to_string(),
        message: e.to_string(),
    })?;
    let device = Device::auto()?;
    println!("device: {}", device.name());
    let start = std::time::Instant::now();
    let (mut model, history, result) = train(&device, epochs, 1)?;
    println!("trained {epochs} epochs in {:.1}s", start.elapsed().as_secs_f32());
    println!(
        "test accuracy: {:.4} (loss {:.4})",
        result.get("accuracy").unwrap_or(0.0),
        result.loss()
    );
    let (model_path, plot, csv) = (
        out.join("model.safetensors"),
        out.join("training.png"),
        out.join("history.csv"),
    );
    model.save(&model_path)?;
    history.plot(&plot)?;
    history.write_csv(&csv)?;
    println!(
        "saved {}, {} and {}",
        model_path.display(),
        plot.display(),
        csv.display()
    );
    Ok(())
}
