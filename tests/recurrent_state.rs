//! Recurrent layers' states, as Keras' RNN layers take and give them (keras/src/layers/rnn/rnn.py,
//! `initial_state` and `return_state`): a layer started from a given state and its returned final
//! state against Keras' step formulas on the host in f64 — LSTM and GRU, fused and unrolled,
//! forwards and backwards, under a mask, and Bidirectional's split of states — on both backends;
//! an encoder-decoder whose decoder learns only through the state it is handed; and the errors,
//! the summary and the model file of a layer with several outputs.

mod common;

use std::path::Path;

use common::host_rnn::{host_gru_from, host_lstm_from, sequences};
use kiln::cpu::CpuBackend;
use kiln::nn::{Call, Input, Model, SymbolicTensor, Weight};
use kiln::prelude::*;

const UNITS: usize = 3;

/// `[n, units]` rows of `t` as f64 vectors.
fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    (0..t.rows())
        .map(|i| t.row(i).iter().map(|&v| f64::from(v)).collect())
        .collect()
}

/// Compiles `m` on `device` (a loss is needed to compile; these models only predict).
fn compiled(mut m: Model, device: &dyn kiln::graph::Backend) -> Model {
    m.compile(device, Optimizer::adam_lr(0.05), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

/// Trains `m` one step on `x` so its weights leave their initial values (a zero bias hides a
/// bias that is read wrong), then predicts `x`.
fn stepped_prediction(m: &mut Model, x: &[&Tensor], width: usize) -> Tensor {
    let n = x[0].rows();
    m.train_on_batch(x.to_vec(), &random::normal([n, width], 9)).unwrap();
    m.predict(x.to_vec(), n).unwrap()
}

/// An LSTM from `[h₀, c₀]` with `return_state`, over 21 steps: the model's output is the layer's
/// last output, `h` and `c` side by side; the host runs Keras' formulas from the same state.
fn lstm_from_state_matches_keras(unroll: bool, backwards: bool) {
    let (x, h0, c0) = (
        random::normal([4, 21, 2], 1),
        random::normal([4, UNITS], 2),
        random::normal([4, UNITS], 3),
    );
    for device in common::backends() {
        let (xi, hi, ci) = (Input::new([21, 2]), Input::new([UNITS]), Input::new([UNITS]));
        let all = LSTM::new(UNITS)
            .unroll(unroll)
            .go_backwards(backwards)
            .return_state(true)
            .call_states(&[&xi, &hi, &ci])
            .unwrap();
        assert_eq!(all.len(), 3, "[output, h, c]");
        let joined = Concatenate::new().call_many(&[&all[0], &all[1], &all[2]]).unwrap();
        let mut m = compiled(
            Model::new(&[xi, hi, ci], &joined).unwrap().with_seed(4),
            device.as_ref(),
        );
        let got = stepped_prediction(&mut m, &[&x, &h0, &c0], 3 * UNITS);
        let w = m.weights().unwrap();
        let want: Vec<f32> = sequences(&x, backwards)
            .iter()
            .zip(rows(&h0).into_iter().zip(rows(&c0)))
            .flat_map(|(seq, (h, c))| {
                let (outs, c) = host_lstm_from(seq, &w, [h, c]);
                let h = outs.last().unwrap().clone();
                [h.clone(), h, c].concat().into_iter().map(|v| v as f32)
            })
            .collect();
        let what = format!(
            "lstm from a state (unroll {unroll}, backwards {backwards}) on {}",
            device.name()
        );
        common::assert_close(&what, got.data(), &want, 1e-5, 1e-4);
    }
}

#[test]
fn a_fused_lstm_starts_from_the_given_state_and_returns_its_final_h_and_c() {
    lstm_from_state_matches_keras(false, false);
    lstm_from_state_matches_keras(false, true);
}

#[test]
fn an_unrolled_lstm_starts_from_the_given_state_and_returns_its_final_h_and_c() {
    lstm_from_state_matches_keras(true, false);
    lstm_from_state_matches_keras(true, true);
}

/// A GRU from `h₀` with `return_state` and every step's output: the model's output is the
/// sequence (flattened) and the final `h`. `reset_after` off builds the unrolled graph.
#[test]
fn a_gru_starts_from_the_given_state_and_returns_its_final_h() {
    let (x, h0) = (random::normal([4, 21, 2], 5), random::normal([4, UNITS], 6));
    for device in common::backends() {
        for (reset_after, backwards) in [(true, false), (true, true), (false, true)] {
            let (xi, hi) = (Input::new([21, 2]), Input::new([UNITS]));
            let all = GRU::new(UNITS)
                .reset_after(reset_after)
                .go_backwards(backwards)
                .return_sequences(true)
                .return_state(true)
                .call_states(&[&xi, &hi])
                .unwrap();
            assert_eq!(all[0].shape(), &[21, UNITS]);
            assert_eq!(all[1].shape(), &[UNITS]);
            let flat = Flatten::new().call(&all[0]).unwrap();
            let joined = Concatenate::new().call_many(&[&flat, &all[1]]).unwrap();
            let mut m = compiled(Model::new(&[xi, hi], &joined).unwrap().with_seed(4), device.as_ref());
            let got = stepped_prediction(&mut m, &[&x, &h0], 22 * UNITS);
            let w = m.weights().unwrap();
            let want: Vec<f32> = sequences(&x, backwards)
                .iter()
                .zip(rows(&h0))
                .flat_map(|(seq, h)| {
                    let outs = host_gru_from(seq, &w, reset_after, h);
                    let last = outs.last().unwrap().clone();
                    outs.into_iter().flatten().chain(last).map(|v| v as f32)
                })
                .collect();
            let what = format!(
                "gru from a state (reset_after {reset_after}, backwards {backwards}) on {}",
                device.name()
            );
            common::assert_close(&what, got.data(), &want, 1e-5, 1e-4);
        }
    }
}

/// Under a mask (`Embedding(mask_zero)`), padded steps leave the state as it is — from the given
/// initial state before the first real token — so the returned state is the one after the last
/// real step, as Keras' masked loop gives (padding at the start, the middle and the end here).
#[test]
fn a_masked_lstm_carries_the_given_state_over_padding() {
    let tokens = Tensor::new(
        [3, 9],
        vec![
            0., 0., 3., 1., 4., 2., 0., 0., 0., //
            2., 0., 1., 0., 3., 3., 4., 1., 2., //
            0., 0., 0., 0., 0., 0., 0., 0., 4.,
        ],
    )
    .unwrap();
    let (h0, c0) = (random::normal([3, UNITS], 12), random::normal([3, UNITS], 13));
    for device in common::backends() {
        let (ti, hi, ci) = (Input::new([9]), Input::new([UNITS]), Input::new([UNITS]));
        let embedded = Embedding::new(5, 2).mask_zero(true).call(&ti).unwrap();
        let all = LSTM::new(UNITS)
            .return_state(true)
            .call_states(&[&embedded, &hi, &ci])
            .unwrap();
        let joined = Concatenate::new().call_many(&[&all[1], &all[2]]).unwrap();
        let mut m = compiled(
            Model::new(&[ti, hi, ci], &joined).unwrap().with_seed(2),
            device.as_ref(),
        );
        let got = stepped_prediction(&mut m, &[&tokens, &h0, &c0], 2 * UNITS);
        let w = m.weights().unwrap();
        let table = &w.iter().find(|w| w.name == "embedding/embeddings").unwrap().values;
        let lstm: Vec<Weight> = w.iter().filter(|w| w.name.starts_with("lstm/")).cloned().collect();
        let want: Vec<f32> = (0..3)
            .zip(rows(&h0).into_iter().zip(rows(&c0)))
            .flat_map(|(s, (h, c))| {
                // The real steps alone: a padded step changes nothing.
                let seq: Vec<Vec<f64>> = tokens
                    .row(s)
                    .iter()
                    .filter(|&&t| t != 0.0)
                    .map(|&t| table[t as usize * 2..][..2].iter().map(|&v| f64::from(v)).collect())
                    .collect();
                let (outs, c) = host_lstm_from(&seq, &lstm, [h, c]);
                [outs.last().unwrap().clone(), c].concat().into_iter().map(|v| v as f32)
            })
            .collect();
        common::assert_close(
            &format!("masked lstm on {}", device.name()),
            got.data(),
            &want,
            1e-5,
            1e-4,
        );
    }
}

/// Keras' `Bidirectional.call`: the first half of the initial states starts the forward layer,
/// the second half the backward one, and the returned states are the forward layer's `h, c` then
/// the backward layer's.
#[test]
fn bidirectional_splits_the_states_forward_then_backward() {
    let x = random::normal([4, 21, 2], 20);
    let start: Vec<Tensor> = (0..4).map(|k| random::normal([4, UNITS], 21 + k)).collect();
    for device in common::backends() {
        let xi = Input::new([21, 2]);
        let states: Vec<SymbolicTensor> = (0..4).map(|_| Input::new([UNITS])).collect();
        let mut inputs = vec![&xi];
        inputs.extend(&states);
        let all = Bidirectional::new(LSTM::new(UNITS).return_state(true))
            .call_states(&inputs)
            .unwrap();
        assert_eq!(all.len(), 5, "[output, forward h, forward c, backward h, backward c]");
        assert_eq!(all[0].shape(), &[2 * UNITS]);
        let refs: Vec<&SymbolicTensor> = all.iter().collect();
        let joined = Concatenate::new().call_many(&refs).unwrap();
        let mut model_inputs = vec![xi];
        model_inputs.extend(states);
        let mut m = compiled(
            Model::new(&model_inputs, &joined).unwrap().with_seed(3),
            device.as_ref(),
        );
        let mut feed = vec![&x];
        feed.extend(&start);
        let got = stepped_prediction(&mut m, &feed, 6 * UNITS);
        let w = m.weights().unwrap();
        let (forward, backward) = w.split_at(3);
        let s: Vec<Vec<Vec<f64>>> = start.iter().map(rows).collect();
        let (ahead, behind) = (sequences(&x, false), sequences(&x, true));
        let want: Vec<f32> = (0..4)
            .flat_map(|i| {
                let (f_outs, f_c) = host_lstm_from(&ahead[i], forward, [s[0][i].clone(), s[1][i].clone()]);
                let (b_outs, b_c) = host_lstm_from(&behind[i], backward, [s[2][i].clone(), s[3][i].clone()]);
                let (f_h, b_h) = (f_outs.last().unwrap().clone(), b_outs.last().unwrap().clone());
                [f_h.clone(), b_h.clone(), f_h, f_c, b_h, b_c]
                    .concat()
                    .into_iter()
                    .map(|v| v as f32)
            })
            .collect();
        common::assert_close(
            &format!("bidirectional states on {}", device.name()),
            got.data(),
            &want,
            1e-5,
            1e-4,
        );
    }
}

/// An encoder-decoder as keras.io's seq2seq example builds it: the encoder's `[h, c]` start the
/// decoder. The decoder reads only zeros, so everything it knows of the source comes through the
/// state it is handed: learning the source reversed needs gradients through the initial state
/// into the encoder. Predicting the mean scores an MSE of about 1.
fn seq2seq(encoder: impl Fn() -> LSTM, decoder: impl Fn() -> LSTM) -> Model {
    let (source, blank) = (Input::new([6, 1]), Input::new([6, 1]));
    let encoded = encoder().return_state(true).call_states(&[&source]).unwrap();
    let decoded = decoder()
        .return_sequences(true)
        .call_many(&[&blank, &encoded[1], &encoded[2]])
        .unwrap();
    let out = Dense::new(1).call(&decoded).unwrap();
    Model::new(&[source, blank], &out).unwrap().with_seed(1)
}

/// A source sequence, the same reversed, and the decoder's blank input, `[n, 6, 1]` each.
fn reversal(n: usize) -> (Tensor, Tensor, Tensor) {
    let source = random::normal([n, 6, 1], 30);
    let reversed: Vec<f32> = (0..n)
        .flat_map(|i| source.row(i).iter().rev().copied().collect::<Vec<_>>())
        .collect();
    let target = Tensor::new([n, 6, 1], reversed).unwrap();
    let blank = Tensor::new([n, 6, 1], vec![0.0; n * 6]).unwrap();
    (source, blank, target)
}

/// Trains the encoder-decoder 40 epochs under `policy` on `device`: the first and last epochs'
/// losses.
fn train_reversal(device: &dyn kiln::graph::Backend, policy: DTypePolicy) -> (f32, f32) {
    let (source, blank, target) = reversal(256);
    let mut m = seq2seq(|| LSTM::new(24), || LSTM::new(24));
    m.set_dtype_policy(policy);
    m.compile(device, Optimizer::adam_lr(0.01), Loss::MeanSquaredError, &[])
        .unwrap();
    let history = m
        .fit([&source, &blank], &target, &FitOptions::new(40, 32).verbose(0))
        .unwrap();
    let losses = history.get("loss").unwrap();
    (losses[0], *losses.last().unwrap())
}

#[test]
fn a_decoder_learns_through_the_state_the_encoder_hands_it() {
    let mut first_losses = Vec::new();
    for device in common::backends() {
        let (first, last) = train_reversal(device.as_ref(), DTypePolicy::Float32);
        println!("{}: seq2seq reversal MSE {first:.4} -> {last:.4}", device.name());
        assert!(
            last < 0.15,
            "{}: the decoder did not learn the source: MSE {last}",
            device.name()
        );
        first_losses.push(first);
    }
    // The same start and the same batches: the backends' first epochs agree.
    if let [cpu, gpu] = first_losses[..] {
        assert!((cpu - gpu).abs() < 1e-3, "first-epoch loss: CPU {cpu}, GPU {gpu}");
    }
}

/// Under `mixed_float16` the states cross between layers as f16 values, as every other value
/// does, and the encoder-decoder still learns.
#[test]
fn the_encoder_decoder_learns_under_mixed_float16() {
    for device in common::backends() {
        let (first, last) = train_reversal(device.as_ref(), DTypePolicy::MixedFloat16);
        println!(
            "{}: mixed_float16 seq2seq reversal MSE {first:.4} -> {last:.4}",
            device.name()
        );
        assert!(last < 0.15, "{}: MSE {last} under mixed_float16", device.name());
    }
}

/// A returned state can be the model's output itself (an encoder model): its `c` against Keras'
/// formulas, and a loss on it trains.
#[test]
fn a_returned_state_can_be_the_model_output() {
    let x = random::normal([4, 21, 2], 60);
    for device in common::backends() {
        let xi = Input::new([21, 2]);
        let all = LSTM::new(UNITS).return_state(true).call_states(&[&xi]).unwrap();
        let mut m = compiled(Model::new(&[xi], &all[2]).unwrap().with_seed(5), device.as_ref());
        let got = stepped_prediction(&mut m, &[&x], UNITS);
        let w = m.weights().unwrap();
        let want: Vec<f32> = sequences(&x, false)
            .iter()
            .flat_map(|seq| host_lstm_from(seq, &w, [vec![0.0; UNITS], vec![0.0; UNITS]]).1)
            .map(|v| v as f32)
            .collect();
        common::assert_close(
            &format!("the final c as output on {}", device.name()),
            got.data(),
            &want,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn state_misuse_gives_errors_that_name_the_fix() {
    let x = Input::new([8, 2]);
    let err = LSTM::new(4).return_state(true).call(&x).unwrap_err().to_string();
    assert!(err.contains("call_states"), "{err}");
    let err = LSTM::new(4)
        .call_many(&[&x, &Input::new([5]), &Input::new([4])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("initial state") && err.contains("[4]"), "{err}");
    let err = GRU::new(4)
        .call_many(&[&x, &Input::new([4]), &Input::new([4])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 initial state") && err.contains("3 inputs"), "{err}");
    let err = Bidirectional::new(GRU::new(4))
        .call_many(&[&x, &Input::new([4])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 initial states"), "{err}");
    // A layer without states has none to return.
    let all = Dense::new(3).call_states(&[&x]).unwrap();
    assert_eq!(all.len(), 1);
}

/// An LSTM's returned `c` starting a GRU (a state handed to a layer of another kind), its `h`
/// joined to the GRU's output.
fn two_stage_model() -> Model {
    let (first, second) = (Input::new([7, 2]), Input::new([5, 2]));
    let encoded = LSTM::new(UNITS).return_state(true).call_states(&[&first]).unwrap();
    let decoded = GRU::new(UNITS).call_many(&[&second, &encoded[2]]).unwrap();
    let joined = Concatenate::new().call_many(&[&decoded, &encoded[1]]).unwrap();
    Model::new(&[first, second], &joined).unwrap().with_seed(6)
}

#[test]
fn states_show_in_the_summary_and_survive_saving() {
    let (a, b) = (random::normal([4, 7, 2], 40), random::normal([4, 5, 2], 41));
    let mut m = compiled(two_stage_model(), &CpuBackend);
    let summary = m.summary();
    assert!(
        summary.contains("lstm (LSTM)") && summary.contains("[(None, 3), (None, 3), (None, 3)]"),
        "{summary}"
    );
    m.train_on_batch([&a, &b], &random::normal([4, 2 * UNITS], 42)).unwrap();
    let before = m.predict([&a, &b], 4).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recurrent_state");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("two_stage.safetensors");
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &CpuBackend).unwrap();
    let after = loaded.predict([&a, &b], 4).unwrap();
    assert_eq!(before.data(), after.data());
    // A file that reads a state the layer does not return is refused, naming the layer.
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at = header.find("State").expect("the file records the state references");
    let close = at + header[at..].find(']').unwrap();
    assert!(
        header[at..=close].ends_with(",1]"),
        "the GRU reads state 1 (c): {}",
        &header[at..=close]
    );
    let edited = format!("{},7]{}", &header[..close - 2], &header[close + 1..]);
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    let tampered = dir.join("bad_state.safetensors");
    std::fs::write(&tampered, out).unwrap();
    let err = load_model(&tampered, &CpuBackend)
        .and_then(|mut m| m.predict([&a, &b], 4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer `lstm`") && err.contains("no state 7"), "{err}");
}

/// A `Sequential` model chains outputs: a layer's returned states go nowhere, and the model
/// computes what it computes without them, training included.
#[test]
fn a_sequential_model_passes_on_the_output_alone() {
    let (x, y) = (random::normal([6, 9, 2], 50), random::normal([6, 4], 51));
    let predictions: Vec<Tensor> = [false, true]
        .into_iter()
        .map(|states| {
            let mut m = Sequential::new()
                .seed(3)
                .input_shape([9, 2])
                .add(LSTM::new(4).return_state(states));
            m.compile(&CpuBackend, Optimizer::adam_lr(0.05), Loss::MeanSquaredError, &[])
                .unwrap();
            m.train_on_batch(&x, &y).unwrap();
            m.predict(&x, 6).unwrap()
        })
        .collect();
    assert_eq!(predictions[0].data(), predictions[1].data());
}
