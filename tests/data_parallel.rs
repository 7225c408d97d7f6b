//! Data-parallel training on replicas of one device: 2 and 3 replicas trained for 20 steps from
//! the same seed reach the weights one device reaches with the whole batch (to float rounding),
//! with Dropout, sample weights and a last partial batch; BatchNormalization's per-replica batch
//! statistics; evaluation and prediction sharded the same way; and the errors of a bad strategy.

mod common;

use std::sync::Arc;

use kiln::graph::Backend;
use kiln::prelude::*;

/// 36 samples: batches of 8 leave a last one of 4, so 5 steps an epoch and 20 in 4 epochs.
fn data() -> (Tensor, Tensor) {
    (random::normal([36, 5], 11), random::integers(0, 3, [36], 12))
}

fn classifier(device: &dyn Backend) -> Sequential {
    let mut m = Sequential::new()
        .seed(4)
        .add(Dense::new(16).activation(Activation::Relu).input_dim(5))
        .add(Dropout::new(0.3))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(
        device,
        Optimizer::adam_lr(0.01),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m
}

/// Replicas of each backend (the CPU one, and lavapipe in CI).
fn replicas(device: &dyn Backend, n: usize) -> DataParallel {
    let devices: Vec<Arc<dyn Backend>> = (0..n).map(|_| shared(device)).collect();
    DataParallel::new(devices).unwrap()
}

fn shared(device: &dyn Backend) -> Arc<dyn Backend> {
    if device.name().starts_with("cpu") {
        Arc::new(kiln::cpu::CpuBackend)
    } else {
        Arc::new(common::gpu().expect("a GPU backend came from common::backends").clone())
    }
}

/// `got` within `rel` of `want`, relative to the largest magnitude of `want` (Adam's steps are
/// the learning rate whatever a gradient's size, so one element's rounding is not the measure).
fn assert_relative(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    assert!(worst <= rel * scale, "{what}: off by {worst} (scale {scale})");
}

fn assert_same_weights(what: &str, got: &mut Model, want: &mut Model, rel: f32) {
    for (g, w) in got.weights().unwrap().iter().zip(want.weights().unwrap()) {
        assert_eq!(g.name, w.name);
        assert_relative(&format!("{what}: {}", g.name), &g.values, &w.values, rel);
    }
}

#[test]
fn replicas_train_to_the_weights_of_one_device_with_the_whole_batch() {
    let (x, y) = data();
    let weights = Tensor::vector((0..36).map(|i| 0.5 + (i % 4) as f32 * 0.25).collect());
    for device in common::backends() {
        for weighted in [false, true] {
            let mut options = FitOptions::new(4, 8).seed(3);
            if weighted {
                options = options.sample_weight(weights.clone());
            }
            let mut one = classifier(device.as_ref());
            let h_one = one.fit(&x, &y, &options).unwrap();
            assert_eq!(one.steps(), 20);
            for n in [2, 3] {
                let what = format!("{} × {n}, weighted {weighted}", device.name());
                let mut many = classifier(&replicas(device.as_ref(), n));
                let h_many = many.fit(&x, &y, &options).unwrap();
                assert_eq!(many.steps(), 20, "{what}");
                assert_same_weights(&what, &mut many, &mut one, 1e-5);
                for name in ["loss", "accuracy"] {
                    assert_relative(
                        &format!("{what}: {name}"),
                        h_many.get(name).unwrap(),
                        h_one.get(name).unwrap(),
                        1e-5,
                    );
                }
                // Two runs per replica and step: the gradients, then the update (on a GPU, reading
                // the gradients back is a copy submitted between them).
                let runs_per_step = if device.name().starts_with("cpu") { 2 } else { 3 };
                assert!(many.counters().submits <= 20 * runs_per_step * n as u64, "{what}");
            }
        }
    }
}

#[test]
fn dropout_draws_the_whole_batch_mask_on_every_shard() {
    // One step on a model that is all dropout: each replica's shard of the output must be the
    // whole batch's rows, so the averaged gradient and the weights match one device exactly.
    let (x, y) = (random::normal([7, 5], 5), random::normal([7, 5], 6));
    let build = |device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(2)
            .input_shape([5])
            .add(Dropout::new(0.5))
            .add(Dense::new(5));
        m.compile(device, Optimizer::sgd(0.1), Loss::MeanSquaredError, &[])
            .unwrap();
        m
    };
    for device in common::backends() {
        let mut one = build(device.as_ref());
        let l_one = one.train_on_batch(&x, &y).unwrap();
        let mut three = build(&replicas(device.as_ref(), 3));
        let l_three = three.train_on_batch(&x, &y).unwrap();
        assert_relative("loss", &[l_three], &[l_one], 1e-5);
        assert_same_weights(&device.name(), &mut three, &mut one, 1e-5);
    }
}

#[test]
fn batch_normalization_uses_each_replicas_statistics() {
    // Every batch is one half repeated: each replica's shard has the whole batch's mean and
    // variance, so per-replica statistics give exactly one device's training; the moving
    // statistics, averaged over the replicas, match too.
    let half = random::normal([4, 3], 8);
    let mut rows = Vec::new();
    for _ in 0..2 {
        rows.extend_from_slice(half.data());
    }
    let x = Tensor::new([8, 3], rows).unwrap();
    let y = Tensor::new([8, 1], (0..8).map(|i| (i % 4) as f32 * 0.5).collect()).unwrap();
    let build = |device: &dyn Backend| {
        let mut m = Sequential::new()
            .seed(1)
            // No bias before the normalisation (Keras' advice too): its gradient is zero up to
            // rounding, which Adam would turn into steps of a full learning rate.
            .add(Dense::new(4).without_bias().input_dim(3))
            .add(BatchNormalization::new())
            .add(Dense::new(1));
        m.compile(device, Optimizer::adam_lr(0.01), Loss::MeanSquaredError, &[])
            .unwrap();
        m
    };
    for device in common::backends() {
        let options = FitOptions::new(20, 8).no_shuffle();
        let mut one = build(device.as_ref());
        one.fit(&x, &y, &options).unwrap();
        let mut two = build(&replicas(device.as_ref(), 2));
        two.fit(&x, &y, &options).unwrap();
        // (The weights include the moving statistics.)
        assert_same_weights(&device.name(), &mut two, &mut one, 1e-5);
        let moving_mean = |m: &mut Sequential| {
            m.weights()
                .unwrap()
                .into_iter()
                .find(|w| w.name.ends_with("moving_mean"))
                .unwrap()
        };
        // And on a batch whose halves differ, the replicas' moving statistics stay identical
        // (they are averaged after every step) and their mean is the whole batch's.
        let x = random::normal([8, 3], 9);
        let mut two = build(&replicas(device.as_ref(), 2));
        two.fit(&x, &y, &FitOptions::new(1, 8)).unwrap();
        let mut one = build(device.as_ref());
        one.fit(&x, &y, &FitOptions::new(1, 8)).unwrap();
        assert_relative(
            "moving mean",
            &moving_mean(&mut two).values,
            &moving_mean(&mut one).values,
            1e-5,
        );
    }
}

#[test]
fn a_masked_per_token_loss_weighs_each_replica_by_its_real_tokens() {
    // Shards of 2 sequences with 7 and 2 real tokens: weighting them by samples would give the
    // 2 tokens as much say as the 7.
    let build = |device: &dyn Backend| {
        let tokens = Input::new([5]);
        let e = Embedding::new(9, 4).mask_zero(true).call(&tokens).unwrap();
        let h = LSTM::new(3).return_sequences(true).call(&e).unwrap();
        let out = Dense::new(3).activation(Activation::Softmax).call(&h).unwrap();
        let mut m = Model::new(&[tokens], &out).unwrap().with_seed(1);
        m.compile(device, Optimizer::sgd(0.5), Loss::SparseCategoricalCrossentropy, &[])
            .unwrap();
        m
    };
    let x = Tensor::new(
        [4, 5],
        vec![
            4., 2., 7., 1., 0., 1., 8., 3., 0., 0., 5., 0., 0., 0., 0., 6., 0., 0., 0., 0.,
        ],
    )
    .unwrap();
    let y = Tensor::new([4, 5], (0..20).map(|i| (i % 3) as f32).collect()).unwrap();
    for device in common::backends() {
        let mut one = build(device.as_ref());
        let mut two = build(&replicas(device.as_ref(), 2));
        for _ in 0..3 {
            let (a, b) = (one.train_on_batch(&x, &y).unwrap(), two.train_on_batch(&x, &y).unwrap());
            assert_relative("masked loss", &[b], &[a], 1e-5);
        }
        assert_same_weights(&device.name(), &mut two, &mut one, 1e-5);
    }
}

#[test]
fn evaluate_and_predict_shard_to_the_same_numbers() {
    let (x, y) = data();
    for device in common::backends() {
        let mut one = classifier(device.as_ref());
        let mut three = classifier(&replicas(device.as_ref(), 3));
        // 36 samples at batch 10: shards of 4/3/3 and a last batch of 6 as 2/2/2.
        let (e_one, e_three) = (one.evaluate(&x, &y, 10).unwrap(), three.evaluate(&x, &y, 10).unwrap());
        for ((name, a), (_, b)) in e_three.values.iter().zip(&e_one.values) {
            assert_relative(name, &[*a], &[*b], 1e-5);
        }
        let (p_one, p_three) = (one.predict(&x, 10).unwrap(), three.predict(&x, 10).unwrap());
        assert_eq!(p_three.shape(), p_one.shape());
        assert_relative("predict", p_three.data(), p_one.data(), 1e-5);
        // A batch with fewer samples than replicas leaves some with none.
        let two_rows = Tensor::new([2, 5], x.data()[..10].to_vec()).unwrap();
        let small = three.predict(&two_rows, 2).unwrap();
        assert_relative("predict 2 rows", small.data(), &p_one.data()[..6], 1e-5);
    }
}

#[test]
fn a_strategy_without_devices_or_nested_is_refused() {
    let err = DataParallel::new(Vec::new()).unwrap_err().to_string();
    assert!(err.contains("at least one device"), "{err}");
    let inner = DataParallel::replicate(kiln::cpu::CpuBackend, 2).unwrap();
    let err = DataParallel::new(vec![Arc::new(inner)]).unwrap_err().to_string();
    assert!(err.contains("itself a DataParallel"), "{err}");
}

#[test]
fn replicas_on_cpu_pools_of_their_own_match_the_shared_pool() {
    let (x, y) = data();
    let options = FitOptions::new(2, 8).seed(1);
    let mut shared_pool = classifier(&DataParallel::replicate(kiln::cpu::CpuBackend, 2).unwrap());
    shared_pool.fit(&x, &y, &options).unwrap();
    let own = DataParallel::new(vec![
        Arc::new(Device::cpu_threads(1).unwrap()),
        Arc::new(Device::cpu_threads(1).unwrap()),
    ])
    .unwrap();
    assert!(own.name().contains("own pool"), "{}", own.name());
    let mut own_pools = classifier(&own);
    own_pools.fit(&x, &y, &options).unwrap();
    assert_same_weights("own pools", &mut own_pools, &mut shared_pool, 1e-6);
}
