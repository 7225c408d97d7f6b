//! Training that diverges is stopped, not reported as success: fit returns an error at the end of
//! the first epoch whose loss is not finite and rolls the model back to where that epoch began;
//! checkpoints and EarlyStopping never keep non-finite weights; optimizer hyper-parameters outside
//! Keras' ranges are refused at compile; a history holding NaN still plots. On both backends.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln::graph::Backend;
use kiln::nn::{Callback, Control, Training};
use kiln::prelude::*;

fn data() -> (Tensor, Tensor) {
    (random::normal([96, 4], 21), random::normal([96, 1], 22))
}

fn regression(device: &dyn Backend, optimizer: Optimizer) -> Sequential {
    let mut m = Sequential::new()
        .seed(4)
        .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(1));
    m.compile(device, optimizer, Loss::MeanSquaredError, &[]).unwrap();
    m
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn all_finite(t: &Tensor) -> bool {
    t.data().iter().all(|v| v.is_finite())
}

#[test]
fn a_diverging_learning_rate_stops_fit_in_the_first_epoch_and_keeps_the_weights_it_began_with() {
    let (x, y) = data();
    for device in common::backends() {
        let what = device.name();
        let mut m = regression(device.as_ref(), Optimizer::sgd(1e6));
        let before = m.weights().unwrap();
        let e = m.fit(&x, &y, &FitOptions::new(5, 8)).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Diverged(_)), "{what}: {e:?}");
        for needle in [
            "epoch 1",
            "steps 1..=12",
            "learning rate 1000000",
            "Lower the learning rate",
        ] {
            assert!(text.contains(needle), "{what}: `{needle}` missing from: {text}");
        }
        assert_eq!(m.weights().unwrap(), before, "{what}: weights not rolled back");
        assert_eq!((m.steps(), m.epoch()), (0, 0), "{what}");
        assert!(all_finite(&m.predict(&x, 32).unwrap()), "{what}");
        // Opting out trains on into NaN, as Keras does without TerminateOnNaN.
        let history = m.fit(&x, &y, &FitOptions::new(2, 8).terminate_on_nan(false)).unwrap();
        assert!(history.get("loss").unwrap().iter().all(|l| !l.is_finite()), "{what}");
    }
}

/// Sets every weight to NaN at the end of epoch `at`, as a diverging update would.
struct Poison {
    at: usize,
}

impl Callback for Poison {
    fn on_epoch_end(&mut self, epoch: usize, _logs: &[(String, f32)], training: &mut Training<'_>) -> Result<Control> {
        if epoch == self.at {
            let mut w = training.weights()?;
            w.iter_mut()
                .for_each(|w| w.values.iter_mut().for_each(|v| *v = f32::NAN));
            training.set_weights(&w)?;
        }
        Ok(Control::Continue)
    }
}

#[test]
fn a_checkpoint_written_before_the_divergence_survives_and_predicts_finite_values() {
    let (x, y) = data();
    for device in common::backends() {
        let what = device.name();
        let dir = scratch(&format!("non_finite_checkpoint_{}", what.replace(' ', "_")));
        let path = dir.join("model.safetensors");
        let checkpoint = Arc::new(Mutex::new(ModelCheckpoint::new(path.to_str().unwrap())));
        let options = FitOptions::new(5, 8)
            .callback(checkpoint.clone())
            .callback(Arc::new(Mutex::new(Poison { at: 2 })));
        let mut m = regression(device.as_ref(), Optimizer::adam());
        let e = m.fit(&x, &y, &options).unwrap_err();
        assert!(e.to_string().contains("epoch 3"), "{what}: {e}");
        assert_eq!(checkpoint.lock().unwrap().saved_epochs, vec![1, 2], "{what}");
        let mut saved = load_model(&path, device.as_ref()).unwrap();
        assert_eq!(saved.epoch(), 2, "{what}");
        assert!(all_finite(&saved.predict(&x, 32).unwrap()), "{what}");

        // Training on regardless: the checkpoint skips the NaN epochs and the good file stays.
        let checkpoint = Arc::new(Mutex::new(ModelCheckpoint::new(path.to_str().unwrap())));
        let options = FitOptions::new(4, 8)
            .terminate_on_nan(false)
            .callback(checkpoint.clone())
            .callback(Arc::new(Mutex::new(Poison { at: 1 })));
        let mut m = regression(device.as_ref(), Optimizer::adam());
        m.fit(&x, &y, &options).unwrap();
        assert_eq!(checkpoint.lock().unwrap().saved_epochs, vec![1], "{what}");
        assert!(all_finite(
            &load_model(&path, device.as_ref()).unwrap().predict(&x, 32).unwrap()
        ));

        // Saving NaN weights by hand is refused and leaves the file as it was.
        let e = m.save(&path).unwrap_err();
        assert!(
            matches!(e, Error::Diverged(_)) && e.to_string().contains("left as it was"),
            "{e}"
        );
        assert_eq!(load_model(&path, device.as_ref()).unwrap().epoch(), 1, "{what}");
    }
}

#[test]
fn early_stopping_never_keeps_a_nan_epoch_as_its_best() {
    let (x, y) = data();
    let mut m = regression(&kiln::cpu::CpuBackend, Optimizer::adam());
    let stopper = Arc::new(Mutex::new(
        EarlyStopping::new("loss").patience(2).restore_best_weights(),
    ));
    let options = FitOptions::new(6, 8)
        .terminate_on_nan(false)
        .callback(Arc::new(Mutex::new(Poison { at: 2 })))
        .callback(stopper.clone());
    let history = m.fit(&x, &y, &options).unwrap();
    // Epoch 2's loss is finite and lower, but it ends with NaN weights, so it is no best; nor are
    // the NaN epochs after it: patience runs out at epoch 3 and epoch 1's weights come back.
    assert_eq!(history.stopped_at, Some(3));
    assert!(history.get("loss").unwrap()[2].is_nan());
    assert!(all_finite(&m.predict(&x, 32).unwrap()), "best weights restored");
}

#[test]
fn optimizer_hyperparameters_outside_keras_ranges_are_refused_at_compile() {
    let adam = |lr: f32, beta1, beta2, epsilon| Optimizer::Adam {
        lr: lr.into(),
        beta1,
        beta2,
        epsilon,
        weight_decay: 0.0,
        amsgrad: false,
        clipping: kiln::nn::Clipping::None,
    };
    let bad = [
        (Optimizer::adam_lr(f32::NAN), "learning rate NaN"),
        (Optimizer::sgd(-0.1), "learning rate -0.1"),
        (Optimizer::sgd(0.0), "learning rate 0"),
        (Optimizer::sgd(f32::INFINITY), "learning rate inf"),
        (adam(1e-3, 1.0, 0.999, 1e-7), "beta1 1"),
        (adam(1e-3, 0.9, -0.5, 1e-7), "beta2 -0.5"),
        (adam(1e-3, 0.9, 0.999, 0.0), "epsilon 0"),
        (Optimizer::sgd_momentum(0.01, 1.5, false), "momentum 1.5"),
        (Optimizer::sgd_momentum(0.01, f32::NAN, true), "momentum NaN"),
        (Optimizer::adamw().with_weight_decay(-0.1), "weight_decay -0.1"),
        (Optimizer::lion().with_weight_decay(f32::NAN), "weight_decay NaN"),
        (Optimizer::rmsprop_with(1.5, false), "momentum 1.5"),
        (Optimizer::nadam().with_learning_rate(0.0), "learning rate 0"),
        (
            Optimizer::adam().with_learning_rate(Schedule::piecewise_constant([10.0, 5.0], [1e-3, 1e-4, 1e-5])),
            "ascending",
        ),
        (
            Optimizer::sgd(0.1).with_learning_rate(Schedule::piecewise_constant([10.0], [1e-3])),
            "one more value than boundaries",
        ),
        (
            Optimizer::adam().with_learning_rate(Schedule::cosine_decay(1e-3, 0)),
            "decay_steps 0",
        ),
        (Optimizer::adam().with_clipnorm(0.0), "clipping at 0"),
        (Optimizer::sgd(0.1).with_clipvalue(f32::NAN), "clipping at NaN"),
        (
            Optimizer::Adagrad {
                lr: 1e-3.into(),
                initial_accumulator_value: -1.0,
                epsilon: 1e-7,
                weight_decay: 0.0,
                clipping: kiln::nn::Clipping::None,
            },
            "initial_accumulator_value -1",
        ),
    ];
    for (optimizer, needle) in bad {
        let mut m = Sequential::new().add(Dense::new(1).input_dim(2));
        let e = m
            .compile(&kiln::cpu::CpuBackend, optimizer.clone(), Loss::MeanSquaredError, &[])
            .unwrap_err();
        assert!(e.to_string().contains(needle), "{optimizer:?}: {e}");
    }
    for optimizer in [
        Optimizer::adam(),
        Optimizer::sgd(0.01),
        Optimizer::sgd_momentum(0.01, 0.9, true),
        Optimizer::sgd_momentum(0.01, 1.0, false),
        Optimizer::adamw(),
        Optimizer::adam().with_amsgrad(true),
        Optimizer::rmsprop_with(0.9, true),
        Optimizer::adagrad(),
        Optimizer::nadam(),
        Optimizer::adamax(),
        Optimizer::lion(),
        Optimizer::adam().with_learning_rate(Schedule::cosine_decay(1e-3, 100).warmup(1e-2, 10)),
        Optimizer::adam().with_global_clipnorm(1.0),
    ] {
        let mut m = Sequential::new().add(Dense::new(1).input_dim(2));
        m.compile(&kiln::cpu::CpuBackend, optimizer, Loss::MeanSquaredError, &[])
            .unwrap();
    }
}

#[test]
fn a_history_holding_nan_plots_promptly() {
    let h = History {
        metrics: vec![
            ("loss".into(), vec![0.5, f32::NAN, f32::INFINITY, 0.25]),
            ("val_loss".into(), vec![f32::NAN; 4]),
        ],
        ..History::default()
    };
    let path = scratch("non_finite_plot").join("history.png");
    let (done, wait) = std::sync::mpsc::channel();
    let target = path.clone();
    std::thread::spawn(move || done.send(h.plot(&target).map_err(|e| e.to_string())));
    let result = wait
        .recv_timeout(Duration::from_secs(60))
        .expect("History::plot hung on NaN values");
    result.unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 1000);
}
