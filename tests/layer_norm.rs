//! LayerNormalization against Keras' formula computed on the host (per position: mean and biased
//! variance of its features, epsilon inside the root, then gamma and beta), on both backends, for
//! sequences and vectors; it trains inside a model.

mod common;

use kiln::cpu::CpuBackend;
use kiln::prelude::*;

/// `(x - mean)/√(var + ε)·gamma + beta` per row of `features`, in f64.
fn host(x: &[f32], features: usize, gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    x.chunks(features)
        .flat_map(|row| {
            let n = features as f64;
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            row.iter()
                .enumerate()
                .map(|(j, &v)| {
                    ((f64::from(v) - mean) / (var + eps).sqrt() * f64::from(gamma[j]) + f64::from(beta[j])) as f32
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn layer_normalization_matches_keras_formula_on_both_backends() {
    let x = random::normal([3, 5, 7], 2).map(|v| 3.0 * v + 1.5);
    for device in common::backends() {
        for epsilon in [1e-3, 1e-6] {
            // One training step first, so gamma and beta move off 1 and 0.
            let mut m = Sequential::new().add(LayerNormalization::new().epsilon(epsilon).input_shape([5, 7]));
            m.compile(device.as_ref(), Optimizer::adam_lr(0.1), Loss::MeanSquaredError, &[])
                .unwrap();
            m.train_on_batch(&x, &random::normal([3, 5, 7], 3)).unwrap();
            let w = m.weights().unwrap();
            assert_eq!(
                (w[0].name.as_str(), w[1].name.as_str()),
                ("layer_normalization/gamma", "layer_normalization/beta")
            );
            let got = m.predict(&x, 3).unwrap();
            let want = host(x.data(), 7, &w[0].values, &w[1].values, f64::from(epsilon));
            common::assert_close(
                &format!("ε {epsilon} on {}", device.name()),
                got.data(),
                &want,
                1e-5,
                1e-4,
            );
        }
    }
}

#[test]
fn without_center_and_scale_rows_have_zero_mean_and_unit_variance() {
    let x = random::normal([4, 9], 5).map(|v| 10.0 * v - 4.0);
    let mut m = Sequential::new().add(LayerNormalization::new().center(false).scale(false).input_shape([9]));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    assert!(m.weights().unwrap().is_empty());
    let y = m.predict(&x, 4).unwrap();
    for row in y.data().chunks(9) {
        let mean = row.iter().sum::<f32>() / 9.0;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 9.0;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "mean {mean}, var {var}");
    }
}
