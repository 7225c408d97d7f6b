//! Replays every checked-in fuzz input — each target's corpus and every crash fuzzing found
//! (`fuzz/corpus/<target>`, `fuzz/artifacts/<target>`) — through the same harness the fuzz targets
//! run, on stable: what fuzzing fixed stays fixed. Each input must come back as `Ok` or `Err`;
//! a panic fails the test and names the file.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in [root.join("corpus").join(target), root.join("artifacts").join(target)] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let files = inputs(target);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&bytes)));
        assert!(outcome.is_ok(), "{target}: {} panicked", file.display());
    }
    files.len()
}

#[test]
fn every_fuzz_input_checked_in_is_answered_without_a_panic() {
    let scratch = std::env::temp_dir().join(format!("kiln-fuzz-replay-{}.safetensors", std::process::id()));
    let counts = [
        ("csv", replay("csv", harness::csv)),
        ("idx", replay("idx", harness::idx)),
        ("npy", replay("npy", harness::npy)),
        ("load_model", replay("load_model", |b| harness::load_model(b, &scratch))),
        (
            "load_weights",
            replay("load_weights", |b| harness::load_weights(b, &scratch)),
        ),
        (
            "model_description",
            replay("model_description", harness::model_description),
        ),
    ];
    let _ = std::fs::remove_file(&scratch);
    for (target, n) in counts {
        assert!(n >= 1, "{target}: no corpus checked in");
    }
}
