//! Bad input gets an `Err` that names the problem — never a panic or a silent nonsense result.

use kiln::prelude::*;

fn model() -> Sequential {
    let mut m = Sequential::new()
        .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(
        &Device::cpu(),
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m
}

fn x(rows: usize) -> Tensor {
    Tensor::new([rows, 4], (0..rows * 4).map(|i| i as f32 * 0.1).collect()).unwrap()
}

fn err(r: Result<History>) -> String {
    r.expect_err("bad input was accepted").to_string()
}

#[test]
fn row_count_mismatch() {
    let msg = err(model().fit(&x(10), &Tensor::vector(vec![0.0; 9]), &FitOptions::default()));
    assert!(msg.contains("10 samples") && msg.contains("9"), "{msg}");
}

#[test]
fn input_width_mismatch() {
    let x5 = Tensor::new([2, 5], vec![0.0; 10]).unwrap();
    let msg = err(model().fit(&x5, &Tensor::vector(vec![0.0; 2]), &FitOptions::default()));
    assert!(msg.contains("[5]") && msg.contains("[4]"), "{msg}");
}

#[test]
fn nan_and_infinity_in_x() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut data = x(3);
        data.data_mut()[6] = bad;
        let msg = err(model().fit(&data, &Tensor::vector(vec![0.0; 3]), &FitOptions::default()));
        assert!(msg.contains("sample 1") && msg.contains("feature 2"), "{msg}");
    }
}

#[test]
fn sparse_labels_outside_the_units() {
    for bad in [3.0, -1.0, 1.5] {
        let msg = err(model().fit(&x(3), &Tensor::vector(vec![0.0, bad, 1.0]), &FitOptions::default()));
        assert!(msg.contains(&format!("label {bad}")) && msg.contains("0..3"), "{msg}");
    }
}

#[test]
fn empty_dataset() {
    let empty = Tensor::new([0, 4], vec![]).unwrap();
    let msg = err(model().fit(&empty, &Tensor::vector(vec![]), &FitOptions::default()));
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn batch_size_zero() {
    let msg = err(model().fit(&x(3), &Tensor::vector(vec![0.0; 3]), &FitOptions::new(1, 0)));
    assert!(msg.contains("batch_size"), "{msg}");
    let msg = model().predict(&x(3), 0).unwrap_err().to_string();
    assert!(msg.contains("batch_size"), "{msg}");
}

#[test]
fn fit_before_compile() {
    let mut m = Sequential::new().add(Dense::new(1).input_dim(4));
    let msg = err(m.fit(&x(2), &Tensor::vector(vec![0.0; 2]), &FitOptions::default()));
    assert!(msg.contains("compile"), "{msg}");
}

#[test]
fn three_classes_into_one_sigmoid_unit_is_refused() {
    let mut m = Sequential::new()
        .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(
        &Device::cpu(),
        Optimizer::adam(),
        Loss::BinaryCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    let msg = err(m.fit(&x(4), &Tensor::vector(vec![0.0, 1.0, 2.0, 1.0]), &FitOptions::default()));
    assert!(
        msg.contains("3 distinct") && msg.contains("softmax") && msg.contains("sparse_categorical_crossentropy"),
        "{msg}"
    );
}

#[test]
fn softmax_over_one_unit_is_refused() {
    let mut m = Sequential::new().add(Dense::new(1).activation(Activation::Softmax).input_dim(4));
    let msg = m
        .compile(&Device::cpu(), Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("single unit") && msg.contains("sigmoid"), "{msg}");
}

#[test]
fn categorical_crossentropy_on_integer_labels_is_refused() {
    let mut m = Sequential::new().add(Dense::new(3).activation(Activation::Softmax).input_dim(4));
    m.compile(&Device::cpu(), Optimizer::adam(), Loss::CategoricalCrossentropy, &[])
        .unwrap();
    let msg = err(m.fit(&x(3), &Tensor::vector(vec![0.0, 2.0, 1.0]), &FitOptions::default()));
    assert!(
        msg.contains("sparse_categorical_crossentropy") && msg.contains("to_categorical"),
        "{msg}"
    );
}

/// Shapes whose join overflows are refused with an error, not an arithmetic panic (found by
/// fuzzing the functional API).
#[test]
fn a_concatenation_past_usize_max_is_refused() {
    let (a, b) = (Input::new([2, usize::MAX - 1]), Input::new([2, 4]));
    let e = Concatenate::new().call_many(&[&a, &b]).unwrap_err().to_string();
    assert!(e.contains("usize::MAX"), "{e}");
    let (a, b) = (Input::new([1 << 40, 1 << 23]), Input::new([1 << 40, 1 << 23]));
    assert!(Concatenate::new().call_many(&[&a, &b]).is_err());
}
