//! The doctor: every check has a test for its error and one for the nearby legitimate case that
//! must pass untouched; the two warnings are raised, printed and kept on the History.

use kiln::prelude::*;
use kiln::Error;

/// `units` outputs with `activation` on 4 features, compiled with `loss` on the CPU.
fn model(units: usize, activation: Activation, loss: Loss) -> Result<Sequential> {
    let mut m = Sequential::new()
        .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(units).activation(activation));
    m.compile(&Device::cpu(), Optimizer::adam(), loss, &[Metric::Accuracy])?;
    Ok(m)
}

fn x(n: usize) -> Tensor {
    random::normal([n, 4], 0)
}

fn rows(data: &[&[f32]]) -> Tensor {
    Tensor::from_rows(&data.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
}

fn fit(units: usize, activation: Activation, loss: Loss, y: &Tensor) -> Result<History> {
    model(units, activation, loss)?.fit(&x(y.rows()), y, &FitOptions::new(1, 4))
}

/// The doctor's message, or a panic naming what came back instead.
fn doctor(r: Result<History>) -> String {
    match r {
        Err(Error::Doctor(m)) => m,
        other => panic!("expected the doctor to refuse, got {other:?}"),
    }
}

#[test]
fn three_classes_into_one_sigmoid_unit() {
    let msg = doctor(fit(
        1,
        Activation::Sigmoid,
        Loss::BinaryCrossentropy,
        &Tensor::vector(vec![0., 1., 2., 1., 0., 2.]),
    ));
    assert!(
        msg.contains("3 distinct integer values (0, 1, 2)") && msg.contains("Dense(3, softmax)"),
        "{msg}"
    );
    // Legitimate: two classes.
    fit(
        1,
        Activation::Sigmoid,
        Loss::BinaryCrossentropy,
        &Tensor::vector(vec![0., 1., 1., 0.]),
    )
    .unwrap();
}

#[test]
fn categorical_crossentropy_on_integer_labels() {
    let labels = Tensor::vector(vec![0., 2., 1., 2.]);
    let msg = doctor(fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &labels));
    assert!(
        msg.contains("sparse_categorical_crossentropy") && msg.contains("to_categorical(labels, 3)"),
        "{msg}"
    );
    // Legitimate: the same labels one-hot encoded, or sparse with the sparse loss.
    fit(
        3,
        Activation::Softmax,
        Loss::CategoricalCrossentropy,
        &to_categorical(&labels, 3).unwrap(),
    )
    .unwrap();
    fit(3, Activation::Softmax, Loss::SparseCategoricalCrossentropy, &labels).unwrap();
}

#[test]
fn one_hot_width_differs_from_the_units() {
    let four_wide = to_categorical(&Tensor::vector(vec![0., 3., 1., 2.]), 4).unwrap();
    let msg = doctor(fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &four_wide));
    assert!(msg.contains("4 columns") && msg.contains("3 units"), "{msg}");
    fit(4, Activation::Softmax, Loss::CategoricalCrossentropy, &four_wide).unwrap();
}

#[test]
fn sparse_labels_out_of_range() {
    for bad in [3.0, -1.0, 0.5] {
        let msg = doctor(fit(
            3,
            Activation::Softmax,
            Loss::SparseCategoricalCrossentropy,
            &Tensor::vector(vec![0., bad, 1., 2.]),
        ));
        assert!(msg.contains(&format!("label {bad}")) && msg.contains("0..3"), "{msg}");
    }
    fit(
        3,
        Activation::Softmax,
        Loss::SparseCategoricalCrossentropy,
        &Tensor::vector(vec![0., 2., 1., 2.]),
    )
    .unwrap();
}

#[test]
fn sparse_loss_on_one_hot_labels() {
    let one_hot = to_categorical(&Tensor::vector(vec![0., 2., 1., 2.]), 3).unwrap();
    let msg = doctor(fit(
        3,
        Activation::Softmax,
        Loss::SparseCategoricalCrossentropy,
        &one_hot,
    ));
    assert!(
        msg.contains("one-hot") && msg.contains("categorical_crossentropy"),
        "{msg}"
    );
}

#[test]
fn softmax_over_a_single_unit() {
    let err = model(1, Activation::Softmax, Loss::BinaryCrossentropy)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("single unit") && err.contains("always outputs 1.0"),
        "{err}"
    );
    // Legitimate: softmax over two units with categorical cross-entropy (seed 001, example 2).
    let two = to_categorical(&Tensor::vector(vec![0., 1., 1., 0.]), 2).unwrap();
    fit(2, Activation::Softmax, Loss::CategoricalCrossentropy, &two).unwrap();
}

#[test]
fn bce_targets_outside_zero_one() {
    let msg = doctor(fit(
        1,
        Activation::Sigmoid,
        Loss::BinaryCrossentropy,
        &Tensor::vector(vec![0.2, 1.5, 0.0, 0.7]),
    ));
    assert!(msg.contains("[0, 1]") && msg.contains("1.5"), "{msg}");
    // Legitimate: soft targets in [0, 1] with BCE, and confidence targets with sigmoid + mse
    // (seed 004, example 3).
    let soft = Tensor::new([4, 2], vec![0.2, 0.9, 0.0, 0.7, 1.0, 0.1, 0.5, 0.5]).unwrap();
    fit(2, Activation::Sigmoid, Loss::BinaryCrossentropy, &soft).unwrap();
    fit(2, Activation::Sigmoid, Loss::MeanSquaredError, &soft).unwrap();
}

#[test]
fn losses_that_do_not_fit_the_output_layer() {
    let err = model(3, Activation::Relu, Loss::CategoricalCrossentropy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("softmax") && err.contains("from_logits"), "{err}");
    let err = model(2, Activation::Linear, Loss::BinaryCrossentropy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in [0, 1]") && err.contains("from_logits"), "{err}");
    let err = model(2, Activation::Sigmoid, Loss::BinaryCrossentropy.from_logits())
        .unwrap_err()
        .to_string();
    assert!(err.contains("twice"), "{err}");
    // Legitimate: raw scores with from_logits.
    fit(
        2,
        Activation::Linear,
        Loss::BinaryCrossentropy.from_logits(),
        &rows(&[&[0., 1.], &[1., 1.], &[0., 0.], &[1., 0.]]),
    )
    .unwrap();
    fit(
        3,
        Activation::Linear,
        Loss::SparseCategoricalCrossentropy.from_logits(),
        &Tensor::vector(vec![0., 1., 2., 1.]),
    )
    .unwrap();
}

#[test]
fn softmax_with_bce_on_multi_hot_labels_warns_and_runs() {
    let multi_hot = rows(&[&[1., 1., 0.], &[0., 1., 1.], &[1., 0., 0.], &[1., 1., 1.]]);
    let h = fit(3, Activation::Softmax, Loss::BinaryCrossentropy, &multi_hot).unwrap();
    assert_eq!(h.warnings.len(), 1, "{:?}", h.warnings);
    assert!(
        h.warnings[0].contains("up to 3 positive tags") && h.warnings[0].contains("sigmoid"),
        "{:?}",
        h.warnings
    );
    assert_eq!(h.epochs(), 1);
    // Nearby legitimate: sigmoid outputs on the same labels.
    assert!(fit(3, Activation::Sigmoid, Loss::BinaryCrossentropy, &multi_hot)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn softmax_with_bce_on_one_hot_labels_warns_that_accuracy_is_binary() {
    // Seed 002's trap: "accuracy" under binary_crossentropy is binary accuracy over the columns, so
    // ten one-hot classes score 0.9 by predicting nothing.
    let one_hot = to_categorical(&Tensor::vector(vec![0., 2., 1., 2.]), 3).unwrap();
    let h = fit(3, Activation::Softmax, Loss::BinaryCrossentropy, &one_hot).unwrap();
    assert_eq!(h.warnings.len(), 1, "{:?}", h.warnings);
    assert!(
        h.warnings[0].contains("binary accuracy")
            && h.warnings[0].contains("0.67")
            && h.warnings[0].contains("categorical_crossentropy"),
        "{:?}",
        h.warnings
    );
    assert_eq!(h.epochs(), 1);
    // Legitimate neighbours: the same loss without a binary accuracy metric (the loss itself trains
    // the right class), categorical_crossentropy with accuracy, and two one-hot columns.
    let mut m = model(3, Activation::Softmax, Loss::BinaryCrossentropy).unwrap();
    m.compile(&Device::cpu(), Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .unwrap();
    let h = m.fit(&x(4), &one_hot, &FitOptions::new(1, 4)).unwrap();
    assert!(h.warnings.is_empty(), "{:?}", h.warnings);
    assert!(fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &one_hot)
        .unwrap()
        .warnings
        .is_empty());
    let two = to_categorical(&Tensor::vector(vec![0., 1., 1., 0.]), 2).unwrap();
    assert!(fit(2, Activation::Softmax, Loss::BinaryCrossentropy, &two)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn multi_hot_rows_into_categorical_crossentropy_warn() {
    let multi_hot = rows(&[&[1., 1., 0.], &[0., 1., 0.], &[1., 0., 0.], &[0., 1., 1.]]);
    let h = fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &multi_hot).unwrap();
    assert!(
        h.warnings.len() == 1 && h.warnings[0].contains("multi-hot"),
        "{:?}",
        h.warnings
    );
    let one_hot = to_categorical(&Tensor::vector(vec![0., 2., 1., 2.]), 3).unwrap();
    assert!(fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &one_hot)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn a_bounded_output_regressing_onto_targets_it_cannot_reach() {
    let targets = rows(&[&[0.5], &[3.0], &[1.0], &[0.0]]);
    for (activation, loss) in [
        (Activation::Sigmoid, Loss::MeanSquaredError),
        (Activation::Sigmoid, Loss::MeanAbsoluteError),
    ] {
        let msg = doctor(fit(1, activation, loss, &targets));
        assert!(
            msg.contains("sample 1 has target 3") && msg.contains("linear output layer"),
            "{msg}"
        );
    }
    // Legitimate: sigmoid + mse on targets in [0, 1] (seed 004, example 3), and a linear output
    // on any targets.
    fit(
        1,
        Activation::Sigmoid,
        Loss::MeanSquaredError,
        &rows(&[&[0.5], &[0.9], &[1.0], &[0.0]]),
    )
    .unwrap();
    fit(1, Activation::Linear, Loss::MeanSquaredError, &targets).unwrap();
}

#[test]
fn categorical_labels_that_are_not_distributions() {
    for (bad, why) in [
        (
            rows(&[&[1., 0., 0.], &[0.5, -0.5, 1.], &[0., 1., 0.], &[0., 0., 1.]]),
            "negative entry -0.5",
        ),
        (
            rows(&[&[1., 0., 0.], &[0., 0., 0.], &[0., 1., 0.], &[0., 0., 1.]]),
            "all zeros",
        ),
        (
            rows(&[&[1., 0., 0.], &[0.3, 0.3, 0.3], &[0., 1., 0.], &[0., 0., 1.]]),
            "sums to 0.9",
        ),
    ] {
        let msg = doctor(fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &bad));
        assert!(msg.contains(why) && msg.contains("to_categorical"), "{msg}");
    }
    // Legitimate: smoothed labels (Keras' label_smoothing=0.1 over 3 classes) sum to 1.
    let smoothed = rows(&[
        &[0.933_333_3, 0.033_333_3, 0.033_333_3],
        &[0.033_333_3, 0.933_333_3, 0.033_333_3],
        &[0.033_333_3, 0.033_333_3, 0.933_333_3],
        &[0.933_333_3, 0.033_333_3, 0.033_333_3],
    ]);
    fit(3, Activation::Softmax, Loss::CategoricalCrossentropy, &smoothed).unwrap();
}

#[test]
fn class_weights_that_are_nan_or_negative() {
    for w in [f32::NAN, -1.0, f32::INFINITY] {
        let msg = match model(2, Activation::Sigmoid, Loss::WeightedBinaryCrossentropy(vec![1.0, w])) {
            Err(Error::Doctor(m)) => m,
            other => panic!("weight {w}: expected the doctor to refuse, got {:?}", other.map(|_| ())),
        };
        assert!(msg.contains(&format!("class weight 1 is {w}")), "{msg}");
    }
    // Legitimate: zero and large positive weights.
    model(
        2,
        Activation::Sigmoid,
        Loss::WeightedBinaryCrossentropy(vec![0.0, 12.5]),
    )
    .unwrap();
}

#[test]
fn channels_first_images_warn_and_run() {
    let fit_images = |shape: [usize; 3]| {
        let mut m = Sequential::new()
            .add(Conv2D::new(2, (1, 1)).input_shape(shape))
            .add(Flatten::new())
            .add(Dense::new(1).activation(Activation::Sigmoid));
        m.compile(&Device::cpu(), Optimizer::adam(), Loss::BinaryCrossentropy, &[])
            .unwrap();
        let n: usize = shape.iter().product();
        let x = random::uniform([4, shape[0], shape[1], shape[2]], 1);
        assert_eq!(x.row_len(), n);
        m.fit(&x, &Tensor::vector(vec![0., 1., 1., 0.]), &FitOptions::new(1, 4))
            .unwrap()
    };
    let h = fit_images([3, 16, 16]);
    assert_eq!(h.warnings.len(), 1, "{:?}", h.warnings);
    assert!(
        h.warnings[0].contains("transpose each sample to [16, 16, 3]"),
        "{:?}",
        h.warnings
    );
    // Nearby legitimate: the same images channels-last, and a small square image with few channels.
    assert!(fit_images([16, 16, 3]).warnings.is_empty());
    assert!(fit_images([4, 4, 4]).warnings.is_empty());
}

/// Every check is documented.
#[test]
fn the_doc_page_lists_every_check() {
    let page = include_str!("../docs/doctor.md");
    for topic in [
        "more than two classes into one sigmoid unit",
        "categorical_crossentropy on integer labels",
        "width differs from the output units",
        "outside `0..units`",
        "one-hot labels into sparse_categorical_crossentropy",
        "softmax over a single unit",
        "BCE targets outside [0, 1]",
        "does not fit the output layer",
        "from_logits on an activated output",
        "softmax + BCE on multi-hot labels",
        "multi-hot rows into categorical_crossentropy",
        "bounded output on unreachable regression targets",
        "categorical labels that are not distributions",
        "NaN, infinite or negative class weights",
        "channels-first images",
    ] {
        assert!(page.contains(topic), "docs/doctor.md does not cover: {topic}");
    }
}

#[test]
fn embedding_fed_values_a_layer_computed() {
    let tokens = Input::new([6]);
    let h = Dense::new(6).call(&tokens).unwrap();
    let e = Embedding::new(10, 4).call(&h).unwrap();
    let out = Dense::new(1)
        .activation(Activation::Sigmoid)
        .call(&GlobalAveragePooling1D::new().call(&e).unwrap())
        .unwrap();
    let msg = match Model::new(&[tokens], &out) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an Embedding behind a Dense layer was accepted"),
    };
    assert!(
        msg.contains("layer `embedding`") && msg.contains("computed by layer `dense`") && msg.contains("model input"),
        "{msg}"
    );
}

#[test]
fn tokens_through_a_reshape_are_checked_like_direct_ones() {
    let build = || {
        let tokens = Input::new([2, 3]);
        let flat = Flatten::new().call(&tokens).unwrap();
        let e = Embedding::new(10, 4).call(&flat).unwrap();
        let out = Dense::new(1)
            .activation(Activation::Sigmoid)
            .call(&GlobalAveragePooling1D::new().call(&e).unwrap())
            .unwrap();
        let mut m = Model::new(&[tokens], &out).unwrap();
        m.compile(&Device::cpu(), Optimizer::adam(), Loss::BinaryCrossentropy, &[])
            .unwrap();
        m
    };
    let y = Tensor::vector(vec![0., 1.]);
    let opts = FitOptions::new(1, 2);
    let fractional = Tensor::new([2, 2, 3], vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 1.5, 2., 3.]).unwrap();
    match build().fit(&fractional, &y, &opts) {
        Err(Error::Data(m)) => assert!(m.contains("layer `embedding`") && m.contains("token 1.5"), "{m}"),
        other => panic!("fractional tokens behind a Flatten were accepted: {other:?}"),
    }
    // Legitimate neighbour: integer tokens in range through the same Flatten.
    let ints = Tensor::new([2, 2, 3], vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 0., 2., 3.]).unwrap();
    build().fit(&ints, &y, &opts).unwrap();
}
