//! RandomTranslation against Keras' semantics computed on the host in f64 (keras/src/backend/
//! numpy/image.py: `affine_transform` reads output pixel `(y, x)` at `(y - dy, x - dx)`,
//! `map_coordinates` pads by the fill mode and interpolates), for every fill mode and both
//! interpolations on both backends; the drawn shifts stay within the factors, differ per image and
//! per step and agree across backends; evaluation and prediction pass images through.

mod common;

use std::sync::Arc;

use kiln::graph::{schedule, Backend, Graph};
use kiln::nn::{FillMode, Interpolation, Layer};
use kiln::prelude::*;

/// Input pixel `(ky, kx)` of the extended image (`img [h, w, c]`), as numpy's `pad` modes
/// extend it (`reflect` is numpy's `symmetric`).
#[allow(clippy::too_many_arguments)]
fn extended(img: &[f32], [h, w, c]: [usize; 3], ky: i64, kx: i64, ch: usize, fill: FillMode, value: f64) -> f64 {
    let fix = |k: i64, size: usize| -> Option<usize> {
        let size = size as i64;
        let k = match fill {
            FillMode::Constant => (0..size).contains(&k).then_some(k)?,
            FillMode::Nearest => k.clamp(0, size - 1),
            FillMode::Wrap => k.rem_euclid(size),
            FillMode::Reflect => {
                let m = k.rem_euclid(2 * size);
                if m < size {
                    m
                } else {
                    2 * size - 1 - m
                }
            }
        };
        Some(k as usize)
    };
    match (fix(ky, h), fix(kx, w)) {
        (Some(y), Some(x)) => f64::from(img[(y * w + x) * c + ch]),
        _ => value,
    }
}

/// One image shifted by `(dy, dx)` as Keras computes it.
fn host_translate(
    img: &[f32],
    dims: [usize; 3],
    (dy, dx): (f64, f64),
    fill: FillMode,
    interpolation: Interpolation,
    value: f64,
) -> Vec<f64> {
    let [h, w, c] = dims;
    let mut out = Vec::with_capacity(h * w * c);
    for i in 0..h {
        for j in 0..w {
            let (cy, cx) = (i as f64 - dy, j as f64 - dx);
            for ch in 0..c {
                out.push(match interpolation {
                    Interpolation::Nearest => {
                        let (ky, kx) = ((cy + 0.5).floor() as i64, (cx + 0.5).floor() as i64);
                        extended(img, dims, ky, kx, ch, fill, value)
                    }
                    Interpolation::Bilinear => {
                        let (y0, x0) = (cy.floor(), cx.floor());
                        let (fy, fx) = (cy - y0, cx - x0);
                        let mut v = 0.0;
                        for (a, wy) in [(0, 1.0 - fy), (1, fy)] {
                            for (b, wx) in [(0, 1.0 - fx), (1, fx)] {
                                let (ky, kx) = (y0 as i64 + a, x0 as i64 + b);
                                v += wy * wx * extended(img, dims, ky, kx, ch, fill, value);
                            }
                        }
                        v
                    }
                });
            }
        }
    }
    out
}

/// Runs `build` over inputs `feeds` on `device` and returns its one output.
fn run(
    device: &dyn Backend,
    inputs: &[(&str, Vec<usize>)],
    feeds: &[(&str, &[f32])],
    build: impl FnOnce(&mut Graph, &[kiln::graph::NodeId]) -> kiln::graph::NodeId,
) -> Vec<f32> {
    let mut g = Graph::new(Vec::new());
    let nodes: Vec<_> = inputs
        .iter()
        .map(|(name, shape)| g.input(name, shape.clone()))
        .collect();
    let out = build(&mut g, &nodes);
    let plan = Arc::new(schedule(&g, &[out]).unwrap());
    let mut s = device.new_session(&[]).unwrap();
    let id = s.load(plan).unwrap();
    s.run(id, feeds).unwrap();
    s.read_outputs(id).unwrap().swap_remove(0)
}

#[test]
fn translation_matches_keras_map_coordinates_for_every_fill_and_interpolation() {
    let dims = [5, 7, 2];
    let x = random::normal([3, 5, 7, 2], 21);
    // Shifts up to the image's size either way, none at a half pixel (where nearest ties).
    let (dy, dx) = ([1.3f32, -2.7, 4.9], [-0.4f32, 6.2, -6.8]);
    let fills = [FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest];
    for device in common::backends() {
        for fill in fills {
            for interpolation in [Interpolation::Bilinear, Interpolation::Nearest] {
                let layer = RandomTranslation::new(1.0, 1.0)
                    .fill_mode(fill)
                    .fill_value(0.7)
                    .interpolation(interpolation);
                let got = run(
                    device.as_ref(),
                    &[("x", vec![3, 5, 7, 2]), ("dy", vec![3]), ("dx", vec![3])],
                    &[("x", x.data()), ("dy", &dy), ("dx", &dx)],
                    |g, n| layer.translate(g, n[0], n[1], n[2]).unwrap(),
                );
                for k in 0..3 {
                    let img = &x.data()[k * 70..(k + 1) * 70];
                    let shift = (f64::from(dy[k]), f64::from(dx[k]));
                    let want = host_translate(img, dims, shift, fill, interpolation, 0.7);
                    for (e, (&g, &w)) in got[k * 70..(k + 1) * 70].iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(g) - w).abs() < 1e-5,
                            "{} {fill:?} {interpolation:?} image {k} element {e}: {g} vs Keras {w}",
                            device.name()
                        );
                    }
                }
            }
        }
    }
}

/// The training output of a RandomTranslation over `n` images of ones, at `step`.
fn shifted_ones(device: &dyn Backend, layer: &RandomTranslation, dims: [usize; 4], step: f32) -> Vec<f32> {
    let ones = vec![1.0; dims.iter().product()];
    run(
        device,
        &[("x", dims.to_vec())],
        &[("x", &ones), ("draw", &[step, 0.0, dims[0] as f32])],
        |g, n| layer.build(g, &[n[0]], &[], true).unwrap().output,
    )
}

#[test]
fn training_shifts_each_image_within_its_factor_anew_every_step() {
    // Vertical shifts only, zeros filled in: an image of ones keeps w·(h − |dy|) of its sum.
    let (n, h, w) = (200, 8, 6);
    let layer = RandomTranslation::new(0.5, 0.0).fill_mode(FillMode::Constant).seed(3);
    let mut draws = Vec::new();
    for device in common::backends() {
        let shifts = |step: f32| -> Vec<f32> {
            let out = shifted_ones(device.as_ref(), &layer, [n, h, w, 1], step);
            out.chunks(h * w)
                .map(|img| h as f32 - img.iter().sum::<f32>() / w as f32)
                .collect()
        };
        let (first, second) = (shifts(1.0), shifts(2.0));
        assert!(first.iter().all(|&d| (-1e-4..=4.0 + 1e-4).contains(&d)), "{first:?}");
        let mean = first.iter().sum::<f32>() / n as f32;
        // |dy| of a uniform shift in [-4, 4] is uniform in [0, 4].
        assert!((mean - 2.0).abs() < 0.35, "mean |dy| {mean}");
        assert!(first.iter().any(|&d| d > 3.5) && first.iter().any(|&d| d < 0.5));
        assert_ne!(first, second, "a new step draws new shifts");
        draws.push(first);
    }
    if let [cpu, gpu] = &draws[..] {
        common::assert_close("shifts", gpu, cpu, 1e-4, 1e-4);
    }
}

#[test]
fn evaluation_passes_images_through_and_a_model_trains_with_it() {
    let layer = RandomTranslation::new(0.2, 0.2);
    let mut g = Graph::new(Vec::new());
    let x = g.input("x", vec![2, 4, 4, 1]);
    assert_eq!(layer.build(&mut g, &[x], &[], false).unwrap().output, x);

    let (x, y) = (random::uniform([16, 6, 6, 1], 3), random::integers(0, 2, [16], 4));
    for device in common::backends() {
        let mut m = Sequential::new()
            .add(RandomTranslation::new(0.2, 0.3).input_shape([6, 6, 1]))
            .add(Flatten::new())
            .add(Dense::new(2).activation(Activation::Softmax));
        m.compile(
            device.as_ref(),
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[],
        )
        .unwrap();
        assert!(
            m.summary().contains("random_translation (RandomTranslation)"),
            "{}",
            m.summary()
        );
        let before = m.predict(&x, 16).unwrap();
        let h = m.fit(&x, &y, &FitOptions::new(2, 8)).unwrap();
        assert!(h.last("loss").unwrap().is_finite());
        let path = std::env::temp_dir().join(format!("kiln-translation-{}.safetensors", std::process::id()));
        m.save(&path).unwrap();
        let mut loaded = load_model(&path, device.as_ref()).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(loaded.predict(&x, 16).unwrap(), m.predict(&x, 16).unwrap());
        assert_ne!(before, m.predict(&x, 16).unwrap(), "training moved the weights");
    }
    let mut bad = Sequential::new().add(RandomTranslation::new(1.5, 0.0).input_shape([4, 4, 1]));
    let err = bad
        .compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("height_factor"), "{err}");
}
