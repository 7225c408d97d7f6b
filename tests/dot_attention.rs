//! Keras' `Attention` layer (dot-product attention without projections): its outputs against
//! Keras 3.15.1's for the same inputs (`tests/data/keras/layers/attention_*`, written by
//! `benches/keras/layer_fixtures.py`), with a key, with a learned scale and a causal mask; padded
//! keys and queries as Keras masks them; gradients through it; on both backends.

mod common;

use kiln::graph::Backend;
use kiln::nn::{Call, Input, Model, SymbolicTensor, Weight};
use kiln::prelude::*;

fn fixture(name: &str) -> Tensor {
    common::keras_fixture(&format!("attention_{name}"))
}

fn compiled(device: &dyn Backend, inputs: &[SymbolicTensor], out: &SymbolicTensor) -> Model {
    let mut m = Model::new(inputs, out).unwrap().with_seed(2);
    m.compile(device, Optimizer::sgd(1.0), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

#[test]
fn attention_matches_keras_on_both_backends() {
    let (q, v, k) = (fixture("dot_q"), fixture("dot_v"), fixture("dot_k"));
    let (sq, sv) = (fixture("scaled_causal_q"), fixture("scaled_causal_v"));
    for device in common::backends() {
        let d = device.as_ref();
        let (iq, iv, ik) = (Input::new([4, 3]), Input::new([5, 2]), Input::new([5, 3]));
        let out = Attention::new().call_many(&[&iq, &iv, &ik]).unwrap();
        let mut m = compiled(d, &[iq, iv, ik], &out);
        let got = m.predict([&q, &v, &k], 2).unwrap();
        common::assert_close(
            &format!("dot on {}", d.name()),
            got.data(),
            fixture("dot_y").data(),
            1e-5,
            1e-4,
        );

        let (iq, iv) = (Input::new([5, 3]), Input::new([5, 3]));
        let out = Attention::new()
            .use_scale(true)
            .causal(true)
            .call_many(&[&iq, &iv])
            .unwrap();
        let mut m = compiled(d, &[iq, iv], &out);
        assert_eq!(m.weights().unwrap()[0].name, "attention/scale");
        let scale = Weight {
            name: "attention/scale".into(),
            shape: vec![1],
            values: fixture("scaled_causal_scale").data().to_vec(),
        };
        m.set_weights(&[scale]).unwrap();
        let got = m.predict([&sq, &sv], 2).unwrap();
        let want = fixture("scaled_causal_y");
        common::assert_close(
            &format!("scaled causal on {}", d.name()),
            got.data(),
            want.data(),
            1e-5,
            1e-4,
        );
    }
}

/// Dot-product attention of one sample on the host: each query row over the keys `real` allows.
fn host(q: &[f32], kv: &[f32], (tq, tk, d): (usize, usize, usize), real: &[bool]) -> Vec<f32> {
    let mut out = vec![0.0f32; tq * d];
    for i in 0..tq {
        let scores: Vec<f64> = (0..tk)
            .map(|j| (0..d).map(|c| f64::from(q[i * d + c]) * f64::from(kv[j * d + c])).sum())
            .collect();
        let top = (0..tk).filter(|&j| real[j]).map(|j| scores[j]).fold(f64::MIN, f64::max);
        let weights: Vec<f64> = (0..tk)
            .map(|j| if real[j] { (scores[j] - top).exp() } else { 0.0 })
            .collect();
        let total: f64 = weights.iter().sum();
        for c in 0..d {
            let sum: f64 = (0..tk).map(|j| weights[j] * f64::from(kv[j * d + c])).sum();
            out[i * d + c] = (sum / total) as f32;
        }
    }
    out
}

/// Padded value steps (token 0 under `mask_zero`) take no weight; padded query steps give zeros
/// and carry their mask on to the pooling after.
#[test]
fn padded_keys_and_queries_are_masked_as_keras_masks_them() {
    let tokens = Tensor::new([2, 5], vec![3.0, 1.0, 4.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.0, 0.0]).unwrap();
    let queries = random::normal([2, 3, 4], 7);
    for device in common::backends() {
        let d = device.as_ref();
        let (iq, it) = (Input::new([3, 4]), Input::new([5]));
        let values = Embedding::new(6, 4).mask_zero(true).call(&it).unwrap();
        let out = Attention::new().call_many(&[&iq, &values]).unwrap();
        let mut m = compiled(d, &[iq, it], &out);
        let table = m.weights().unwrap()[0].values.clone();
        let got = m.predict([&queries, &tokens], 2).unwrap();
        for s in 0..2 {
            let ids: Vec<usize> = tokens.row(s).iter().map(|&t| t as usize).collect();
            let kv: Vec<f32> = ids.iter().flat_map(|&t| table[t * 4..t * 4 + 4].to_vec()).collect();
            let real: Vec<bool> = ids.iter().map(|&t| t != 0).collect();
            let want = host(queries.row(s), &kv, (3, 5, 4), &real);
            common::assert_close(&format!("sample {s} on {}", d.name()), got.row(s), &want, 1e-5, 1e-4);
        }

        // Self-attention over padded tokens: the padded steps' outputs are zero, and average
        // pooling after it counts the real steps alone.
        let it = Input::new([5]);
        let x = Embedding::new(6, 4).mask_zero(true).call(&it).unwrap();
        let attended = Attention::new().call_many(&[&x, &x]).unwrap();
        let pooled = GlobalAveragePooling1D::new().call(&attended).unwrap();
        let mut m = compiled(d, std::slice::from_ref(&it), &attended);
        let mut pool = compiled(d, &[it], &pooled);
        pool.set_weights(&m.weights().unwrap()).unwrap();
        let steps = m.predict(&tokens, 2).unwrap();
        let means = pool.predict(&tokens, 2).unwrap();
        for (s, real) in [(0, 3), (1, 2)] {
            let row = steps.row(s);
            assert!(
                row[real * 4..].iter().all(|&v| v == 0.0),
                "{}: padded outputs {row:?}",
                d.name()
            );
            let want: Vec<f32> = (0..4)
                .map(|c| (0..real).map(|t| row[t * 4 + c]).sum::<f32>() / real as f32)
                .collect();
            common::assert_close(&format!("pooled {s} on {}", d.name()), means.row(s), &want, 1e-5, 1e-4);
        }
    }
}

/// One SGD step at rate 1 gives the gradient; central differences of `evaluate` check it, through
/// the learned scale and the projections feeding the query, key and value.
#[test]
fn gradients_through_attention_match_central_differences() {
    let (xq, xv) = (random::normal([3, 4, 5], 11), random::normal([3, 6, 5], 12));
    for device in common::backends() {
        let d = device.as_ref();
        let (iq, iv) = (Input::new([4, 5]), Input::new([6, 5]));
        let q = Dense::new(3).call(&iq).unwrap();
        let k = Dense::new(3).call(&iv).unwrap();
        let v = Dense::new(2).call(&iv).unwrap();
        let out = Attention::new().use_scale(true).call_many(&[&q, &v, &k]).unwrap();
        let mut m = compiled(d, &[iq, iv], &out);
        let y = random::normal([3, 4, 2], 13);
        common::gradient_matches_central_differences(&mut m, [&xq, &xv], &y, 1e-2, (1e-3, 2e-2), 4);
    }
}

#[test]
fn bad_attention_inputs_are_refused() {
    let (q, v) = (Input::new([4, 3]), Input::new([5, 2]));
    let e = Attention::new().call_many(&[&q, &v]).unwrap_err().to_string();
    assert!(e.contains("Attention") && e.contains("features"), "{e}");
    let e = Attention::new().call(&q).unwrap_err().to_string();
    assert!(e.contains("[query, value]"), "{e}");
    let e = Attention::new()
        .dropout(1.0)
        .call_many(&[&q, &q])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dropout"), "{e}");
}
