//! fit's reporting and control: validation_split as Keras splits, callbacks that stop training,
//! EarlyStopping that restores the best weights — on both backends.

mod common;

use std::sync::{Arc, Mutex};

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::nn::{Callback, Control, EarlyStopping, Training};
use kiln::prelude::*;

fn iris() -> (Tensor, Tensor) {
    let d = datasets::iris().unwrap();
    (
        Standardizer::fit(&d.x_train).unwrap().transform(&d.x_train).unwrap(),
        d.y_train,
    )
}

fn model(device: &dyn Backend) -> Sequential {
    let mut m = Sequential::new()
        .seed(1)
        .add(Dense::new(16).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(
        device,
        Optimizer::adam_lr(0.01),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m
}

#[test]
fn validation_split_holds_out_the_last_samples() {
    let (x, y) = iris();
    for device in common::backends() {
        let split = model(device.as_ref())
            .fit(&x, &y, &FitOptions::new(3, 16).validation_split(0.25))
            .unwrap();
        let (train, held) = (x.slice_rows(0..90), x.slice_rows(90..120));
        let explicit = model(device.as_ref())
            .fit(
                &train,
                &y.slice_rows(0..90),
                &FitOptions::new(3, 16).validation_data(held, y.slice_rows(90..120)),
            )
            .unwrap();
        assert_eq!(split.metrics, explicit.metrics, "{}", device.name());
        assert_eq!(split.get("val_accuracy").map(<[f32]>::len), Some(3));
    }
}

/// Stops after a fixed epoch and counts what it saw.
struct StopAt {
    epoch: usize,
    seen: Vec<usize>,
    ended: bool,
}

impl Callback for StopAt {
    fn on_epoch_end(&mut self, epoch: usize, logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        assert!(logs.iter().any(|(n, _)| n == "loss"));
        assert!(training.steps() > 0);
        self.seen.push(epoch);
        Ok(if epoch == self.epoch {
            Control::Stop
        } else {
            Control::Continue
        })
    }

    fn on_train_end(&mut self, _training: &mut Training<'_>) -> Result<()> {
        self.ended = true;
        Ok(())
    }
}

#[test]
fn a_callback_can_stop_training() {
    let (x, y) = iris();
    let stop = Arc::new(Mutex::new(StopAt {
        epoch: 2,
        seen: vec![],
        ended: false,
    }));
    let h = model(&CpuBackend)
        .fit(&x, &y, &FitOptions::new(10, 16).callback(stop.clone()))
        .unwrap();
    assert_eq!(h.epochs(), 2);
    assert_eq!(h.stopped_at, Some(2));
    let stop = stop.lock().unwrap();
    assert_eq!(stop.seen, [1, 2]);
    assert!(stop.ended);
}

#[test]
fn early_stopping_waits_patience_epochs_and_restores_the_best_weights() {
    let (x, y) = iris();
    // Nothing improves by 1e9, so after epoch 1 every epoch waits: patience 2 stops after epoch 3.
    let never = Arc::new(Mutex::new(EarlyStopping::new("loss").min_delta(1e9).patience(2)));
    let h = model(&CpuBackend)
        .fit(&x, &y, &FitOptions::new(10, 16).callback(never.clone()))
        .unwrap();
    assert_eq!(h.epochs(), 3);
    assert_eq!(never.lock().unwrap().stopped_epoch, Some(3));

    // A learning rate far too high makes val_loss wander; the best epoch's weights come back.
    let d = datasets::iris().unwrap();
    let s = Standardizer::fit(&d.x_train).unwrap();
    let (xt, yt) = (s.transform(&d.x_test).unwrap(), d.y_test);
    for device in common::backends() {
        let mut m = Sequential::new()
            .seed(7)
            .add(Dense::new(32).activation(Activation::Relu).input_dim(4))
            .add(Dense::new(3).activation(Activation::Softmax));
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.3),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let early = Arc::new(Mutex::new(
            EarlyStopping::new("val_loss").patience(3).restore_best_weights(),
        ));
        let options = FitOptions::new(30, 16)
            .validation_data(xt.clone(), yt.clone())
            .callback(early.clone());
        let h = m.fit(&x, &y, &options).unwrap();
        let val = h.get("val_loss").unwrap();
        let best = val.iter().cloned().fold(f32::INFINITY, f32::min);
        let best_epoch = early.lock().unwrap().best_epoch.unwrap();
        assert_eq!(val[best_epoch - 1], best, "{}", device.name());
        let now = m.evaluate(&xt, &yt, 16).unwrap().loss();
        assert!(
            (now - best).abs() <= 1e-5 * best.abs().max(1.0),
            "{}: restored val_loss {now}, best {best}",
            device.name()
        );
    }
}

#[test]
fn bad_fit_options_are_refused() {
    let (x, y) = iris();
    let err = model(&CpuBackend)
        .fit(&x, &y, &FitOptions::new(1, 16).validation_split(1.5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("validation_split"), "{err}");
    let missing = Arc::new(Mutex::new(EarlyStopping::new("val_loss")));
    let err = model(&CpuBackend)
        .fit(&x, &y, &FitOptions::new(2, 16).callback(missing))
        .unwrap_err()
        .to_string();
    assert!(err.contains("val_loss") && err.contains("loss"), "{err}");
}
