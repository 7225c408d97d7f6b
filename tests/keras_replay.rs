//! Kiln against Keras number for number. `benches/keras/trace.py` recorded short runs of Keras
//! 3.15.1 (JAX backend, CPU): the initial weights, the batch order, and every batch's loss, from
//! Keras' float32 run and from the same run in float64. Kiln replays each on the CPU and the GPU.
//!
//! Loading the files checks that Keras' weights load by name into Kiln's layers (convolution
//! kernels, BatchNormalization's gamma, beta and moving statistics, the LSTM's `i, f, c, o` and the
//! GRU's `z, r, h` gate blocks, the GRU's two bias rows, MultiHeadAttention's per-head projections). The losses check that the layers, the
//! loss and Adam compute what Keras' do, step after step: each batch's loss must stay within
//! rounding of Keras' float64 run. Measured over these 12 batches (largest |Δ loss| from float64):
//! Kiln's CPU 4.9e-5 (FCN), 2.4e-7 (LSTM), 6.0e-7 (GRU), 3.0e-7 (Transformer, 15 batches);
//! lavapipe 1.2e-4, 1.2e-5, 1.8e-5, 3.5e-6; Keras' own float32 run 4.8e-4, 2.5e-6, 3.8e-6, 6.6e-7. The FCN's drift is the largest because BatchNormalization
//! over the ragged last batch of 2 amplifies rounding.

mod common;

#[path = "../examples/keras_replay.rs"]
#[allow(dead_code)]
mod keras_replay;

use keras_replay::{drift, replay, Trace};

/// Replays trace `name` on every backend; each batch loss must be within `tolerance` of Keras'
/// float64 run.
fn replays_within(name: &str, tolerance: f32) {
    let dir = format!("{}/tests/data/keras/{name}", env!("CARGO_MANIFEST_DIR"));
    let trace = Trace::read(&dir).unwrap();
    let steps = trace.losses_f64.len();
    assert!(steps >= 10, "{name}: the trace has {steps} batches");
    let keras_f32 = drift(&trace.losses, &trace.losses_f64, steps);
    for device in common::backends() {
        let run = replay(device.as_ref(), &trace, false).unwrap();
        assert_eq!(run.losses.len(), steps, "{name}: one loss per batch");
        // Same weights and the same rows: the first loss agrees to f32 rounding.
        let first = (run.losses[0] - trace.losses_f64[0]).abs();
        assert!(
            first <= 1e-6 * trace.losses_f64[0].max(1.0),
            "{name} on {}: first batch loss {} against Keras' {} (float64)",
            device.name(),
            run.losses[0],
            trace.losses_f64[0]
        );
        let kiln = drift(&run.losses, &trace.losses_f64, steps);
        assert!(
            kiln <= tolerance,
            "{name} on {}: a batch loss is {kiln:.2e} from Keras' float64 run (tolerance {tolerance:.0e}; \
             Keras' float32 run: {keras_f32:.2e})\n  Kiln  {:?}\n  Keras {:?}",
            device.name(),
            run.losses,
            trace.losses_f64
        );
        eprintln!(
            "{name} on {}: largest |Δ loss| from Keras float64 over {steps} batches: Kiln {kiln:.2e}, Keras float32 \
             {keras_f32:.2e}",
            device.name()
        );
    }
}

/// Conv1D, BatchNormalization in training mode (batch statistics, the moving-statistics update,
/// a last batch of 2), ReLU, GlobalAveragePooling1D, softmax cross-entropy and Adam.
#[test]
fn the_fcn_follows_keras_on_gunpoint() {
    replays_within("fcn_gunpoint", 1e-3);
}

/// The fused LSTM over 100 steps of 6 channels, with Keras' gate order and unit forget bias.
#[test]
fn the_lstm_follows_keras_on_basic_motions() {
    replays_within("lstm_basic_motions", 1e-4);
}

/// Conv2D (3×3, same), BatchNormalization over 32 × 28 × 28 positions, the residual Add,
/// MaxPooling2D and GlobalAveragePooling2D: the residual CNN of `examples/residual_cnn.rs` on the
/// MNIST sample, 10 batches of 32.
#[test]
fn the_residual_cnn_follows_keras_on_mnist() {
    replays_within("resnet_mnist", 1e-3);
}

/// MultiHeadAttention (Keras' `[features, heads, dim]` projections), LayerNormalization, 1×1
/// Conv1D, the Add joins and Dense on sequences: the Transformer classifier with dropout at 0.
#[test]
fn the_transformer_follows_keras_on_italy_power_demand() {
    replays_within("transformer_italy_power", 1e-4);
}

/// The fused GRU (`reset_after`) with Keras' two bias rows.
#[test]
fn the_gru_follows_keras_on_basic_motions() {
    replays_within("gru_basic_motions", 1e-4);
}
