//! keras.io's "Convolutional autoencoder for image denoising": two Conv2D → MaxPooling2D blocks
//! take 28×28 digits down to 7×7, two strided Conv2DTranspose layers bring them back, and a sigmoid
//! Conv2D gives the image. Trained on the bundled MNIST sample with Gaussian noise (factor 0.4,
//! clipped to [0, 1], as there) to give back the clean digit. Prints the summary, then the held-out
//! mean squared error to the clean digits of the denoised images against that of the noisy ones.
//!
//! `cargo run --release --example denoising_autoencoder` — `KILN_EPOCHS=n` (default 10),
//! `KILN_DEVICE=cpu|gpu`.

use kiln::graph::Backend;
use kiln::nn::{Call, Input, Model};
use kiln::prelude::*;

/// Digits `rows` of `images` scaled to [0, 1], and the same under noise drawn with `seed`.
fn clean_and_noisy(images: &Tensor, rows: std::ops::Range<usize>, seed: u64) -> Result<(Tensor, Tensor)> {
    let n = rows.len();
    let clean: Vec<f32> = images.slice_rows(rows).data().iter().map(|v| v / 255.0).collect();
    let noise = random::normal([n, 28, 28, 1], seed);
    let noisy = clean
        .iter()
        .zip(noise.data())
        .map(|(c, z)| (c + 0.4 * z).clamp(0.0, 1.0))
        .collect();
    Ok((Tensor::new([n, 28, 28, 1], clean)?, Tensor::new([n, 28, 28, 1], noisy)?))
}

fn model() -> Result<Model> {
    let input = Input::new([28, 28, 1]);
    let (relu, same) = (Activation::Relu, Padding::Same);
    let x = Conv2D::new(32, (3, 3)).activation(relu).padding(same).call(&input)?;
    let x = MaxPooling2D::new((2, 2)).padding(same).call(&x)?;
    let x = Conv2D::new(32, (3, 3)).activation(relu).padding(same).call(&x)?;
    let x = MaxPooling2D::new((2, 2)).padding(same).call(&x)?;
    let x = Conv2DTranspose::new(32, (3, 3))
        .strides((2, 2))
        .activation(relu)
        .padding(same)
        .call(&x)?;
    let x = Conv2DTranspose::new(32, (3, 3))
        .strides((2, 2))
        .activation(relu)
        .padding(same)
        .call(&x)?;
    let out = Conv2D::new(1, (3, 3))
        .activation(Activation::Sigmoid)
        .padding(same)
        .call(&x)?;
    Ok(Model::new(&[input], &out)?.with_seed(1))
}

fn mse(a: &Tensor, b: &Tensor) -> f32 {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        / a.data().len() as f32
}

fn main() -> Result<()> {
    let epochs = std::env::var("KILN_EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(10);
    let data = datasets::mnist()?;
    let (clean, noisy) = clean_and_noisy(&data.x_train, 0..data.x_train.shape()[0], 1)?;
    let (test_clean, test_noisy) = clean_and_noisy(&data.x_test, 0..data.x_test.shape()[0], 2)?;
    let device = Device::auto()?;
    let mut m = model()?;
    m.compile(&device, Optimizer::adam(), Loss::BinaryCrossentropy, &[])?;
    print!("{}", m.summary());
    println!("device: {}, {epochs} epochs", device.name());
    let start = std::time::Instant::now();
    m.fit(&noisy, &clean, &FitOptions::new(epochs, 128).seed(1))?;
    let denoised = m.predict(&test_noisy, 128)?;
    println!(
        "held-out mean squared error to the clean digits: denoised {:.4}, noisy {:.4} ({:.1}s)",
        mse(&denoised, &test_clean),
        mse(&test_noisy, &test_clean),
        start.elapsed().as_secs_f32()
    );
    Ok(())
}
