//! Seed 001 — "Why does Keras produce binary results?" Its three programs:
//!
//! 1. binary classification: Dense(128, relu) on 784 inputs → Dense(1, sigmoid), binary_crossentropy,
//!    then probabilities thresholded at 0.5;
//! 2. the same task as two classes: Dense(2, softmax), categorical_crossentropy on one-hot labels,
//!    argmax of the probabilities;
//! 3. regression: Dense(128, relu) on 10 inputs → Dense(1, linear), mse with an mae metric.
//!
//! The seed leaves `x_train` to the reader; here example 1 and 2 learn "is this digit a zero?" on the
//! bundled MNIST sample and example 3 the bundled diabetes data.
//!
//! `cargo run --release --example seed_001_binary_outputs`

use kiln::graph::Backend;
use kiln::prelude::*;

fn hidden(input: usize) -> Dense {
    Dense::new(128).activation(Activation::Relu).input_dim(input)
}

/// Example 1: one sigmoid unit; returns the evaluation and the thresholded predictions.
pub fn example_1(
    device: &dyn Backend,
    x: &Tensor,
    y: &Tensor,
    x_test: &Tensor,
    y_test: &Tensor,
) -> Result<(Evaluation, Vec<u8>)> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])?;
    model.fit(x, y, &FitOptions::new(10, 32))?;
    let predictions = model.predict(x_test, 128)?;
    let binary = predictions.data().iter().map(|&p| u8::from(p > 0.5)).collect();
    Ok((model.evaluate(x_test, y_test, 128)?, binary))
}

/// Example 2: two softmax units on one-hot labels; returns the evaluation and the argmax classes.
pub fn example_2(
    device: &dyn Backend,
    x: &Tensor,
    y: &Tensor,
    x_test: &Tensor,
    y_test: &Tensor,
) -> Result<(Evaluation, Vec<usize>)> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(2).activation(Activation::Softmax));
    model.compile(
        device,
        Optimizer::adam(),
        Loss::CategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    model.fit(x, &to_categorical(y, 2)?, &FitOptions::new(10, 32))?;
    let classes = model.predict(x_test, 128)?.argmax_rows();
    Ok((model.evaluate(x_test, &to_categorical(y_test, 2)?, 128)?, classes))
}

/// Example 3: regression with a linear output, mse loss and an mae metric; returns the predictions.
pub fn example_3(device: &dyn Backend, x: &Tensor, y: &Tensor, x_test: &Tensor) -> Result<Tensor> {
    let mut model = Sequential::new().add(hidden(x.row_len())).add(Dense::new(1));
    model.compile(
        device,
        Optimizer::adam(),
        Loss::MeanSquaredError,
        &[Metric::MeanAbsoluteError],
    )?;
    model.fit(x, y, &FitOptions::new(10, 32))?;
    model.predict(x_test, 128)
}

/// MNIST as "is it a zero?": 784 pixels scaled to [0, 1], labels 1 for zeros.
pub fn zero_or_not(images: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
    let x = images.map(|p| p / 255.0).reshape([images.rows(), 784])?;
    Ok((x, labels.map(|l| f32::from(l == 0.0))))
}

fn main() -> Result<()> {
    let device = Device::auto()?;
    let mnist = datasets::mnist()?;
    let (x, y) = zero_or_not(&mnist.x_train, &mnist.y_train)?;
    let (x_test, y_test) = zero_or_not(&mnist.x_test, &mnist.y_test)?;
    let (result, binary) = example_1(&device, &x, &y, &x_test, &y_test)?;
    println!(
        "Example 1 (sigmoid + binary_crossentropy): {result}; first predictions {:?}",
        &binary[..10]
    );
    let (result, classes) = example_2(&device, &x, &y, &x_test, &y_test)?;
    println!(
        "Example 2 (2-unit softmax + categorical_crossentropy): {result}; first classes {:?}",
        &classes[..10]
    );

    let d = datasets::diabetes()?;
    let xs = Standardizer::fit(&d.x_train)?;
    let column = |t: &Tensor| t.clone().reshape([t.rows(), 1]);
    let ys = Standardizer::fit(&column(&d.y_train)?)?;
    let predicted = example_3(
        &device,
        &xs.transform(&d.x_train)?,
        &ys.transform(&column(&d.y_train)?)?,
        &xs.transform(&d.x_test)?,
    )?;
    let predicted = ys.inverse(&predicted)?;
    let mae = predicted
        .data()
        .iter()
        .zip(d.y_test.data())
        .map(|(p, t)| (p - t).abs())
        .sum::<f32>()
        / d.y_test.rows() as f32;
    println!("Example 3 (linear + mse, mae metric): test MAE {mae:.1} (target range 25..346)");
    Ok(())
}
