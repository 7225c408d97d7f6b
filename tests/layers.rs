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
