//! Training control: learning-rate schedules against Keras' formulas, a warmup-cosine run on both
//! backends, the rate callbacks, gradient clipping, and the one-submit guard with a schedule and
//! clipping on.

mod common;

use std::sync::{Arc, Mutex};

use kiln::graph::Backend;
use kiln::prelude::*;

/// Within f32 precision: the hyper-parameters are f32, as in Keras.
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-6 * want.abs().max(1e-3)
}

/// `(iterations, rate)` pairs worked out by hand from Keras' `__call__`
/// (keras/src/optimizers/schedules/learning_rate_schedule.py): the first update, the second, one
/// inside, and past the end. Kiln's step is 1-based, so iteration `i` is step `i + 1`.
#[test]
fn schedules_give_keras_rates_at_the_first_steps_inside_and_past_the_end() {
    use std::f64::consts::PI;
    let cos = |f: f64| 0.5 * (1.0 + (PI * f).cos());
    let rows: Vec<(Schedule, Vec<(u64, f64)>)> = vec![
        (
            Schedule::exponential_decay(0.1, 10, 0.5),
            vec![(0, 0.1), (1, 0.1 * 0.5f64.powf(0.1)), (25, 0.1 * 0.5f64.powf(2.5))],
        ),
        (
            Schedule::exponential_decay(0.1, 10, 0.5).staircase(true),
            vec![(0, 0.1), (9, 0.1), (10, 0.05), (25, 0.025)],
        ),
        (
            Schedule::piecewise_constant([10.0, 20.0], [1.0, 0.5, 0.1]),
            vec![(0, 1.0), (10, 1.0), (11, 0.5), (20, 0.5), (21, 0.1), (1000, 0.1)],
        ),
        (
            Schedule::polynomial_decay(0.1, 100),
            vec![(0, 0.1), (50, (0.1 - 1e-4) * 0.5 + 1e-4), (100, 1e-4), (150, 1e-4)],
        ),
        (
            Schedule::polynomial_decay(0.1, 100).polynomial(0.01, 2.0, true),
            vec![(0, 0.1), (50, 0.09 * 0.25 + 0.01), (150, 0.09 * 0.0625 + 0.01)],
        ),
        (
            Schedule::inverse_time_decay(0.1, 10, 0.5),
            vec![(0, 0.1), (5, 0.1 / 1.25), (30, 0.1 / 2.5)],
        ),
        (
            Schedule::inverse_time_decay(0.1, 10, 0.5).staircase(true),
            vec![(9, 0.1), (15, 0.1 / 1.5)],
        ),
        (
            Schedule::cosine_decay(0.1, 100),
            vec![(0, 0.1), (1, 0.1 * cos(0.01)), (50, 0.05), (100, 0.0), (200, 0.0)],
        ),
        (
            Schedule::cosine_decay(0.1, 100).alpha(0.1),
            vec![(50, 0.1 * (0.9 * 0.5 + 0.1)), (300, 0.01)],
        ),
        (
            Schedule::cosine_decay(0.0, 100).warmup(0.1, 10),
            vec![
                (0, 0.0),
                (1, 0.01),
                (5, 0.05),
                (10, 0.1),
                (60, 0.05),
                (110, 0.0),
                (500, 0.0),
            ],
        ),
        (
            Schedule::cosine_decay_restarts(0.1, 10),
            vec![(0, 0.1), (5, 0.05), (10, 0.1), (20, 0.05), (30, 0.1)],
        ),
        (
            Schedule::cosine_decay_restarts(0.1, 10).restarts(1.0, 0.5).alpha(0.1),
            vec![
                (5, 0.1 * (0.9 * 0.5 + 0.1)),
                (10, 0.1 * (0.9 * 0.5 + 0.1)),
                (25, 0.1 * (0.9 * 0.125 + 0.1)),
            ],
        ),
    ];
    for (schedule, points) in rows {
        schedule.validate().unwrap();
        let rate = LearningRate::from(schedule.clone());
        for (iterations, want) in points {
            let got = rate.at(iterations + 1);
            assert!(
                close(got, want),
                "{schedule:?} at iteration {iterations}: {got}, Keras gives {want}"
            );
        }
    }
}

fn digits() -> datasets::Dataset {
    let mut d = datasets::digits().unwrap();
    for t in [&mut d.x_train, &mut d.x_test] {
        t.data_mut().iter_mut().for_each(|v| *v /= 16.0);
    }
    d
}

fn mlp(device: &dyn Backend, optimizer: Optimizer) -> Sequential {
    let mut m = Sequential::new()
        .seed(1)
        .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
        .add(Dense::new(10).activation(Activation::Softmax));
    m.compile(
        device,
        optimizer,
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m
}

#[test]
fn cosine_decay_with_warmup_trains_the_digits_mlp_on_both_backends() {
    let d = digits();
    let steps_per_epoch = d.x_train.rows().div_ceil(32) as u64;
    let schedule =
        Schedule::cosine_decay(1e-4, 10 * steps_per_epoch as usize).warmup(1e-2, 2 * steps_per_epoch as usize);
    for device in common::backends() {
        let optimizer = Optimizer::adam().with_learning_rate(schedule.clone());
        let mut m = mlp(device.as_ref(), optimizer);
        let h = m.fit(&d.x_train, &d.y_train, &FitOptions::new(10, 32).seed(3)).unwrap();
        let accuracy = m.evaluate(&d.x_test, &d.y_test, 64).unwrap().get("accuracy").unwrap();
        println!(
            "{}: digits with warmup + cosine: test accuracy {accuracy:.4}",
            device.name()
        );
        assert!(accuracy >= 0.93, "{}: test accuracy {accuracy}", device.name());
        // The history holds the rate of each epoch's last update: up the warmup, then down.
        let rates = h.get("learning_rate").unwrap();
        for (epoch, &rate) in rates.iter().enumerate() {
            let want = schedule.rate((epoch as u64 + 1) * steps_per_epoch) as f32;
            assert!(
                (rate - want).abs() <= 1e-7,
                "epoch {}: rate {rate}, schedule {want}",
                epoch + 1
            );
        }
        assert!(rates[0] < rates[1] && rates[1] > rates[5] && rates[5] > rates[9]);
    }
}

#[test]
fn reduce_lr_on_plateau_halves_the_rate_after_patience_flat_epochs() {
    let d = digits();
    let (x, y) = (d.x_train.slice_rows(0..256), d.y_train.slice_rows(0..256));
    // A rate so small the loss stays flat to well within min_delta.
    let mut m = mlp(&kiln::cpu::CpuBackend, Optimizer::sgd(1e-7));
    let plateau = Arc::new(Mutex::new(ReduceLROnPlateau::new("loss").factor(0.5).patience(2)));
    let options = FitOptions::new(6, 64).callback(plateau.clone());
    let h = m.fit(&x, &y, &options).unwrap();
    let reductions = plateau.lock().unwrap().reductions.clone();
    assert_eq!(reductions, vec![(3, 5e-8), (5, 2.5e-8)]);
    assert_eq!(
        h.get("learning_rate").unwrap(),
        &[1e-7, 1e-7, 1e-7, 5e-8, 5e-8, 2.5e-8],
        "each epoch logs the rate it trained at"
    );
    // The reduced rate is part of the model: saved and resumed with it.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plateau.safetensors");
    m.save(&path).unwrap();
    let loaded = load_model(&path, &kiln::cpu::CpuBackend).unwrap();
    assert_eq!(
        loaded.optimizer().unwrap().learning_rate(),
        &LearningRate::Constant(2.5e-8)
    );
    // Under a schedule, the rate cannot be set (as in Keras): a clear error.
    let mut scheduled = mlp(
        &kiln::cpu::CpuBackend,
        Optimizer::sgd(0.1).with_learning_rate(Schedule::exponential_decay(0.1, 10, 0.9)),
    );
    // No change counts as an improvement past the first epoch, so the second tries to reduce.
    let plateau = Arc::new(Mutex::new(ReduceLROnPlateau::new("loss").patience(1).min_delta(100.0)));
    let e = scheduled
        .fit(&x, &y, &FitOptions::new(3, 64).callback(plateau))
        .unwrap_err()
        .to_string();
    assert!(e.contains("schedule"), "{e}");
}

#[test]
fn learning_rate_scheduler_sets_each_epochs_rate() {
    let d = digits();
    let (x, y) = (d.x_train.slice_rows(0..256), d.y_train.slice_rows(0..256));
    let mut m = mlp(&kiln::cpu::CpuBackend, Optimizer::adam_lr(0.01));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let scheduler = LearningRateScheduler::new(move |epoch, lr| {
        log.lock().unwrap().push((epoch, lr));
        if epoch < 2 {
            lr
        } else {
            lr * 0.5
        }
    });
    let h = m
        .fit(
            &x,
            &y,
            &FitOptions::new(4, 64).callback(Arc::new(Mutex::new(scheduler))),
        )
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(0, 0.01), (1, 0.01), (2, 0.01), (3, 0.005)],
        "Keras' (epoch, lr), 0-based"
    );
    assert_eq!(h.get("learning_rate").unwrap(), &[0.01, 0.01, 0.005, 0.0025]);
}

#[test]
fn a_scheduled_clipped_step_is_still_one_submit_and_allocates_nothing() {
    let d = digits();
    let (x, y) = (d.x_train.slice_rows(0..32), d.y_train.slice_rows(0..32));
    for device in common::backends() {
        let optimizer = Optimizer::adam()
            .with_learning_rate(Schedule::cosine_decay(1e-3, 100).warmup(1e-2, 10))
            .with_global_clipnorm(1.0);
        let mut m = mlp(device.as_ref(), optimizer);
        m.train_on_batch(&x, &y).unwrap();
        let before = m.counters();
        assert!(m.train_on_batch(&x, &y).unwrap().is_finite());
        let after = m.counters();
        assert_eq!(after.submits - before.submits, 1, "{}", device.name());
        assert_eq!(after.buffer_allocations, before.buffer_allocations, "{}", device.name());
        assert_eq!(after.pipeline_creations, before.pipeline_creations, "{}", device.name());
        assert_eq!(after.parameter_reads, 0, "{}", device.name());
    }
}

#[test]
fn global_clipnorm_tames_an_exploding_regression_that_diverges_without_it() {
    // Unstandardised diabetes features (ages, blood pressures, ...) and targets up to 346: at
    // learning rate 1.0 the first gradients are in the thousands.
    let d = datasets::diabetes().unwrap();
    for device in common::backends() {
        let model = |optimizer: Optimizer| {
            let mut m = Sequential::new().seed(2).add(Dense::new(1).input_dim(10));
            m.compile(device.as_ref(), optimizer, Loss::MeanSquaredError, &[])
                .unwrap();
            m
        };
        let options = FitOptions::new(20, 32).seed(1);
        let e = model(Optimizer::sgd(1.0))
            .fit(&d.x_train, &d.y_train, &options)
            .unwrap_err();
        assert!(matches!(e, Error::Diverged(_)), "{}: {e}", device.name());
        assert!(e.to_string().contains("epoch 1 (steps 1..="), "{e}");
        let mut clipped = model(Optimizer::sgd(1.0).with_global_clipnorm(1.0));
        let h = clipped.fit(&d.x_train, &d.y_train, &options).unwrap();
        let losses = h.get("loss").unwrap();
        println!("{}: clipped losses {losses:?}", device.name());
        assert!(losses.iter().all(|l| l.is_finite()));
        assert!(losses[19] < losses[0] * 0.75, "{}: {losses:?}", device.name());
    }
}

#[test]
fn steps_per_epoch_walks_one_pass_across_epochs_as_keras_does() {
    let d = digits();
    let (x, y) = (d.x_train.slice_rows(0..80), d.y_train.slice_rows(0..80));
    let options = FitOptions::new(4, 16).seed(3).steps_per_epoch(2);
    let mut m = mlp(&kiln::cpu::CpuBackend, Optimizer::adam());
    let h = m.fit(&x, &y, &options).unwrap();
    // Five batches a pass: epochs take 2, 2, then the 1 left (cut short), then 2 of a new pass.
    assert_eq!(m.steps(), 7);
    assert_eq!(h.epochs(), 4);
    // A resumed run continues the pass where the uninterrupted one is.
    let mut first = mlp(&kiln::cpu::CpuBackend, Optimizer::adam());
    first
        .fit(&x, &y, &FitOptions::new(2, 16).seed(3).steps_per_epoch(2))
        .unwrap();
    first.fit(&x, &y, &options.clone().initial_epoch(2)).unwrap();
    assert_eq!(first.steps(), 7);
    assert_eq!(first.weights().unwrap(), m.weights().unwrap());
    let e = m.fit(&x, &y, &FitOptions::new(1, 16).steps_per_epoch(0)).unwrap_err();
    assert!(e.to_string().contains("steps_per_epoch"), "{e}");
}
