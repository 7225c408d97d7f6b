//! Loss values against hand-computed Keras formulas (f64 on the host) on fixed inputs; the logits
//! and the clipped-probability paths agree; a user-composed loss (seed 004's class-weighted BCE)
//! gives the same numbers as the built-in one, on both backends.

mod common;

use std::sync::Arc;

use kiln::cpu::CpuBackend;
use kiln::graph::{schedule, ActivationOp, Backend, Graph};
use kiln::nn::backend as k;
use kiln::nn::layers::LayerOut;
use kiln::prelude::*;

const B: usize = 6;
const K: usize = 5;

fn logits() -> Vec<f32> {
    (0..B * K).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.7).collect()
}

fn targets() -> Vec<f32> {
    (0..B * K).map(|i| ((i * 3 + 1) % 4) as f32 / 3.0).collect()
}

/// Runs `loss` on logits `z` `[B, K]` (through `activation`) and labels `y`, returning the scalar.
fn run(backend: &dyn Backend, loss: &Loss, activation: Activation, z: &[f32], y: &[f32], y_shape: &[usize]) -> f32 {
    let mut g = Graph::new(Vec::new());
    let zn = g.input("z", [B, K]);
    let yn = g.input("y", y_shape.to_vec());
    let output = match activation {
        Activation::Linear => zn,
        Activation::Sigmoid => g.unary(ActivationOp::Sigmoid, zn).unwrap(),
        Activation::Softmax => g.unary(ActivationOp::Softmax, zn).unwrap(),
        Activation::Relu => g.unary(ActivationOp::Relu, zn).unwrap(),
    };
    let out = LayerOut {
        pre_activation: zn,
        output,
    };
    let l = loss.build(&mut g, out, activation, yn, None).unwrap();
    let plan = Arc::new(schedule(&g, &[l]).unwrap());
    let mut s = backend.new_session(&[]).unwrap();
    let id = s.load(plan).unwrap();
    s.run(id, &[("z", z), ("y", y)]).unwrap();
    s.read_outputs(id).unwrap()[0][0]
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Keras' binary cross-entropy on probabilities, clipped to [1e-7, 1 - 1e-7].
fn bce(p: f64, t: f64) -> f64 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
}

fn close(what: &str, got: f32, want: f64) {
    assert!(
        (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
        "{what}: got {got}, reference {want}"
    );
}

#[test]
fn losses_match_hand_computed_keras_formulas() {
    let (z, t) = (logits(), targets());
    let zd: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let td: Vec<f64> = t.iter().map(|&v| f64::from(v)).collect();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;

    let want_bce = mean(zd.iter().zip(&td).map(|(&z, &t)| bce(sigmoid(z), t)).collect());
    close(
        "bce (sigmoid)",
        run(
            &CpuBackend,
            &Loss::BinaryCrossentropy,
            Activation::Sigmoid,
            &z,
            &t,
            &[B, K],
        ),
        want_bce,
    );
    close(
        "bce from_logits",
        run(
            &CpuBackend,
            &Loss::BinaryCrossentropy.from_logits(),
            Activation::Linear,
            &z,
            &t,
            &[B, K],
        ),
        want_bce,
    );

    // Softmax rows as probabilities for BCE: the clipped-probability path.
    let softmax: Vec<f64> = zd
        .chunks(K)
        .flat_map(|r| {
            let m = r.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = r.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect();
    let want = mean(softmax.iter().zip(&td).map(|(&p, &t)| bce(p, t)).collect());
    close(
        "bce on softmax probabilities",
        run(
            &CpuBackend,
            &Loss::BinaryCrossentropy,
            Activation::Softmax,
            &z,
            &t,
            &[B, K],
        ),
        want,
    );

    // Sparse and one-hot categorical cross-entropy: -log softmax(z)[label].
    let labels: Vec<f32> = (0..B).map(|r| (r % K) as f32).collect();
    let onehot: Vec<f32> = (0..B * K).map(|i| f32::from(i % K == (i / K) % K)).collect();
    let want_ce = mean((0..B).map(|r| -softmax[r * K + r % K].ln()).collect());
    close(
        "sparse ce",
        run(
            &CpuBackend,
            &Loss::SparseCategoricalCrossentropy,
            Activation::Softmax,
            &z,
            &labels,
            &[B],
        ),
        want_ce,
    );
    close(
        "categorical ce",
        run(
            &CpuBackend,
            &Loss::CategoricalCrossentropy,
            Activation::Softmax,
            &z,
            &onehot,
            &[B, K],
        ),
        want_ce,
    );
    close(
        "sparse ce from_logits",
        run(
            &CpuBackend,
            &Loss::SparseCategoricalCrossentropy.from_logits(),
            Activation::Linear,
            &z,
            &labels,
            &[B],
        ),
        want_ce,
    );

    let want_mse = mean(zd.iter().zip(&td).map(|(z, t)| (z - t).powi(2)).collect());
    let want_mae = mean(zd.iter().zip(&td).map(|(z, t)| (z - t).abs()).collect());
    close(
        "mse",
        run(
            &CpuBackend,
            &Loss::MeanSquaredError,
            Activation::Linear,
            &z,
            &t,
            &[B, K],
        ),
        want_mse,
    );
    close(
        "mae",
        run(
            &CpuBackend,
            &Loss::MeanAbsoluteError,
            Activation::Linear,
            &z,
            &t,
            &[B, K],
        ),
        want_mae,
    );

    let w = [1.0f32, 0.5, 1.0, 2.0, 1.5];
    let want_w = mean(
        zd.iter()
            .zip(&td)
            .enumerate()
            .map(|(i, (&z, &t))| bce(sigmoid(z), t) * f64::from(w[i % K]))
            .collect(),
    );
    let weighted = Loss::WeightedBinaryCrossentropy(w.to_vec());
    close(
        "weighted bce",
        run(&CpuBackend, &weighted, Activation::Sigmoid, &z, &t, &[B, K]),
        want_w,
    );
}

#[test]
fn logits_and_probability_paths_agree() {
    let (z, t) = (logits(), targets());
    // The same sigmoid probabilities, once through the fused logits op, once through the clipped
    // probability formula (a user-composed loss sees only probabilities).
    let on_probabilities = Loss::custom("bce_on_probabilities", k::binary_crossentropy);
    let a = run(
        &CpuBackend,
        &Loss::BinaryCrossentropy,
        Activation::Sigmoid,
        &z,
        &t,
        &[B, K],
    );
    let b = run(&CpuBackend, &on_probabilities, Activation::Sigmoid, &z, &t, &[B, K]);
    assert!((a - b).abs() <= 1e-5 * a.abs(), "logits path {a}, probability path {b}");
}

/// Seed 004's `weighted_binary_crossentropy`, written as a closure over graph ops exactly as the
/// seed writes it over Keras' backend: `K.mean(K.binary_crossentropy(y_true, y_pred) * weights)`.
fn seed_004_weighted_bce(weights: Vec<f32>) -> Loss {
    Loss::custom("weighted_binary_crossentropy", move |g, y_true, y_pred| {
        let loss = k::binary_crossentropy(g, y_true, y_pred)?;
        let weighted = k::weight_columns(g, loss, &weights)?;
        k::mean(g, weighted)
    })
}

#[test]
fn a_user_composed_loss_equals_the_built_in_one_on_both_backends() {
    let (z, t) = (logits(), targets());
    let w = vec![1.0, 0.5, 1.0, 2.0, 1.5];
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend)];
    if let Some(gpu) = common::gpu() {
        backends.push(Box::new(gpu.clone()));
    }
    for device in &backends {
        let built_in = run(
            device.as_ref(),
            &Loss::WeightedBinaryCrossentropy(w.clone()),
            Activation::Sigmoid,
            &z,
            &t,
            &[B, K],
        );
        let custom = run(
            device.as_ref(),
            &seed_004_weighted_bce(w.clone()),
            Activation::Sigmoid,
            &z,
            &t,
            &[B, K],
        );
        assert!(
            (built_in - custom).abs() <= 1e-5 * built_in.abs(),
            "{}: {built_in} vs {custom}",
            device.name()
        );
    }
    // And it trains: the same seeded fit follows the same losses step by step.
    let x = random::normal([256, 8], 3);
    let y = Tensor::new(
        [256, K],
        (0..256 * K)
            .map(|i| f32::from(x.data()[(i / K) * 8 + i % K] > 0.0))
            .collect(),
    )
    .unwrap();
    let fit = |loss: Loss, device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(2)
            .add(Dense::new(16).activation(Activation::Relu).input_dim(8))
            .add(Dense::new(K).activation(Activation::Sigmoid));
        m.compile(device, Optimizer::adam_lr(0.01), loss, &[Metric::Accuracy])
            .unwrap();
        m.fit(&x, &y, &FitOptions::new(8, 32).record_batch_loss()).unwrap()
    };
    for device in &backends {
        let a = fit(Loss::WeightedBinaryCrossentropy(w.clone()), device.as_ref());
        let b = fit(seed_004_weighted_bce(w.clone()), device.as_ref());
        for (step, (p, q)) in a.batch_loss.iter().zip(&b.batch_loss).enumerate() {
            assert!(
                (p - q).abs() <= 1e-4 * p.abs(),
                "{} step {step}: built-in {p}, custom {q}",
                device.name()
            );
        }
        // `accuracy` after a sigmoid is binary accuracy, even with a user-composed loss.
        assert!(
            b.last("accuracy").unwrap() > 0.85,
            "{}: {:?}",
            device.name(),
            b.get("accuracy")
        );
    }
}
