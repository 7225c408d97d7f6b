//! An encoder-decoder, as keras.io's sequence-to-sequence examples wire one: an LSTM reads the
//! source and returns its final state (`return_state`), and a second LSTM starts from that state
//! (Keras' `initial_state`) to write the source reversed. The decoder reads only zeros, so all it
//! knows of the source is the state it was handed. Prints the model summary, the held-out mean
//! squared error against the 1.0 of predicting zeros, and one reversed sequence.
//!
//! `cargo run --release --example seq2seq_reversal` — `KILN_EPOCHS=n` (default 30),
//! `KILN_DEVICE=cpu|gpu`.

use kiln::graph::Backend;
use kiln::nn::{Call, Input, Model};
use kiln::prelude::*;

const STEPS: usize = 8;
const UNITS: usize = 48;

/// `n` random sequences of `STEPS` values, the same reversed, and the decoder's blank input.
fn data(n: usize, seed: u64) -> Result<(Tensor, Tensor, Tensor)> {
    let source = random::normal([n, STEPS, 1], seed);
    let reversed: Vec<f32> = (0..n)
        .flat_map(|i| source.row(i).iter().rev().copied().collect::<Vec<_>>())
        .collect();
    let target = Tensor::new([n, STEPS, 1], reversed)?;
    let blank = Tensor::new([n, STEPS, 1], vec![0.0; n * STEPS])?;
    Ok((source, blank, target))
}

fn model() -> Result<Model> {
    let (source, blank) = (Input::new([STEPS, 1]), Input::new([STEPS, 1]));
    // [output, h, c], as Keras' `_, h, c = LSTM(units, return_state=True)(source)`.
    let encoded = LSTM::new(UNITS).return_state(true).call_states(&[&source])?;
    // Keras' `LSTM(units, return_sequences=True)(blank, initial_state=[h, c])`.
    let decoded = LSTM::new(UNITS)
        .return_sequences(true)
        .call_many(&[&blank, &encoded[1], &encoded[2]])?;
    let out = Dense::new(1).call(&decoded)?;
    Ok(Model::new(&[source, blank], &out)?.with_seed(1))
}

fn main() -> Result<()> {
    let epochs = std::env::var("KILN_EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(30);
    let device = Device::auto()?;
    let (source, blank, target) = data(2048, 1)?;
    let (test_source, test_blank, test_target) = data(512, 2)?;
    let mut m = model()?;
    m.compile(&device, Optimizer::adam_lr(0.005), Loss::MeanSquaredError, &[])?;
    print!("{}", m.summary());
    println!("device: {}, {epochs} epochs", device.name());
    let start = std::time::Instant::now();
    m.fit([&source, &blank], &target, &FitOptions::new(epochs, 32).seed(1))?;
    let mse = m.evaluate([&test_source, &test_blank], &test_target, 128)?.loss();
    println!(
        "held-out mean squared error {mse:.4} (predicting zeros: 1.0) after {:.1}s",
        start.elapsed().as_secs_f32()
    );
    let predicted = m.predict([&test_source, &test_blank], 128)?;
    let show = |row: &[f32]| row.iter().map(|v| format!("{v:+.2}")).collect::<Vec<_>>().join(" ");
    println!("source    {}", show(test_source.row(0)));
    println!("reversed  {}", show(test_target.row(0)));
    println!("predicted {}", show(predicted.row(0)));
    Ok(())
}
