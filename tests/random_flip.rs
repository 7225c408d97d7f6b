//! RandomFlip: in training each image comes out as itself or mirrored (left–right, upside down or
//! both, by mode), about half the images per direction, the same images on the CPU and the GPU,
//! new coins every step; evaluation and prediction pass images through.

mod common;

use std::sync::Arc;

use kiln::cpu::CpuBackend;
use kiln::graph::{schedule, Backend, Graph};
use kiln::nn::Layer;
use kiln::prelude::*;

const DIMS: [usize; 4] = [64, 3, 4, 2];

/// The layer's training-mode output for `x` at `step` on `device`.
fn flip(device: &dyn Backend, layer: &RandomFlip, x: &Tensor, step: f32) -> Vec<f32> {
    let mut g = Graph::new(Vec::new());
    let input = g.input("x", DIMS.to_vec());
    let out = layer.build(&mut g, &[input], &[], true).unwrap().output;
    let plan = Arc::new(schedule(&g, &[out]).unwrap());
    let mut s = device.new_session(&[]).unwrap();
    let id = s.load(plan).unwrap();
    // The draw: the step, the first sample of the batch, its samples.
    s.run(id, &[("x", x.data()), ("draw", &[step, 0.0, DIMS[0] as f32])])
        .unwrap();
    s.read_outputs(id).unwrap().swap_remove(0)
}

/// The image `img` (`[h, w, c]`) mirrored left–right and/or upside down.
fn mirrored(img: &[f32], horizontal: bool, vertical: bool) -> Vec<f32> {
    let [_, h, w, c] = DIMS;
    let mut out = vec![0.0; img.len()];
    for y in 0..h {
        for x in 0..w {
            let (sy, sx) = (
                if vertical { h - 1 - y } else { y },
                if horizontal { w - 1 - x } else { x },
            );
            for ch in 0..c {
                out[(y * w + x) * c + ch] = img[(sy * w + sx) * c + ch];
            }
        }
    }
    out
}

/// Per image, which of (none, left–right, upside down, both) it came out as.
fn outcomes(x: &Tensor, y: &[f32]) -> Vec<usize> {
    let per = DIMS[1] * DIMS[2] * DIMS[3];
    (0..DIMS[0])
        .map(|i| {
            let (img, got) = (x.row(i), &y[i * per..(i + 1) * per]);
            (0..4)
                .find(|&k| mirrored(img, k & 1 == 1, k & 2 == 2) == got)
                .unwrap_or_else(|| panic!("image {i} is no mirror of its input"))
        })
        .collect()
}

#[test]
fn training_images_come_out_mirrored_at_random_alike_on_both_backends() {
    let x = random::normal(DIMS, 3);
    let both = RandomFlip::new(FlipMode::HorizontalAndVertical).seed(7);
    let mut per_device = Vec::new();
    for device in common::backends() {
        let y = flip(device.as_ref(), &both, &x, 1.0);
        let seen = outcomes(&x, &y);
        for k in 0..4 {
            let count = seen.iter().filter(|&&s| s == k).count();
            assert!(
                (6..=28).contains(&count),
                "{}: outcome {k} {count} times of 64",
                device.name()
            );
        }
        // Another step draws other coins.
        let later = outcomes(&x, &flip(device.as_ref(), &both, &x, 2.0));
        assert_ne!(seen, later, "{}", device.name());
        per_device.push(seen);
    }
    if let [cpu, gpu] = &per_device[..] {
        assert_eq!(cpu, gpu, "the CPU and the GPU flip the same images");
    }
    // One direction only.
    let horizontal = outcomes(&x, &flip(&CpuBackend, &RandomFlip::new(FlipMode::Horizontal), &x, 1.0));
    assert!(horizontal.iter().all(|&k| k <= 1) && horizontal.contains(&1));
    let vertical = outcomes(&x, &flip(&CpuBackend, &RandomFlip::new(FlipMode::Vertical), &x, 1.0));
    assert!(vertical.iter().all(|&k| k == 0 || k == 2) && vertical.contains(&2));
}

#[test]
fn evaluation_and_prediction_pass_images_through() {
    let x = random::normal(DIMS, 4);
    let mut m = Sequential::new().add(RandomFlip::new(FlipMode::HorizontalAndVertical).input_shape([3, 4, 2]));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    assert_eq!(m.predict(&x, 16).unwrap(), x);
    // A model behind it trains (the flips sit in the training step).
    let mut m = Sequential::new()
        .add(RandomFlip::new(FlipMode::Horizontal).input_shape([3, 4, 2]))
        .add(Flatten::new())
        .add(Dense::new(1));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let y = random::normal([64, 1], 5);
    let h = m.fit(&x, &y, &FitOptions::new(3, 16)).unwrap();
    assert!(h.last("loss").unwrap().is_finite());
}
