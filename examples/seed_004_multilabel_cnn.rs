//! Seed 004 — "How can TensorFlow Keras handle shapes and loss functions for multi-label
//! classification?" Its three programs share one CNN on 64×64×3 images: Conv2D(32, 3×3, relu) →
//! MaxPooling2D(2×2) → Conv2D(64, 3×3, relu) → MaxPooling2D(2×2) → Flatten → Dense(128, relu) →
//! Dense(5, sigmoid), trained 10 epochs with validation data:
//!
//! 1. binary_crossentropy on multi-hot tags;
//! 2. a user-composed class-weighted binary cross-entropy (weights 1.0, 0.5, 1.0, 2.0, 1.5), written
//!    over graph ops as the seed writes it over Keras' backend;
//! 3. mse with a mean-absolute-error metric on confidence targets in [0, 1].
//!
//! `cargo run --release --example seed_004_multilabel_cnn`

use kiln::graph::Backend;
use kiln::nn::backend as k;
use kiln::prelude::*;

/// The seed's CNN for images of `[h, w, 3]` and `tags` sigmoid outputs.
pub fn cnn(h: usize, w: usize, tags: usize) -> Sequential {
    Sequential::new()
        .add(
            Conv2D::new(32, (3, 3))
                .activation(Activation::Relu)
                .input_shape([h, w, 3]),
        )
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(tags).activation(Activation::Sigmoid))
}

/// The seed's `weighted_binary_crossentropy`: `K.mean(K.binary_crossentropy(y_true, y_pred) * weights)`.
pub fn weighted_binary_crossentropy(weights: Vec<f32>) -> Loss {
    Loss::custom("weighted_binary_crossentropy", move |g, y_true, y_pred| {
        let loss = k::binary_crossentropy(g, y_true, y_pred)?;
        let weighted = k::weight_columns(g, loss, &weights)?;
        k::mean(g, weighted)
    })
}

/// Trains the CNN with `loss` and `metrics`; returns the history and the final validation result.
#[allow(clippy::too_many_arguments)]
pub fn run(
    device: &dyn Backend,
    loss: Loss,
    metrics: &[Metric],
    (x, y): (&Tensor, &Tensor),
    (x_val, y_val): (&Tensor, &Tensor),
    epochs: usize,
) -> Result<(History, Evaluation)> {
    let s = x.shape();
    let mut model = cnn(s[1], s[2], y.row_len()).seed(4);
    model.compile(device, Optimizer::adam(), loss, metrics)?;
    let history = model.fit(
        x,
        y,
        &FitOptions::new(epochs, 32).validation_data(x_val.clone(), y_val.clone()),
    )?;
    Ok((history, model.evaluate(x_val, y_val, 32)?))
}

fn main() -> Result<()> {
    let device = Device::auto()?;
    let (x_train, x_test) = (
        random::uniform([100, 64, 64, 3], 0),
        random::uniform([20, 64, 64, 3], 1),
    );
    let (y_train, y_test) = (random::integers(0, 2, [100, 5], 2), random::integers(0, 2, [20, 5], 3));
    let (_, r) = run(
        &device,
        Loss::BinaryCrossentropy,
        &[Metric::Accuracy],
        (&x_train, &y_train),
        (&x_test, &y_test),
        10,
    )?;
    println!("Example 1 (binary_crossentropy): {r}");
    let weighted = weighted_binary_crossentropy(vec![1.0, 0.5, 1.0, 2.0, 1.5]);
    let (_, r) = run(
        &device,
        weighted,
        &[Metric::Accuracy],
        (&x_train, &y_train),
        (&x_test, &y_test),
        10,
    )?;
    println!("Example 2 (class-weighted binary_crossentropy): {r}");
    let (c_train, c_test) = (random::uniform([100, 5], 4), random::uniform([20, 5], 5));
    let (_, r) = run(
        &device,
        Loss::MeanSquaredError,
        &[Metric::MeanAbsoluteError],
        (&x_train, &c_train),
        (&x_test, &c_test),
        10,
    )?;
    println!("Example 3 (mse on confidence targets): {r}");
    Ok(())
}
