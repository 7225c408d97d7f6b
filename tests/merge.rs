//! The merge layers of the functional API (Keras' `Add`, `Subtract`, `Multiply`, `Average`,
//! `Maximum`, `Minimum`): values, the shape rule, gradients through a residual join on both
//! backends, and saving.

mod common;

use kiln::cpu::CpuBackend;
use kiln::nn::SymbolicTensor;
use kiln::prelude::*;

/// A two-input model whose output is `merge(a, b)` of the raw inputs.
fn merged(merge: impl Fn(&[&SymbolicTensor]) -> Result<SymbolicTensor>) -> Model {
    let a = Input::new([4]);
    let b = Input::new([4]);
    let out = merge(&[&a, &b]).unwrap();
    Model::new(&[a, b], &out).unwrap()
}

#[test]
fn each_merge_computes_its_keras_value_on_both_backends() {
    let a = Tensor::new([2, 4], vec![1.0, -2.0, 3.0, 0.5, -1.0, 4.0, 2.0, -3.0]).unwrap();
    let b = Tensor::new([2, 4], vec![2.0, -3.0, 1.0, 0.5, 5.0, -4.0, 2.5, 1.0]).unwrap();
    type Want = fn(f32, f32) -> f32;
    type Merge = Box<dyn Fn(&[&SymbolicTensor]) -> Result<SymbolicTensor>>;
    let cases: [(&str, Merge, Want); 6] = [
        ("add", Box::new(|x| Add::new().call_many(x)), |p, q| p + q),
        ("subtract", Box::new(|x| Subtract::new().call_many(x)), |p, q| p - q),
        ("multiply", Box::new(|x| Multiply::new().call_many(x)), |p, q| p * q),
        ("average", Box::new(|x| Average::new().call_many(x)), |p, q| {
            (p + q) / 2.0
        }),
        ("maximum", Box::new(|x| Maximum::new().call_many(x)), f32::max),
        ("minimum", Box::new(|x| Minimum::new().call_many(x)), f32::min),
    ];
    for device in common::backends() {
        for (name, merge, want) in &cases {
            let mut m = merged(merge);
            m.compile(device.as_ref(), Optimizer::adam(), Loss::MeanSquaredError, &[])
                .unwrap();
            let got = m.predict([&a, &b], 2).unwrap();
            let want: Vec<f32> = a.data().iter().zip(b.data()).map(|(&p, &q)| want(p, q)).collect();
            assert_eq!(got.data(), want.as_slice(), "{name} on {}", device.name());
        }
    }
}

#[test]
fn three_inputs_add_and_average() {
    let xs: Vec<Tensor> = (0..3).map(|i| random::normal([3, 2], i)).collect();
    let ins: Vec<SymbolicTensor> = (0..3).map(|_| Input::new([2])).collect();
    let refs: Vec<&SymbolicTensor> = ins.iter().collect();
    let out = Average::new().call_many(&refs).unwrap();
    let mut m = Model::new(&ins, &out).unwrap();
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let got = m.predict(&xs, 3).unwrap();
    for (k, g) in got.data().iter().enumerate() {
        let want = xs.iter().map(|t| t.data()[k]).sum::<f32>() / 3.0;
        assert!((g - want).abs() < 1e-6);
    }
}

#[test]
fn mismatched_shapes_and_arity_are_refused_with_the_shapes() {
    let a = Input::new([4]);
    let b = Input::new([5]);
    let err = Add::new().call_many(&[&a, &b]).unwrap_err().to_string();
    assert!(
        err.contains("Add") && err.contains("[4]") && err.contains("[5]"),
        "{err}"
    );
    let c = Input::new([4]);
    let err = Subtract::new().call_many(&[&a, &c, &a]).unwrap_err().to_string();
    assert!(err.contains("exactly two"), "{err}");
    let err = Multiply::new().call_many(&[&a]).unwrap_err().to_string();
    assert!(err.contains("at least two"), "{err}");
}

/// A residual MLP: h = relu(Dense(x)); out = Dense(Add(h, relu(Dense(h)))).
fn residual(device: &dyn kiln::graph::Backend) -> Model {
    let x = Input::new([6]);
    let h = Dense::new(8).activation(Activation::Relu).call(&x).unwrap();
    let f = Dense::new(8).activation(Activation::Relu).call(&h).unwrap();
    let joined = Add::new().call_many(&[&h, &f]).unwrap();
    let out = Dense::new(1).call(&joined).unwrap();
    let mut m = Model::new(&[x], &out).unwrap().with_seed(3);
    m.compile(device, Optimizer::adam_lr(0.01), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

#[test]
fn a_residual_model_trains_the_same_on_both_backends_and_saves() {
    let x = random::normal([64, 6], 7);
    let y = Tensor::new([64, 1], x.data().chunks(6).map(|r| r[0] * r[1] - r[2]).collect()).unwrap();
    let mut runs = Vec::new();
    for device in common::backends() {
        let mut m = residual(device.as_ref());
        let h = m
            .fit(&x, &y, &FitOptions::new(20, 16).seed(1).record_batch_loss())
            .unwrap();
        let loss = h.get("loss").unwrap();
        assert!(
            loss[19] < 0.5 * loss[0],
            "{}: {} -> {}",
            device.name(),
            loss[0],
            loss[19]
        );
        runs.push(h.batch_loss[..20].to_vec());
        // Saving and loading, once (on the first device, the CPU).
        if runs.len() == 1 {
            let dir = std::env::temp_dir().join(format!("kiln-merge-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("residual.safetensors");
            m.save(&path).unwrap();
            let mut loaded = load_model(&path, &CpuBackend).unwrap();
            assert_eq!(loaded.predict(&x, 64).unwrap(), m.predict(&x, 64).unwrap());
            assert!(loaded.summary().contains("add (Add)"), "{}", loaded.summary());
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    if let [cpu, gpu] = &runs[..] {
        common::assert_close("residual batch losses, GPU vs CPU", gpu, cpu, 1e-4, 1e-3);
    }
}
