//! Saving and loading: round trips on each backend and across them, exact resume, checkpoints,
//! f16 weights, and every kind of bad file answered with an error naming the file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::prelude::*;

fn data() -> (Tensor, Tensor) {
    (random::normal([96, 6], 1), random::integers(0, 3, [96], 2))
}

fn model(device: &dyn Backend) -> Sequential {
    let mut m = Sequential::new()
        .seed(3)
        .add(Dense::new(12).activation(Activation::Relu).input_dim(6))
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

/// A fresh directory under the target dir for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn save_then_load_predicts_the_same_on_each_device_and_across_them() {
    let dir = scratch("round_trip");
    let (x, y) = data();
    let mut predictions = Vec::new();
    for (k, device) in common::backends().iter().enumerate() {
        let mut m = model(device.as_ref());
        m.fit(&x, &y, &FitOptions::new(3, 16)).unwrap();
        let before = m.predict(&x, 32).unwrap();
        let path = dir.join(format!("model{k}.safetensors"));
        m.save(&path).unwrap();
        let mut loaded = load_model(&path, device.as_ref()).unwrap();
        assert_eq!(loaded.predict(&x, 32).unwrap(), before, "{}", device.name());
        assert_eq!(loaded.epoch(), 3);
        assert_eq!(loaded.steps(), m.steps());
        assert_eq!(loaded.layer_names(), vec!["dense", "dense_1"]);
        // The same file on the CPU backend gives the same outputs within parity tolerance.
        let mut on_cpu = load_model(&path, &CpuBackend).unwrap();
        common::assert_close(
            "cross-device load",
            on_cpu.predict(&x, 32).unwrap().data(),
            before.data(),
            1e-5,
            1e-4,
        );
        predictions.push(before);
    }
    assert!(!predictions.is_empty());
}

#[test]
fn resuming_after_epoch_k_matches_an_uninterrupted_run() {
    let dir = scratch("resume");
    let (x, y) = data();
    for device in common::backends() {
        let device = device.as_ref();
        let mut straight = model(device);
        straight.fit(&x, &y, &FitOptions::new(5, 16).seed(9)).unwrap();

        let mut first = model(device);
        first.fit(&x, &y, &FitOptions::new(2, 16).seed(9)).unwrap();
        let path = dir.join("after2.safetensors");
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = load_model(&path, device).unwrap();
        assert_eq!(resumed.epoch(), 2);
        let h = resumed
            .fit(&x, &y, &FitOptions::new(5, 16).seed(9).initial_epoch(resumed.epoch()))
            .unwrap();
        assert_eq!(h.epochs(), 3, "epochs 3, 4 and 5 run");
        assert_eq!(resumed.epoch(), 5);
        let (a, b) = (straight.weights().unwrap(), resumed.weights().unwrap());
        assert_eq!(
            a,
            b,
            "{}: resumed weights differ from the uninterrupted run",
            device.name()
        );
    }
}

#[test]
fn an_interrupted_save_leaves_the_previous_checkpoint_loadable() {
    let dir = scratch("interrupted");
    let (x, y) = data();
    let mut m = model(&CpuBackend);
    m.fit(&x, &y, &FitOptions::new(1, 16)).unwrap();
    let path = dir.join("ckpt.safetensors");
    m.save(&path).unwrap();
    let saved = m.predict(&x, 32).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    m.fit(&x, &y, &FitOptions::new(2, 16)).unwrap();
    let e = err_text(m.save_interrupted(&path, 100));
    assert!(e.contains("interrupted"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the checkpoint was touched");
    let mut back = load_model(&path, &CpuBackend).unwrap();
    assert_eq!(back.predict(&x, 32).unwrap(), saved);
    assert_eq!(back.epoch(), 1);
}

#[test]
fn bad_files_are_errors_that_name_the_file() {
    let dir = scratch("bad_files");
    let (x, y) = data();
    let mut m = model(&CpuBackend);
    m.fit(&x, &y, &FitOptions::new(1, 16)).unwrap();
    let good = dir.join("good.safetensors");
    m.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let named = |e: &str, file: &Path| assert!(e.contains(&file.display().to_string()), "{e}");

    let missing = dir.join("missing.safetensors");
    let e = err_text(load_model(&missing, &CpuBackend));
    named(&e, &missing);

    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = err_text(load_model(&truncated, &CpuBackend));
    named(&e, &truncated);
    assert!(e.contains("not a valid safetensors"), "{e}");

    let garbage = dir.join("garbage.safetensors");
    let mut corrupt = bytes.clone();
    corrupt[8..16].copy_from_slice(b"#!%&*()_");
    std::fs::write(&garbage, &corrupt).unwrap();
    named(&err_text(load_model(&garbage, &CpuBackend)), &garbage);

    // Same length, so the header stays well-formed: only the layer's class name changes.
    let unknown = dir.join("unknown_layer.safetensors");
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut renamed = bytes.clone();
    let at = renamed[..header].windows(5).position(|w| w == b"Dense").unwrap();
    renamed[at..at + 5].copy_from_slice(b"Dxnse");
    std::fs::write(&unknown, &renamed).unwrap();
    let e = err_text(load_model(&unknown, &CpuBackend));
    named(&e, &unknown);
    assert!(e.contains("Dxnse"), "{e}");

    // Weights of another architecture.
    let wider = dir.join("wider.safetensors");
    let mut other = Sequential::new()
        .add(Dense::new(20).activation(Activation::Relu).input_dim(6))
        .add(Dense::new(3).activation(Activation::Softmax));
    other
        .compile(&CpuBackend, Optimizer::adam(), Loss::SparseCategoricalCrossentropy, &[])
        .unwrap();
    other.save_weights(&wider).unwrap();
    let e = err_text(m.load_weights(&wider));
    named(&e, &wider);
    assert!(
        e.contains("dense/kernel") && e.contains("[6, 20]") && e.contains("[6, 12]"),
        "{e}"
    );

    // A weights-only file is not a model.
    let e = err_text(load_model(&wider, &CpuBackend));
    assert!(e.contains("weights only"), "{e}");
}

#[test]
fn f16_weights_are_half_the_size_and_load_back_closely() {
    let dir = scratch("f16");
    let (x, y) = data();
    for device in common::backends() {
        let mut m = model(device.as_ref());
        m.fit(&x, &y, &FitOptions::new(2, 16)).unwrap();
        let (full, half) = (dir.join("w32.safetensors"), dir.join("w16.safetensors"));
        m.save_weights(&full).unwrap();
        m.save_weights_as(&half, Precision::F16).unwrap();
        let (n32, n16) = (
            std::fs::metadata(&full).unwrap().len(),
            std::fs::metadata(&half).unwrap().len(),
        );
        // Two bytes saved per parameter (the headers differ only in their offsets' digits).
        let params: usize = m.weights().unwrap().iter().map(|w| w.values.len()).sum();
        assert!(
            (n32 - n16).abs_diff(2 * params as u64) <= 8,
            "f16 file {n16} bytes vs f32 {n32}"
        );
        let mut fresh = model(device.as_ref());
        fresh.load_weights(&full).unwrap();
        assert_eq!(fresh.weights().unwrap(), m.weights().unwrap());
        fresh.load_weights(&half).unwrap();
        for (a, b) in fresh.weights().unwrap().iter().zip(m.weights().unwrap()) {
            common::assert_close(&a.name, &a.values, &b.values, 1e-4, 1e-3);
        }
    }
}

#[test]
fn model_checkpoint_saves_the_best_epochs_and_a_custom_loss_is_refused_on_load() {
    let dir = scratch("checkpoint");
    let (x, y) = data();
    let mut m = model(&CpuBackend);
    let path = dir.join("best.safetensors");
    let every = dir.join("epoch{epoch}.safetensors");
    let best = Arc::new(Mutex::new(
        ModelCheckpoint::new(path.display().to_string()).save_best_only("loss"),
    ));
    let each = Arc::new(Mutex::new(ModelCheckpoint::new(every.display().to_string())));
    m.fit(
        &x,
        &y,
        &FitOptions::new(4, 16).callback(best.clone()).callback(each.clone()),
    )
    .unwrap();
    let saved = best.lock().unwrap().saved_epochs.clone();
    assert_eq!(saved.first(), Some(&1));
    assert_eq!(each.lock().unwrap().saved_epochs, vec![1, 2, 3, 4]);
    assert!(dir.join("epoch3.safetensors").exists());
    let back = load_model(&path, &CpuBackend).unwrap();
    assert_eq!(back.epoch(), *saved.last().unwrap());

    let mut custom = Sequential::new().add(Dense::new(2).activation(Activation::Sigmoid).input_dim(6));
    custom
        .compile(
            &CpuBackend,
            Optimizer::adam(),
            Loss::custom("my_bce", kiln::nn::backend::binary_crossentropy),
            &[],
        )
        .unwrap();
    let file = dir.join("custom.safetensors");
    custom.save(&file).unwrap();
    let e = err_text(load_model(&file, &CpuBackend));
    assert!(e.contains("my_bce") && e.contains("load_weights"), "{e}");
}

/// A model saved before the op registry moved to one module per family (commit 4a30516: Conv2D,
/// MaxPooling2D, Flatten, Dense, Dropout, Adam, trained 2 epochs) still loads, keeps its counters and
/// predicts what it predicted then, on every backend.
#[test]
fn a_model_saved_by_an_earlier_version_loads_and_predicts_the_same() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let want: Vec<f32> = std::fs::read_to_string(dir.join("cnn_before_op_families.predictions.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    // The inputs it was saved with.
    let x = random::normal([24, 8, 8, 1], 11);
    for device in common::backends() {
        let mut m = load_model(dir.join("cnn_before_op_families.safetensors"), device.as_ref()).unwrap();
        assert_eq!((m.steps(), m.epoch()), (6, 2), "{}", device.name());
        let got = m.predict(&x, 8).unwrap();
        assert_eq!(got.shape(), &[24, 3]);
        common::assert_close(
            &format!("predictions on {}", device.name()),
            got.data(),
            &want,
            1e-6,
            1e-4,
        );
    }
}
