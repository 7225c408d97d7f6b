#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let scratch = std::env::temp_dir().join(format!("kiln-fuzz-load_weights-{}.safetensors", std::process::id()));
    harness::load_weights(data, &scratch)
});
