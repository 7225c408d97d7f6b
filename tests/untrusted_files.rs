//! A model file is untrusted input: its description is checked against its own tensor table
//! (names, shapes, finite values, unique layer names) before anything is compiled or allocated, so
//! a hostile or corrupt file gives an error that names it — never a panic or an abort.

use std::path::{Path, PathBuf};

use kiln::cpu::CpuBackend;
use kiln::prelude::*;

/// The saved model under tests/data, with `edit` applied to its header (the JSON that holds the
/// model description) and `poison` to its tensor bytes, written to a scratch file.
fn tampered(name: &str, edit: impl Fn(&str) -> String, poison: bool) -> PathBuf {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cnn_before_op_families.safetensors");
    let bytes = std::fs::read(good).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let header = edit(header);
    let mut data = bytes[8 + n..].to_vec();
    if poison {
        // The first tensor's first float becomes NaN.
        data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("untrusted_files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

fn load_error(path: &Path) -> String {
    let e = load_model(path, &CpuBackend)
        .expect_err("a tampered file loaded")
        .to_string();
    assert!(e.contains(&path.display().to_string()), "the error names the file: {e}");
    e
}

#[test]
fn the_untouched_file_loads() {
    let path = tampered("untouched.safetensors", str::to_string, false);
    assert_eq!(load_model(&path, &CpuBackend).unwrap().epoch(), 2);
}

#[test]
fn a_description_asking_for_more_than_its_tensors_hold_is_refused_before_allocating() {
    for units in ["1152921504606846976", "1099511627776", "9"] {
        let path = tampered(
            &format!("units_{units}.safetensors"),
            |h| h.replace(r#"\"units\":8"#, &format!(r#"\"units\":{units}"#)),
            false,
        );
        let e = load_error(&path);
        assert!(e.contains("dense/kernel") && e.contains("shape"), "units {units}: {e}");
    }
}

#[test]
fn duplicate_layer_names_are_refused() {
    let path = tampered(
        "duplicate_names.safetensors",
        |h| h.replace(r#"\"name\":\"flatten\""#, r#"\"name\":\"conv2d\""#),
        false,
    );
    assert!(load_error(&path).contains("two layers are named `conv2d`"));
}

#[test]
fn non_finite_weights_are_refused() {
    let path = tampered("nan.safetensors", str::to_string, true);
    assert!(load_error(&path).contains("NaN"));
}
