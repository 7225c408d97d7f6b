//! MultiHeadAttention against Keras' computation done on the host in f64
//! (keras/src/layers/attention/multi_head_attention.py: projections `[features, heads, dim]`, the
//! query scaled by 1/√key_dim, softmax over the keys, masked scores at -1e9, the output
//! projection `[heads, value_dim, out]`), on both backends, for self- and cross-attention with
//! lengths that divide no workgroup; the causal mask hides later positions; Keras' parameter
//! count; and a Transformer encoder block trains.

mod common;

use kiln::cpu::CpuBackend;
use kiln::nn::Weight;
use kiln::prelude::*;

/// `x [steps, features]` (one sample) projected by `w [features, heads, dim]` + `b [heads, dim]`:
/// `[heads][steps][dim]`.
fn project(x: &[f64], steps: usize, w: &Weight, b: Option<&Weight>) -> Vec<Vec<Vec<f64>>> {
    let [features, heads, dim] = w.shape[..].try_into().unwrap();
    (0..heads)
        .map(|h| {
            (0..steps)
                .map(|t| {
                    (0..dim)
                        .map(|d| {
                            let dot: f64 = (0..features)
                                .map(|f| x[t * features + f] * f64::from(w.values[(f * heads + h) * dim + d]))
                                .sum();
                            dot + b.map_or(0.0, |b| f64::from(b.values[h * dim + d]))
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Keras' attention for one sample: query `[tq, dq]`, value (and key) `[tk, dv]`.
fn host(query: &[f64], tq: usize, value: &[f64], key: &[f64], tk: usize, w: &[Weight], causal: bool) -> Vec<f64> {
    let (q, k, v) = (
        project(query, tq, &w[0], Some(&w[1])),
        project(key, tk, &w[2], Some(&w[3])),
        project(value, tk, &w[4], Some(&w[5])),
    );
    let [heads, vd, out] = w[6].shape[..].try_into().unwrap();
    let kd = w[0].shape[2];
    let mut y = vec![0.0; tq * out];
    for h in 0..heads {
        for i in 0..tq {
            let scores: Vec<f64> = (0..tk)
                .map(|j| {
                    let s: f64 = (0..kd).map(|d| q[h][i][d] / (kd as f64).sqrt() * k[h][j][d]).sum();
                    if causal && j > i {
                        s - 1e9
                    } else {
                        s
                    }
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for d in 0..vd {
                let head: f64 = e.iter().zip(&v[h]).map(|(ej, vj)| ej / total * vj[d]).sum();
                for o in 0..out {
                    y[i * out + o] += head * f64::from(w[6].values[(h * vd + d) * out + o]);
                }
            }
        }
    }
    for i in 0..tq {
        for o in 0..out {
            y[i * out + o] += f64::from(w[7].values[o]);
        }
    }
    y
}

fn sample(x: &Tensor, s: usize) -> Vec<f64> {
    let per = x.shape()[1] * x.shape()[2];
    x.data()[s * per..(s + 1) * per].iter().map(|&v| f64::from(v)).collect()
}

#[test]
fn self_and_cross_attention_match_keras_on_both_backends() {
    let (q, kv) = (random::normal([3, 7, 5], 1), random::normal([3, 9, 4], 2));
    for device in common::backends() {
        for causal in [false, true] {
            // Self-attention on q (causal or not), then cross-attention of q over kv.
            for cross in [false, true] {
                if cross && causal {
                    continue;
                }
                let query = Input::new([7, 5]);
                let other = Input::new([9, 4]);
                let mha = MultiHeadAttention::new(2, 3).value_dim(4).causal(causal);
                let (inputs, out) = if cross {
                    let y = mha.call_many(&[&query, &other]).unwrap();
                    (vec![query, other], y)
                } else {
                    (vec![query.clone()], mha.call_many(&[&query, &query]).unwrap())
                };
                let mut m = Model::new(&inputs, &out).unwrap();
                m.compile(device.as_ref(), Optimizer::adam_lr(0.05), Loss::MeanSquaredError, &[])
                    .unwrap();
                let feeds: Vec<&Tensor> = if cross { vec![&q, &kv] } else { vec![&q] };
                m.train_on_batch(feeds.clone(), &random::normal([3, 7, 5], 3)).unwrap();
                let w = m.weights().unwrap();
                let got = m.predict(feeds.clone(), 3).unwrap();
                let want: Vec<f32> = (0..3)
                    .flat_map(|s| {
                        let (qs, other) = (sample(&q, s), if cross { sample(&kv, s) } else { sample(&q, s) });
                        let tk = if cross { 9 } else { 7 };
                        host(&qs, 7, &other, &other, tk, &w, causal)
                    })
                    .map(|v| v as f32)
                    .collect();
                let what = format!("causal {causal}, cross {cross} on {}", device.name());
                common::assert_close(&what, got.data(), &want, 1e-5, 1e-4);
            }
        }
    }
}

#[test]
fn a_causal_mask_hides_later_positions() {
    let x = random::normal([2, 6, 4], 5);
    let input = Input::new([6, 4]);
    let out = MultiHeadAttention::new(2, 4)
        .causal(true)
        .call_many(&[&input, &input])
        .unwrap();
    let mut m = Model::new(&[input], &out).unwrap();
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let before = m.predict(&x, 2).unwrap();
    // Change the last two positions of every sample: outputs at positions 0..4 must not move.
    let mut changed = x.data().to_vec();
    for s in 0..2 {
        for v in &mut changed[s * 24 + 16..s * 24 + 24] {
            *v += 3.0;
        }
    }
    let after = m.predict(&Tensor::new([2, 6, 4], changed).unwrap(), 2).unwrap();
    for s in 0..2 {
        let (b, a) = (&before.data()[s * 24..s * 24 + 24], &after.data()[s * 24..s * 24 + 24]);
        assert_eq!(&b[..16], &a[..16], "sample {s}: earlier positions moved");
        assert_ne!(&b[16..], &a[16..], "sample {s}: later positions did not move");
    }
}

#[test]
fn parameters_are_counted_and_named_as_keras() {
    let input = Input::new([24, 16]);
    let out = MultiHeadAttention::new(2, 16).call_many(&[&input, &input]).unwrap();
    let mut m = Model::new(&[input], &out).unwrap();
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    // Keras: 3 · (16·2·16 + 2·16) + (2·16·16 + 16) = 2,160.
    let total: usize = m.weights().unwrap().iter().map(|w| w.values.len()).sum();
    assert_eq!(total, 2160);
    let names: Vec<String> = m.weights().unwrap().into_iter().map(|w| w.name).collect();
    assert_eq!(names[0], "multi_head_attention/query/kernel");
    assert_eq!(names[7], "multi_head_attention/attention_output/bias");
}

#[test]
fn bad_attention_inputs_are_refused() {
    let (a, b) = (Input::new([5, 4]), Input::new([6, 4]));
    let err = MultiHeadAttention::new(2, 4)
        .causal(true)
        .call_many(&[&a, &b])
        .unwrap_err();
    assert!(err.to_string().contains("causal"), "{err}");
    let err = MultiHeadAttention::new(0, 4).call_many(&[&a, &a]).unwrap_err();
    assert!(err.to_string().contains("num_heads"), "{err}");
    let flat = Input::new([5]);
    let err = MultiHeadAttention::new(1, 4).call_many(&[&flat, &flat]).unwrap_err();
    assert!(err.to_string().contains("[steps, features]"), "{err}");
}

#[test]
fn dense_applies_to_the_last_axis_of_a_sequence() {
    let x = random::normal([2, 3, 4], 9);
    let mut m = Sequential::new().input_shape([3, 4]).add(Dense::new(5));
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let w = m.weights().unwrap();
    let y = m.predict(&x, 2).unwrap();
    assert_eq!(y.shape(), [2, 3, 5]);
    for (r, row) in x.data().chunks(4).enumerate() {
        for o in 0..5 {
            let want: f32 = (0..4).map(|f| row[f] * w[0].values[f * 5 + o]).sum::<f32>() + w[1].values[o];
            assert!((y.data()[r * 5 + o] - want).abs() < 1e-5);
        }
    }
}

#[test]
fn position_embeddings_are_one_learned_row_per_step_added_to_the_tokens() {
    let tokens = Input::new([6]);
    let embedded = Embedding::new(10, 4).call(&tokens).unwrap();
    let positions = PositionEmbedding::new(8).call(&embedded).unwrap();
    let x = Add::new().call_many(&[&embedded, &positions]).unwrap();
    let mut m = Model::new(&[tokens], &x).unwrap();
    m.compile(&CpuBackend, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    let ids = Tensor::new([2, 6], vec![1., 2., 3., 4., 5., 6., 6., 5., 4., 3., 2., 1.]).unwrap();
    let y = m.predict(&ids, 2).unwrap();
    let w = m.weights().unwrap();
    let (table, pos) = (&w[0].values, &w[1].values);
    assert_eq!(w[1].shape, [8, 4]);
    for s in 0..2 {
        for t in 0..6 {
            let id = ids.data()[s * 6 + t] as usize;
            for f in 0..4 {
                let want = table[id * 4 + f] + pos[t * 4 + f];
                assert!((y.data()[(s * 6 + t) * 4 + f] - want).abs() < 1e-6);
            }
        }
    }
    let err = PositionEmbedding::new(5).call(&embedded).unwrap_err();
    assert!(err.to_string().contains("sequence_length"), "{err}");
}

#[path = "../examples/transformer_timeseries.rs"]
#[allow(dead_code)]
mod transformer_example;

/// The Transformer classifier of the example (two encoder blocks with attention dropout) trains on
/// ItalyPowerDemand on both backends, with the same losses on both while dropout draws the same
/// masks; the full 100-epoch figures are the example's to measure.
#[test]
fn the_transformer_classifier_trains_the_same_on_both_backends() {
    let data = datasets::ucr("ItalyPowerDemand").unwrap();
    let mut losses = Vec::new();
    for device in common::backends() {
        let mut m = transformer_example::transformer(24, 1, 2, 0.1, 0).unwrap();
        m.compile(
            device.as_ref(),
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let history = m
            .fit(&data.x_train, &data.y_train, &FitOptions::new(40, 16).seed(0))
            .unwrap();
        let acc = m
            .evaluate(&data.x_test, &data.y_test, 256)
            .unwrap()
            .get("accuracy")
            .unwrap();
        assert!(acc > 0.6, "{}: test accuracy {acc} after 40 epochs", device.name());
        losses.push(history.get("loss").unwrap().to_vec());
    }
    if let [cpu, gpu] = &losses[..] {
        for (epoch, (a, b)) in cpu.iter().zip(gpu).take(5).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 * a.abs().max(1.0),
                "epoch {epoch}: cpu {a} vs gpu {b}"
            );
        }
    }
}
