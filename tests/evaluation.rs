//! `evaluate` beyond the loss: a classifier's confusion matrices, `evaluate_weighted` (Keras'
//! `evaluate(sample_weight=…)`), weighted metrics (Keras' `weighted_metrics`), and `fit`'s
//! `validation_freq`.

mod common;

use std::sync::{Arc, Mutex};

use kiln::cpu::CpuBackend;
use kiln::graph::Backend;
use kiln::nn::CsvLogger;
use kiln::prelude::*;

const N: usize = 90;

fn data() -> (Tensor, Tensor) {
    (random::normal([N, 4], 11), random::integers(0, 3, [N], 12))
}

/// A softmax classifier, trained a little so its predictions are not all one class.
fn classifier(device: &dyn Backend, loss: Loss, metrics: &[Metric]) -> Sequential {
    let mut m = Sequential::new()
        .seed(3)
        .add(Dense::new(16).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(device, Optimizer::adam_lr(0.05), loss, metrics).unwrap();
    m
}

/// `counts[actual][predicted]` from class indices.
fn host_confusion(actual: &[usize], predicted: &[usize], weights: &[f32], classes: usize) -> Vec<f32> {
    let mut counts = vec![0.0; classes * classes];
    for ((&a, &p), &w) in actual.iter().zip(predicted).zip(weights) {
        counts[a * classes + p] += w;
    }
    counts
}

fn labels(y: &Tensor) -> Vec<usize> {
    y.data().iter().map(|&v| v as usize).collect()
}

#[test]
fn a_classifier_reports_the_confusion_matrix_of_its_predictions() {
    let (x, y) = data();
    let one_hot = to_categorical(&y, 3).unwrap();
    for device in common::backends() {
        for (loss, labels_given) in [
            (Loss::SparseCategoricalCrossentropy, &y),
            (Loss::CategoricalCrossentropy, &one_hot),
        ] {
            let mut m = classifier(device.as_ref(), loss, &[Metric::Accuracy]);
            m.fit(&x, labels_given, &FitOptions::new(5, 16)).unwrap();
            let e = m.evaluate(&x, labels_given, 32).unwrap();
            let predicted = m.predict(&x, 32).unwrap().argmax_rows();
            assert_eq!(e.confusion.len(), 1, "{}", device.name());
            let matrix = &e.confusion[0];
            assert_eq!((matrix.classes(), matrix.label), (3, None));
            let want = host_confusion(&labels(&y), &predicted, &[1.0; N], 3);
            assert_eq!(matrix.counts(), want.as_slice(), "{}", device.name());
            // The diagonal is the accuracy evaluate reports; more than one class is predicted.
            let right: f32 = (0..3).map(|c| matrix.count(c, c)).sum();
            assert!((right / N as f32 - e.get("accuracy").unwrap()).abs() < 1e-6);
            assert!((0..3).filter(|&p| (0..3).any(|a| matrix.count(a, p) > 0.0)).count() > 1);
            assert_eq!(matrix.total(), N as f32);
        }
    }
}

#[test]
fn sigmoid_outputs_get_one_two_by_two_matrix_per_label() {
    let x = random::normal([N, 4], 21);
    let y = Tensor::new(
        [N, 2],
        x.data()
            .chunks(4)
            .flat_map(|r| [f32::from(r[0] > 0.0), f32::from(r[1] + r[2] > 0.3)])
            .collect(),
    )
    .unwrap();
    for device in common::backends() {
        let mut m = Sequential::new()
            .seed(4)
            .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
            .add(Dense::new(2).activation(Activation::Sigmoid));
        m.compile(device.as_ref(), Optimizer::adam_lr(0.05), Loss::BinaryCrossentropy, &[])
            .unwrap();
        m.fit(&x, &y, &FitOptions::new(4, 16)).unwrap();
        let e = m.evaluate(&x, &y, 25).unwrap();
        let p = m.predict(&x, 25).unwrap();
        assert_eq!(e.confusion.len(), 2);
        for (j, matrix) in e.confusion.iter().enumerate() {
            assert_eq!((matrix.label, matrix.classes()), (Some(j), 2));
            let actual: Vec<usize> = (0..N).map(|i| usize::from(y.row(i)[j] > 0.5)).collect();
            let predicted: Vec<usize> = (0..N).map(|i| usize::from(p.row(i)[j] > 0.5)).collect();
            let want = host_confusion(&actual, &predicted, &[1.0; N], 2);
            assert_eq!(matrix.counts(), want.as_slice(), "{} label {j}", device.name());
        }
    }
}

#[test]
fn regression_has_no_confusion_matrix() {
    let x = random::normal([20, 3], 1);
    let y = random::normal([20, 1], 2);
    let mut m = Sequential::new().add(Dense::new(1).input_dim(3));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    assert!(m.evaluate(&x, &y, 8).unwrap().confusion.is_empty());
}

#[test]
fn evaluate_weighted_with_ones_equals_evaluate_and_zero_weights_drop_samples() {
    let (x, classes) = data();
    let y = to_categorical(&classes, 3).unwrap();
    let metrics = [
        Metric::Accuracy,
        Metric::Accuracy.weighted(),
        Metric::MeanSquaredError.weighted(),
    ];
    for device in common::backends() {
        let mut m = classifier(device.as_ref(), Loss::CategoricalCrossentropy, &metrics);
        m.fit(&x, &y, &FitOptions::new(3, 16)).unwrap();
        let plain = m.evaluate(&x, &y, 32).unwrap();
        let ones = m.evaluate_weighted(&x, &y, &Tensor::vector(vec![1.0; N]), 32).unwrap();
        assert_eq!(plain, ones, "{}", device.name());
        let names: Vec<&str> = plain.values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["loss", "accuracy", "weighted_accuracy", "mse"]);
        assert_eq!(plain.get("accuracy"), plain.get("weighted_accuracy"));

        // Weights 0 for the second half: the weighted accuracy and the confusion matrix are the
        // first half's, the unweighted accuracy stays the whole set's, and the loss is the first
        // half's summed losses over all N (Keras' sum_over_batch_size).
        let w: Vec<f32> = (0..N).map(|i| f32::from(i < N / 2)).collect();
        let half = m.evaluate_weighted(&x, &y, &Tensor::vector(w.clone()), 32).unwrap();
        let first = m
            .evaluate(&x.slice_rows(0..N / 2), &y.slice_rows(0..N / 2), 32)
            .unwrap();
        let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
        let got = |name| half.get(name).unwrap();
        assert!(
            close(got("weighted_accuracy"), first.get("accuracy").unwrap()),
            "{}",
            device.name()
        );
        assert!(close(got("mse"), first.get("mse").unwrap()));
        assert_eq!(got("accuracy"), plain.get("accuracy").unwrap());
        assert!(
            close(got("loss"), first.loss() / 2.0),
            "{} vs {}",
            got("loss"),
            first.loss()
        );
        let predicted = m.predict(&x, 32).unwrap().argmax_rows();
        assert_eq!(
            half.confusion[0].counts(),
            host_confusion(&labels(&classes), &predicted, &w, 3).as_slice()
        );
    }
}

#[test]
fn weighted_precision_counts_weighted_positives() {
    let x = random::normal([N, 4], 31);
    let y = Tensor::new(
        [N, 1],
        x.data().chunks(4).map(|r| f32::from(r[0] + r[3] > 0.0)).collect(),
    )
    .unwrap();
    let mut m = Sequential::new()
        .seed(2)
        .add(Dense::new(1).activation(Activation::Sigmoid).input_dim(4));
    let metrics = [Metric::precision().weighted(), Metric::recall().weighted()];
    m.compile(
        &CpuBackend,
        Optimizer::adam_lr(0.05),
        Loss::BinaryCrossentropy,
        &metrics,
    )
    .unwrap();
    m.fit(&x, &y, &FitOptions::new(2, 16)).unwrap();
    let w: Vec<f32> = (0..N).map(|i| if i % 3 == 0 { 0.0 } else { 2.0 }).collect();
    let weighted = m.evaluate_weighted(&x, &y, &Tensor::vector(w.clone()), 16).unwrap();
    // Doubling every kept sample leaves the ratios of the kept samples.
    let kept: Vec<usize> = (0..N).filter(|i| i % 3 != 0).collect();
    let pick = |t: &Tensor| {
        let rows: Vec<Vec<f32>> = kept.iter().map(|&i| t.row(i).to_vec()).collect();
        Tensor::from_rows(&rows).unwrap()
    };
    let subset = m.evaluate(&pick(&x), &pick(&y), 16).unwrap();
    for name in ["precision", "recall"] {
        let (a, b) = (weighted.get(name).unwrap(), subset.get(name).unwrap());
        assert!((a - b).abs() < 1e-6, "{name}: {a} vs {b}");
    }
    assert_eq!(weighted.confusion[0].total(), 2.0 * kept.len() as f32);
}

#[test]
fn error_metrics_on_integer_labels_are_refused_at_compile() {
    let mut m = Sequential::new().add(Dense::new(3).activation(Activation::Softmax).input_dim(2));
    let err = m
        .compile(
            &CpuBackend,
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::MeanSquaredError],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("mse") && err.contains("to_categorical"), "{err}");
}

#[test]
fn metrics_that_cannot_be_weighted_yet_are_refused_at_compile() {
    for metric in [Metric::Auc, Metric::R2Score] {
        let mut m = Sequential::new().add(Dense::new(1).activation(Activation::Sigmoid).input_dim(2));
        let err = m
            .compile(
                &CpuBackend,
                Optimizer::adam(),
                Loss::BinaryCrossentropy,
                &[metric.weighted()],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("weighted"), "{err}");
    }
}

#[test]
fn validation_freq_validates_every_few_epochs_and_callbacks_follow() {
    let (x, y) = data();
    let (vx, vy) = (x.slice_rows(60..N), y.slice_rows(60..N));
    let dir = std::env::temp_dir().join(format!("kiln-validation-freq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("log.csv");
    let stopper = Arc::new(Mutex::new(EarlyStopping::new("val_loss").patience(5)));
    let logger = Arc::new(Mutex::new(CsvLogger::new(&csv)));
    let mut m = classifier(&CpuBackend, Loss::SparseCategoricalCrossentropy, &[Metric::Accuracy]);
    let options = FitOptions::new(5, 16)
        .validation_data(vx.clone(), vy.clone())
        .validation_freq(2)
        .callback(stopper)
        .callback(logger);
    let h = m.fit(&x.slice_rows(0..60), &y.slice_rows(0..60), &options).unwrap();
    assert_eq!(h.epochs(), 5);
    assert_eq!(h.validation_epochs, [2, 4]);
    assert_eq!(h.get("val_loss").unwrap().len(), 2);
    assert_eq!(h.series("val_loss").iter().map(|(e, _)| *e).collect::<Vec<_>>(), [2, 4]);
    // The history's table leaves the epochs without validation blank.
    let table = h.to_csv();
    let rows: Vec<&str> = table.lines().collect();
    let val_column = rows[0].split(',').position(|c| c == "val_loss").unwrap();
    let cells: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(val_column).unwrap())
        .collect();
    assert!(cells[0].is_empty() && !cells[1].is_empty() && cells[2].is_empty() && !cells[3].is_empty());
    // CsvLogger widened its header when validation first ran.
    let logged = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 6, "{logged}");
    let val_column = lines[0].split(',').position(|c| c == "val_loss").expect(&logged);
    assert!(lines[1].split(',').nth(val_column).unwrap().is_empty(), "{logged}");
    assert!(!lines[2].split(',').nth(val_column).unwrap().is_empty(), "{logged}");
    std::fs::remove_dir_all(&dir).ok();

    let err = m
        .fit(&x, &y, &FitOptions::new(1, 16).validation_freq(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("validation_freq"), "{err}");
}

/// A device too small for the batch `evaluate` and `predict` are given runs them in smaller
/// batches with the same results (Keras' inference batch size is a throughput setting, and
/// inference reads each sample on its own); a training step's batch is refused, naming the fix.
#[test]
fn inference_splits_a_batch_the_device_cannot_hold_and_training_says_so() {
    let Some(gpu) = common::gpu() else { return };
    // 64 KiB per binding: at a batch of 64 the convolution's im2col rows take 295 KB and the
    // flattened features 131 KB; a batch of 8 fits.
    let small = gpu
        .with_limits(|limits| limits.max_storage_buffer_binding_size = 64 << 10)
        .unwrap();
    let (x, y) = (random::normal([100, 8, 8, 2], 21), random::integers(0, 3, [100], 22));
    let model = |device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(5)
            .input_shape([8, 8, 2])
            .add(
                Conv2D::new(8, (3, 3))
                    .padding(Padding::Same)
                    .activation(Activation::Relu),
            )
            .add(Flatten::new())
            .add(Dense::new(3).activation(Activation::Softmax));
        m.compile(
            device,
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        m
    };
    let (mut cpu, mut gpu) = (model(&CpuBackend), model(&small));
    let want = cpu.predict(&x, 64).unwrap();
    common::assert_close(
        "predict at 64",
        gpu.predict(&x, 64).unwrap().data(),
        want.data(),
        1e-5,
        1e-4,
    );
    let (e_cpu, e_gpu) = (cpu.evaluate(&x, &y, 64).unwrap(), gpu.evaluate(&x, &y, 64).unwrap());
    for metric in ["loss", "accuracy"] {
        let (w, g) = (e_cpu.get(metric).unwrap(), e_gpu.get(metric).unwrap());
        assert!((w - g).abs() <= 1e-5 + 1e-4 * w.abs(), "{metric}: {g} against {w}");
    }
    let err = gpu.fit(&x, &y, &FitOptions::new(1, 64)).unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { message, .. } if message.contains("use a smaller batch size")),
        "{err}"
    );
    gpu.fit(&x, &y, &FitOptions::new(1, 8)).unwrap();
}
