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

/// A model whose output is its input (identity kernel, zero bias) through `activation`, so the
/// predictions a metric sees are chosen by the test.
fn pass_through(units: usize, activation: Activation, loss: Loss, metrics: &[Metric]) -> Sequential {
    let mut m = Sequential::new().add(Dense::new(units).activation(activation).input_dim(units));
    m.compile(&kiln::cpu::CpuBackend, Optimizer::adam(), loss, metrics)
        .unwrap();
    let identity: Vec<f32> = (0..units * units).map(|i| f32::from(i / units == i % units)).collect();
    m.set_weights(&[
        kiln::nn::Weight {
            name: "dense/kernel".into(),
            shape: vec![units, units],
            values: identity,
        },
        kiln::nn::Weight {
            name: "dense/bias".into(),
            shape: vec![units],
            values: vec![0.0; units],
        },
    ])
    .unwrap();
    m
}

#[test]
fn regression_metrics_match_keras_formulas() {
    let p = [1.0f32, 2.0, 0.5, -1.0, 3.0, 0.0, 2.0, 2.0];
    let t = [1.5f32, 2.0, 0.0, -2.0, 2.0, 1.0, 2.5, 4.0];
    let (x, y) = (
        Tensor::new([4, 2], p.to_vec()).unwrap(),
        Tensor::new([4, 2], t.to_vec()).unwrap(),
    );
    let metrics = [
        Metric::RootMeanSquaredError,
        Metric::MeanAbsolutePercentageError,
        Metric::R2Score,
    ];
    let mut m = pass_through(2, Activation::Linear, Loss::MeanSquaredError, &metrics);
    // Evaluated in batches of 3 and 1: the epoch statistics, not a mean of batch values.
    let e = m.evaluate(&x, &y, 3).unwrap();
    let pairs = || p.iter().zip(&t).map(|(&p, &t)| (f64::from(p), f64::from(t)));
    let rmse = (pairs().map(|(p, t)| (p - t).powi(2)).sum::<f64>() / 8.0).sqrt();
    let mape = 100.0 * pairs().map(|(p, t)| ((t - p) / t.abs().max(1e-7)).abs()).sum::<f64>() / 8.0;
    let r2 = |j: usize| {
        let col: Vec<(f64, f64)> = pairs().skip(j).step_by(2).collect();
        let mean = col.iter().map(|c| c.1).sum::<f64>() / 4.0;
        let res: f64 = col.iter().map(|(p, t)| (t - p).powi(2)).sum();
        let tot: f64 = col.iter().map(|(_, t)| (t - mean).powi(2)).sum();
        1.0 - res / tot
    };
    let want = [
        ("root_mean_squared_error", rmse),
        ("mean_absolute_percentage_error", mape),
        ("r2_score", (r2(0) + r2(1)) / 2.0),
    ];
    for (name, want) in want {
        let got = f64::from(e.get(name).unwrap());
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "{name}: {got}, Keras gives {want}"
        );
    }
}

#[test]
fn top_k_accuracies_count_labels_among_the_k_highest_scores() {
    // Scores per row, and the label's rank among them (0 = highest).
    let scores = [
        [0.1f32, 0.9, 0.3, 0.2], // label 1: rank 0
        [0.5, 0.1, 0.4, 0.3],    // label 2: rank 1
        [0.1, 0.2, 0.3, 0.4],    // label 0: rank 3
        [0.3, 0.2, 0.9, 0.1],    // label 0: rank 1
        [0.6, 0.5, 0.4, 0.7],    // label 2: rank 3
    ];
    let labels = [1.0f32, 2.0, 0.0, 0.0, 2.0];
    let x = Tensor::from_rows(&scores.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap();
    let sparse = Tensor::vector(labels.to_vec());
    let one_hot = to_categorical(&sparse, 4).unwrap();
    for (k, want) in [(1, 1.0 / 5.0), (2, 3.0 / 5.0), (3, 3.0 / 5.0), (4, 1.0)] {
        let mut m = pass_through(
            4,
            Activation::Softmax,
            Loss::SparseCategoricalCrossentropy,
            &[Metric::SparseTopKCategoricalAccuracy { k }],
        );
        let got = m
            .evaluate(&x, &sparse, 2)
            .unwrap()
            .get("sparse_top_k_categorical_accuracy")
            .unwrap();
        assert!((got - want).abs() < 1e-6, "sparse k {k}: {got}, want {want}");
        let mut m = pass_through(
            4,
            Activation::Softmax,
            Loss::CategoricalCrossentropy,
            &[Metric::TopKCategoricalAccuracy { k }],
        );
        let got = m
            .evaluate(&x, &one_hot, 2)
            .unwrap()
            .get("top_k_categorical_accuracy")
            .unwrap();
        assert!((got - want).abs() < 1e-6, "k {k}: {got}, want {want}");
    }
    // Integer labels with the dense form (and the reverse) are refused with the fix named.
    let mut m = Sequential::new().add(Dense::new(4).activation(Activation::Softmax).input_dim(4));
    let e = m
        .compile(
            &kiln::cpu::CpuBackend,
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::top_k()],
        )
        .unwrap_err();
    assert!(e.to_string().contains("to_categorical"), "{e}");
}

#[test]
fn pr_auc_follows_keras_interpolation_and_tracks_average_precision() {
    // 40 samples, 2 labels: scores (the sigmoid of the inputs) against labels of mixed difficulty.
    let n = 40;
    let x: Vec<f32> = (0..n * 2).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.3).collect();
    let labels: Vec<f32> = (0..n * 2)
        .map(|i| f32::from((x[i] + ((i * 13 % 7) as f32 - 3.0) * 0.8) > 0.0))
        .collect();
    let (xt, yt) = (
        Tensor::new([n, 2], x.clone()).unwrap(),
        Tensor::new([n, 2], labels.clone()).unwrap(),
    );
    let mut m = pass_through(2, Activation::Sigmoid, Loss::BinaryCrossentropy, &[Metric::AucPr]);
    let e = m.evaluate(&xt, &yt, 16).unwrap();
    let scores: Vec<f64> = x.iter().map(|&v| 1.0 / (1.0 + (-f64::from(v)).exp())).collect();
    for j in 0..2 {
        let column: Vec<(f64, bool)> = (0..n).map(|r| (scores[r * 2 + j], labels[r * 2 + j] == 1.0)).collect();
        // Keras' interpolate_pr_auc over the same thresholds, counted here on the host.
        let k = kiln::nn::AUC_THRESHOLDS;
        let counts: Vec<(f64, f64)> = (0..k)
            .map(|t| {
                let theta = f64::from(kiln::graph::roc_threshold(t, k));
                let above = column.iter().filter(|(s, _)| *s > theta);
                let tp = above.clone().filter(|(_, y)| *y).count() as f64;
                (tp, above.count() as f64 - tp)
            })
            .collect();
        let positives = counts[0].0;
        let mut want = 0.0;
        for t in 0..k - 1 {
            let ((tp0, fp0), (tp1, fp1)) = (counts[t], counts[t + 1]);
            let (p0, p1) = (tp0 + fp0, tp1 + fp1);
            let dtp = tp0 - tp1;
            let slope = if p0 - p1 > 0.0 { dtp / (p0 - p1) } else { 0.0 };
            let ratio = if p0 > 0.0 && p1 > 0.0 { p0 / p1 } else { 1.0 };
            want += slope * (dtp + (tp1 - slope * p1) * ratio.ln()) / positives;
        }
        let got = f64::from(e.get(&format!("pr_auc[{j}]")).unwrap());
        assert!(
            (got - want).abs() < 1e-4,
            "label {j}: {got}, Keras' interpolation gives {want}"
        );
        // And it tracks the exact average precision of the ranking.
        let mut ranked = column.clone();
        ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
        let (mut hits, mut ap) = (0.0, 0.0);
        for (i, (_, y)) in ranked.iter().enumerate() {
            if *y {
                hits += 1.0;
                ap += hits / (i + 1) as f64;
            }
        }
        ap /= positives;
        assert!(
            (got - ap).abs() < 0.05,
            "label {j}: PR AUC {got}, average precision {ap}"
        );
    }
    // A perfect ranking scores 1.
    let perfect: Vec<f32> = labels.iter().map(|&y| if y == 1.0 { 3.0 } else { -3.0 }).collect();
    let e = m.evaluate(&Tensor::new([n, 2], perfect).unwrap(), &yt, 16).unwrap();
    assert!((e.get("pr_auc").unwrap() - 1.0).abs() < 1e-5, "{e:?}");
}
