//! Keras' initialisers, selectable per layer: each one's spread against Keras' variance-scaling
//! formulas (keras/src/initializers/random_initializers.py) on a large kernel, conv fans counting
//! the receptive field, Keras' names, and bad ranges refused.

use kiln::cpu::CpuBackend;
use kiln::prelude::*;

/// `(mean, standard deviation, largest |value|)` of the values.
fn stats(v: &[f32]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
    let max = v.iter().map(|&x| f64::from(x).abs()).fold(0.0, f64::max);
    (mean, var.sqrt(), max)
}

fn kernel_of(layer: Dense, input: usize) -> Vec<f32> {
    let mut m = Sequential::new().seed(9).add(layer.input_dim(input));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    m.weights().unwrap().swap_remove(0).values
}

#[test]
fn variance_scaling_initializers_have_keras_spread() {
    let (fan_in, fan_out) = (200usize, 300usize);
    let (fi, fo) = (fan_in as f64, fan_out as f64);
    // (initializer, standard deviation, bound): uniform in ±limit has std limit/√3; the truncated
    // normals are scaled back to their nominal std and bounded at 2·std/0.8796.
    let cases = [
        (
            Init::GlorotUniform,
            (6.0 / (fi + fo)).sqrt() / 3f64.sqrt(),
            (6.0 / (fi + fo)).sqrt(),
        ),
        (
            Init::GlorotNormal,
            (2.0 / (fi + fo)).sqrt(),
            2.0 * (2.0 / (fi + fo)).sqrt() / 0.8796,
        ),
        (Init::HeNormal, (2.0 / fi).sqrt(), 2.0 * (2.0 / fi).sqrt() / 0.8796),
        (Init::HeUniform, (6.0 / fi).sqrt() / 3f64.sqrt(), (6.0 / fi).sqrt()),
        (Init::LecunNormal, (1.0 / fi).sqrt(), 2.0 * (1.0 / fi).sqrt() / 0.8796),
        (Init::LecunUniform, (3.0 / fi).sqrt() / 3f64.sqrt(), (3.0 / fi).sqrt()),
        (
            Init::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            0.05,
            f64::INFINITY,
        ),
        (
            Init::TruncatedNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            0.05 * 0.8796,
            0.1,
        ),
    ];
    for (init, std, bound) in cases {
        let w = kernel_of(Dense::new(fan_out).kernel_initializer(init), fan_in);
        let (mean, got_std, max) = stats(&w);
        assert!(mean.abs() < 0.02 * std.max(1e-3) * 10.0, "{init:?}: mean {mean}");
        assert!(
            (got_std / std - 1.0).abs() < 0.02,
            "{init:?}: std {got_std}, Keras {std}"
        );
        assert!(max <= bound * 1.0001, "{init:?}: |value| {max} beyond {bound}");
    }
    let ones = kernel_of(Dense::new(3).kernel_initializer(Init::Ones), 4);
    assert_eq!(ones, vec![1.0; 12]);
    let mut m = Sequential::new().add(
        Dense::new(3)
            .bias_initializer(Init::Constant { value: 0.5 })
            .input_dim(2),
    );
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    assert_eq!(m.weights().unwrap()[1].values, vec![0.5; 3]);
}

#[test]
fn conv_fans_count_the_receptive_field() {
    // he_normal on a 3×3 conv over 16 channels: fan_in = 3·3·16 = 144.
    let mut m = Sequential::new().seed(1).add(
        Conv2D::new(64, (3, 3))
            .kernel_initializer(Init::HeNormal)
            .input_shape([8, 8, 16]),
    );
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let (_, std, _) = stats(&m.weights().unwrap()[0].values);
    let want = (2.0f64 / 144.0).sqrt();
    assert!((std / want - 1.0).abs() < 0.03, "std {std}, Keras {want}");
}

#[test]
fn keras_names_parse_and_bad_ranges_are_refused() {
    assert_eq!("he_normal".parse::<Init>().unwrap(), Init::HeNormal);
    assert_eq!("lecun_normal".parse::<Init>().unwrap(), Init::LecunNormal);
    assert!("xavier".parse::<Init>().unwrap_err().to_string().contains("he_uniform"));
    let mut m = Sequential::new().add(
        Dense::new(3)
            .kernel_initializer(Init::RandomUniform {
                minval: 1.0,
                maxval: 1.0,
            })
            .input_dim(2),
    );
    let err = m
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("dense/kernel") && err.contains("minval"), "{err}");
}
