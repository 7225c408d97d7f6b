//! Conv1D (valid, same and causal padding, strides) and the pooling layers (max and average over
//! 1-D and 2-D windows, global max) against loops over the same weights on the host, on both
//! backends; causality; a 1-D convnet trains.

mod common;

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::nn::Layer;
use kiln::prelude::*;

/// `conv1d(x, kernel [k·c, f], bias)` for one sample `[steps, c]`, taps `dilation` apart,
/// zero-padded by `left` before and as much as needed after, output length `out`.
#[allow(clippy::too_many_arguments)]
fn host_conv1d(
    x: &[f32],
    steps: usize,
    c: usize,
    kernel: &[f32],
    bias: &[f32],
    k: usize,
    (stride, dilation): (usize, usize),
    left: usize,
    out: usize,
) -> Vec<f32> {
    let f = bias.len();
    let mut y = vec![0.0f32; out * f];
    for t in 0..out {
        for o in 0..f {
            let mut acc = f64::from(bias[o]);
            for j in 0..k {
                let pos = (t * stride + j * dilation) as i64 - left as i64;
                if pos < 0 || pos >= steps as i64 {
                    continue;
                }
                for ch in 0..c {
                    acc += f64::from(x[pos as usize * c + ch]) * f64::from(kernel[(j * c + ch) * f + o]);
                }
            }
            y[t * f + o] = acc as f32;
        }
    }
    y
}

fn model_of(device: &dyn Backend, layer: impl Layer + 'static) -> Sequential {
    model_with_input(device, layer, None)
}

fn model_with_input(device: &dyn Backend, layer: impl Layer + 'static, input: Option<&[usize]>) -> Sequential {
    let mut m = Sequential::new().seed(5);
    if let Some(shape) = input {
        m = m.input_shape(shape.to_vec());
    }
    let mut m = m.add(layer);
    m.compile(device, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

#[test]
fn conv1d_matches_a_host_loop_for_each_padding() {
    let (n, steps, c, f, k) = (3, 11, 2, 4, 3);
    let x = random::normal([n, steps, c], 8);
    // (padding, stride, dilation, left padding, output length) as Keras computes them.
    let cases = [
        (Padding::Valid, 1, 1, 0, steps - k + 1),
        (Padding::Valid, 2, 1, 0, (steps - k) / 2 + 1),
        (Padding::Same, 1, 1, 1, steps),
        (Padding::Same, 2, 1, 1, steps.div_ceil(2)),
        (Padding::Causal, 1, 1, k - 1, steps),
        (Padding::Causal, 3, 1, k - 1, (steps - 1) / 3 + 1),
        (Padding::Valid, 1, 2, 0, steps - 2 * (k - 1)),
        (Padding::Same, 1, 3, 3, steps),
        (Padding::Causal, 1, 2, 2 * (k - 1), steps),
        (Padding::Causal, 1, 4, 4 * (k - 1), steps),
    ];
    for device in common::backends() {
        for (padding, stride, dilation, left, out) in cases {
            let layer = Conv1D::new(f, k)
                .strides(stride)
                .dilation_rate(dilation)
                .padding(padding)
                .bias_initializer(Init::RandomNormal { mean: 0.0, stddev: 0.5 })
                .input_shape([steps, c]);
            let mut m = model_of(device.as_ref(), layer);
            let w = m.weights().unwrap();
            let got = m.predict(&x, n).unwrap();
            assert_eq!(
                got.shape(),
                [n, out, f],
                "{padding:?} stride {stride} dilation {dilation}"
            );
            let want: Vec<f32> = (0..n)
                .flat_map(|i| {
                    host_conv1d(
                        x.row(i),
                        steps,
                        c,
                        &w[0].values,
                        &w[1].values,
                        k,
                        (stride, dilation),
                        left,
                        out,
                    )
                })
                .collect();
            common::assert_close(
                &format!("{padding:?} stride {stride} dilation {dilation} on {}", device.name()),
                got.data(),
                &want,
                1e-5,
                1e-4,
            );
        }
    }
}

#[test]
fn dilated_conv2d_matches_a_host_loop_and_strides_with_dilation_are_refused() {
    let (n, h, w, c, f) = (2, 7, 8, 3, 4);
    let x = random::normal([n, h, w, c], 9);
    for device in common::backends() {
        for (padding, pads, out) in [(Padding::Valid, (0, 0), (3, 6)), (Padding::Same, (2, 1), (7, 8))] {
            // A 3×2 window dilated 2×2: spans 5×3.
            let layer = Conv2D::new(f, (3, 2))
                .dilation_rate((2, 2))
                .padding(padding)
                .bias_initializer(Init::RandomNormal { mean: 0.0, stddev: 0.5 })
                .input_shape([h, w, c]);
            let mut m = model_of(device.as_ref(), layer);
            let weights = m.weights().unwrap();
            let (kernel, bias) = (&weights[0].values, &weights[1].values);
            let got = m.predict(&x, n).unwrap();
            assert_eq!(got.shape(), [n, out.0, out.1, f]);
            let mut want = Vec::new();
            for i in 0..n {
                let img = x.row(i);
                for oy in 0..out.0 {
                    for ox in 0..out.1 {
                        for o in 0..f {
                            let mut acc = f64::from(bias[o]);
                            for ky in 0..3 {
                                for kx in 0..2 {
                                    let (y, xx) = (
                                        (oy + 2 * ky) as i64 - pads.0 as i64,
                                        (ox + 2 * kx) as i64 - pads.1 as i64,
                                    );
                                    if y < 0 || xx < 0 || y >= h as i64 || xx >= w as i64 {
                                        continue;
                                    }
                                    for ch in 0..c {
                                        let v = img[(y as usize * w + xx as usize) * c + ch];
                                        acc += f64::from(v) * f64::from(kernel[((ky * 2 + kx) * c + ch) * f + o]);
                                    }
                                }
                            }
                            want.push(acc as f32);
                        }
                    }
                }
            }
            common::assert_close(
                &format!("dilated {padding:?} on {}", device.name()),
                got.data(),
                &want,
                1e-5,
                1e-4,
            );
        }
    }
    let err = Sequential::new()
        .add(Conv1D::new(2, 3).strides(2).dilation_rate(2).input_shape([10, 1]))
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("dilation") && err.contains("stride"), "{err}");
}

#[test]
fn causal_outputs_never_see_later_steps() {
    let mut m = model_of(
        &CpuBackend,
        Conv1D::new(3, 4).padding(Padding::Causal).input_shape([12, 2]),
    );
    let x = random::normal([1, 12, 2], 3);
    let before = m.predict(&x, 1).unwrap();
    let mut later = x.data().to_vec();
    later[7 * 2] += 10.0; // step 7, channel 0
    let after = m.predict(&Tensor::new([1, 12, 2], later).unwrap(), 1).unwrap();
    // Steps 7..=10 see step 7 through their four-step windows; the rest do not.
    for t in 0..12 {
        let same = before.data()[t * 3..t * 3 + 3] == after.data()[t * 3..t * 3 + 3];
        assert_eq!(same, !(7..=10).contains(&t), "step {t}");
    }
    let err = Sequential::new()
        .add(Conv2D::new(2, (3, 3)).padding(Padding::Causal).input_shape([5, 5, 1]))
        .compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("causal") && err.contains("Conv1D"), "{err}");
}

/// Host pooling of one `[h, w, c]` image: windows `kh×kw`, strides, padding before (`top`,
/// `left`), output `oh×ow`; average over the cells inside the image.
#[allow(clippy::too_many_arguments)]
fn host_pool(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
    max: bool,
) -> Vec<f32> {
    let mut out = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let mut cells = Vec::new();
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (y, xx) = ((oy * sh + ky) as i64 - top as i64, (ox * sw + kx) as i64 - left as i64);
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                            cells.push(x[(y as usize * w + xx as usize) * c + ch]);
                        }
                    }
                }
                out.push(if max {
                    cells.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                } else {
                    cells.iter().sum::<f32>() / cells.len() as f32
                });
            }
        }
    }
    out
}

#[test]
fn pooling_layers_match_host_loops() {
    let x2 = random::normal([2, 5, 7, 3], 4);
    let x1 = random::normal([2, 9, 3], 5);
    for device in common::backends() {
        let d = device.as_ref();
        // 2-D average, same padding: windows at the edges average fewer cells.
        let mut m = model_with_input(
            d,
            AveragePooling2D::new((2, 3)).strides((2, 2)).padding(Padding::Same),
            Some(&[5, 7, 3]),
        );
        let got = m.predict(&x2, 2).unwrap();
        // same: out = ceil(in / stride) = (3, 4); pads (1 total → top 0) and (2 total → left 1).
        let want: Vec<f32> = (0..2)
            .flat_map(|i| host_pool(x2.row(i), (5, 7, 3), (2, 3), (2, 2), (0, 1), (3, 4), false))
            .collect();
        assert_eq!(got.shape(), [2, 3, 4, 3]);
        common::assert_close(
            &format!("AveragePooling2D on {}", d.name()),
            got.data(),
            &want,
            1e-6,
            1e-5,
        );

        // 1-D max and average, valid with stride 2 and same.
        for (max, padding, stride, left, out) in [
            (true, Padding::Valid, 2, 0, 4),
            (false, Padding::Valid, 2, 0, 4),
            (true, Padding::Same, 1, 1, 9),
            (false, Padding::Same, 1, 1, 9),
        ] {
            let got = if max {
                model_with_input(d, MaxPooling1D::new(3).strides(stride).padding(padding), Some(&[9, 3]))
                    .predict(&x1, 2)
            } else {
                model_with_input(
                    d,
                    AveragePooling1D::new(3).strides(stride).padding(padding),
                    Some(&[9, 3]),
                )
                .predict(&x1, 2)
            }
            .unwrap();
            let want: Vec<f32> = (0..2)
                .flat_map(|i| host_pool(x1.row(i), (1, 9, 3), (1, 3), (1, stride), (0, left), (1, out), max))
                .collect();
            assert_eq!(got.shape(), [2, out, 3]);
            let what = format!(
                "{} pooling 1-D {padding:?} on {}",
                if max { "max" } else { "average" },
                d.name()
            );
            common::assert_close(&what, got.data(), &want, 1e-6, 1e-5);
        }

        // Global max over every step / pixel of each channel.
        let got = model_with_input(d, GlobalMaxPooling1D::new(), Some(&[9, 3]))
            .predict(&x1, 2)
            .unwrap();
        let want: Vec<f32> = (0..2)
            .flat_map(|i| host_pool(x1.row(i), (1, 9, 3), (1, 9), (1, 9), (0, 0), (1, 1), true))
            .collect();
        assert_eq!(got.data(), want.as_slice(), "GlobalMaxPooling1D on {}", d.name());
        let got = model_with_input(d, GlobalMaxPooling2D::new(), Some(&[5, 7, 3]))
            .predict(&x2, 2)
            .unwrap();
        let want: Vec<f32> = (0..2)
            .flat_map(|i| host_pool(x2.row(i), (5, 7, 3), (5, 7), (5, 7), (0, 0), (1, 1), true))
            .collect();
        assert_eq!(got.data(), want.as_slice(), "GlobalMaxPooling2D on {}", d.name());
    }
}

#[test]
fn a_small_1d_convnet_trains_on_both_backends() {
    // Label: whether the sequence's first half has the larger sum.
    let x = random::normal([96, 16, 2], 6);
    let y = Tensor::new(
        [96],
        (0..96)
            .map(|i| {
                let r = x.row(i);
                f32::from(r[..16].iter().sum::<f32>() > r[16..].iter().sum::<f32>())
            })
            .collect(),
    )
    .unwrap();
    for device in common::backends() {
        let mut m = Sequential::new()
            .seed(2)
            .add(
                Conv1D::new(8, 3)
                    .padding(Padding::Causal)
                    .activation(Activation::Relu)
                    .input_shape([16, 2]),
            )
            .add(AveragePooling1D::new(2))
            .add(Conv1D::new(8, 3).padding(Padding::Same).activation(Activation::Relu))
            .add(MaxPooling1D::new(2))
            .add(GlobalMaxPooling1D::new())
            .add(Dense::new(2).activation(Activation::Softmax));
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let h = m.fit(&x, &y, &FitOptions::new(30, 16).seed(1)).unwrap();
        let acc = h.last("accuracy").unwrap();
        assert!(acc > 0.8, "{}: accuracy {acc}", device.name());
    }
}
