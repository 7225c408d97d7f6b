//! The callbacks of Keras users' next models: TerminateOnNaN, LambdaCallback, CsvLogger and
//! BackupAndRestore (a fit killed by a signal mid-epoch resumes to the uninterrupted weights).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln::cpu::CpuBackend;
use kiln::nn::{BackupAndRestore, Callback, Control, CsvLogger, LambdaCallback, TerminateOnNaN, Training};
use kiln::prelude::*;

fn data() -> (Tensor, Tensor) {
    (random::normal([80, 5], 1), random::integers(0, 3, [80], 2))
}

fn model(optimizer: Optimizer) -> Sequential {
    let mut m = Sequential::new()
        .seed(4)
        .add(Dense::new(16).activation(Activation::Relu).input_dim(5))
        .add(Dropout::new(0.25))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(
        &CpuBackend,
        optimizer,
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn terminate_on_nan_stops_a_run_that_turned_the_default_stop_off() {
    let (x, y) = data();
    let mut m = model(Optimizer::sgd(1e9));
    let nan = Arc::new(Mutex::new(TerminateOnNaN::new()));
    let options = FitOptions::new(10, 16)
        .verbose(0)
        .terminate_on_nan(false)
        .callback(nan.clone());
    let h = m.fit(&x, &y, &options).unwrap();
    let stopped = nan.lock().unwrap().stopped_epoch.expect("stopped");
    assert_eq!(h.stopped_at, Some(stopped));
    assert!(h.get("loss").unwrap()[stopped - 1].is_nan());
    assert!(stopped < 10);
    // A finite run is left alone.
    let nan = Arc::new(Mutex::new(TerminateOnNaN::new()));
    let h = model(Optimizer::adam())
        .fit(&x, &y, &FitOptions::new(3, 16).verbose(0).callback(nan.clone()))
        .unwrap();
    assert_eq!((h.stopped_at, nan.lock().unwrap().stopped_epoch), (None, None));
}

#[test]
fn lambda_callback_hooks_run_in_keras_order() {
    let (x, y) = data();
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let (a, b, c, d) = (events.clone(), events.clone(), events.clone(), events.clone());
    let lambda = LambdaCallback::new()
        .on_train_begin(move || a.lock().unwrap().push("train_begin".into()))
        .on_epoch_begin(move |epoch| b.lock().unwrap().push(format!("begin {epoch}")))
        .on_epoch_end(move |epoch, logs| c.lock().unwrap().push(format!("end {epoch} {}", logs.len())))
        .on_train_end(move || d.lock().unwrap().push("train_end".into()));
    model(Optimizer::adam())
        .fit(
            &x,
            &y,
            &FitOptions::new(2, 16).verbose(0).callback(Arc::new(Mutex::new(lambda))),
        )
        .unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        ["train_begin", "begin 1", "end 1 2", "begin 2", "end 2 2", "train_end"]
    );
}

#[test]
fn csv_logger_writes_keras_rows_and_appends_on_resume() {
    let (x, y) = data();
    let path = scratch("csv_logger").join("log.csv");
    let mut m = model(Optimizer::adam());
    let h = m
        .fit(
            &x,
            &y,
            &FitOptions::new(2, 16)
                .verbose(0)
                .callback(Arc::new(Mutex::new(CsvLogger::new(&path)))),
        )
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,accuracy,loss", "Keras sorts the columns");
    assert_eq!(lines.len(), 3);
    let row: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(row[0], "1", "Keras' epoch index is 0-based");
    assert_eq!(row[2].parse::<f32>().unwrap(), h.get("loss").unwrap()[1]);
    // Appending continues the file without a second header.
    let logger = CsvLogger::new(&path).append();
    m.fit(
        &x,
        &y,
        &FitOptions::new(3, 16)
            .verbose(0)
            .initial_epoch(2)
            .callback(Arc::new(Mutex::new(logger))),
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("2,"), "{text}");
    // An unwritable path is an error naming it.
    let bad = CsvLogger::new(scratch("csv_logger_bad").join("missing/dir/log.csv"));
    let e = model(Optimizer::adam())
        .fit(
            &x,
            &y,
            &FitOptions::new(1, 16).verbose(0).callback(Arc::new(Mutex::new(bad))),
        )
        .unwrap_err();
    assert!(e.to_string().contains("log.csv"), "{e}");
}

/// Kills its own process during `epoch`'s batch `batch`: a crash mid-epoch, by signal.
struct KillAt {
    epoch: usize,
    batch: usize,
}

impl Callback for KillAt {
    fn on_batch_end(&mut self, epoch: usize, batch: usize, _: &mut Training<'_>) -> Result<()> {
        if (epoch, batch) == (self.epoch, self.batch) {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _: usize, _: &[(String, f32)], _: &mut Training<'_>) -> Result<Control> {
        Ok(Control::Continue)
    }
}

const CHILD: &str = "KILN_BACKUP_CHILD_DIR";

fn backed_up_fit(dir: &Path, kill: Option<KillAt>) -> (Sequential, Option<usize>) {
    let (x, y) = data();
    let mut m = model(Optimizer::adam().with_learning_rate(Schedule::exponential_decay(0.01, 5, 0.9)));
    let backup = Arc::new(Mutex::new(BackupAndRestore::new(dir)));
    let mut options = FitOptions::new(5, 16).verbose(0).seed(8).callback(backup.clone());
    if let Some(kill) = kill {
        options = options.callback(Arc::new(Mutex::new(kill)));
    }
    m.fit(&x, &y, &options).unwrap();
    let resumed = backup.lock().unwrap().resumed_after;
    (m, resumed)
}

#[test]
fn backup_and_restore_resumes_a_fit_killed_mid_epoch_to_the_uninterrupted_weights() {
    if let Ok(dir) = std::env::var(CHILD) {
        // The child: dies by SIGKILL in the middle of epoch 3.
        backed_up_fit(Path::new(&dir), Some(KillAt { epoch: 3, batch: 2 }));
        unreachable!("the child outlived its kill");
    }
    let dir = scratch("backup_and_restore");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "backup_and_restore_resumes_a_fit_killed_mid_epoch_to_the_uninterrupted_weights",
            "--exact",
            "--test-threads=1",
        ])
        .env(CHILD, &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "the child should die by SIGKILL: {status:?}");
    }
    assert!(!status.success());
    assert!(dir.join("backup.safetensors").exists(), "epoch 2's backup is there");

    let (resumed, after) = backed_up_fit(&dir, None);
    assert_eq!(after, Some(2), "resumed after the last finished epoch");
    assert!(
        !dir.join("backup.safetensors").exists(),
        "the backup is deleted at the end"
    );
    let straight_dir = scratch("backup_and_restore_straight");
    let (straight, after) = backed_up_fit(&straight_dir, None);
    assert_eq!(after, None);
    let (mut resumed, mut straight) = (resumed, straight);
    assert_eq!(resumed.epoch(), 5);
    assert_eq!(resumed.steps(), straight.steps());
    assert_eq!(
        resumed.weights().unwrap(),
        straight.weights().unwrap(),
        "the resumed run ends with the uninterrupted run's weights"
    );
}

#[test]
fn a_backup_from_another_optimizer_is_refused_not_mixed_in() {
    let (x, y) = data();
    let dir = scratch("backup_other_optimizer");
    let mut sgd = model(Optimizer::sgd_momentum(0.1, 0.9, false));
    sgd.fit(&x, &y, &FitOptions::new(1, 16).verbose(0)).unwrap();
    sgd.save(dir.join("backup.safetensors")).unwrap();
    let backup = Arc::new(Mutex::new(BackupAndRestore::new(&dir)));
    let e = model(Optimizer::adam())
        .fit(&x, &y, &FitOptions::new(2, 16).verbose(0).callback(backup))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("another optimizer") && e.contains("backup.safetensors"),
        "{e}"
    );
    // A backup whose only difference is a constant rate (ReduceLROnPlateau's doing) is taken.
    let mut slower = model(Optimizer::sgd_momentum(0.05, 0.9, false));
    slower.fit(&x, &y, &FitOptions::new(1, 16).verbose(0)).unwrap();
    slower.save(dir.join("backup.safetensors")).unwrap();
    let backup = Arc::new(Mutex::new(BackupAndRestore::new(&dir)));
    let mut m = model(Optimizer::sgd_momentum(0.1, 0.9, false));
    m.fit(&x, &y, &FitOptions::new(2, 16).verbose(0).callback(backup.clone()))
        .unwrap();
    assert_eq!(backup.lock().unwrap().resumed_after, Some(1));
    assert_eq!(
        m.optimizer().unwrap().learning_rate(),
        &kiln::nn::LearningRate::Constant(0.05)
    );
}
