//! Metrics against host computations from the model's own predictions: precision, recall and F1
//! per label and macro-averaged, AUC against the exact rank-based AUC (within 1e-3), and a
//! user-defined metric (seed 003's threshold accuracy) against the built-in one — on both backends.

mod common;

use kiln::graph::ElementwiseOp;
use kiln::prelude::*;

const LABELS: usize = 3;

/// Three tags of 8 noisy features, with a rare tag so per-label values differ.
fn data(n: usize, seed: u64) -> (Tensor, Tensor) {
    let x = random::normal([n, 8], seed);
    let noise = random::normal([n, LABELS], seed + 100);
    let y: Vec<f32> = (0..n * LABELS)
        .map(|i| {
            let (r, j) = (i / LABELS, i % LABELS);
            let v = x.row(r)[j] + x.row(r)[j + 3] + 0.8 * noise.row(r)[j];
            f32::from(v > if j == 2 { 1.5 } else { 0.0 })
        })
        .collect();
    (x, Tensor::new([n, LABELS], y).unwrap())
}

/// Seed 003's custom metric: `K.mean(K.equal(y_true, y_pred > threshold), axis=-1)`.
fn threshold_accuracy(threshold: f32) -> Metric {
    Metric::custom("threshold_accuracy", move |g, y_true, y_pred| {
        let thresholded = g.unary(ElementwiseOp::Greater { threshold }, y_pred)?;
        let equal = g.binary(ElementwiseOp::Equal, y_true, thresholded)?;
        let last = g.shape(equal)?.rank() - 1;
        g.mean(equal, last)
    })
}

/// Exact AUC: the probability that a random positive scores above a random negative, ties half.
fn rank_auc(scores: &[f32], labels: &[f32]) -> f64 {
    let (mut wins, mut pairs) = (0.0f64, 0.0f64);
    for (i, &si) in scores.iter().enumerate() {
        if labels[i] != 1.0 {
            continue;
        }
        for (j, &sj) in scores.iter().enumerate() {
            if labels[j] == 1.0 {
                continue;
            }
            pairs += 1.0;
            wins += if si > sj {
                1.0
            } else if si == sj {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / pairs
}

#[test]
fn precision_recall_f1_auc_and_a_custom_metric_match_host_computations() {
    let (x, y) = data(1200, 1);
    let (xt, yt) = data(400, 2);
    for device in common::backends() {
        let mut m = Sequential::new()
            .seed(3)
            .add(Dense::new(16).activation(Activation::Relu).input_dim(8))
            .add(Dense::new(LABELS).activation(Activation::Sigmoid));
        let metrics = [
            Metric::Accuracy,
            Metric::precision(),
            Metric::recall(),
            Metric::f1(),
            Metric::Auc,
            threshold_accuracy(0.5),
        ];
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &metrics,
        )
        .unwrap();
        let history = m
            .fit(&x, &y, &FitOptions::new(4, 32).validation_data(xt.clone(), yt.clone()))
            .unwrap();
        for name in [
            "precision",
            "recall",
            "f1",
            "auc",
            "auc[2]",
            "val_auc",
            "val_f1[1]",
            "threshold_accuracy",
        ] {
            assert_eq!(
                history.get(name).map(<[f32]>::len),
                Some(4),
                "{}: history lacks {name}",
                device.name()
            );
        }
        let result = m.evaluate(&xt, &yt, 64).unwrap();
        let p = m.predict(&xt, 64).unwrap();

        let (mut precisions, mut recalls, mut f1s, mut aucs) = (vec![], vec![], vec![], vec![]);
        for j in 0..LABELS {
            let scores: Vec<f32> = (0..400).map(|r| p.row(r)[j]).collect();
            let labels: Vec<f32> = (0..400).map(|r| yt.row(r)[j]).collect();
            let count = |pred: bool, truth: bool| {
                scores
                    .iter()
                    .zip(&labels)
                    .filter(|(s, t)| (**s > 0.5) == pred && (**t == 1.0) == truth)
                    .count() as f32
            };
            let (tp, fp, fn_) = (count(true, true), count(true, false), count(false, true));
            let (pr, re) = (tp / (tp + fp), tp / (tp + fn_));
            precisions.push(pr);
            recalls.push(re);
            f1s.push(2.0 * pr * re / (pr + re));
            aucs.push(rank_auc(&scores, &labels));
            let got = result.get(&format!("auc[{j}]")).unwrap();
            assert!(
                (f64::from(got) - aucs[j]).abs() < 1e-3,
                "{}: auc[{j}] {got} vs exact {}",
                device.name(),
                aucs[j]
            );
            let got = result.get(&format!("precision[{j}]")).unwrap();
            assert!(
                (got - pr).abs() < 1e-6,
                "{}: precision[{j}] {got} vs {pr}",
                device.name()
            );
        }
        let macro_avg = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        for (name, want) in [
            ("precision", macro_avg(&precisions)),
            ("recall", macro_avg(&recalls)),
            ("f1", macro_avg(&f1s)),
        ] {
            let got = result.get(name).unwrap();
            assert!((got - want).abs() < 1e-6, "{}: {name} {got} vs {want}", device.name());
        }
        let auc = result.get("auc").unwrap();
        let exact = aucs.iter().sum::<f64>() / LABELS as f64;
        assert!(
            (f64::from(auc) - exact).abs() < 1e-3,
            "{}: macro auc {auc} vs exact {exact}",
            device.name()
        );
        assert!(auc > 0.8, "{}: the model learned little (auc {auc})", device.name());
        let custom = result.get("threshold_accuracy").unwrap();
        let built_in = result.get("accuracy").unwrap();
        assert!(
            (custom - built_in).abs() < 1e-6,
            "{}: custom {custom} vs built-in {built_in}",
            device.name()
        );
        println!(
            "{}: precision {precisions:?} recall {recalls:?} auc {aucs:?}",
            device.name()
        );
    }
}

#[test]
fn confusion_metrics_refuse_integer_labels() {
    let mut m = Sequential::new().add(Dense::new(3).activation(Activation::Softmax).input_dim(4));
    let err = m
        .compile(
            &Device::cpu(),
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::precision()],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("precision") && err.contains("to_categorical"), "{err}");
}
