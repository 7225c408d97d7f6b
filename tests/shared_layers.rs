//! Shared layers (Keras: one layer object called on several inputs): every application reads and
//! trains the same weights, so their gradients add up; the layer is named, counted and saved once;
//! a shared BatchNormalization updates its moving statistics once per application, in call order.

mod common;

use std::path::Path;

use kiln::cpu::CpuBackend;
use kiln::nn::Weight;
use kiln::prelude::*;

/// `Dense(4, no bias)` applied to `a` and to `b`, joined by `Add`, then `Dense(1)`: by linearity
/// the same function as `Dense(4)` applied to `a + b`, with one kernel either way.
fn tied(shared: bool) -> Model {
    let (a, b) = (Input::new([6]), Input::new([6]));
    let joined = if shared {
        let encoder = Shared::new(Dense::new(4).without_bias());
        let (ea, eb) = (encoder.call(&a).unwrap(), encoder.call(&b).unwrap());
        Add::new().call_many(&[&ea, &eb]).unwrap()
    } else {
        let sum = Add::new().call_many(&[&a, &b]).unwrap();
        Dense::new(4).without_bias().call(&sum).unwrap()
    };
    let out = Dense::new(1).call(&joined).unwrap();
    Model::new(&[a, b], &out).unwrap().with_seed(9)
}

fn by_name(weights: &[Weight], name: &str) -> Vec<f32> {
    weights
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no weight {name}"))
        .values
        .clone()
}

/// If only one application's gradient reached the shared kernel, the two models would part at
/// the first step.
#[test]
fn a_shared_kernel_takes_the_sum_of_its_applications_gradients_on_both_backends() {
    let (a, b) = (random::normal([16, 6], 1), random::normal([16, 6], 2));
    let y = random::normal([16, 1], 3);
    for device in common::backends() {
        let mut models: Vec<Model> = [true, false].into_iter().map(tied).collect();
        for m in &mut models {
            m.compile(device.as_ref(), Optimizer::sgd(0.05), Loss::MeanSquaredError, &[])
                .unwrap();
        }
        let start = models[0].weights().unwrap();
        assert_eq!(
            start.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
            ["dense/kernel", "dense_1/kernel", "dense_1/bias"],
            "the shared layer holds one kernel"
        );
        models[1].set_weights(&start).unwrap();
        for step in 0..6 {
            let losses: Vec<f32> = models
                .iter_mut()
                .map(|m| m.train_on_batch([&a, &b], &y).unwrap())
                .collect();
            assert!(
                (losses[0] - losses[1]).abs() <= 1e-5 * losses[1].abs().max(1.0),
                "step {step} on {}: shared {} against tied {}",
                device.name(),
                losses[0],
                losses[1]
            );
        }
        let (shared, single) = (models[0].weights().unwrap(), models[1].weights().unwrap());
        let moved = by_name(&shared, "dense/kernel");
        common::assert_close(
            &format!("shared kernel after 6 steps on {}", device.name()),
            &moved,
            &by_name(&single, "dense/kernel"),
            1e-5,
            1e-4,
        );
        assert_ne!(moved, by_name(&start, "dense/kernel"), "the kernel trained");
    }
}

/// Token pairs, padded with zeros: half the pairs the same sequence twice, half two different
/// ones; the label says which.
fn pairs(n: usize, steps: usize, seed: u64) -> (Tensor, Tensor, Tensor) {
    let draws = random::uniform([n, 2 * steps + 2], seed);
    let (mut left, mut right, mut same) = (Vec::new(), Vec::new(), Vec::new());
    for row in draws.data().chunks(2 * steps + 2) {
        let len = 3 + (row[0] * (steps - 2) as f32) as usize;
        let tokens = |r: &[f32]| -> Vec<f32> {
            (0..steps)
                .map(|t| if t < len { 1.0 + (r[t] * 9.0).floor() } else { 0.0 })
                .collect()
        };
        let first = tokens(&row[2..]);
        let is_same = row[1] < 0.5;
        let second = if is_same {
            first.clone()
        } else {
            tokens(&row[2 + steps..])
        };
        left.extend(first);
        right.extend(second);
        same.push(if is_same { 1.0 } else { 0.0 });
    }
    (
        Tensor::new([n, steps], left).unwrap(),
        Tensor::new([n, steps], right).unwrap(),
        Tensor::new([n, 1], same).unwrap(),
    )
}

/// A siamese encoder: one `Embedding(mask_zero)` and one LSTM read both sequences; the squared
/// difference of the encodings says whether they are the same.
fn siamese(steps: usize) -> Model {
    let (a, b) = (Input::new([steps]), Input::new([steps]));
    let embed = Shared::new(Embedding::new(10, 8).mask_zero(true));
    let encode = Shared::new(LSTM::new(8));
    let ea = encode.call(&embed.call(&a).unwrap()).unwrap();
    let eb = encode.call(&embed.call(&b).unwrap()).unwrap();
    let d = Subtract::new().call_many(&[&ea, &eb]).unwrap();
    let squared = Multiply::new().call_many(&[&d, &d]).unwrap();
    let out = Dense::new(1).activation(Activation::Sigmoid).call(&squared).unwrap();
    Model::new(&[a, b], &out).unwrap().with_seed(4)
}

#[test]
fn a_siamese_lstm_learns_which_pairs_are_the_same_on_both_backends() {
    let steps = 8;
    let (a, b, y) = pairs(128, steps, 11);
    let (ta, tb, ty) = pairs(64, steps, 12);
    for device in common::backends() {
        let mut m = siamese(steps);
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let names: Vec<String> = m.weights().unwrap().into_iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "embedding/embeddings",
                "lstm/kernel",
                "lstm/recurrent_kernel",
                "lstm/bias",
                "dense/kernel",
                "dense/bias"
            ],
            "each shared layer's weights once"
        );
        let before = m.evaluate([&ta, &tb], &ty, 64).unwrap().get("accuracy").unwrap();
        m.fit([&a, &b], &y, &FitOptions::new(15, 16).seed(1)).unwrap();
        let after = m.evaluate([&ta, &tb], &ty, 64).unwrap().get("accuracy").unwrap();
        assert!(
            after >= 0.9,
            "held-out accuracy {before} → {after} on {}",
            device.name()
        );
    }
}

#[test]
fn a_shared_layer_is_listed_and_saved_once() {
    let steps = 6;
    let (a, b, y) = pairs(8, steps, 20);
    let mut m = siamese(steps);
    m.compile(&CpuBackend, Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .unwrap();
    assert_eq!(m.layer_names(), ["embedding", "lstm", "subtract", "multiply", "dense"]);
    // Keras' count: embedding 10·8 = 80, LSTM 4·8·(8 + 8) + 4·8 = 544, Dense 8 + 1.
    let summary = m.summary();
    assert_eq!(summary.matches("lstm (LSTM)").count(), 1, "{summary}");
    assert!(summary.contains("Total params: 633"), "{summary}");
    m.train_on_batch([&a, &b], &y).unwrap();
    let before = m.predict([&a, &b], 8).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared_layers");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("siamese.safetensors");
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &CpuBackend).unwrap();
    assert_eq!(loaded.predict([&a, &b], 8).unwrap().data(), before.data());
    assert_eq!(loaded.layer_names(), m.layer_names());
    // A file whose shared entry points at a later entry is refused.
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    // The model JSON sits escaped in the safetensors metadata.
    assert_eq!(
        header.matches(r#"\"shares\":"#).count(),
        2,
        "two applications share: {header}"
    );
    let edited = header.replacen(r#"\"shares\":0"#, r#"\"shares\":5"#, 1);
    assert_ne!(edited, header);
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    let tampered = dir.join("bad_share.safetensors");
    std::fs::write(&tampered, out).unwrap();
    let err = load_model(&tampered, &CpuBackend).unwrap_err().to_string();
    assert!(err.contains("applies entry 5 again"), "{err}");
}

#[test]
fn sharing_errors_name_the_layer_and_the_reason() {
    // Weights built for 6 features cannot read 5.
    let (a, b) = (Input::new([6]), Input::new([5]));
    let dense = Shared::new(Dense::new(3));
    let (ea, eb) = (dense.call(&a).unwrap(), dense.call(&b).unwrap());
    let joined = Concatenate::new().call_many(&[&ea, &eb]).unwrap();
    let err = Model::new(&[a, b], &joined).unwrap_err().to_string();
    assert!(err.contains("layer `dense`") && err.contains("is shared"), "{err}");
    // A shared layer that returns states still goes through `call_states`.
    let x = Input::new([5, 2]);
    let err = Shared::new(LSTM::new(3).return_state(true))
        .call(&x)
        .unwrap_err()
        .to_string();
    assert!(err.contains("call_states"), "{err}");
}

/// Replicas exchange one gradient per shared weight: two CPU replicas train the shared model to
/// the weights one device reaches with the whole batch.
#[test]
fn a_shared_layer_trains_data_parallel_as_on_one_device() {
    let (a, b) = (random::normal([16, 6], 4), random::normal([16, 6], 5));
    let y = random::normal([16, 1], 6);
    let replicas: Vec<std::sync::Arc<dyn kiln::graph::Backend>> =
        vec![std::sync::Arc::new(CpuBackend), std::sync::Arc::new(CpuBackend)];
    let parallel = DataParallel::new(replicas).unwrap();
    let mut models: Vec<Model> = [&parallel as &dyn kiln::graph::Backend, &CpuBackend]
        .into_iter()
        .map(|device| {
            let mut m = tied(true);
            m.compile(device, Optimizer::sgd(0.05), Loss::MeanSquaredError, &[])
                .unwrap();
            m
        })
        .collect();
    for _ in 0..4 {
        for m in &mut models {
            m.train_on_batch([&a, &b], &y).unwrap();
        }
    }
    let (got, want) = (models[0].weights().unwrap(), models[1].weights().unwrap());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.name, w.name);
        common::assert_close(&g.name, &g.values, &w.values, 1e-6, 1e-5);
    }
}

/// Keras updates a shared BatchNormalization's moving statistics once per call, in call order
/// (checked against Keras 3.15.1: with momentum 0.5, after one step the moving mean is
/// `0.25·mean(a) + 0.5·mean(b)` and the moving variance `0.25 + 0.25·var(a) + 0.5·var(b)`);
/// inference normalises both applications with them.
#[test]
fn a_shared_batch_normalization_updates_its_statistics_per_application_in_call_order() {
    let xa = random::normal([4, 3], 1);
    let xb = random::normal([4, 3], 2);
    let xa = Tensor::new([4, 3], xa.data().iter().map(|v| 2.0 * v + 1.0).collect()).unwrap();
    let xb = Tensor::new([4, 3], xb.data().iter().map(|v| v - 3.0).collect()).unwrap();
    let moments = |x: &Tensor, c: usize| {
        let column: Vec<f64> = (0..4).map(|i| f64::from(x.row(i)[c])).collect();
        let mean = column.iter().sum::<f64>() / 4.0;
        let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
        (mean, var)
    };
    let (mut want_mean, mut want_var) = (Vec::new(), Vec::new());
    for c in 0..3 {
        let ((ma, va), (mb, vb)) = (moments(&xa, c), moments(&xb, c));
        want_mean.push((0.25 * ma + 0.5 * mb) as f32);
        want_var.push((0.25 + 0.25 * va + 0.5 * vb) as f32);
    }
    for device in common::backends() {
        let (a, b) = (Input::new([3]), Input::new([3]));
        let norm = Shared::new(BatchNormalization::new().momentum(0.5));
        let (na, nb) = (norm.call(&a).unwrap(), norm.call(&b).unwrap());
        let joined = Add::new().call_many(&[&na, &nb]).unwrap();
        let out = Dense::new(1).call(&joined).unwrap();
        let mut m = Model::new(&[a, b], &out).unwrap();
        m.compile(device.as_ref(), Optimizer::sgd(0.1), Loss::MeanSquaredError, &[])
            .unwrap();
        assert!(m.summary().contains("Non-trainable params: 6"), "{}", m.summary());
        m.train_on_batch([&xa, &xb], &Tensor::new([4, 1], vec![0.0; 4]).unwrap())
            .unwrap();
        let w = m.weights().unwrap();
        let what = |s: &str| format!("{s} on {}", device.name());
        let mean = by_name(&w, "batch_normalization/moving_mean");
        common::assert_close(&what("moving mean"), &mean, &want_mean, 1e-5, 1e-5);
        let var = by_name(&w, "batch_normalization/moving_variance");
        common::assert_close(&what("moving variance"), &var, &want_var, 1e-5, 1e-5);
    }
}

/// A siamese pair of one encoder model with BatchNormalization (Dense → BN → ReLU → Dense)
/// trains on both backends, and the doctor measures the shared statistics against both
/// applications' inputs together.
#[test]
fn a_siamese_encoder_with_batch_normalization_trains_on_both_backends() {
    let (a, b, y) = common::same_or_different_pairs(512, 40);
    let (ta, tb, ty) = common::same_or_different_pairs(256, 50);
    for device in common::backends() {
        let x = Input::new([10]);
        let h = Dense::new(16).call(&x).unwrap();
        let h = BatchNormalization::new().momentum(0.9).call(&h).unwrap();
        let h = ActivationLayer::new(Activation::Relu).call(&h).unwrap();
        let mut encoder = Model::new(&[x], &Dense::new(8).call(&h).unwrap()).unwrap();
        let (ia, ib) = (Input::new([10]), Input::new([10]));
        let (ea, eb) = (encoder.call(&ia).unwrap(), encoder.call(&ib).unwrap());
        let d = Subtract::new().call_many(&[&ea, &eb]).unwrap();
        let squared = Multiply::new().call_many(&[&d, &d]).unwrap();
        let out = Dense::new(1).activation(Activation::Sigmoid).call(&squared).unwrap();
        let mut m = Model::new(&[ia, ib], &out).unwrap().with_seed(3);
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let h = m.fit([&a, &b], &y, &FitOptions::new(20, 32).seed(1)).unwrap();
        assert!(h.warnings.is_empty(), "{}: {:?}", device.name(), h.warnings);
        let acc = m.evaluate([&ta, &tb], &ty, 64).unwrap().get("accuracy").unwrap();
        assert!(acc >= 0.9, "{}: held-out accuracy {acc}", device.name());
    }
}
