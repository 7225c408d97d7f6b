//! Shared by the integration tests: one GPU device per test process, seeded data, tolerances.
#![allow(dead_code)]

pub mod cases;
pub mod host_rnn;

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

/// `n` images of `size`×`size`×3 on a grey background, with 5 tags: tag `k` is on when a square
/// of colour `k` (3×3, or size/8 a side on larger images) is drawn somewhere.
pub fn coloured_squares(n: usize, size: usize, seed: u64) -> (kiln::data::Tensor, kiln::data::Tensor) {
    let side = (size / 8).max(3);
    const COLOURS: [[f32; 3]; 5] = [[1., 0., 0.], [0., 1., 0.], [0., 0., 1.], [1., 1., 0.], [1., 0., 1.]];
    let noise = kiln::data::random::uniform([n, size, size, 3], seed);
    let coin = kiln::data::random::uniform([n, 5, 3], seed + 1);
    let mut x: Vec<f32> = noise.data().iter().map(|v| 0.4 + 0.2 * v).collect();
    let mut y = vec![0.0; n * 5];
    for i in 0..n {
        for (k, colour) in COLOURS.iter().enumerate() {
            let c = coin.row(i);
            if c[k * 3] < 0.5 {
                continue;
            }
            y[i * 5 + k] = 1.0;
            let (top, left) = (
                (c[k * 3 + 1] * (size - side) as f32) as usize,
                (c[k * 3 + 2] * (size - side) as f32) as usize,
            );
            for dy in 0..side {
                for dx in 0..side {
                    let at = ((i * size + top + dy) * size + left + dx) * 3;
                    x[at..at + 3].copy_from_slice(colour);
                }
            }
        }
    }
    (
        kiln::data::Tensor::new([n, size, size, 3], x).unwrap(),
        kiln::data::Tensor::new([n, 5], y).unwrap(),
    )
}
