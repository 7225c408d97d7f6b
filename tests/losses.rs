//! Loss values against hand-computed Keras formulas (f64 on the host) on fixed inputs; the logits
//! and the clipped-probability paths agree; a user-composed loss (seed 004's class-weighted BCE)
//! gives the same numbers as the built-in one, on both backends.

mod common;

use std::sync::Arc;

use kiln::cpu::CpuBackend;
use kiln::graph::{schedule, Backend, Graph};
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
    let output = kiln::nn::layers::activate(&mut g, zn, activation).unwrap();
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

fn softmax_rows(z: &[f64]) -> Vec<f64> {
    z.chunks(K)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

/// Keras 3's formulas (keras/src/losses/losses.py) for the losses past the cross-entropies, on both
/// backends: per element (or per row for the ones Keras sums over the last axis), then the mean.
#[test]
fn regression_divergence_hinge_focal_and_smoothed_losses_match_keras() {
    let (z, t) = (logits(), targets());
    let zd: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let td: Vec<f64> = t.iter().map(|&v| f64::from(v)).collect();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let rows = |v: Vec<f64>| mean(v.chunks(K).map(|r| r.iter().sum::<f64>()).collect());
    let pairs = || zd.iter().zip(&td).map(|(&z, &t)| (z, t));
    let sig: Vec<f64> = zd.iter().map(|&z| sigmoid(z)).collect();
    let soft = softmax_rows(&zd);
    // One-hot rows for the categorical losses: class (i mod K) for row i.
    let one_hot: Vec<f32> = (0..B * K).map(|i| f32::from(i % K == (i / K) % K)).collect();
    let oh: Vec<f64> = one_hot.iter().map(|&v| f64::from(v)).collect();
    let e = 1e-7;
    let huber = |d: f64, delta: f64| {
        if d.abs() <= delta {
            0.5 * d * d
        } else {
            delta * (d.abs() - 0.5 * delta)
        }
    };
    let focal_b = |p: f64, t: f64, alpha: f64, gamma: f64, balanced: bool| {
        let p_t = t * p + (1.0 - t) * (1.0 - p);
        let f = (1.0 - p_t).powf(gamma) * bce(p, t);
        if balanced {
            (t * alpha + (1.0 - t) * (1.0 - alpha)) * f
        } else {
            f
        }
    };
    let relu = |v: f64| v.max(0.0);
    let signed = |t: f64| if t == 0.0 { -1.0 } else { t };
    let cases: Vec<(&str, Loss, Activation, &[f32], f64)> = vec![
        (
            "huber",
            Loss::huber(1.0),
            Activation::Linear,
            &t,
            mean(pairs().map(|(z, t)| huber(z - t, 1.0)).collect()),
        ),
        (
            "huber δ 0.3",
            Loss::huber(0.3),
            Activation::Linear,
            &t,
            mean(pairs().map(|(z, t)| huber(z - t, 0.3)).collect()),
        ),
        (
            "log_cosh",
            Loss::LogCosh,
            Activation::Linear,
            &t,
            mean(pairs().map(|(z, t)| (z - t).cosh().ln()).collect()),
        ),
        (
            "poisson",
            Loss::Poisson,
            Activation::Sigmoid,
            &t,
            mean(sig.iter().zip(&td).map(|(&p, &t)| p - t * (p + e).ln()).collect()),
        ),
        (
            "kl_divergence",
            Loss::KLDivergence,
            Activation::Softmax,
            &one_hot,
            rows(
                soft.iter()
                    .zip(&oh)
                    .map(|(&p, &y)| {
                        let (y, p) = (y.clamp(e, 1.0), p.clamp(e, 1.0));
                        y * (y / p).ln()
                    })
                    .collect(),
            ),
        ),
        (
            "cosine_similarity",
            Loss::CosineSimilarity,
            Activation::Linear,
            &t,
            mean(
                zd.chunks(K)
                    .zip(td.chunks(K))
                    .map(|(z, t)| {
                        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().max(1e-14).sqrt();
                        -z.iter().zip(t).map(|(a, b)| a * b).sum::<f64>() / (norm(z) * norm(t))
                    })
                    .collect(),
            ),
        ),
        (
            "hinge (0/1 labels read as ±1)",
            Loss::Hinge,
            Activation::Linear,
            &one_hot,
            mean(zd.iter().zip(&oh).map(|(&z, &y)| relu(1.0 - signed(y) * z)).collect()),
        ),
        (
            "squared_hinge",
            Loss::SquaredHinge,
            Activation::Linear,
            &one_hot,
            mean(
                zd.iter()
                    .zip(&oh)
                    .map(|(&z, &y)| relu(1.0 - signed(y) * z).powi(2))
                    .collect(),
            ),
        ),
        (
            "binary_focal",
            Loss::binary_focal(),
            Activation::Sigmoid,
            &t,
            mean(
                sig.iter()
                    .zip(&td)
                    .map(|(&p, &t)| focal_b(p, t, 0.25, 2.0, false))
                    .collect(),
            ),
        ),
        (
            "binary_focal (balanced, γ 1.5, from logits)",
            Loss::BinaryFocalCrossentropy {
                alpha: 0.4,
                gamma: 1.5,
                apply_class_balancing: true,
            }
            .from_logits(),
            Activation::Linear,
            &t,
            mean(
                sig.iter()
                    .zip(&td)
                    .map(|(&p, &t)| focal_b(p, t, 0.4, 1.5, true))
                    .collect(),
            ),
        ),
        (
            "categorical_focal",
            Loss::categorical_focal(),
            Activation::Softmax,
            &one_hot,
            rows(
                soft.iter()
                    .zip(&oh)
                    .map(|(&p, &y)| {
                        let p = p.clamp(e, 1.0 - e);
                        0.25 * (1.0 - p).powi(2) * -y * p.ln()
                    })
                    .collect(),
            ),
        ),
        (
            "binary_crossentropy, label smoothing 0.2",
            Loss::BinaryCrossentropy.label_smoothing(0.2),
            Activation::Sigmoid,
            &t,
            mean(sig.iter().zip(&td).map(|(&p, &t)| bce(p, t * 0.8 + 0.1)).collect()),
        ),
        (
            "categorical_crossentropy, label smoothing 0.1, from logits",
            Loss::CategoricalCrossentropy.from_logits().label_smoothing(0.1),
            Activation::Linear,
            &one_hot,
            rows(
                soft.iter()
                    .zip(&oh)
                    .map(|(&p, &y)| -(y * 0.9 + 0.1 / K as f64) * p.ln())
                    .collect(),
            ),
        ),
    ];
    for device in common::backends() {
        for (what, loss, activation, y, want) in &cases {
            let got = run(device.as_ref(), loss, *activation, &z, y, &[B, K]);
            close(&format!("{what} on {}", device.name()), got, *want);
        }
    }
}

#[test]
fn the_seed_004_cnn_trains_with_binary_focal_crossentropy() {
    // Seed 004's model kind: a small CNN with per-label sigmoids, here on the coloured-squares task
    // of tests/seeds.rs shrunk to 16×16 images.
    let images = 96;
    let mut x = vec![0.0f32; images * 16 * 16 * 3];
    let mut y = vec![0.0f32; images * 3];
    for i in 0..images {
        for c in 0..3 {
            if (i >> c) & 1 == 1 {
                y[i * 3 + c] = 1.0;
                let (r0, c0) = ((i * 5 + c * 3) % 10, (i * 3 + c * 7) % 10);
                for r in r0..r0 + 5 {
                    for col in c0..c0 + 5 {
                        x[((i * 16 + r) * 16 + col) * 3 + c] = 1.0;
                    }
                }
            }
        }
    }
    let (x, y) = (
        Tensor::new([images, 16, 16, 3], x).unwrap(),
        Tensor::new([images, 3], y).unwrap(),
    );
    let mut m = Sequential::new()
        .seed(1)
        .add(
            Conv2D::new(8, (3, 3))
                .activation(Activation::Relu)
                .input_shape([16, 16, 3]),
        )
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(3).activation(Activation::Sigmoid));
    m.compile(
        &CpuBackend,
        Optimizer::adam_lr(0.01),
        Loss::binary_focal(),
        &[Metric::Accuracy],
    )
    .unwrap();
    let h = m.fit(&x, &y, &FitOptions::new(15, 16).seed(2)).unwrap();
    let (loss, accuracy) = (h.get("loss").unwrap(), h.last("accuracy").unwrap());
    assert!(loss[14] < loss[0] / 3.0, "{loss:?}");
    assert!(accuracy > 0.95, "binary accuracy {accuracy}");
}

#[test]
fn loss_settings_outside_keras_ranges_or_on_the_wrong_output_are_refused() {
    let compile = |loss: Loss, activation: Activation| {
        let mut m = Sequential::new().add(Dense::new(3).activation(activation).input_dim(4));
        m.compile(&CpuBackend, Optimizer::adam(), loss, &[]).map(|_| ())
    };
    let bad = [
        (Loss::huber(0.0), Activation::Linear, "delta 0"),
        (
            Loss::BinaryFocalCrossentropy {
                alpha: 1.5,
                gamma: 2.0,
                apply_class_balancing: true,
            },
            Activation::Sigmoid,
            "alpha 1.5",
        ),
        (
            Loss::CategoricalFocalCrossentropy {
                alpha: 0.25,
                gamma: -1.0,
            },
            Activation::Softmax,
            "gamma -1",
        ),
        (
            Loss::BinaryCrossentropy.label_smoothing(1.5),
            Activation::Sigmoid,
            "label_smoothing 1.5",
        ),
        (
            Loss::SparseCategoricalCrossentropy.label_smoothing(0.1),
            Activation::Softmax,
            "no label smoothing",
        ),
        (
            Loss::MeanSquaredError.label_smoothing(0.1),
            Activation::Linear,
            "no label smoothing",
        ),
        (Loss::binary_focal(), Activation::Relu, "expects probabilities"),
        (Loss::categorical_focal(), Activation::Sigmoid, "softmax"),
    ];
    for (loss, activation, needle) in bad {
        let e = compile(loss.clone(), activation).unwrap_err().to_string();
        assert!(e.contains(needle), "{loss:?}: {e}");
    }
    for (loss, activation) in [
        (Loss::huber(1.0), Activation::Linear),
        (Loss::Hinge, Activation::Linear),
        (Loss::Poisson, Activation::Relu),
        (Loss::binary_focal().from_logits(), Activation::Linear),
        (Loss::CategoricalCrossentropy.label_smoothing(0.1), Activation::Softmax),
    ] {
        compile(loss, activation).unwrap();
    }
}
