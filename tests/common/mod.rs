//! Shared by the integration tests: one GPU device per test process, seeded data, tolerances.
#![allow(dead_code)]

pub mod cases;

use std::sync::OnceLock;

use kiln::wgpu::GpuBackend;

/// The process-wide GPU, or `None` outside CI on a machine without an adapter. In CI (`CI=true`)
/// a missing adapter fails the test: GPU tests must really run on lavapipe there.
pub fn gpu() -> Option<&'static GpuBackend> {
    static GPU: OnceLock<Option<GpuBackend>> = OnceLock::new();
    GPU.get_or_init(|| match GpuBackend::from_env() {
        Ok(g) => Some(g),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI requires a GPU adapter (lavapipe): {e}")
        }
        Err(e) => {
            eprintln!("no GPU adapter, GPU checks skipped outside CI: {e}");
            None
        }
    })
    .as_ref()
}

/// The parity tolerance of DESIGN.md: |gpu - cpu| <= 1e-5 + 1e-4 |cpu|.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= abs + rel * w.abs() && g.is_finite() == w.is_finite(),
            "{what}: element {i} is {g}, reference {w} (|diff| {} > {abs} + {rel}·|ref|)",
            (g - w).abs()
        );
    }
}

/// The CPU backend, and the GPU where there is one (always in CI).
pub fn backends() -> Vec<Box<dyn kiln::graph::Backend>> {
    let mut v: Vec<Box<dyn kiln::graph::Backend>> = vec![Box::new(kiln::cpu::CpuBackend)];
    if let Some(gpu) = gpu() {
        v.push(Box::new(gpu.clone()));
    }
    v
}
