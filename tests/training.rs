//! End-to-end training on the bundled real datasets, on both backends, with the figures of the
//! foundation's acceptance list.

mod common;

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::prelude::*;

fn scaled_digits() -> datasets::Dataset {
    let mut d = datasets::digits().unwrap();
    for t in [&mut d.x_train, &mut d.x_test] {
        t.data_mut().iter_mut().for_each(|v| *v /= 16.0);
    }
    d
}

fn digits_model(device: &dyn Backend) -> Sequential {
    let mut model = Sequential::new()
        .seed(1)
        .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
        .add(Dense::new(10).activation(Activation::Softmax));
    model
        .compile(
            device,
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
    model
}

#[test]
fn digits_mlp_reaches_95_percent_on_both_backends() {
    let d = scaled_digits();
    for device in common::backends() {
        let mut model = digits_model(device.as_ref());
        let history = model
            .fit(&d.x_train, &d.y_train, &FitOptions::new(30, 32).seed(3))
            .unwrap();
        let result = model.evaluate(&d.x_test, &d.y_test, 64).unwrap();
        let accuracy = result.get("accuracy").unwrap();
        println!("{}: digits test accuracy {accuracy:.4}", device.name());
        assert!(accuracy >= 0.95, "{}: test accuracy {accuracy}", device.name());
        assert_eq!(history.epochs(), 30);
        let losses = history.get("loss").unwrap();
        assert!(losses[29] < losses[0] / 4.0, "loss did not fall: {losses:?}");
        // Parameters stayed on the device for the whole fit.
        assert_eq!(
            model.counters().parameter_reads,
            0,
            "{}: fit read parameters back",
            device.name()
        );
        // predict agrees with evaluate's accuracy.
        let p = model.predict(&d.x_test, 100).unwrap();
        assert_eq!(p.shape(), &[360, 10]);
        let hits = p
            .argmax_rows()
            .iter()
            .zip(d.y_test.data())
            .filter(|(a, b)| **a as f32 == **b)
            .count();
        assert!((hits as f32 / 360.0 - accuracy).abs() < 1e-6);
        let row_sum: f32 = p.row(0).iter().sum();
        assert!((row_sum - 1.0).abs() < 1e-5, "softmax probabilities sum to {row_sum}");
    }
}

#[test]
fn the_same_seeded_run_gives_the_same_losses_on_cpu_and_gpu() {
    let Some(gpu) = common::gpu() else { return };
    let d = scaled_digits();
    let options = FitOptions::new(1, 32).seed(9).record_batch_loss();
    let x = d.x_train.slice_rows(0..640);
    let y = d.y_train.slice_rows(0..640);
    let cpu_losses = digits_model(&CpuBackend).fit(&x, &y, &options).unwrap().batch_loss;
    let gpu_losses = digits_model(gpu).fit(&x, &y, &options).unwrap().batch_loss;
    assert_eq!(cpu_losses.len(), 20);
    for (step, (c, g)) in cpu_losses.iter().zip(&gpu_losses).enumerate() {
        assert!(
            (c - g).abs() <= 1e-3 * c.abs(),
            "step {step}: cpu loss {c}, gpu loss {g}"
        );
    }
    assert!(cpu_losses[19] < cpu_losses[0], "the loss did not move: {cpu_losses:?}");
}

#[test]
fn breast_cancer_binary_reaches_95_percent() {
    let d = datasets::breast_cancer().unwrap();
    let std = Standardizer::fit(&d.x_train).unwrap();
    let (x_train, x_test) = (std.transform(&d.x_train).unwrap(), std.transform(&d.x_test).unwrap());
    for device in common::backends() {
        let mut model = Sequential::new()
            .seed(2)
            .add(Dense::new(1).activation(Activation::Sigmoid).input_dim(30));
        model
            .compile(
                device.as_ref(),
                Optimizer::adam_lr(0.01),
                Loss::BinaryCrossentropy,
                &[Metric::Accuracy],
            )
            .unwrap();
        model.fit(&x_train, &d.y_train, &FitOptions::new(30, 32)).unwrap();
        let accuracy = model.evaluate(&x_test, &d.y_test, 64).unwrap().get("accuracy").unwrap();
        println!("{}: breast cancer test accuracy {accuracy:.4}", device.name());
        assert!(accuracy >= 0.95, "{}: {accuracy}", device.name());
    }
}

#[test]
fn diabetes_regression_ends_below_50_mae() {
    let d = datasets::diabetes().unwrap();
    let xs = Standardizer::fit(&d.x_train).unwrap();
    let column = |t: &Tensor| Tensor::new([t.rows(), 1], t.data().to_vec()).unwrap();
    let (y_train, y_test) = (column(&d.y_train), column(&d.y_test));
    let ys = Standardizer::fit(&y_train).unwrap();
    let (x_train, x_test) = (xs.transform(&d.x_train).unwrap(), xs.transform(&d.x_test).unwrap());
    for device in common::backends() {
        let mut model = Sequential::new()
            .seed(4)
            .add(Dense::new(32).activation(Activation::Relu).input_dim(10))
            .add(Dense::new(1));
        model
            .compile(
                device.as_ref(),
                Optimizer::adam_lr(0.01),
                Loss::MeanSquaredError,
                &[Metric::MeanAbsoluteError],
            )
            .unwrap();
        let history = model
            .fit(&x_train, &ys.transform(&y_train).unwrap(), &FitOptions::new(40, 32))
            .unwrap();
        assert!(history.last("mae").is_some());
        let predicted = ys.inverse(&model.predict(&x_test, 64).unwrap()).unwrap();
        let mae = predicted
            .data()
            .iter()
            .zip(y_test.data())
            .map(|(p, t)| (p - t).abs())
            .sum::<f32>()
            / y_test.rows() as f32;
        println!("{}: diabetes test MAE {mae:.2}", device.name());
        assert!(mae < 50.0, "{}: test MAE {mae}", device.name());
    }
}

/// A steady-state training step is one submit with no buffer or pipeline creation.
#[test]
fn a_steady_state_step_is_one_submit_and_allocates_nothing() {
    let d = scaled_digits();
    let x = d.x_train.slice_rows(0..32);
    let y = d.y_train.slice_rows(0..32);
    for device in common::backends() {
        let mut model = digits_model(device.as_ref());
        model.train_on_batch(&x, &y).unwrap();
        let before = model.counters();
        let loss = model.train_on_batch(&x, &y).unwrap();
        let after = model.counters();
        assert!(loss.is_finite());
        assert_eq!(after.submits - before.submits, 1, "{}", device.name());
        assert_eq!(after.buffer_allocations, before.buffer_allocations, "{}", device.name());
        assert_eq!(after.pipeline_creations, before.pipeline_creations, "{}", device.name());
        assert_eq!(after.parameter_reads, 0, "{}", device.name());
        assert!(
            after.dispatches - before.dispatches >= 10,
            "{}: a step records every kernel",
            device.name()
        );
    }
}

/// `predict` cuts the rows into full batches (run together) and a shorter last one: every cut
/// gives every row the prediction it gets alone, on each backend.
#[test]
fn predict_gives_each_row_the_same_output_whatever_the_batch_size() {
    for device in common::backends() {
        let mut m = Sequential::new()
            .add(Dense::new(16).activation(Activation::Tanh).input_dim(6))
            .add(Dense::new(3).activation(Activation::Softmax))
            .seed(4);
        m.compile(
            device.as_ref(),
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[],
        )
        .unwrap();
        let x = random::normal([23, 6], 9);
        let one_by_one = m.predict(&x, 1).unwrap();
        for batch in [5, 23, 50] {
            let p = m.predict(&x, batch).unwrap();
            assert_eq!(p.shape(), &[23, 3]);
            common::assert_close(
                &format!("{}: batch {batch}", device.name()),
                p.data(),
                one_by_one.data(),
                1e-6,
                1e-5,
            );
        }
    }
}
