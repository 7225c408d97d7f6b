//! DepthwiseConv2D and SeparableConv2D (depth multiplier 1) against loops over the same weights on
//! the host, on both backends, with channel counts that do not divide the workgroup; a small
//! Xception-style model (separable convolutions and a residual 1×1 strided projection joined by
//! Add) trains on the MNIST sample on both backends; Rescaling.

mod common;

use kiln::graph::Backend;
use kiln::nn::{Layer, SymbolicTensor};
use kiln::prelude::*;

/// Depthwise convolution of one `[h, w, c]` image with kernel `[kh·kw, c]`, padding `(top, left)`.
#[allow(clippy::too_many_arguments)]
fn host_depthwise(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    kernel: &[f32],
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    let mut out = vec![0.0f32; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let mut acc = 0.0f64;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (y, xx) = ((oy * sh + ky) as i64 - top as i64, (ox * sw + kx) as i64 - left as i64);
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                            acc += f64::from(x[(y as usize * w + xx as usize) * c + ch])
                                * f64::from(kernel[(ky * kw + kx) * c + ch]);
                        }
                    }
                }
                out[(oy * ow + ox) * c + ch] = acc as f32;
            }
        }
    }
    out
}

fn single_layer(device: &dyn Backend, layer: impl Layer + 'static) -> Sequential {
    let mut m = Sequential::new().seed(4).add(layer);
    m.compile(device, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

#[test]
fn depthwise_and_separable_convolutions_match_host_loops() {
    // 67 channels: not a divisor of any workgroup size.
    let (n, h, w, c) = (2, 6, 7, 67);
    let x = random::normal([n, h, w, c], 1);
    for device in common::backends() {
        for (strides, padding, pads, out) in [
            ((1, 1), Padding::Valid, (0, 0), (4, 5)),
            ((2, 2), Padding::Same, (0, 1), (3, 4)),
        ] {
            let layer = DepthwiseConv2D::new((3, 3))
                .strides(strides)
                .padding(padding)
                .input_shape([h, w, c]);
            let mut m = single_layer(device.as_ref(), layer);
            let weights = m.weights().unwrap();
            let got = m.predict(&x, n).unwrap();
            let want: Vec<f32> = (0..n)
                .flat_map(|i| host_depthwise(x.row(i), (h, w, c), &weights[0].values, (3, 3), strides, pads, out))
                .collect();
            let what = format!("depthwise {padding:?} on {}", device.name());
            common::assert_close(&what, got.data(), &want, 1e-5, 1e-4);

            // Separable: the same depthwise step, then [c] · pointwise [c, 5] + bias per pixel.
            let layer = SeparableConv2D::new(5, (3, 3))
                .strides(strides)
                .padding(padding)
                .input_shape([h, w, c]);
            let mut m = single_layer(device.as_ref(), layer);
            let weights = m.weights().unwrap();
            let (depth, point, bias) = (&weights[0].values, &weights[1].values, &weights[2].values);
            let got = m.predict(&x, n).unwrap();
            let want: Vec<f32> = (0..n)
                .flat_map(|i| {
                    let d = host_depthwise(x.row(i), (h, w, c), depth, (3, 3), strides, pads, out);
                    d.chunks(c)
                        .flat_map(|px| {
                            (0..5).map(move |f| {
                                px.iter().enumerate().map(|(ch, &v)| v * point[ch * 5 + f]).sum::<f32>() + bias[f]
                            })
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            let what = format!("separable {padding:?} on {}", device.name());
            common::assert_close(&what, got.data(), &want, 1e-4, 1e-4);
        }
    }
}

#[test]
fn keras_weight_names_and_counts() {
    let mut m = Sequential::new()
        .add(SeparableConv2D::new(8, (3, 3)).input_shape([5, 5, 4]))
        .add(DepthwiseConv2D::new((3, 3)).without_bias());
    m.compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let names: Vec<(String, Vec<usize>)> = m.weights().unwrap().into_iter().map(|w| (w.name, w.shape)).collect();
    assert_eq!(
        names,
        [
            ("separable_conv2d/depthwise_kernel".to_string(), vec![9, 4]),
            ("separable_conv2d/pointwise_kernel".to_string(), vec![4, 8]),
            ("separable_conv2d/bias".to_string(), vec![8]),
            ("depthwise_conv2d/kernel".to_string(), vec![9, 8]),
        ]
    );
    assert!(
        m.summary().contains("separable_conv2d (SeparableConv2D)"),
        "{}",
        m.summary()
    );
}

/// Rescaling → SeparableConv2D(16) → BN → ReLU, a block of two separable convolutions with a
/// max-pool, joined by Add with a strided 1×1 projection of the block's input, then
/// GlobalAveragePooling2D → Dense(10, softmax).
fn xception_like(device: &dyn Backend) -> Result<Model> {
    let input = Input::new([28, 28, 1]);
    let x = Rescaling::new(1.0 / 255.0, 0.0).call(&input)?;
    let x = SeparableConv2D::new(16, (3, 3)).padding(Padding::Same).call(&x)?;
    let x = BatchNormalization::new().momentum(0.9).call(&x)?;
    let x: SymbolicTensor = ActivationLayer::new(Activation::Relu).call(&x)?;
    let h = SeparableConv2D::new(32, (3, 3))
        .padding(Padding::Same)
        .activation(Activation::Relu)
        .call(&x)?;
    let h = SeparableConv2D::new(32, (3, 3)).padding(Padding::Same).call(&h)?;
    let h = MaxPooling2D::new((3, 3))
        .strides((2, 2))
        .padding(Padding::Same)
        .call(&h)?;
    let projection = Conv2D::new(32, (1, 1))
        .strides((2, 2))
        .padding(Padding::Same)
        .call(&x)?;
    let joined = Add::new().call_many(&[&h, &projection])?;
    let pooled = GlobalAveragePooling2D::new().call(&joined)?;
    let out = Dense::new(10).activation(Activation::Softmax).call(&pooled)?;
    let mut m = Model::new(&[input], &out)?.with_seed(2);
    m.compile(
        device,
        Optimizer::adam_lr(0.01),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    Ok(m)
}

#[test]
fn an_xception_style_model_trains_on_mnist_on_both_backends() {
    let data = datasets::mnist().unwrap();
    let x = data.x_train.slice_rows(0..320).reshape([320, 28, 28, 1]).unwrap();
    let y = data.y_train.slice_rows(0..320);
    for device in common::backends() {
        let mut m = xception_like(device.as_ref()).unwrap();
        let h = m.fit(&x, &y, &FitOptions::new(8, 32).seed(1)).unwrap();
        let (first, last) = (h.get("loss").unwrap()[0], h.last("loss").unwrap());
        // Chance is a loss of ln 10 ≈ 2.30 and an accuracy of 0.1. The last epoch's accuracy
        // depends on the machine's GEMM kernels: 0.30 on the CPU with AVX2, more with AVX-512.
        assert!(last < 0.85 * first, "{}: loss {first} -> {last}", device.name());
        assert!(
            h.last("accuracy").unwrap() >= 0.25,
            "{}: {:?}",
            device.name(),
            h.get("accuracy")
        );
    }
}

#[test]
fn rescaling_scales_and_shifts() {
    let x = Tensor::new([1, 3], vec![0.0, 127.5, 255.0]).unwrap();
    let mut m = single_layer(
        &kiln::cpu::CpuBackend,
        Rescaling::new(1.0 / 127.5, -1.0).input_shape([3]),
    );
    assert_eq!(m.predict(&x, 1).unwrap().data(), [-1.0, 0.0, 1.0]);
}

/// Keras' `depth_multiplier`: output channel `ch·m + j` is input channel `ch` through window `j`
/// (kernel column `ch·m + j`), for DepthwiseConv2D and inside SeparableConv2D.
#[test]
fn depth_multiplier_gives_each_channel_several_windows() {
    let (n, h, w, c, m) = (2, 5, 6, 3, 2);
    let x = random::normal([n, h, w, c], 8);
    for device in common::backends() {
        let layer = DepthwiseConv2D::new((3, 3)).depth_multiplier(m).input_shape([h, w, c]);
        let mut model = single_layer(device.as_ref(), layer);
        let weights = model.weights().unwrap();
        assert_eq!(weights[0].shape, [9, c * m]);
        assert_eq!(weights[1].shape, [c * m]);
        let got = model.predict(&x, n).unwrap();
        assert_eq!(got.shape(), [n, 3, 4, c * m]);
        // Input channel ch repeated m times is a depthwise convolution over c·m channels.
        let repeated: Vec<f32> = x
            .data()
            .chunks(c)
            .flat_map(|px| px.iter().flat_map(|&v| [v; 2]))
            .collect();
        let want: Vec<f32> = repeated
            .chunks(h * w * c * m)
            .flat_map(|img| {
                let out = host_depthwise(img, (h, w, c * m), &weights[0].values, (3, 3), (1, 1), (0, 0), (3, 4));
                out.into_iter()
                    .enumerate()
                    .map(|(k, v)| v + weights[1].values[k % (c * m)])
                    .collect::<Vec<_>>()
            })
            .collect();
        common::assert_close(
            &format!("multiplier 2 on {}", device.name()),
            got.data(),
            &want,
            1e-5,
            1e-4,
        );

        let sep = SeparableConv2D::new(4, (3, 3))
            .depth_multiplier(3)
            .input_shape([h, w, c]);
        let mut model = single_layer(device.as_ref(), sep);
        let shapes: Vec<Vec<usize>> = model.weights().unwrap().into_iter().map(|w| w.shape).collect();
        assert_eq!(shapes, [vec![9, 9], vec![9, 4], vec![4]]);
    }
    let err = Sequential::new()
        .add(DepthwiseConv2D::new((3, 3)).depth_multiplier(0).input_shape([5, 5, 2]))
        .compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap_err();
    assert!(err.to_string().contains("depth_multiplier"), "{err}");
}
