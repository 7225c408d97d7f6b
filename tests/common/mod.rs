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

/// A Keras output or input written by `benches/keras/layer_fixtures.py`:
/// `tests/data/keras/layers/{name}.npy`.
pub fn keras_fixture(name: &str) -> kiln::data::Tensor {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/keras/layers/{name}.npy"));
    kiln::data::npy::read_npy(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `n` pairs of 10-vectors with a label: the same vector under a little noise (1, even rows) or
/// two unrelated ones (0) — what a siamese model learns to tell apart.
pub fn same_or_different_pairs(n: usize, seed: u64) -> (kiln::data::Tensor, kiln::data::Tensor, kiln::data::Tensor) {
    use kiln::data::{random, Tensor};
    let a = random::normal([n, 10], seed);
    let other = random::normal([n, 10], seed + 1);
    let noise = random::normal([n, 10], seed + 2);
    let mut b = Vec::with_capacity(n * 10);
    for i in 0..n {
        if i % 2 == 0 {
            b.extend(a.row(i).iter().zip(noise.row(i)).map(|(x, z)| x + 0.1 * z));
        } else {
            b.extend_from_slice(other.row(i));
        }
    }
    let y = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
    (a, Tensor::new([n, 10], b).unwrap(), Tensor::new([n, 1], y).unwrap())
}

/// Checks a compiled model's gradient (one SGD step at rate 1 on `(x, y)`: the weights' change) at
/// a spread of entries of every weight against central differences of `evaluate` with step `h`.
pub fn gradient_matches_central_differences<'a>(
    m: &mut kiln::nn::Model,
    x: impl Into<kiln::nn::Inputs<'a>> + Copy,
    y: &kiln::data::Tensor,
    h: f32,
    (abs, rel): (f32, f32),
    entries: usize,
) {
    let n = y.shape()[0];
    let device = m.device_name().unwrap_or("?").to_string();
    let before = m.weights().unwrap();
    m.train_on_batch(x, y).unwrap();
    let after = m.weights().unwrap();
    let mut loss = |weights: &[kiln::nn::Weight]| {
        m.set_weights(weights).unwrap();
        f64::from(m.evaluate(x, y, n).unwrap().loss())
    };
    for (k, w) in before.iter().enumerate() {
        for i in (0..w.values.len()).step_by((w.values.len() / entries).max(1)) {
            let analytic = w.values[i] - after[k].values[i];
            let (mut plus, mut minus) = (before.clone(), before.clone());
            plus[k].values[i] += h;
            minus[k].values[i] -= h;
            let numeric = ((loss(&plus) - loss(&minus)) / (2.0 * f64::from(h))) as f32;
            assert_close(
                &format!("{}[{i}] on {device}", w.name),
                &[analytic],
                &[numeric],
                abs,
                rel,
            );
        }
    }
}
