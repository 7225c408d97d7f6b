//! The activation family at the model level: each activation's values against Keras' formulas
//! (computed independently in f64, keras/src/activations/activations.py), on both backends; the
//! `Activation` layer; Keras' names; training through them; saving their parameters; PReLU's
//! learned slopes against Keras'.

mod common;

use kiln::cpu::CpuBackend;
use kiln::prelude::*;

const XS: [f32; 7] = [-4.0, -1.0, -0.25, 0.0, 0.5, 2.0, 7.0];

/// `(activation, Keras' values at XS)`, from the formulas in f64.
fn expected() -> Vec<(Activation, [f64; 7])> {
    vec![
        (
            Activation::gelu(),
            [-0.0001267, -0.1586553, -0.1003234, 0.0, 0.3457312, 1.9544997, 7.0],
        ),
        (
            Activation::Gelu { approximate: true },
            [-0.0000702, -0.158808, -0.1003246, 0.0, 0.345714, 1.9545977, 7.0],
        ),
        (Activation::leaky_relu(), [-0.8, -0.2, -0.05, 0.0, 0.5, 2.0, 7.0]),
        (
            Activation::elu(),
            [-0.9816844, -0.6321206, -0.2211992, 0.0, 0.5, 2.0, 7.0],
        ),
        (
            Activation::Selu,
            [-1.7258986, -1.1113307, -0.3888902, 0.0, 0.5253505, 2.101402, 7.3549069],
        ),
        (
            Activation::Softplus,
            [
                0.0181499,
                0.3132617,
                0.5759394,
                std::f64::consts::LN_2,
                0.974077,
                2.126928,
                7.0009115,
            ],
        ),
        (
            Activation::Silu,
            [-0.0719448, -0.2689414, -0.1094559, 0.0, 0.3112297, 1.7615942, 6.9936226],
        ),
        (
            Activation::HardSigmoid,
            [0.0, 0.3333333, 0.4583333, 0.5, 0.5833333, 0.8333333, 1.0],
        ),
        (Activation::Relu6, [0.0, 0.0, 0.0, 0.0, 0.5, 2.0, 6.0]),
        (
            Activation::Tanh,
            [-0.9993293, -0.7615942, -0.2449187, 0.0, 0.4621172, 0.9640276, 0.9999983],
        ),
    ]
}

#[test]
fn each_activation_layer_computes_keras_values_on_both_backends() {
    let x = Tensor::new([1, 7], XS.to_vec()).unwrap();
    for device in common::backends() {
        for (activation, want) in expected() {
            let mut m = Sequential::new().add(ActivationLayer::new(activation).input_dim(7));
            m.compile(device.as_ref(), Optimizer::adam(), Loss::MeanSquaredError, &[])
                .unwrap();
            let got = m.predict(&x, 1).unwrap();
            let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            common::assert_close(
                &format!("{activation} on {}", device.name()),
                got.data(),
                &want,
                2e-6,
                2e-6,
            );
        }
    }
}

#[test]
fn keras_names_parse_with_keras_defaults() {
    let parsed: Vec<Activation> = ["gelu", "leaky_relu", "elu", "swish", "silu", "hard_sigmoid", "relu6"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        parsed,
        [
            Activation::Gelu { approximate: false },
            Activation::LeakyRelu { negative_slope: 0.2 },
            Activation::Elu { alpha: 1.0 },
            Activation::Silu,
            Activation::Silu,
            Activation::HardSigmoid,
            Activation::Relu6,
        ]
    );
    let err = "mish".parse::<Activation>().unwrap_err().to_string();
    assert!(err.contains("mish") && err.contains("gelu"), "{err}");
}

#[test]
fn a_negative_slope_is_refused_at_compile() {
    let mut m = Sequential::new().add(
        Dense::new(2)
            .activation(Activation::LeakyRelu { negative_slope: -0.1 })
            .input_dim(3),
    );
    let err = m
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("negative_slope") && err.contains("-0.1"), "{err}");
}

#[test]
fn models_train_through_every_activation_on_both_backends() {
    // y = sin-like target of 3 features; each hidden activation must bring the loss down.
    let x = random::normal([64, 3], 5);
    let y = Tensor::new(
        [64, 1],
        x.data().chunks(3).map(|r| (r[0] - 0.5 * r[1] * r[2]).tanh()).collect(),
    )
    .unwrap();
    for device in common::backends() {
        for (activation, _) in expected() {
            let mut m = Sequential::new()
                .seed(1)
                .add(Dense::new(16).activation(activation).input_dim(3))
                .add(Dense::new(1));
            m.compile(device.as_ref(), Optimizer::adam_lr(0.02), Loss::MeanSquaredError, &[])
                .unwrap();
            let h = m.fit(&x, &y, &FitOptions::new(15, 16).seed(3)).unwrap();
            let loss = h.get("loss").unwrap();
            assert!(
                loss[14] < 0.6 * loss[0],
                "{activation} on {}: loss {} -> {}",
                device.name(),
                loss[0],
                loss[14]
            );
        }
    }
}

#[test]
fn activation_parameters_survive_saving() {
    let dir = std::env::temp_dir().join(format!("kiln-activations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    let x = random::normal([5, 3], 1);
    let mut m = Sequential::new()
        .add(
            Dense::new(4)
                .activation(Activation::LeakyRelu { negative_slope: 0.05 })
                .input_dim(3),
        )
        .add(ActivationLayer::new(Activation::Elu { alpha: 0.7 }));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &CpuBackend).unwrap();
    assert_eq!(m.predict(&x, 5).unwrap(), loaded.predict(&x, 5).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

/// PReLU with Keras' learned slopes: per element, shared per channel (`shared_axes [1, 2]`) and one
/// for the whole sample, against Keras 3.15.1's outputs on both backends; the slopes' shape and
/// count as Keras stores them; their gradient trains them (a ReLU start learns a leak).
#[test]
fn prelu_matches_keras_and_learns_its_slopes_on_both_backends() {
    for device in common::backends() {
        for (name, shared, alpha_shape) in [
            ("prelu_vector", vec![], vec![3]),
            ("prelu_channels", vec![1, 2], vec![1, 1, 3]),
            ("prelu_one", vec![1, 2, 3], vec![1, 1, 1]),
        ] {
            let x = common::keras_fixture(&format!("{name}_x"));
            let mut m = Sequential::new()
                .input_shape(x.shape()[1..].to_vec())
                .add(PReLU::new().shared_axes(shared));
            m.compile(device.as_ref(), Optimizer::sgd(0.1), Loss::MeanSquaredError, &[])
                .unwrap();
            let mut w = m.weights().unwrap();
            assert_eq!((w[0].name.as_str(), &w[0].shape), ("p_re_lu/alpha", &alpha_shape));
            w[0].values = common::keras_fixture(&format!("{name}_alpha")).data().to_vec();
            m.set_weights(&w).unwrap();
            let got = m.predict(&x, 2).unwrap();
            let want = common::keras_fixture(&format!("{name}_y"));
            common::assert_close(
                &format!("{name} on {}", device.name()),
                got.data(),
                want.data(),
                1e-6,
                1e-6,
            );
        }
        // y = 0.5·x everywhere: a PReLU starting as a ReLU learns slope 0.5 for the negatives.
        let x = random::normal([64, 4], 3);
        let y = Tensor::new(
            [64, 4],
            x.data().iter().map(|v| if *v > 0.0 { *v } else { 0.5 * v }).collect(),
        )
        .unwrap();
        let mut m = Sequential::new().input_shape([4]).add(PReLU::new());
        m.compile(device.as_ref(), Optimizer::adam_lr(0.05), Loss::MeanSquaredError, &[])
            .unwrap();
        m.fit(&x, &y, &FitOptions::new(60, 16).seed(1)).unwrap();
        let alpha = m.weights().unwrap()[0].values.clone();
        assert!(
            alpha.iter().all(|a| (a - 0.5).abs() < 0.05),
            "{}: slopes {alpha:?}",
            device.name()
        );
    }
    let e = Sequential::new()
        .input_shape([4, 3])
        .add(PReLU::new().shared_axes([3]))
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("PReLU") && e.contains("shared axis 3"), "{e}");
}
