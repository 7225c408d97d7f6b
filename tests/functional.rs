//! The functional API: several inputs, branches, `Concatenate` and `Mean`, trained on both backends.
//! The shape is seed 003's example 2 (two inputs → per-branch encoding → mean → concatenate →
//! sigmoid tags), with Dense branches.

mod common;

use kiln::nn::{Call, Concatenate, Input, Mean, Model};
use kiln::prelude::*;
use kiln::Error;

/// x1 `[n, 10]`, x2 `[n, 5, 2]` (a short sequence of pairs) and three tags: one read from each
/// input, and one that needs both.
fn data(n: usize, seed: u64) -> (Tensor, Tensor, Tensor) {
    let x1 = random::normal([n, 10], seed);
    let x2 = random::normal([n, 5, 2], seed + 1);
    let mut y = Vec::with_capacity(n * 3);
    for i in 0..n {
        let a = x1.row(i);
        let b = x2.row(i);
        let mean_b0 = (0..5).map(|t| b[2 * t]).sum::<f32>() / 5.0;
        let mean_b1 = (0..5).map(|t| b[2 * t + 1]).sum::<f32>() / 5.0;
        y.push(f32::from(a[0] + a[1] > 0.0));
        y.push(f32::from(mean_b0 > 0.0));
        y.push(f32::from(a[2] + 3.0 * mean_b1 > 0.0));
    }
    (x1, x2, Tensor::new([n, 3], y).unwrap())
}

fn model() -> Model {
    let a = Input::new([10]);
    let b = Input::new([5, 2]);
    let ha = Dense::new(16).activation(Activation::Relu).call(&a).unwrap();
    let pooled = Mean::over(1).call(&b).unwrap();
    let hb = Dense::new(16).activation(Activation::Relu).call(&pooled).unwrap();
    let merged = Concatenate::new().call_many(&[&ha, &hb]).unwrap();
    assert_eq!(merged.shape(), &[32]);
    let tags = Dense::new(3).activation(Activation::Sigmoid).call(&merged).unwrap();
    Model::new(&[a, b], &tags).unwrap().with_seed(5)
}

#[test]
fn two_input_model_learns_tags_that_need_both_branches() {
    let (x1, x2, y) = data(2000, 1);
    let (t1, t2, ty) = data(500, 7);
    for device in common::backends() {
        let mut m = model();
        assert_eq!(m.layer_names(), ["dense", "mean", "dense_1", "concatenate", "dense_2"]);
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m.fit([&x1, &x2], &y, &FitOptions::new(15, 32)).unwrap();
        let accuracy = m.evaluate([&t1, &t2], &ty, 100).unwrap().get("accuracy").unwrap();
        println!("{}: two-input tag accuracy {accuracy:.3}", device.name());
        assert!(accuracy >= 0.9, "{}: {accuracy}", device.name());
        // The tag that needs both inputs is learned too: check it alone.
        let p = m.predict([&t1, &t2], 100).unwrap();
        let both = (0..500)
            .filter(|&i| (p.row(i)[2] > 0.5) == (ty.row(i)[2] == 1.0))
            .count() as f32
            / 500.0;
        assert!(both >= 0.85, "{}: cross-branch tag accuracy {both}", device.name());
    }
}

#[test]
fn functional_errors_name_the_problem() {
    let a = Input::new([4]);
    let b = Input::new([3, 2]);
    // Concatenating samples of different rank.
    let err = Concatenate::new().call_many(&[&a, &b]).unwrap_err().to_string();
    assert!(
        err.contains("Concatenate") && err.contains("[4]") && err.contains("[3, 2]"),
        "{err}"
    );
    // An output that depends on an input the model does not list.
    let h = Dense::new(2).call(&a).unwrap();
    let err = Model::new(std::slice::from_ref(&b), &h).unwrap_err().to_string();
    assert!(err.contains("not among the model's inputs"), "{err}");
    // Feeding one array to a two-input model.
    let c = Input::new([2]);
    let merged = Concatenate::new().call_many(&[&a, &c]).unwrap();
    let out = Dense::new(1).activation(Activation::Sigmoid).call(&merged).unwrap();
    let mut m = Model::new(&[a, c], &out).unwrap();
    m.compile(&Device::cpu(), Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .unwrap();
    let x = Tensor::new([2, 4], vec![0.0; 8]).unwrap();
    match m.fit(&x, &Tensor::vector(vec![0.0, 1.0]), &FitOptions::default()) {
        Err(Error::Data(msg)) => assert!(msg.contains("2 input(s)") && msg.contains("1 array(s)"), "{msg}"),
        other => panic!("expected a data error, got {other:?}"),
    }
}
