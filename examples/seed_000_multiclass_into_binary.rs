//! Seed 000 — "Does Keras restrict output to binary classification, causing accuracy to drop to zero
//! for non-binary targets?" Its three programs, on its random data (100 samples, 10 features,
//! labels 0..3):
//!
//! 1. one sigmoid unit + binary_crossentropy on 3-class integer labels: Keras trains it into
//!    nonsense; Kiln refuses it before the first step and says what to use instead;
//! 2. Dense(3, softmax) + categorical_crossentropy on one-hot labels;
//! 3. Dense(3, softmax) + sparse_categorical_crossentropy on the integer labels.
//!
//! `cargo run --release --example seed_000_multiclass_into_binary`

use kiln::graph::Backend;
use kiln::prelude::*;

fn hidden(input: usize) -> Dense {
    Dense::new(128).activation(Activation::Relu).input_dim(input)
}

/// Example 1: 3 classes squeezed into one sigmoid unit.
pub fn example_1(device: &dyn Backend, x: &Tensor, y: &Tensor) -> Result<Evaluation> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])?;
    model.fit(x, y, &FitOptions::new(10, 32))?;
    model.evaluate(x, y, 32)
}

/// Example 2: softmax over 3 units, one-hot labels, categorical cross-entropy.
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
    model.fit(x, &to_categorical(y, 3)?, &FitOptions::new(10, 32))?;
    model.evaluate(x_eval, &to_categorical(y_eval, 3)?, 32)
}

/// Example 3: softmax over 3 units, integer labels, sparse categorical cross-entropy.
pub fn example_3(device: &dyn Backend, x: &Tensor, y: &Tensor, x_eval: &Tensor, y_eval: &Tensor) -> Result<Evaluation> {
    let mut model = Sequential::new()
        .add(hidden(x.row_len()))
        .add(Dense::new(3).activation(Activation::Softmax));
    model.compile(
        device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    model.fit(x, y, &FitOptions::new(10, 32))?;
    model.evaluate(x_eval, y_eval, 32)
}

fn main() -> Result<()> {
    let device = Device::auto()?;
    let x = random::uniform([100, 10], 0);
    let y = random::integers(0, 3, [100], 1);
    match example_1(&device, &x, &y) {
        Err(e) => println!("Example 1 is refused, as it should be:\n  {e}\n"),
        Ok(r) => println!("Example 1 unexpectedly trained: {r}"),
    }
    println!(
        "Example 2 (softmax + categorical_crossentropy): {}",
        example_2(&device, &x, &y, &x, &y)?
    );
    println!(
        "Example 3 (softmax + sparse_categorical_crossentropy): {}",
        example_3(&device, &x, &y, &x, &y)?
    );
    Ok(())
}
