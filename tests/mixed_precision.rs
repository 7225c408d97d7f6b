//! The `mixed_float16` policy: f16 values between layers, f32 master weights, dynamic loss scaling
//! (Keras' `LossScaleOptimizer` rules), on both backends.

mod common;

use kiln::graph::Backend;
use kiln::prelude::*;

#[path = "../examples/seed_004_multilabel_cnn.rs"]
#[allow(dead_code)]
mod seed_004;

/// Dense(8, relu) → Dense(1) under `mixed_float16`, SGD: the first layer computes in f16, the
/// output layer in f32.
fn small_model(device: &dyn Backend, scale: LossScale) -> Sequential {
    let mut model = Sequential::new()
        .seed(5)
        .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(1));
    model.set_dtype_policy(DTypePolicy::MixedFloat16);
    model.set_loss_scale(scale);
    model
        .compile(device, Optimizer::adam_lr(0.01), Loss::MeanSquaredError, &[])
        .unwrap();
    model
}

fn batch(value: f32) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..32).map(|i| value * (1.0 + (i % 4) as f32 * 0.25)).collect();
    (
        Tensor::new([8, 4], x).unwrap(),
        Tensor::new([8, 1], vec![0.5; 8]).unwrap(),
    )
}

#[test]
fn the_loss_scale_backs_off_after_an_overflow_and_the_step_is_skipped() {
    for device in common::backends() {
        let name = device.name();
        let mut model = small_model(device.as_ref(), LossScale::default());
        assert_eq!(model.loss_scale().unwrap(), Some(32768.0));
        // Inputs of 3,000: the first layer's kernel gradient (Σ x · dy, times 2¹⁵) passes f16's
        // 65,504 and rounds to ∞.
        let (x, y) = batch(3000.0);
        let before = model.weights().unwrap();
        let loss = model.train_on_batch(&x, &y).unwrap();
        assert!(loss.is_finite(), "{name}: the loss is computed in f32: {loss}");
        assert_eq!(model.loss_scale().unwrap(), Some(16384.0), "{name}: halved");
        let after = model.weights().unwrap();
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.values, a.values, "{name}: `{}` moved in a skipped step", b.name);
        }
        // Halving goes on until the gradients fit, and the step that fits applies.
        let mut scales = vec![16384.0];
        for _ in 0..40 {
            model.train_on_batch(&x, &y).unwrap();
            scales.push(model.loss_scale().unwrap().unwrap());
            if scales[scales.len() - 1] == scales[scales.len() - 2] {
                break;
            }
        }
        let settled = *scales.last().unwrap();
        assert!(
            settled < 16384.0 && scales.windows(2).rev().skip(1).all(|w| w[1] == w[0] / 2.0),
            "{name}: scales {scales:?}"
        );
        let moved = model.weights().unwrap();
        assert!(
            moved.iter().zip(&after).any(|(m, a)| m.values != a.values),
            "{name}: a finite step at scale {settled} applied nothing"
        );
        println!("{name}: loss scale backed off {scales:?}");
    }
}

/// After `growth_steps` finite steps in a row the scale doubles; a steady step is still one submit
/// that allocates nothing.
#[test]
fn the_loss_scale_doubles_after_growth_steps_finite_steps() {
    for device in common::backends() {
        let name = device.name();
        let scale = LossScale {
            initial: 4.0,
            growth_steps: 3,
        };
        let mut model = small_model(device.as_ref(), scale);
        let (x, y) = batch(0.5);
        let mut scales = Vec::new();
        for _ in 0..7 {
            let before = model.counters();
            model.train_on_batch(&x, &y).unwrap();
            let after = model.counters();
            scales.push(model.loss_scale().unwrap().unwrap());
            if scales.len() > 1 {
                // Scaling, the overflow check and the scale's update are inside the one submit.
                assert_eq!(after.submits - before.submits, 1, "{name}");
                assert_eq!(after.buffer_allocations, before.buffer_allocations, "{name}");
                assert_eq!(after.pipeline_creations, before.pipeline_creations, "{name}");
            }
        }
        assert_eq!(scales, [4.0, 4.0, 8.0, 8.0, 8.0, 16.0, 16.0], "{name}");
    }
}

/// A skipped step does not count as an update: after an overflow and one finite step, the model
/// is where one finite step from the same weights puts it (Adam's bias correction at t = 1), and
/// saving and loading keeps the scale.
#[test]
fn a_skipped_step_is_not_counted_and_the_scale_is_saved() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("mixed_precision");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mixed.safetensors");
    for device in common::backends() {
        let name = device.name();
        let (huge, y) = batch(3000.0);
        let (x, _) = batch(0.5);
        let start = LossScale {
            initial: 8192.0,
            growth_steps: 2000,
        };
        let mut skipped = small_model(device.as_ref(), LossScale::default());
        skipped.train_on_batch(&huge, &y).unwrap();
        skipped.train_on_batch(&huge, &y).unwrap();
        skipped.train_on_batch(&x, &y).unwrap();
        let mut direct = small_model(device.as_ref(), start);
        direct.train_on_batch(&x, &y).unwrap();
        assert_eq!(skipped.loss_scale().unwrap(), Some(8192.0), "{name}");
        for (a, b) in skipped.weights().unwrap().iter().zip(&direct.weights().unwrap()) {
            assert_eq!(a.values, b.values, "{name}: `{}`", a.name);
        }
        skipped.save(&path).unwrap();
        let mut loaded = load_model(&path, device.as_ref()).unwrap();
        assert_eq!(loaded.dtype_policy(), DTypePolicy::MixedFloat16, "{name}");
        assert_eq!(loaded.loss_scale().unwrap(), Some(8192.0), "{name}");
        let (a, b) = (
            skipped.train_on_batch(&x, &y).unwrap(),
            loaded.train_on_batch(&x, &y).unwrap(),
        );
        assert_eq!(a, b, "{name}: the loaded model trains on as the saved one");
    }
}

/// The policy changes the numbers (values between layers are f16) but not what the model learns:
/// the digits MLP reaches its f32 test accuracy within one point on both backends.
#[test]
fn digits_mlp_trains_to_its_f32_accuracy_under_mixed_float16() {
    let mut d = datasets::digits().unwrap();
    for t in [&mut d.x_train, &mut d.x_test] {
        t.data_mut().iter_mut().for_each(|v| *v /= 16.0);
    }
    for device in common::backends() {
        let accuracy = |policy| {
            let mut model = Sequential::new()
                .seed(1)
                .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
                .add(Dense::new(10).activation(Activation::Softmax));
            model.set_dtype_policy(policy);
            model
                .compile(
                    device.as_ref(),
                    Optimizer::adam(),
                    Loss::SparseCategoricalCrossentropy,
                    &[Metric::Accuracy],
                )
                .unwrap();
            model
                .fit(&d.x_train, &d.y_train, &FitOptions::new(20, 32).seed(3))
                .unwrap();
            let first_layer = model.weights().unwrap()[0].values.clone();
            let acc = model
                .evaluate(&d.x_test, &d.y_test, 64)
                .unwrap()
                .get("accuracy")
                .unwrap();
            (acc, first_layer)
        };
        let (f32_accuracy, f32_weights) = accuracy(DTypePolicy::Float32);
        let (mixed_accuracy, mixed_weights) = accuracy(DTypePolicy::MixedFloat16);
        println!(
            "{}: digits MLP test accuracy f32 {f32_accuracy:.4}, mixed_float16 {mixed_accuracy:.4}",
            device.name()
        );
        assert!(f32_weights != mixed_weights, "the policy changed nothing");
        assert!(
            mixed_accuracy >= f32_accuracy - 0.01,
            "{}: mixed {mixed_accuracy} vs f32 {f32_accuracy}",
            device.name()
        );
    }
}

/// Seed 004's CNN (convolutions, pooling, a sigmoid output) under `mixed_float16` on 16×16
/// coloured squares, as `tests/seeds.rs` trains it, reaches its f32 held-out label accuracy within
/// one point on the GPU (lavapipe in CI; on the CPU the two measured 0.9406 and 0.9375 when this
/// test was written, left out here for the suite's time).
#[test]
fn seed_004_cnn_trains_to_its_f32_accuracy_under_mixed_float16() {
    let Some(gpu) = common::gpu() else { return };
    let (x, y) = common::coloured_squares(512, 16, 21);
    let (xv, yv) = common::coloured_squares(128, 16, 22);
    {
        let device: &dyn Backend = gpu;
        let accuracy = |policy| {
            let mut model = seed_004::cnn(16, 16, 5).seed(4);
            model.set_dtype_policy(policy);
            model
                .compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[Metric::Accuracy])
                .unwrap();
            model.fit(&x, &y, &FitOptions::new(30, 32)).unwrap();
            model.evaluate(&xv, &yv, 32).unwrap().get("accuracy").unwrap()
        };
        let (f32_accuracy, mixed_accuracy) = (accuracy(DTypePolicy::Float32), accuracy(DTypePolicy::MixedFloat16));
        println!(
            "{}: seed 004 CNN label accuracy f32 {f32_accuracy:.4}, mixed_float16 {mixed_accuracy:.4}",
            device.name()
        );
        assert!(
            mixed_accuracy >= f32_accuracy - 0.01,
            "{}: mixed {mixed_accuracy} vs f32 {f32_accuracy}",
            device.name()
        );
    }
}

/// CPU and GPU agree under the policy to f16's precision: rounding to f16 is the same function on
/// both, but an f32 difference of one unit can carry a value across an f16 rounding boundary, one
/// f16 unit (2⁻¹¹ relative) apart. Over 20 steps of a conv + BatchNormalization + dense model, the
/// batch losses stay within 4·2⁻¹⁰ relative.
#[test]
fn cpu_and_gpu_agree_to_f16_precision_under_the_policy() {
    let Some(gpu) = common::gpu() else { return };
    let (x, y) = common::coloured_squares(64, 8, 31);
    let losses = |device: &dyn Backend| {
        let mut model = Sequential::new()
            .seed(7)
            .add(
                Conv2D::new(8, (3, 3))
                    .activation(Activation::Relu)
                    .input_shape([8, 8, 3]),
            )
            .add(BatchNormalization::new())
            .add(Flatten::new())
            .add(Dense::new(16).activation(Activation::Relu))
            .add(Dense::new(5).activation(Activation::Sigmoid));
        model.set_dtype_policy(DTypePolicy::MixedFloat16);
        model
            .compile(device, Optimizer::adam(), Loss::BinaryCrossentropy, &[])
            .unwrap();
        (0..20)
            .map(|step| {
                let rows = (step % 4) * 16..(step % 4 + 1) * 16;
                model
                    .train_on_batch(&x.slice_rows(rows.clone()), &y.slice_rows(rows))
                    .unwrap()
            })
            .collect::<Vec<f32>>()
    };
    let (cpu, lavapipe) = (losses(&kiln::cpu::CpuBackend), losses(gpu));
    for (step, (c, g)) in cpu.iter().zip(&lavapipe).enumerate() {
        assert!(
            (c - g).abs() <= 4.0 / 1024.0 * c.abs(),
            "step {step}: cpu {c}, gpu {g}; cpu {cpu:?}, gpu {lavapipe:?}"
        );
    }
    assert!(cpu[19] < cpu[0], "the model learned nothing: {cpu:?}");
}
