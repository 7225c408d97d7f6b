//! The MNIST CNN of `examples/mnist.rs` (the README's main job): it reaches 0.97 test accuracy,
//! the GPU follows the CPU step by step, and a steady-state CNN training step is one submit with no
//! allocation.

mod common;

#[path = "../examples/mnist.rs"]
#[allow(dead_code)]
mod mnist;

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::prelude::*;

#[test]
fn mnist_cnn_reaches_97_percent() {
    // The example's own run, on the device it picks on a lavapipe machine (the CPU backend); the
    // GPU side of this model is covered step by step below.
    let (_, history, result) = mnist::train(&CpuBackend, 6, 0).unwrap();
    let accuracy = result.get("accuracy").unwrap();
    println!("MNIST CNN test accuracy {accuracy:.4}");
    assert!(accuracy >= 0.97, "{accuracy}");
    assert_eq!(history.last("val_accuracy"), Some(accuracy));
}

#[test]
fn the_cnn_trains_the_same_on_the_gpu_and_steady_steps_allocate_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let data = datasets::mnist().unwrap();
    let x = mnist::images(&data.x_train.slice_rows(0..320)).unwrap();
    let y = data.y_train.slice_rows(0..320);
    let options = FitOptions::new(1, 32).seed(2).record_batch_loss();
    let fit = |device: &dyn Backend| {
        let mut m = mnist::cnn();
        m.compile(
            device,
            Optimizer::adam_lr(3e-3),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let h = m.fit(&x, &y, &options).unwrap();
        (m, h)
    };
    let (_, on_cpu) = fit(&CpuBackend);
    let (mut model, on_gpu) = fit(gpu);
    assert_eq!(on_cpu.batch_loss.len(), 10);
    for (step, (c, g)) in on_cpu.batch_loss.iter().zip(&on_gpu.batch_loss).enumerate() {
        assert!((c - g).abs() <= 1e-3 * c.abs(), "step {step}: cpu {c}, gpu {g}");
    }
    assert!(on_gpu.batch_loss[9] < on_gpu.batch_loss[0], "{:?}", on_gpu.batch_loss);
    let (bx, by) = (x.slice_rows(0..32), y.slice_rows(0..32));
    model.train_on_batch(&bx, &by).unwrap();
    let before = model.counters();
    model.train_on_batch(&bx, &by).unwrap();
    let after = model.counters();
    assert_eq!(after.submits - before.submits, 1);
    assert_eq!(after.buffer_allocations, before.buffer_allocations);
    assert_eq!(after.pipeline_creations, before.pipeline_creations);
    assert_eq!(after.parameter_reads, 0);
    println!(
        "CNN step: {} dispatches, 1 submit",
        after.dispatches - before.dispatches
    );
}

#[test]
fn the_small_cnn_reaches_95_percent_on_the_gpu() {
    // Conv2D(16) → MaxPool → Conv2D(32) → MaxPool → Flatten → Dense(10, softmax) on the first 4000
    // digits, tested on the last 1000, every op a WGSL kernel (about 25 s an epoch on lavapipe).
    let Some(gpu) = common::gpu() else { return };
    let data = datasets::mnist().unwrap();
    let (x, x_test) = (
        mnist::images(&data.x_train).unwrap(),
        mnist::images(&data.x_test).unwrap(),
    );
    let mut m = Sequential::new()
        .seed(1)
        .add(
            Conv2D::new(16, (3, 3))
                .activation(Activation::Relu)
                .input_shape([28, 28, 1]),
        )
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(32, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    m.compile(
        gpu,
        Optimizer::adam_lr(3e-3),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m.fit(&x, &data.y_train, &FitOptions::new(4, 32)).unwrap();
    let accuracy = m.evaluate(&x_test, &data.y_test, 250).unwrap().get("accuracy").unwrap();
    println!("MNIST CNN on {}: test accuracy {accuracy:.4}", gpu.name());
    assert!(accuracy >= 0.95, "{accuracy}");
}
