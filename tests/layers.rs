//! GlobalAveragePooling2D and Reshape: shapes, errors naming the layer, and small models through them
//! that learn on both backends with the GPU following the CPU step by step.

mod common;

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::prelude::*;

/// 8×8×3 images whose three tags say which channels are bright on average.
fn bright_channels(n: usize, seed: u64) -> (Tensor, Tensor) {
    let x = random::uniform([n, 8, 8, 3], seed);
    let scale = random::uniform([n, 3], seed + 1);
    let mut data = x.data().to_vec();
    for (i, v) in data.iter_mut().enumerate() {
        *v *= 2.0 * scale.row(i / 192)[i % 3];
    }
    let x = Tensor::new([n, 8, 8, 3], data).unwrap();
    let y: Vec<f32> = (0..n * 3).map(|i| f32::from(scale.row(i / 3)[i % 3] > 0.5)).collect();
    (x, Tensor::new([n, 3], y).unwrap())
}

#[test]
fn global_average_pooling2d_and_reshape_models_train_alike_on_both_backends() {
    let (x, y) = bright_channels(256, 3);
    let flat = x.clone().reshape([256, 192]).unwrap();
    let pooled = |device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(2)
            .add(
                Conv2D::new(8, (3, 3))
                    .activation(Activation::Relu)
                    .input_shape([8, 8, 3]),
            )
            .add(GlobalAveragePooling2D::new())
            .add(Dense::new(3).activation(Activation::Sigmoid));
        m.compile(
            device,
            Optimizer::adam_lr(0.02),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m.fit(&x, &y, &FitOptions::new(20, 32).seed(1).record_batch_loss())
            .unwrap()
    };
    let reshaped = |device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(2)
            .input_shape([192])
            .add(Reshape::new([64, 3]))
            .add(GlobalAveragePooling1D::new())
            .add(Dense::new(3).activation(Activation::Sigmoid));
        m.compile(
            device,
            Optimizer::adam_lr(0.05),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m.fit(&flat, &y, &FitOptions::new(20, 32).seed(1).record_batch_loss())
            .unwrap()
    };
    let mut runs = vec![(pooled(&CpuBackend), reshaped(&CpuBackend))];
    if let Some(gpu) = common::gpu() {
        runs.push((pooled(gpu), reshaped(gpu)));
    }
    for (p, r) in &runs {
        assert!(
            p.last("accuracy").unwrap() >= 0.9,
            "GlobalAveragePooling2D model: {:?}",
            p.get("accuracy")
        );
        assert!(
            r.last("accuracy").unwrap() >= 0.9,
            "Reshape model: {:?}",
            r.get("accuracy")
        );
    }
    if let [(cp, cr), (gp, gr)] = runs.as_slice() {
        for (cpu, gpu) in [(cp, gp), (cr, gr)] {
            for (step, (c, g)) in cpu.batch_loss.iter().zip(&gpu.batch_loss).take(20).enumerate() {
                assert!((c - g).abs() <= 1e-3 * c.abs(), "step {step}: cpu {c}, gpu {g}");
            }
        }
    }
}

#[test]
fn shape_errors_name_the_layer() {
    let compile = |m: &mut Sequential| m.compile(&Device::cpu(), Optimizer::adam(), Loss::MeanSquaredError, &[]);
    let mut m = Sequential::new().input_shape([12]).add(Reshape::new([5, 2]));
    let err = compile(&mut m).unwrap_err().to_string();
    assert!(
        err.contains("Reshape") && err.contains("12 values") && err.contains("10"),
        "{err}"
    );
    let mut m = Sequential::new().input_shape([4, 4]).add(GlobalAveragePooling2D::new());
    let err = compile(&mut m).unwrap_err().to_string();
    assert!(
        err.contains("GlobalAveragePooling2D") && err.contains("[4, 4]"),
        "{err}"
    );
    let mut m = Sequential::new().input_shape([4, 4, 1]).add(Conv2D::new(2, (5, 5)));
    let err = compile(&mut m).unwrap_err().to_string();
    assert!(
        err.contains("Conv2D") && err.contains("5×5") && err.contains("4×4"),
        "{err}"
    );
    let mut m = Sequential::new().input_shape([4, 4, 1]).add(MaxPooling2D::new((5, 5)));
    let err = compile(&mut m).unwrap_err().to_string();
    assert!(err.contains("MaxPooling2D"), "{err}");
}

#[test]
fn dropout_drops_while_training_only_and_the_gpu_draws_the_cpu_masks() {
    let (x, y) = bright_channels(128, 5);
    let flat = x.reshape([128, 192]).unwrap();
    let build = |device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(4)
            .add(Dense::new(32).activation(Activation::Relu).input_dim(192))
            .add(Dropout::new(0.4))
            .add(Dense::new(3).activation(Activation::Sigmoid));
        m.compile(
            device,
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m
    };
    let mut runs = Vec::new();
    for device in common::backends() {
        let mut m = build(device.as_ref());
        // Inference passes inputs through: predictions and evaluations repeat exactly.
        let p1 = m.predict(&flat, 64).unwrap();
        assert_eq!(p1, m.predict(&flat, 64).unwrap());
        let e1 = m.evaluate(&flat, &y, 64).unwrap().loss();
        assert_eq!(e1, m.evaluate(&flat, &y, 64).unwrap().loss());
        // Training draws a new mask every step: the same batch twice gives different losses
        // even before the weights change much, and both stay finite.
        let (bx, by) = (flat.slice_rows(0..32), y.slice_rows(0..32));
        let mut probe = build(device.as_ref());
        let l1 = probe.train_on_batch(&bx, &by).unwrap();
        let l2 = probe.train_on_batch(&bx, &by).unwrap();
        assert!(l1.is_finite() && l2.is_finite() && l1 != l2);
        let h = m
            .fit(&flat, &y, &FitOptions::new(15, 32).seed(3).record_batch_loss())
            .unwrap();
        assert!(h.last("accuracy").unwrap() >= 0.85, "{:?}", h.get("accuracy"));
        runs.push(h.batch_loss);
    }
    if let [cpu, gpu] = runs.as_slice() {
        for (step, (c, g)) in cpu.iter().zip(gpu).take(30).enumerate() {
            assert!((c - g).abs() <= 1e-3 * c.abs(), "step {step}: cpu {c}, gpu {g}");
        }
    }
    let err = Sequential::new()
        .input_shape([4])
        .add(Dropout::new(1.0))
        .compile(&Device::cpu(), Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("Dropout") && err.contains("rate 1"), "{err}");
}

/// SpatialDropout drops whole channels: with all-ones images and a readout of one channel's
/// average, every sample reads 0 (dropped) or 2 (kept and scaled by 1 / (1 - 0.5)), never the
/// fractions elementwise dropout would give; the CPU and the GPU draw the same channels, and
/// inference passes the input through.
#[test]
fn spatial_dropout_drops_whole_channels_while_training_on_both_backends() {
    let n = 8;
    let mut runs = Vec::new();
    for device in common::backends() {
        let mut per_kind = Vec::new();
        for two_d in [true, false] {
            let (layer, shape) = if two_d {
                (SpatialDropout::two_d(0.5), vec![6, 5, 3])
            } else {
                (SpatialDropout::one_d(0.5), vec![30, 3])
            };
            let m = Sequential::new().input_shape(shape.clone()).add(layer);
            let m = if two_d {
                m.add(GlobalAveragePooling2D::new())
            } else {
                m.add(GlobalAveragePooling1D::new())
            };
            let mut m = m.add(Dense::new(1).without_bias());
            m.compile(device.as_ref(), Optimizer::sgd(1e-12), Loss::MeanSquaredError, &[])
                .unwrap();
            // The readout: channel 1 alone.
            let mut w = m.weights().unwrap();
            w[0].values = vec![0.0, 1.0, 0.0];
            m.set_weights(&w).unwrap();
            let dims: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
            let x = Tensor::new(dims.clone(), vec![1.0; dims.iter().product()]).unwrap();
            let y = Tensor::new([n, 1], vec![0.0; n]).unwrap();
            assert!(m.predict(&x, n).unwrap().data().iter().all(|&v| (v - 1.0).abs() < 1e-6));
            // Each step's loss is the mean of 0s and 4s over the batch: a multiple of 4 / n.
            let losses: Vec<f32> = (0..20).map(|_| m.train_on_batch(&x, &y).unwrap()).collect();
            for &l in &losses {
                let kept = l * n as f32 / 4.0;
                assert!(
                    (kept - kept.round()).abs() < 1e-4,
                    "{}: loss {l} is not whole channels",
                    device.name()
                );
            }
            let mean = losses.iter().sum::<f32>() / losses.len() as f32;
            assert!(
                (1.0..3.0).contains(&mean),
                "{}: mean loss {mean}, expected about 2",
                device.name()
            );
            per_kind.push(losses);
        }
        runs.push(per_kind);
    }
    if let [cpu, gpu] = runs.as_slice() {
        assert_eq!(cpu, gpu, "the backends dropped different channels");
    }
    let err = Sequential::new()
        .input_shape([4, 3])
        .add(SpatialDropout::two_d(0.2))
        .compile(&Device::cpu(), Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("SpatialDropout2D") && err.contains("rank 3"), "{err}");
}
