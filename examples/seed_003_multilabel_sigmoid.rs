//! Seed 003 — "How does Keras handle multi-label classification with sigmoid outputs?" Its three
//! programs, on its random data:
//!
//! 1. Embedding(1000, 64) over 20-token sequences → GlobalAveragePooling1D → Dense(5, sigmoid),
//!    binary_crossentropy, 2 epochs;
//! 2. the functional API with two token inputs (10 tokens of a 500-word vocabulary, 5 of 200) →
//!    embeddings (32 and 16) → mean over the sequence → Concatenate → Dense(3, sigmoid);
//! 3. Dense(4, sigmoid) on 20 features with a user-defined threshold-accuracy metric.
//!
//! `cargo run --release --example seed_003_multilabel_sigmoid`

use kiln::graph::{Backend, ElementwiseOp};
use kiln::prelude::*;

/// Example 1: a sequential multi-label text tagger.
pub fn example_1(device: &dyn Backend, vocab: usize, x: &Tensor, y: &Tensor, epochs: usize) -> Result<Evaluation> {
    let mut model = Sequential::new()
        .add(Embedding::new(vocab, 64).input_length(x.row_len()))
        .add(GlobalAveragePooling1D::new())
        .add(Dense::new(y.row_len()).activation(Activation::Sigmoid));
    model.compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])?;
    model.fit(x, y, &FitOptions::new(epochs, 32))?;
    model.evaluate(x, y, 32)
}

/// Example 2: two token inputs, one embedding each, averaged, concatenated, tagged.
#[allow(clippy::too_many_arguments)]
pub fn example_2(
    device: &dyn Backend,
    (vocab1, vocab2): (usize, usize),
    x1: &Tensor,
    x2: &Tensor,
    y: &Tensor,
    epochs: usize,
) -> Result<Evaluation> {
    let input_1 = Input::new([x1.row_len()]);
    let input_2 = Input::new([x2.row_len()]);
    let embedding1 = Embedding::new(vocab1, 32).call(&input_1)?;
    let embedding2 = Embedding::new(vocab2, 16).call(&input_2)?;
    let pooled1 = Mean::over(1).call(&embedding1)?; // tf.reduce_mean(embedding1, axis=1)
    let pooled2 = Mean::over(1).call(&embedding2)?;
    let merged = Concatenate::new().call_many(&[&pooled1, &pooled2])?;
    let output = Dense::new(y.row_len()).activation(Activation::Sigmoid).call(&merged)?;
    let mut model = Model::new(&[input_1, input_2], &output)?;
    model.compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])?;
    model.fit([x1, x2], y, &FitOptions::new(epochs, 32))?;
    model.evaluate([x1, x2], y, 32)
}

/// The seed's `threshold_accuracy`: `K.mean(K.equal(y_true, y_pred > threshold), axis=-1)`.
pub fn threshold_accuracy(threshold: f32) -> Metric {
    Metric::custom("threshold_accuracy", move |g, y_true, y_pred| {
        let thresholded = g.unary(ElementwiseOp::Greater { threshold }, y_pred)?;
        let equal = g.binary(ElementwiseOp::Equal, y_true, thresholded)?;
        let last = g.shape(equal)?.rank() - 1;
        g.mean(equal, last)
    })
}

/// Example 3: independent sigmoid outputs scored with the custom metric.
pub fn example_3(device: &dyn Backend, x: &Tensor, y: &Tensor, epochs: usize) -> Result<Evaluation> {
    let inputs = Input::new([x.row_len()]);
    let outputs = Dense::new(y.row_len()).activation(Activation::Sigmoid).call(&inputs)?;
    let mut model = Model::new(&[inputs], &outputs)?;
    model.compile(
        device,
        Optimizer::adam(),
        Loss::BinaryCrossentropy,
        &[threshold_accuracy(0.5)],
    )?;
    model.fit(x, y, &FitOptions::new(epochs, 32))?;
    model.evaluate(x, y, 32)
}

fn main() -> Result<()> {
    let device = Device::auto()?;
    let x = random::integers(0, 1000, [1000, 20], 0);
    let y = random::integers(0, 2, [1000, 5], 1);
    println!(
        "Example 1 (Embedding → GlobalAveragePooling1D → sigmoid): {}",
        example_1(&device, 1000, &x, &y, 2)?
    );

    let x1 = random::integers(0, 500, [1000, 10], 2);
    let x2 = random::integers(0, 200, [1000, 5], 3);
    let labels = random::integers(0, 2, [1000, 3], 4);
    println!(
        "Example 2 (two inputs, functional API): {}",
        example_2(&device, (500, 200), &x1, &x2, &labels, 2)?
    );

    let features = random::uniform([1000, 20], 5);
    let tags = random::integers(0, 2, [1000, 4], 6);
    println!(
        "Example 3 (custom threshold accuracy): {}",
        example_3(&device, &features, &tags, 2)?
    );
    Ok(())
}
