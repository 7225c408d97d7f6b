//! `fit(sample_weight=…, class_weight=…)` with Keras' semantics: the batch loss is `Σᵢ wᵢ·lᵢ / N`,
//! weights of one change nothing bit for bit, class weights are the sample weights of each
//! sample's class, and on an imbalanced task they raise the minority's recall.

mod common;

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::prelude::*;

fn data() -> (Tensor, Tensor) {
    (random::normal([64, 5], 1), random::integers(0, 3, [64], 2))
}

fn model(device: &dyn Backend, loss: Loss, units: usize, activation: Activation) -> Sequential {
    let mut m = Sequential::new()
        .seed(6)
        .add(Dense::new(12).activation(Activation::Relu).input_dim(5))
        .add(Dropout::new(0.2))
        .add(Dense::new(units).activation(activation));
    m.compile(device, Optimizer::adam_lr(0.01), loss, &[Metric::Accuracy])
        .unwrap();
    m
}

fn classifier(device: &dyn Backend) -> Sequential {
    model(device, Loss::SparseCategoricalCrossentropy, 3, Activation::Softmax)
}

#[test]
fn weights_of_one_change_nothing_bit_for_bit() {
    let (x, y) = data();
    for device in common::backends() {
        let options = FitOptions::new(3, 16).seed(2);
        let mut plain = classifier(device.as_ref());
        let h_plain = plain.fit(&x, &y, &options).unwrap();
        let mut ones = classifier(device.as_ref());
        let h_ones = ones
            .fit(&x, &y, &options.clone().sample_weight(Tensor::vector(vec![1.0; 64])))
            .unwrap();
        assert_eq!(h_plain.get("loss"), h_ones.get("loss"), "{}", device.name());
        assert_eq!(plain.weights().unwrap(), ones.weights().unwrap(), "{}", device.name());
    }
}

#[test]
fn the_batch_loss_is_the_weighted_sum_over_the_batch_size() {
    let (x, y) = data();
    // One batch of 64 and no dropout, so each sample's cross-entropy is -ln p[label] at the
    // initial weights that predict reports.
    let mut m = Sequential::new()
        .seed(6)
        .add(Dense::new(12).activation(Activation::Relu).input_dim(5))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(
        &CpuBackend,
        Optimizer::adam_lr(0.01),
        Loss::SparseCategoricalCrossentropy,
        &[],
    )
    .unwrap();
    let p = m.predict(&x, 64).unwrap();
    let w: Vec<f32> = (0..64).map(|i| (i % 4) as f32 * 0.5).collect();
    let options = FitOptions::new(1, 64)
        .record_batch_loss()
        .sample_weight(Tensor::vector(w.clone()));
    let h = m.fit(&x, &y, &options).unwrap();
    let want: f32 = (0..64)
        .map(|i| -w[i] * p.row(i)[y.data()[i] as usize].ln())
        .sum::<f32>()
        / 64.0;
    assert!(
        (h.batch_loss[0] - want).abs() < 1e-5,
        "batch loss {}, Σ w·l / N = {want}",
        h.batch_loss[0]
    );
}

#[test]
fn class_weights_are_the_sample_weights_of_each_samples_class() {
    let (x, y) = data();
    let class_weight = [(0, 0.5), (1, 2.0)]; // class 2 unlisted: weight 1, as in Keras
    let as_samples = Tensor::vector(y.data().iter().map(|&c| [0.5, 2.0, 1.0][c as usize]).collect());
    let fit = |y: &Tensor, loss: Loss, options: FitOptions| {
        let mut m = model(&CpuBackend, loss, 3, Activation::Softmax);
        m.fit(&x, y, &options).unwrap();
        m.weights().unwrap()
    };
    let options = FitOptions::new(2, 16).seed(1);
    // Integer labels, and one-hot rows through argmax.
    let by_class = fit(
        &y,
        Loss::SparseCategoricalCrossentropy,
        options.clone().class_weight(class_weight),
    );
    let by_sample = fit(
        &y,
        Loss::SparseCategoricalCrossentropy,
        options.clone().sample_weight(as_samples.clone()),
    );
    assert_eq!(by_class, by_sample);
    let one_hot = to_categorical(&y, 3).unwrap();
    let by_class = fit(
        &one_hot,
        Loss::CategoricalCrossentropy,
        options.clone().class_weight(class_weight),
    );
    let by_sample = fit(
        &one_hot,
        Loss::CategoricalCrossentropy,
        options.clone().sample_weight(as_samples),
    );
    assert_eq!(by_class, by_sample);
}

#[test]
fn bad_weights_are_refused_and_multi_hot_class_weights_warn() {
    let (x, y) = data();
    let mut m = classifier(&CpuBackend);
    let both = FitOptions::new(1, 16)
        .sample_weight(Tensor::vector(vec![1.0; 64]))
        .class_weight([(0, 2.0)]);
    let cases = [
        (both, "cannot both be set"),
        (
            FitOptions::new(1, 16).sample_weight(Tensor::vector(vec![1.0; 63])),
            "one weight per sample",
        ),
        (
            FitOptions::new(1, 16).sample_weight(Tensor::vector(
                (0..64).map(|i| if i == 5 { -1.0 } else { 1.0 }).collect(),
            )),
            "sample 5 is -1",
        ),
        (FitOptions::new(1, 16).class_weight([(1, f32::NAN)]), "class 1 is NaN"),
    ];
    for (options, needle) in cases {
        let e = m.fit(&x, &y, &options).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    // Multi-hot tags with class weights: Keras counts only each row's first tag; the doctor says so.
    let tags = Tensor::from_rows(
        &(0..64)
            .map(|i| vec![1.0, (i % 2) as f32, (i % 3 == 0) as u8 as f32])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut tagger = model(&CpuBackend, Loss::BinaryCrossentropy, 3, Activation::Sigmoid);
    let h = tagger
        .fit(&x, &tags, &FitOptions::new(1, 16).class_weight([(0, 1.0), (1, 5.0)]))
        .unwrap();
    assert!(
        h.warnings
            .iter()
            .any(|w| w.contains("first positive tag") && w.contains("WeightedBinaryCrossentropy")),
        "{:?}",
        h.warnings
    );
}

#[test]
fn class_weight_raises_minority_recall_on_imbalanced_breast_cancer() {
    // Breast cancer with the minority class (malignant, label 0) subsampled to 20% of its rows.
    let d = datasets::breast_cancer().unwrap();
    let keep: Vec<usize> = (0..d.y_train.rows())
        .filter(|&i| d.y_train.data()[i] == 1.0 || i % 5 == 0)
        .collect();
    let (x, y) = (d.x_train.select_rows(&keep), d.y_train.select_rows(&keep));
    let scaler = Standardizer::fit(&x).unwrap();
    let (x, x_test) = (scaler.transform(&x).unwrap(), scaler.transform(&d.x_test).unwrap());
    let minority = y.data().iter().filter(|&&v| v == 0.0).count() as f32;
    let majority = y.rows() as f32 - minority;
    let recall = |m: &mut Sequential| {
        let p = m.predict(&x_test, 128).unwrap();
        let (mut hit, mut total) = (0, 0);
        for (i, &label) in d.y_test.data().iter().enumerate() {
            if label == 0.0 {
                total += 1;
                hit += usize::from(p.data()[i] < 0.5);
            }
        }
        hit as f32 / total as f32
    };
    for device in common::backends() {
        let run = |options: FitOptions| {
            let mut m = Sequential::new()
                .seed(3)
                .add(Dense::new(1).activation(Activation::Sigmoid).input_dim(30));
            m.compile(device.as_ref(), Optimizer::sgd(0.01), Loss::BinaryCrossentropy, &[])
                .unwrap();
            m.fit(&x, &y, &options).unwrap();
            recall(&mut m)
        };
        let options = FitOptions::new(2, 32).seed(4);
        let plain = run(options.clone());
        // Keras' "balanced" weights: n / (2 · count).
        let n = y.rows() as f32;
        let weighted = run(options.class_weight([(0, n / (2.0 * minority)), (1, n / (2.0 * majority))]));
        println!(
            "{}: minority recall {plain:.3} unweighted, {weighted:.3} with class weights ({minority} of {n} training rows)",
            device.name()
        );
        assert!(weighted >= plain + 0.05, "{}: {plain} → {weighted}", device.name());
    }
}
