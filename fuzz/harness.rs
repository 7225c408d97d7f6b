//! What each fuzz target does with its input. The fuzz targets call these under libFuzzer; the
//! workspace test `tests/fuzz_replay.rs` runs them on every checked-in corpus file and crash, so a
//! stable `cargo test` keeps what fuzzing found fixed. Each reader must answer `Ok` or `Err` —
//! a panic, an abort or a hang is the bug.

use std::path::Path;

/// The CSV reader, on inputs that are text.
pub fn csv(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kiln_data::parse_csv("fuzz.csv", text, "label");
    }
}

/// The IDX reader (plain and gzip).
pub fn idx(data: &[u8]) {
    let _ = kiln_data::parse_idx("fuzz.idx", data);
}

/// The NPY reader.
pub fn npy(data: &[u8]) {
    let _ = kiln_data::parse_npy("fuzz.npy", data);
}

/// `load_model` on the bytes as a model file at `scratch`, on the CPU backend.
pub fn load_model(data: &[u8], scratch: &Path) {
    std::fs::write(scratch, data).expect("scratch file");
    if let Ok(mut m) = kiln_nn::load_model(scratch, &kiln_cpu::CpuBackend) {
        // Whatever loads must run: a forward pass on one sample of zeros per input.
        let xs: Option<Vec<kiln_data::Tensor>> = m
            .input_shapes()
            .into_iter()
            .map(|shape| {
                let n: usize = shape.iter().product();
                let dims: Vec<usize> = std::iter::once(1).chain(shape).collect();
                kiln_data::Tensor::new(dims, vec![0.0; n]).ok()
            })
            .collect();
        if let Some(xs) = xs {
            let _ = m.predict(&xs, 1);
        }
    }
}

/// `load_weights` of the bytes as a weights file at `scratch` into a small dense model.
pub fn load_weights(data: &[u8], scratch: &Path) {
    use kiln_nn::{Activation, Dense, Loss, Optimizer, Sequential};
    std::fs::write(scratch, data).expect("scratch file");
    let mut m = Sequential::new()
        .add(Dense::new(3).activation(Activation::Relu).input_dim(2))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(&kiln_cpu::CpuBackend, Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .expect("a valid model");
    let _ = m.load_weights(scratch);
}
