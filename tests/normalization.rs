//! The `Normalization` preprocessing layer: its adapted statistics and outputs against Keras
//! 3.15.1's for the same data (`tests/data/keras/layers/normalization_*`, written by
//! `benches/keras/layer_fixtures.py`) on both backends; Keras' weights and summary counts; the
//! statistics stay put through training and a save; an unscaled tabular set trains behind it.

mod common;

use kiln::prelude::*;

fn fixture(name: &str) -> Tensor {
    common::keras_fixture(&format!("normalization_{name}"))
}

#[test]
fn adapted_statistics_and_outputs_match_keras_on_both_backends() {
    // Features on scales 1, 30 and 0.01 around 0, -200 and 5.
    let layer = Normalization::adapt(&fixture("data")).unwrap();
    common::assert_close("mean", layer.mean(), fixture("mean").data(), 1e-5, 1e-6);
    common::assert_close("variance", layer.variance(), fixture("variance").data(), 1e-9, 1e-5);
    let x = fixture("x");
    let want = fixture("y");
    for device in common::backends() {
        let mut m = Sequential::new().add(layer.clone());
        m.compile(device.as_ref(), Optimizer::adam(), Loss::MeanSquaredError, &[])
            .unwrap();
        let got = m.predict(&x, 2).unwrap();
        common::assert_close(
            &format!("output on {}", device.name()),
            got.data(),
            want.data(),
            1e-4,
            1e-4,
        );
    }
}

#[test]
fn statistics_are_non_trainable_weights_that_training_and_saving_keep() {
    let data = random::normal([64, 4], 3);
    let shifted: Vec<f32> = data
        .data()
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1 + i % 4) as f32 * 10.0 + 7.0)
        .collect();
    let x = Tensor::new([64, 4], shifted).unwrap();
    let y = random::normal([64, 1], 4);
    let mut m = Sequential::new()
        .add(Normalization::adapt(&x).unwrap())
        .add(Dense::new(1));
    m.compile(
        &kiln::cpu::CpuBackend,
        Optimizer::adam_lr(0.1),
        Loss::MeanSquaredError,
        &[],
    )
    .unwrap();
    let summary = m.summary();
    // Keras counts mean and variance per feature and the scalar count: 2·4 + 1.
    assert!(summary.contains("normalization (Normalization)"), "{summary}");
    assert!(summary.contains("Non-trainable params: 9"), "{summary}");
    let stats = |m: &mut Sequential| -> Vec<(String, Vec<f32>)> {
        m.weights()
            .unwrap()
            .into_iter()
            .filter(|w| w.name.starts_with("normalization/"))
            .map(|w| (w.name, w.values))
            .collect()
    };
    let before = stats(&mut m);
    assert_eq!(
        before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["normalization/mean", "normalization/variance", "normalization/count"]
    );
    assert_eq!(before[2].1, [64.0]);
    // The model sees standardised features: its output is the same Dense of (x − mean) / σ.
    let standardised = m.predict(&x, 64).unwrap();
    assert!(standardised.data().iter().all(|v| v.is_finite()));
    m.fit(&x, &y, &FitOptions::new(3, 16)).unwrap();
    assert_eq!(stats(&mut m), before, "training moved the statistics");

    let dir = std::env::temp_dir().join(format!("kiln-normalization-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &kiln::cpu::CpuBackend).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.predict(&x, 64).unwrap(), m.predict(&x, 64).unwrap());
}

#[test]
fn statistics_of_the_wrong_size_are_refused() {
    let compile = |layer: Normalization| {
        Sequential::new()
            .input_shape([3])
            .add(layer)
            .compile(&Device::cpu(), Optimizer::adam(), Loss::MeanSquaredError, &[])
            .unwrap_err()
            .to_string()
    };
    let e = compile(Normalization::with_stats([0.0; 4], [1.0; 4]));
    assert!(e.contains("Normalization") && e.contains("4 features"), "{e}");
    let e = compile(Normalization::with_stats([0.0; 3], [1.0, -1.0, 1.0]));
    assert!(e.contains("negative"), "{e}");
    let one_axis = Tensor::new([4], vec![1.0; 4]).unwrap();
    assert!(Normalization::adapt(&one_axis).is_err());
    let nan = Tensor::new([2, 2], vec![1.0, f32::NAN, 0.0, 1.0]).unwrap();
    assert!(Normalization::adapt(&nan)
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
}

/// Breast cancer's 30 features run from fractions to thousands: behind Normalization, a small
/// network learns it as it would from standardised inputs, on both backends, in float32 and under
/// mixed_float16.
#[test]
fn an_unscaled_tabular_set_trains_behind_normalization() {
    let data = datasets::breast_cancer().unwrap();
    for (policy, device) in [DTypePolicy::Float32, DTypePolicy::MixedFloat16]
        .into_iter()
        .flat_map(|p| common::backends().into_iter().map(move |d| (p, d)))
    {
        let mut m = Sequential::new()
            .seed(1)
            .add(Normalization::adapt(&data.x_train).unwrap())
            .add(Dense::new(16).activation(Activation::Relu))
            .add(Dense::new(1).activation(Activation::Sigmoid))
            .into_model()
            .with_dtype_policy(policy);
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m.fit(&data.x_train, &data.y_train, &FitOptions::new(10, 32).seed(1))
            .unwrap();
        let acc = m
            .evaluate(&data.x_test, &data.y_test, 64)
            .unwrap()
            .get("accuracy")
            .unwrap();
        assert!(acc >= 0.95, "{} {policy:?}: test accuracy {acc}", device.name());
    }
}
