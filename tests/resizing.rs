//! The layers that resize samples — Conv2DTranspose, Conv1DTranspose, UpSampling2D/1D,
//! ZeroPadding2D/1D, Cropping2D/1D, RepeatVector and Permute — against Keras 3.15.1's outputs for
//! the same inputs and weights (`tests/data/keras/layers/`, written by
//! `benches/keras/layer_fixtures.py`), their gradients against central differences, and a
//! convolutional autoencoder (the decoder upsampling with both kinds) training on the MNIST sample,
//! on both backends.

mod common;

use kiln::graph::Backend;
use kiln::nn::Layer;
use kiln::prelude::*;

use common::keras_fixture as fixture;

fn single_layer(device: &dyn Backend, layer: impl Layer + 'static, input: &[usize]) -> Sequential {
    let mut m = Sequential::new().input_shape(input.to_vec()).seed(3).add(layer);
    m.compile(device, Optimizer::sgd(1.0), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

/// The layer given Keras' weights of case `name`, its output on Keras' input against Keras'.
fn check_against_keras(device: &dyn Backend, name: &str, layer: impl Layer + 'static) {
    let x = fixture(&format!("{name}_x"));
    let mut m = single_layer(device, layer, &x.shape()[1..]);
    let mut weights = m.weights().unwrap();
    for w in &mut weights {
        let keras = fixture(&format!("{name}_{}", w.name.rsplit('/').next().unwrap()));
        assert_eq!(keras.data().len(), w.values.len(), "{name}: {} size", w.name);
        w.values = keras.data().to_vec();
    }
    m.set_weights(&weights).unwrap();
    let want = fixture(&format!("{name}_y"));
    let got = m.predict(&x, 2).unwrap();
    assert_eq!(got.shape(), want.shape(), "{name} on {}", device.name());
    common::assert_close(
        &format!("{name} on {}", device.name()),
        got.data(),
        want.data(),
        1e-5,
        1e-5,
    );
}

#[test]
fn resizing_layers_match_keras() {
    for device in common::backends() {
        let d = device.as_ref();
        let relu = Activation::Relu;
        let same = Padding::Same;
        check_against_keras(
            d,
            "conv2d_same",
            Conv2DTranspose::new(5, (3, 3))
                .strides((2, 2))
                .padding(same)
                .activation(relu),
        );
        check_against_keras(d, "conv2d_valid", Conv2DTranspose::new(4, (2, 3)).strides((3, 2)));
        check_against_keras(d, "conv1d_same", Conv1DTranspose::new(4, 3).strides(2).padding(same));
        check_against_keras(d, "conv1d_valid", Conv1DTranspose::new(2, 4).strides(3));
        check_against_keras(d, "up2d", UpSampling2D::new((2, 3)));
        check_against_keras(d, "up1d", UpSampling1D::new(3));
        check_against_keras(d, "zero_padding2d", ZeroPadding2D::new(((1, 2), (0, 3))));
        check_against_keras(d, "zero_padding1d", ZeroPadding1D::new((2, 1)));
        check_against_keras(d, "cropping2d", Cropping2D::new(((1, 0), (1, 2))));
        check_against_keras(d, "cropping1d", Cropping1D::new((1, 2)));
        check_against_keras(d, "repeat_vector", RepeatVector::new(3));
        check_against_keras(d, "permute", Permute::new([3, 1, 2]));
    }
}

/// The gradient of the mean squared error of `layers` (linear: the loss is quadratic in every
/// weight, so central differences are exact but for rounding) against central differences.
fn check_gradients(device: &dyn Backend, build: impl Fn() -> Sequential, x: &Tensor) {
    let mut m = build();
    m.compile(device, Optimizer::sgd(1.0), Loss::MeanSquaredError, &[])
        .unwrap();
    let out = m.predict(x, x.shape()[0]).unwrap();
    let y = random::normal(out.shape().to_vec(), 11);
    // Every entry of small parameters, a spread of a larger kernel's.
    common::gradient_matches_central_differences(&mut m, x, &y, 0.05, (2e-4, 2e-3), 12);
}

#[test]
fn gradients_through_resizing_layers_match_central_differences() {
    let image = random::normal([2, 3, 4, 3], 5);
    let sequence = random::normal([2, 5, 3], 6);
    for device in common::backends() {
        let d = device.as_ref();
        check_gradients(
            d,
            || {
                Sequential::new()
                    .input_shape(vec![3, 4, 3])
                    .seed(1)
                    .add(Conv2DTranspose::new(4, (3, 3)).strides((2, 2)).padding(Padding::Same))
                    .add(UpSampling2D::new((2, 1)))
                    .add(ZeroPadding2D::new(((1, 0), (2, 1))))
                    .add(Conv2DTranspose::new(2, (2, 2)).strides((3, 3)))
                    .add(Cropping2D::new(((2, 1), (0, 3))))
                    .add(Permute::new([2, 3, 1]))
                    .add(Dense::new(3))
            },
            &image,
        );
        check_gradients(
            d,
            || {
                Sequential::new()
                    .input_shape(vec![5, 3])
                    .seed(2)
                    .add(UpSampling1D::new(2))
                    .add(Conv1DTranspose::new(3, 4).strides(2).padding(Padding::Same))
                    .add(ZeroPadding1D::new((1, 2)))
                    .add(Cropping1D::new((2, 0)))
                    .add(Flatten::new())
                    .add(RepeatVector::new(2))
            },
            &sequence,
        );
    }
}

#[test]
fn keras_names_counts_and_errors() {
    let mut m = Sequential::new()
        .add(
            Conv2DTranspose::new(8, (3, 3))
                .strides((2, 2))
                .padding(Padding::Same)
                .input_shape([7, 7, 4]),
        )
        .add(UpSampling2D::new((2, 2)));
    m.compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let names: Vec<(String, Vec<usize>)> = m.weights().unwrap().into_iter().map(|w| (w.name, w.shape)).collect();
    // Keras' kernel (3, 3, 8, 4): filters before input channels.
    assert_eq!(
        names,
        [
            ("conv2d_transpose/kernel".to_string(), vec![72, 4]),
            ("conv2d_transpose/bias".to_string(), vec![8]),
        ]
    );
    let summary = m.summary();
    for row in [
        "conv2d_transpose (Conv2DTranspose)",
        "(None, 14, 14, 8)",
        "up_sampling2d (UpSampling2D)",
        "(None, 28, 28, 8)",
        "296",
    ] {
        assert!(summary.contains(row), "{row} missing from\n{summary}");
    }

    let refused = |layer: Box<dyn Fn() -> Sequential>, needle: &str| {
        let mut m = layer();
        let e = m
            .compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{e}");
    };
    refused(
        Box::new(|| Sequential::new().add(Conv1DTranspose::new(4, 3).padding(Padding::Causal).input_shape([5, 2]))),
        "causal",
    );
    refused(
        Box::new(|| Sequential::new().add(Conv2DTranspose::new(0, (3, 3)).input_shape([5, 5, 2]))),
        "filters",
    );
    refused(
        Box::new(|| {
            Sequential::new()
                .input_shape(vec![5, 5, 2])
                .add(UpSampling2D::new((0, 2)))
        }),
        "size",
    );
    refused(
        Box::new(|| Sequential::new().input_shape(vec![5, 5, 2]).add(UpSampling1D::new(2))),
        "sequences",
    );
    refused(
        Box::new(|| {
            Sequential::new()
                .input_shape(vec![5, 5, 2])
                .add(Cropping2D::new(((3, 2), (0, 0))))
        }),
        "leaves nothing",
    );
    refused(
        Box::new(|| Sequential::new().input_shape(vec![5, 2]).add(RepeatVector::new(3))),
        "vectors",
    );
    refused(
        Box::new(|| Sequential::new().input_shape(vec![5, 2]).add(Permute::new([1, 1]))),
        "each once",
    );
    refused(
        Box::new(|| Sequential::new().input_shape(vec![5, 2]).add(Permute::new([0, 1]))),
        "each once",
    );
}

#[test]
fn a_model_with_resizing_layers_saves_and_loads() {
    let input = Input::new([6, 3]);
    let h = Conv1DTranspose::new(4, 3)
        .strides(2)
        .padding(Padding::Same)
        .activation(Activation::Relu)
        .call(&input)
        .unwrap();
    let h = UpSampling1D::new(2).call(&h).unwrap();
    let h = ZeroPadding1D::new((1, 0)).call(&h).unwrap();
    let h = Cropping1D::new((0, 2)).call(&h).unwrap();
    let h = Permute::new([2, 1]).call(&h).unwrap();
    let h = Conv1D::new(2, 3).call(&h).unwrap();
    let h = Flatten::new().call(&h).unwrap();
    let out = RepeatVector::new(2).call(&h).unwrap();
    let mut m = Model::new(&[input], &out).unwrap().with_seed(4);
    m.compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let x = random::normal([3, 6, 3], 9);
    let want = m.predict(&x, 3).unwrap();
    let dir = std::env::temp_dir().join(format!("kiln-transposed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("decoder.safetensors");
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &kiln::cpu::CpuBackend).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.predict(&x, 3).unwrap().data(), want.data());
}

/// keras.io's convolutional autoencoder, smaller: two strided Conv2D downsample 28×28 to 7×7, a
/// strided Conv2DTranspose and an UpSampling2D bring it back, a sigmoid Conv2D gives the image.
fn autoencoder(device: &dyn Backend, policy: DTypePolicy) -> Result<Model> {
    let input = Input::new([28, 28, 1]);
    let relu = Activation::Relu;
    let h = Conv2D::new(16, (3, 3))
        .strides((2, 2))
        .padding(Padding::Same)
        .activation(relu)
        .call(&input)?;
    let h = Conv2D::new(8, (3, 3))
        .strides((2, 2))
        .padding(Padding::Same)
        .activation(relu)
        .call(&h)?;
    let h = Conv2DTranspose::new(8, (3, 3))
        .strides((2, 2))
        .padding(Padding::Same)
        .activation(relu)
        .call(&h)?;
    let h = UpSampling2D::new((2, 2)).call(&h)?;
    let out = Conv2D::new(1, (3, 3))
        .padding(Padding::Same)
        .activation(Activation::Sigmoid)
        .call(&h)?;
    let mut m = Model::new(&[input], &out)?.with_seed(1).with_dtype_policy(policy);
    m.compile(device, Optimizer::adam_lr(0.01), Loss::BinaryCrossentropy, &[])?;
    Ok(m)
}

#[test]
fn a_convolutional_autoencoder_learns_to_reconstruct_digits_on_both_backends() {
    let data = datasets::mnist().unwrap();
    let n = 256;
    let pixels: Vec<f32> = data.x_train.slice_rows(0..n).data().iter().map(|v| v / 255.0).collect();
    let x = Tensor::new([n, 28, 28, 1], pixels).unwrap();
    // The loss of the best constant image (each pixel's mean over the set): what a decoder that
    // ignored its input would reach.
    let mean: Vec<f32> = (0..784)
        .map(|p| (0..n).map(|i| x.row(i)[p]).sum::<f32>() / n as f32)
        .collect();
    let bce = |p: f32, t: f32| {
        let p = p.clamp(1e-7, 1.0 - 1e-7);
        -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
    };
    let constant = (0..n)
        .flat_map(|i| x.row(i).iter().zip(&mean).map(|(&t, &p)| bce(p, t)))
        .sum::<f32>()
        / (n * 784) as f32;
    // In float32, and under mixed_float16 (the transposed convolution's products and col2im in
    // f16).
    for policy in [DTypePolicy::Float32, DTypePolicy::MixedFloat16] {
        for device in common::backends() {
            let mut m = autoencoder(device.as_ref(), policy).unwrap();
            let h = m.fit(&x, &x, &FitOptions::new(6, 32).seed(2)).unwrap();
            let last = h.last("loss").unwrap();
            assert!(
                last < 0.6 * constant,
                "{} {policy:?}: reconstruction loss {:?} against {constant} for the mean image",
                device.name(),
                h.get("loss")
            );
        }
    }
}
