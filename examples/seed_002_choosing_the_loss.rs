//! Seed 002 — "How can I choose between binary_crossentropy and categorical_crossentropy in Keras?"
//! Its three programs, on its random data (1000 samples of 10 standard-normal features):
//!
//! 1. binary labels, Dense(1, sigmoid), binary_crossentropy, 5 epochs;
//! 2. 3 classes one-hot encoded, Dense(3, softmax), categorical_crossentropy, 5 epochs;
//! 3. 3-class labels into Dense(1, sigmoid) with binary_crossentropy: the seed expects "runtime errors
//!    ... or a model that fails to train"; Kiln refuses it with the fix.
//!
//! `cargo run --release --example seed_002_choosing_the_loss`

use kiln::graph::Backend;
use kiln::prelude::*;

fn hidden(input: usize) -> Dense {
    Dense::new(128).activation(Activation::Relu).input_dim(input)
}

/// Example 1: binary classification.
pub fn example_1(device: &dyn Backend, x: &Tensor, y: &Tensor, x_eval: &Tensor, y_eval: &Tensor) -> Result<Evaluation> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])?;
    model.fit(x, y, &FitOptions::new(5, 32))?;
    model.evaluate(x_eval, y_eval, 32)
}

/// Example 2: 3 classes, one-hot labels, categorical cross-entropy.
pub fn example_2(device: &dyn Backend, x: &Tensor, y: &Tensor, x_eval: &Tensor, y_eval: &Tensor) -> Result<Evaluation> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(3).activation(Activation::Softmax));
    model.compile(
        device,
        Optimizer::adam(),
        Loss::CategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    model.fit(x, &to_categorical(y, 3)?, &FitOptions::new(5, 32))?;
    model.evaluate(x_eval, &to_categorical(y_eval, 3)?, 32)
}

/// Example 3: 3-class labels into one sigmoid unit.
pub fn example_3(device: &dyn Backend, x: &Tensor, y: &Tensor) -> Result<Evaluation> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])?;
    model.fit(x, y, &FitOptions::new(5, 32))?;
    model.evaluate(x, y, 32)
}

fn main() -> Result<()> {
    let device = Device::auto()?;
    let x = random::normal([1000, 10], 0);
    let y_binary = random::integers(0, 2, [1000, 1], 1);
    let y_three = random::integers(0, 3, [1000], 2);
    println!(
        "Example 1 (sigmoid + binary_crossentropy): {}",
        example_1(&device, &x, &y_binary, &x, &y_binary)?
    );
    println!(
        "Example 2 (softmax + categorical_crossentropy): {}",
        example_2(&device, &x, &y_three, &x, &y_three)?
    );
    match example_3(&device, &x, &y_three) {
        Err(e) => println!("Example 3 is refused, as it should be:\n  {e}"),
        Ok(r) => println!("Example 3 unexpectedly trained: {r}"),
    }
    Ok(())
}
