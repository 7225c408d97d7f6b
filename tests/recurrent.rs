//! LSTM, GRU and Bidirectional against Keras' step formulas computed on the host in f64
//! (keras/src/layers/rnn/lstm.py and gru.py, `call` of the cells), on both backends: every step's
//! output, reversed reading, both GRU reset placements; Keras' initialisers and parameter counts;
//! and a model with a recurrent layer learning a task that needs memory.

mod common;

use common::host_rnn::{host_gru, host_lstm, sequences};
use kiln::cpu::CpuBackend;
use kiln::nn::layers::recurrent::Wrapped;
use kiln::nn::Weight;
use kiln::prelude::*;

/// `m` with the recurrent layer added.
fn with(m: Sequential, layer: Wrapped) -> Sequential {
    match layer {
        Wrapped::LSTM(l) => m.add(l),
        Wrapped::GRU(l) => m.add(l),
    }
}

/// A host reference: every step's output of one sequence under the read-back weights.
type Host = dyn Fn(&[Vec<f64>], &[Weight]) -> Vec<Vec<f64>>;

/// Trains one step (so the weights leave their initial values), then compares `predict` with
/// `host` on the read-back weights: every step's output when `sequences`, else the last.
fn check(what: &str, layer: impl Into<Wrapped> + Clone, host: &Host, reverse: bool, sequences_out: bool) {
    let x = random::normal([3, 21, 2], 4);
    for device in common::backends() {
        let mut m = with(Sequential::new().input_shape([21, 2]), layer.clone().into());
        m.compile(device.as_ref(), Optimizer::adam_lr(0.05), Loss::MeanSquaredError, &[])
            .unwrap();
        let out_shape: Vec<usize> = if sequences_out { vec![3, 21, 3] } else { vec![3, 3] };
        m.train_on_batch(&x, &random::normal(out_shape, 5)).unwrap();
        let w = m.weights().unwrap();
        let got = m.predict(&x, 3).unwrap();
        let want: Vec<f32> = sequences(&x, reverse)
            .iter()
            .flat_map(|seq| {
                let steps = host(seq, &w);
                let kept = if sequences_out {
                    steps
                } else {
                    vec![steps.last().unwrap().clone()]
                };
                kept.into_iter().flatten().map(|v| v as f32)
            })
            .collect();
        common::assert_close(&format!("{what} on {}", device.name()), got.data(), &want, 1e-5, 1e-4);
    }
}

#[test]
fn lstm_matches_keras_step_formulas_over_21_steps() {
    let host = |seq: &[Vec<f64>], w: &[Weight]| host_lstm(seq, w, 3);
    check(
        "lstm sequences",
        LSTM::new(3).return_sequences(true),
        &host,
        false,
        true,
    );
    check("lstm last", LSTM::new(3), &host, false, false);
    check(
        "lstm backwards",
        LSTM::new(3).go_backwards(true).return_sequences(true),
        &host,
        true,
        true,
    );
}

#[test]
fn gru_matches_keras_step_formulas_with_either_reset_placement() {
    let after = |seq: &[Vec<f64>], w: &[Weight]| host_gru(seq, w, 3, true);
    let before = |seq: &[Vec<f64>], w: &[Weight]| host_gru(seq, w, 3, false);
    check(
        "gru reset_after",
        GRU::new(3).return_sequences(true),
        &after,
        false,
        true,
    );
    check(
        "gru reset before",
        GRU::new(3).reset_after(false).return_sequences(true),
        &before,
        false,
        true,
    );
    check(
        "gru backwards, last",
        GRU::new(3).go_backwards(true),
        &after,
        true,
        false,
    );
}

#[test]
fn bidirectional_joins_the_forward_reading_and_the_backward_one_in_time_order() {
    let x = random::normal([2, 6, 3], 8);
    for device in common::backends() {
        let mut m = Sequential::new()
            .input_shape([6, 3])
            .add(Bidirectional::new(LSTM::new(2).return_sequences(true)));
        m.compile(device.as_ref(), Optimizer::adam(), Loss::MeanSquaredError, &[])
            .unwrap();
        let w = m.weights().unwrap();
        let names: Vec<&str> = w.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bidirectional/forward_kernel",
                "bidirectional/forward_recurrent_kernel",
                "bidirectional/forward_bias",
                "bidirectional/backward_kernel",
                "bidirectional/backward_recurrent_kernel",
                "bidirectional/backward_bias",
            ]
        );
        let got = m.predict(&x, 2).unwrap();
        assert_eq!(got.shape(), [2, 6, 4]);
        let (fw, bw) = (sequences(&x, false), sequences(&x, true));
        let mut want = Vec::new();
        for s in 0..2 {
            let forward = host_lstm(&fw[s], &w[..3], 2);
            let mut backward = host_lstm(&bw[s], &w[3..], 2);
            backward.reverse();
            for t in 0..6 {
                want.extend(forward[t].iter().chain(&backward[t]).map(|&v| v as f32));
            }
        }
        common::assert_close(
            &format!("bidirectional on {}", device.name()),
            got.data(),
            &want,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn initial_weights_and_parameter_counts_are_keras() {
    let mut m = Sequential::new().input_shape([100, 6]).add(LSTM::new(64));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    // Keras: 4·(64·6 + 64·64 + 64) = 18,176.
    assert!(
        m.summary().contains("18,176") || m.summary().contains("18176"),
        "{}",
        m.summary()
    );
    let w = m.weights().unwrap();
    // Orthogonal recurrent kernel [64, 256]: its rows are orthonormal.
    let u = &w[1].values;
    for i in 0..64 {
        for j in 0..64 {
            let dot: f32 = (0..256).map(|k| u[i * 256 + k] * u[j * 256 + k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-4, "row {i}·row {j} = {dot}");
        }
    }
    // unit_forget_bias: ones for the forget gate (the second block), zeros elsewhere.
    let b = &w[2].values;
    assert!(b
        .iter()
        .enumerate()
        .all(|(k, &v)| v == if (64..128).contains(&k) { 1.0 } else { 0.0 }));

    let mut m = Sequential::new().input_shape([100, 6]).add(GRU::new(64));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    // Keras (reset_after): 3·(64·6 + 64·64 + 2·64) = 13,824, bias [2, 192].
    assert!(
        m.summary().contains("13,824") || m.summary().contains("13824"),
        "{}",
        m.summary()
    );
    assert_eq!(m.weights().unwrap()[2].shape, [2, 192]);
}

#[test]
fn recurrent_layers_refuse_inputs_that_are_not_sequences() {
    let mut m = Sequential::new().input_shape([12]).add(LSTM::new(4));
    let err = m
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("[time steps, features]"), "{err}");
    let mut m = Sequential::new().input_shape([5, 3]).add(GRU::new(0));
    let err = m
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("units"), "{err}");
}

/// The label is the sign of the sequence's first value, seen 15 steps before the end: a model
/// without memory across steps cannot beat chance.
#[test]
fn an_lstm_and_a_gru_learn_a_task_that_needs_memory() {
    let n = 256;
    let x = random::normal([n, 16, 1], 11);
    let labels: Vec<f32> = x.data().chunks(16).map(|s| f32::from(s[0] > 0.0)).collect();
    let y = Tensor::new([n, 1], labels).unwrap();
    for layer in [Wrapped::from(LSTM::new(8)), Wrapped::from(GRU::new(8))] {
        let mut m = with(Sequential::new().seed(3).input_shape([16, 1]), layer.clone())
            .add(Dense::new(1).activation(Activation::Sigmoid));
        m.compile(
            &CpuBackend,
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m.fit(&x, &y, &FitOptions::new(30, 32).seed(1)).unwrap();
        let acc = m.evaluate(&x, &y, 64).unwrap().get("accuracy").unwrap();
        assert!(acc > 0.9, "{layer:?}: accuracy {acc}");
    }
}

/// TimeDistributed(Conv2D) over the frames of a clip equals Conv2D on each frame alone, with the
/// same weights; the weights are the wrapped layer's.
#[test]
fn time_distributed_applies_one_layer_to_every_step() {
    let clip = random::normal([2, 3, 5, 5, 1], 6);
    for device in common::backends() {
        let mut m = Sequential::new().input_shape([3, 5, 5, 1]).add(TimeDistributed::new(
            Conv2D::new(2, (3, 3)).activation(Activation::Relu),
        ));
        m.compile(device.as_ref(), Optimizer::adam(), Loss::MeanSquaredError, &[])
            .unwrap();
        let w = m.weights().unwrap();
        assert_eq!(w[0].name, "time_distributed/kernel");
        let got = m.predict(&clip, 2).unwrap();
        assert_eq!(got.shape(), [2, 3, 3, 3, 2]);
        let mut frames = Sequential::new()
            .input_shape([5, 5, 1])
            .add(Conv2D::new(2, (3, 3)).activation(Activation::Relu));
        frames
            .compile(device.as_ref(), Optimizer::adam(), Loss::MeanSquaredError, &[])
            .unwrap();
        frames
            .set_weights(&[
                Weight {
                    name: "conv2d/kernel".into(),
                    ..w[0].clone()
                },
                Weight {
                    name: "conv2d/bias".into(),
                    ..w[1].clone()
                },
            ])
            .unwrap();
        let each = frames.predict(&clip.clone().reshape([6, 5, 5, 1]).unwrap(), 6).unwrap();
        common::assert_close(
            &format!("frames on {}", device.name()),
            got.data(),
            each.data(),
            1e-6,
            1e-6,
        );
    }
}

/// Keras' `dropout` on a recurrent layer's inputs acts only while training, and the CPU and the GPU
/// draw the same masks.
#[test]
fn recurrent_input_dropout_trains_only_and_agrees_across_backends() {
    let (x, y) = (random::normal([4, 9, 3], 12), random::normal([4, 2], 13));
    let build = |rate: f32, device: &dyn kiln::graph::Backend| {
        let mut m = Sequential::new()
            .seed(5)
            .input_shape([9, 3])
            .add(Bidirectional::new(GRU::new(2).dropout(rate)))
            .add(Dense::new(2));
        m.compile(device, Optimizer::sgd(0.01), Loss::MeanSquaredError, &[])
            .unwrap();
        m
    };
    let mut losses = Vec::new();
    for device in common::backends() {
        let (mut with, mut without) = (build(0.5, device.as_ref()), build(0.0, device.as_ref()));
        assert_eq!(with.predict(&x, 4).unwrap(), without.predict(&x, 4).unwrap());
        let (a, b) = (
            with.train_on_batch(&x, &y).unwrap(),
            without.train_on_batch(&x, &y).unwrap(),
        );
        assert!((a - b).abs() > 1e-6, "dropout changed nothing in training ({a} vs {b})");
        losses.push(a);
    }
    if let [cpu, gpu] = losses[..] {
        assert!((cpu - gpu).abs() <= 1e-5 * cpu.abs().max(1.0), "cpu {cpu} vs gpu {gpu}");
    }
    let mut bad = Sequential::new().input_shape([9, 3]).add(LSTM::new(2).dropout(1.0));
    let err = bad
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err();
    assert!(err.to_string().contains("dropout"), "{err}");
}

/// Keras' `recurrent_dropout`: a mask per gate on the state, drawn once per sequence, in training
/// only (keras/src/layers/rnn/lstm.py and gru.py, `implementation=1`). Inference is untouched; a
/// one-step sequence is untouched too (its state starts at zero); the CPU and the GPU drop the same
/// units; a saved model keeps the rate.
#[test]
fn recurrent_dropout_drops_state_units_in_training_only() {
    // The layer with a given recurrent dropout rate.
    type WithRate = fn(f32) -> Wrapped;
    let layers: [(&str, WithRate); 4] = [
        ("lstm", |r| LSTM::new(3).recurrent_dropout(r).into()),
        ("gru", |r| GRU::new(3).recurrent_dropout(r).into()),
        ("gru reset before", |r| {
            GRU::new(3).reset_after(false).recurrent_dropout(r).into()
        }),
        // With both, each gate reads the input through its own mask too.
        ("lstm with input dropout", |r| {
            LSTM::new(3).dropout(0.2).recurrent_dropout(r).into()
        }),
    ];
    for (what, layer) in layers {
        let build = |rate: f32, steps: usize, device: &dyn kiln::graph::Backend| {
            let m = Sequential::new().seed(5).input_shape([steps, 2]);
            let mut m = with(m, layer(rate)).add(Dense::new(2));
            m.compile(device, Optimizer::sgd(0.01), Loss::MeanSquaredError, &[])
                .unwrap();
            m
        };
        let (x, y) = (random::normal([4, 7, 2], 12), random::normal([4, 2], 13));
        let mut losses = Vec::new();
        for device in common::backends() {
            let (mut with_rd, mut without) = (build(0.5, 7, device.as_ref()), build(0.0, 7, device.as_ref()));
            assert_eq!(
                with_rd.predict(&x, 4).unwrap(),
                without.predict(&x, 4).unwrap(),
                "{what}"
            );
            let (a, b) = (
                with_rd.train_on_batch(&x, &y).unwrap(),
                without.train_on_batch(&x, &y).unwrap(),
            );
            assert!(
                (a - b).abs() > 1e-6,
                "{what}: recurrent dropout changed nothing ({a} vs {b})"
            );
            losses.push(a);
            if what.contains("input dropout") {
                continue;
            }
            let x1 = random::normal([4, 1, 2], 14);
            let (mut one_rd, mut one) = (build(0.5, 1, device.as_ref()), build(0.0, 1, device.as_ref()));
            assert_eq!(
                one_rd.train_on_batch(&x1, &y).unwrap(),
                one.train_on_batch(&x1, &y).unwrap(),
                "{what}: a one-step sequence has no state to drop"
            );
        }
        if let [cpu, gpu] = losses[..] {
            assert!(
                (cpu - gpu).abs() <= 1e-5 * cpu.abs().max(1.0),
                "{what}: cpu {cpu} vs gpu {gpu}"
            );
        }
        let mut m = build(0.3, 7, &CpuBackend);
        let path = std::env::temp_dir().join(format!(
            "kiln-recurrent-dropout-{}-{what}.safetensors",
            std::process::id()
        ));
        m.save(&path).unwrap();
        let mut loaded = load_model(&path, &CpuBackend).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            loaded.train_on_batch(&x, &y).unwrap(),
            m.train_on_batch(&x, &y).unwrap(),
            "{what}"
        );
    }
    let mut bad = Sequential::new()
        .input_shape([9, 3])
        .add(GRU::new(2).recurrent_dropout(1.0));
    let err = bad
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err();
    assert!(err.to_string().contains("recurrent_dropout"), "{err}");
}

/// The fused LSTM (one step for the whole recurrence) and the unrolled one compute the same
/// outputs and the same training step, forwards and backwards, on both backends.
#[test]
fn the_fused_and_the_unrolled_lstm_agree() {
    fused_and_unrolled_agree(|unroll, backwards, sequences| {
        LSTM::new(4)
            .unroll(unroll)
            .go_backwards(backwards)
            .return_sequences(sequences)
    });
}

/// The same for the GRU (`reset_after`, Keras' default), which has its own fused step.
#[test]
fn the_fused_and_the_unrolled_gru_agree() {
    fused_and_unrolled_agree(|unroll, backwards, sequences| {
        GRU::new(4)
            .unroll(unroll)
            .go_backwards(backwards)
            .return_sequences(sequences)
    });
}

/// `layer(unroll, go_backwards, return_sequences)` fused and unrolled: the same predictions, and
/// the same weights after a training step, on each backend.
fn fused_and_unrolled_agree<L: Layer + 'static>(layer: impl Fn(bool, bool, bool) -> L) {
    let (x, y_seq, y_last) = (
        random::normal([5, 13, 3], 14),
        random::normal([5, 13, 4], 15),
        random::normal([5, 4], 16),
    );
    for device in common::backends() {
        for (backwards, sequences) in [(false, true), (true, true), (true, false), (false, false)] {
            let mut models: Vec<Sequential> = [false, true]
                .into_iter()
                .map(|unroll| {
                    let mut m = Sequential::new()
                        .seed(8)
                        .input_shape([13, 3])
                        .add(layer(unroll, backwards, sequences));
                    m.compile(device.as_ref(), Optimizer::adam_lr(0.01), Loss::MeanSquaredError, &[])
                        .unwrap();
                    m
                })
                .collect();
            let y = if sequences { &y_seq } else { &y_last };
            let what = format!("backwards {backwards}, sequences {sequences} on {}", device.name());
            let (fused, unrolled) = (models[0].predict(&x, 5).unwrap(), models[1].predict(&x, 5).unwrap());
            common::assert_close(&what, fused.data(), unrolled.data(), 1e-5, 1e-4);
            for m in &mut models {
                m.train_on_batch(&x, y).unwrap();
            }
            let (a, b) = (models[0].weights().unwrap(), models[1].weights().unwrap());
            for (wa, wb) in a.iter().zip(&b) {
                common::assert_close(&format!("{what}: {}", wa.name), &wa.values, &wb.values, 1e-5, 1e-4);
            }
        }
    }
}
