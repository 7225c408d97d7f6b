//! BatchNormalization against numbers computed by hand from Keras' formulas
//! (keras/src/layers/normalization/batch_normalization.py): batch statistics and epsilon placement
//! in training, the moving statistics after N steps, inference from the moving statistics, a last
//! partial batch, saving, `summary()`, and training on both backends.

mod common;

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::prelude::*;

/// Four samples of three channels with distinct means and spreads.
fn x() -> Tensor {
    Tensor::new(
        [4, 3],
        vec![1.0, -2.0, 10.0, 3.0, 0.0, 14.0, -1.0, 4.0, 11.0, 5.0, 2.0, 9.0],
    )
    .unwrap()
}

/// Per-channel mean and biased variance of `x`, in f64.
fn moments(x: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let c = x.row_len();
    let n = x.rows() as f64;
    let mean: Vec<f64> = (0..c)
        .map(|j| (0..x.rows()).map(|i| f64::from(x.row(i)[j])).sum::<f64>() / n)
        .collect();
    let var = (0..c)
        .map(|j| {
            (0..x.rows())
                .map(|i| (f64::from(x.row(i)[j]) - mean[j]).powi(2))
                .sum::<f64>()
                / n
        })
        .collect();
    (mean, var)
}

fn bn_model(device: &dyn Backend, bn: BatchNormalization) -> Sequential {
    let mut m = Sequential::new().add(bn.input_shape([3]));
    // Plain SGD: gamma and beta move, the moving statistics follow the (fixed) input only.
    m.compile(device, Optimizer::sgd(0.1), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

fn weight(m: &mut Sequential, name: &str) -> Vec<f32> {
    m.weights()
        .unwrap()
        .into_iter()
        .find(|w| w.name == format!("batch_normalization/{name}"))
        .unwrap_or_else(|| panic!("no weight {name}"))
        .values
}

#[test]
fn the_training_loss_uses_batch_statistics_with_epsilon_inside_the_root() {
    let (x, zeros) = (x(), Tensor::new([4, 3], vec![0.0; 12]).unwrap());
    let (_, var) = moments(&x);
    for device in common::backends() {
        for epsilon in [1e-3, 0.5] {
            let mut m = bn_model(device.as_ref(), BatchNormalization::new().epsilon(epsilon));
            // gamma 1, beta 0: each output is (x - mean)/√(var + ε), so the MSE against zeros is
            // the mean over channels of var / (var + ε).
            let want = var.iter().map(|v| v / (v + f64::from(epsilon))).sum::<f64>() / 3.0;
            let loss = m.train_on_batch(&x, &zeros).unwrap();
            assert!(
                (f64::from(loss) - want).abs() < 1e-5,
                "{} ε {epsilon}: loss {loss}, want {want}",
                device.name()
            );
        }
    }
}

#[test]
fn moving_statistics_follow_keras_update_and_drive_inference() {
    let x = x();
    let y = Tensor::new([4, 3], (0..12).map(|i| (i as f32 * 0.3).sin()).collect()).unwrap();
    let (mean, var) = moments(&x);
    for device in common::backends() {
        let momentum = 0.9f64;
        let mut m = bn_model(device.as_ref(), BatchNormalization::new().momentum(momentum as f32));
        let steps = 7;
        for _ in 0..steps {
            m.train_on_batch(&x, &y).unwrap();
        }
        // From zeros and ones: moving = start·m^N + batch·(1 - m^N).
        let kept = momentum.powi(steps);
        let moving_mean = weight(&mut m, "moving_mean");
        let moving_var = weight(&mut m, "moving_variance");
        for j in 0..3 {
            let want_mean = mean[j] * (1.0 - kept);
            let want_var = kept + var[j] * (1.0 - kept);
            assert!((f64::from(moving_mean[j]) - want_mean).abs() < 1e-4 * want_mean.abs().max(1.0));
            assert!((f64::from(moving_var[j]) - want_var).abs() < 1e-4 * want_var.max(1.0));
        }
        // Inference: (x - moving_mean)/√(moving_var + ε)·gamma + beta, with the trained gamma, beta.
        let (gamma, beta) = (weight(&mut m, "gamma"), weight(&mut m, "beta"));
        let want: Vec<f32> = (0..12)
            .map(|k| {
                let (i, j) = (k / 3, k % 3);
                let v = f64::from(x.row(i)[j]);
                let norm = (v - f64::from(moving_mean[j])) / (f64::from(moving_var[j]) + 1e-3).sqrt();
                (norm * f64::from(gamma[j]) + f64::from(beta[j])) as f32
            })
            .collect();
        let got = m.predict(&x, 4).unwrap();
        common::assert_close(
            &format!("inference on {}", device.name()),
            got.data(),
            &want,
            1e-5,
            1e-5,
        );
        // A last partial batch changes nothing: inference reads no batch statistics.
        assert_eq!(m.predict(&x, 3).unwrap(), got, "{}", device.name());
        let e4 = m.evaluate(&x, &y, 4).unwrap().loss();
        let e3 = m.evaluate(&x, &y, 3).unwrap().loss();
        assert!((e4 - e3).abs() < 1e-6, "{e4} vs {e3}");
    }
}

#[test]
fn sequence_inputs_normalise_over_samples_and_positions() {
    // [B, T, C]: statistics over B·T rows per channel, as Keras' axis=-1.
    let x3 = Tensor::new([2, 2, 3], x().data().to_vec()).unwrap();
    let (_, var) = moments(&x());
    let mut m = Sequential::new().add(BatchNormalization::new().input_shape([2, 3]));
    m.compile(&CpuBackend, Optimizer::sgd(0.1), Loss::MeanSquaredError, &[])
        .unwrap();
    let loss = m
        .train_on_batch(&x3, &Tensor::new([2, 2, 3], vec![0.0; 12]).unwrap())
        .unwrap();
    let want = var.iter().map(|v| v / (v + 1e-3)).sum::<f64>() / 3.0;
    assert!((f64::from(loss) - want).abs() < 1e-5, "{loss} vs {want}");
}

#[test]
fn summary_counts_moving_statistics_as_non_trainable_and_saving_keeps_them() {
    let mut m = Sequential::new()
        .add(Dense::new(4).input_dim(3))
        .add(BatchNormalization::new().momentum(0.5))
        .add(ActivationLayer::new(Activation::Relu))
        .add(Dense::new(1));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let summary = m.summary();
    assert!(
        summary.contains("batch_normalization (BatchNormalization)"),
        "{summary}"
    );
    assert!(
        summary.contains("dense (Dense)") && summary.contains("activation (Activation)"),
        "{summary}"
    );
    // Dense 3·4+4, BN 4+4 trainable and 4+4 not, Dense 4+1.
    assert!(summary.contains("Total params: 37"), "{summary}");
    assert!(summary.contains("Trainable params: 29"), "{summary}");
    assert!(summary.contains("Non-trainable params: 8"), "{summary}");

    let x = random::normal([16, 3], 4);
    let y = random::normal([16, 1], 5);
    m.fit(&x, &y, &FitOptions::new(2, 8)).unwrap();
    let dir = std::env::temp_dir().join(format!("kiln-bn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bn.safetensors");
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &CpuBackend).unwrap();
    assert_eq!(loaded.predict(&x, 16).unwrap(), m.predict(&x, 16).unwrap());
    let weights_path = dir.join("w.safetensors");
    m.save_weights(&weights_path).unwrap();
    let moving = |m: &mut Sequential| {
        m.weights()
            .unwrap()
            .into_iter()
            .find(|w| w.name == "batch_normalization/moving_mean")
            .unwrap()
            .values
    };
    assert_ne!(moving(&mut m), vec![0.0; 4], "two epochs moved the statistics");
    let mut fresh = Sequential::new()
        .add(Dense::new(4).input_dim(3))
        .add(BatchNormalization::new().momentum(0.5))
        .add(ActivationLayer::new(Activation::Relu))
        .add(Dense::new(1));
    fresh
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    fresh.load_weights(&weights_path).unwrap();
    assert_eq!(moving(&mut fresh), moving(&mut m));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_batch_normalized_mlp_trains_and_the_backends_agree() {
    let data = datasets::breast_cancer().unwrap();
    let (x, y) = (data.x_train.slice_rows(0..256), data.y_train.slice_rows(0..256));
    let mut losses = Vec::new();
    for device in common::backends() {
        // Unstandardised features (values up to thousands): BatchNormalization does the scaling.
        let mut m = Sequential::new()
            .seed(2)
            .add(BatchNormalization::new().momentum(0.9).input_shape([30]))
            .add(Dense::new(16))
            .add(BatchNormalization::new().momentum(0.9))
            .add(ActivationLayer::new(Activation::Relu))
            .add(Dense::new(1).activation(Activation::Sigmoid));
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let h = m
            .fit(&x, &y, &FitOptions::new(8, 32).seed(1).record_batch_loss())
            .unwrap();
        let acc = m.evaluate(&x, &y, 64).unwrap().get("accuracy").unwrap();
        assert!(acc > 0.9, "{}: accuracy {acc}", device.name());
        losses.push(h.batch_loss[..20].to_vec());
    }
    if let [cpu, gpu] = &losses[..] {
        common::assert_close("first 20 batch losses, GPU vs CPU", gpu, cpu, 1e-3, 1e-3);
    }
}

#[test]
fn the_doctor_warns_when_moving_statistics_lag_the_weights() {
    let data = datasets::breast_cancer().unwrap();
    let (x, y) = (data.x_train.slice_rows(0..256), data.y_train.slice_rows(0..256));
    let fit = |momentum: f32, epochs: usize| {
        // Raw features (means in the hundreds): moving statistics starting at 0 and 1 need many
        // steps at momentum 0.99 to reach them.
        let mut m = Sequential::new()
            .seed(3)
            .add(BatchNormalization::new().momentum(momentum).input_shape([30]))
            .add(Dense::new(8).activation(Activation::Relu))
            .add(Dense::new(1).activation(Activation::Sigmoid));
        m.compile(&CpuBackend, Optimizer::adam_lr(0.01), Loss::BinaryCrossentropy, &[])
            .unwrap();
        m.fit(&x, &y, &FitOptions::new(epochs, 32).seed(1)).unwrap()
    };
    let lagging = fit(0.99, 1);
    let warning = lagging
        .warnings
        .iter()
        .find(|w| w.contains("moving statistics lag"))
        .unwrap_or_else(|| panic!("no lag warning in {:?}", lagging.warnings));
    assert!(
        warning.contains("`batch_normalization`")
            && warning.contains("Lower the momentum")
            && warning.contains("train longer"),
        "{warning}"
    );
    let caught_up = fit(0.5, 3);
    assert!(
        caught_up.warnings.iter().all(|w| !w.contains("moving statistics lag")),
        "{:?}",
        caught_up.warnings
    );
}
