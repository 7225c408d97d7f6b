//! Masks from `Embedding(mask_zero)`, as Keras propagates them: padding changes nothing. A model
//! over 8 padded steps answers exactly as the same model (same weights) over the 3 real steps, for
//! LSTM, GRU, Bidirectional, GlobalAveragePooling1D and self-attention, with the padding after the
//! tokens or (for the recurrent layers, whose state stays zero through leading padding) before
//! them, on both backends. And an attention tagger learns from padded variable-length sequences.

mod common;

use kiln::graph::Backend;
use kiln::nn::SymbolicTensor;
use kiln::prelude::*;

/// A model over `steps` tokens: Embedding(20, 4, mask_zero) → `body` → Dense(2).
fn model(steps: usize, body: &dyn Fn(&SymbolicTensor) -> Result<SymbolicTensor>) -> Model {
    let tokens = Input::new([steps]);
    let x = Embedding::new(20, 4).mask_zero(true).call(&tokens).unwrap();
    let h = body(&x).unwrap();
    let out = Dense::new(2).call(&h).unwrap();
    Model::new(&[tokens], &out).unwrap().with_seed(4)
}

/// The real tokens `[n, 3]` padded with zeros to 8 steps, after them or before.
fn padded(real: &Tensor, after: bool) -> Tensor {
    let mut data = Vec::new();
    for row in real.data().chunks(3) {
        let zeros = [0.0; 5];
        if after {
            data.extend(row.iter().chain(&zeros));
        } else {
            data.extend(zeros.iter().chain(row));
        }
    }
    Tensor::new([real.shape()[0], 8], data).unwrap()
}

fn check(what: &str, device: &dyn Backend, body: &dyn Fn(&SymbolicTensor) -> Result<SymbolicTensor>, before_too: bool) {
    let real = Tensor::new([2, 3], vec![3., 7., 1., 12., 5., 19.]).unwrap();
    let (mut long, mut short) = (model(8, body), model(3, body));
    long.compile(device, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    short
        .compile(device, Optimizer::adam(), Loss::MeanSquaredError, &[])
        .unwrap();
    short.set_weights(&long.weights().unwrap()).unwrap();
    let want = short.predict(&real, 2).unwrap();
    let mut sides = vec![true];
    if before_too {
        sides.push(false);
    }
    for after in sides {
        let got = long.predict(&padded(&real, after), 2).unwrap();
        let label = format!(
            "{what} (padding {}) on {}",
            if after { "after" } else { "before" },
            device.name()
        );
        common::assert_close(&label, got.data(), want.data(), 1e-5, 1e-5);
    }
}

#[test]
fn padding_changes_nothing_through_recurrent_layers() {
    for device in common::backends() {
        let d = device.as_ref();
        check("lstm", d, &|x| LSTM::new(3).call(x), true);
        check("gru", d, &|x| GRU::new(3).call(x), true);
        check(
            "bidirectional gru",
            d,
            &|x| Bidirectional::new(GRU::new(3)).call(x),
            false,
        );
        check(
            "lstm sequences → average",
            d,
            &|x| {
                let h = LSTM::new(3).return_sequences(true).call(x)?;
                GlobalAveragePooling1D::new().call(&h)
            },
            false,
        );
    }
}

#[test]
fn padding_changes_nothing_through_attention_and_pooling() {
    for device in common::backends() {
        let d = device.as_ref();
        check("average", d, &|x| GlobalAveragePooling1D::new().call(x), true);
        let block = |x: &SymbolicTensor| -> Result<SymbolicTensor> {
            let positions = PositionEmbedding::new(8).call(x)?;
            let x = Add::new().call_many(&[x, &positions])?;
            let a = MultiHeadAttention::new(2, 3).call_many(&[&x, &x])?;
            let h = Add::new().call_many(&[&x, &a])?;
            let h = LayerNormalization::new().call(&h)?;
            let h = Dense::new(5).activation(Activation::Relu).call(&h)?;
            GlobalAveragePooling1D::new().call(&h)
        };
        check("attention block", d, &block, false);
    }
}

/// Tags (three keywords: which appear) of padded sequences of 2 to 12 tokens; without the mask
/// the padding would dilute the average by a length the tags do not depend on.
#[test]
fn an_attention_tagger_learns_from_padded_sequences() {
    let (n, steps) = (384, 12);
    let lengths = random::integers(2, 13, [n], 21);
    let words = random::integers(4, 30, [n, steps], 22);
    let keys = random::integers(0, 6, [n, 3], 23);
    let mut x = vec![0.0; n * steps];
    let mut y = vec![0.0; n * 3];
    for s in 0..n {
        let len = lengths.data()[s] as usize;
        for t in 0..len {
            x[s * steps + t] = words.data()[s * steps + t];
        }
        // Keyword k (token 1 + k) at a position inside the sequence, for half the draws.
        for k in 0..3 {
            let draw = keys.data()[s * 3 + k] as usize;
            if draw < 3 {
                x[s * steps + (draw * 7 + k) % len] = 1.0 + k as f32;
            }
        }
        for t in 0..len {
            let token = x[s * steps + t];
            if (1.0..4.0).contains(&token) {
                y[s * 3 + token as usize - 1] = 1.0;
            }
        }
    }
    let (x, y) = (Tensor::new([n, steps], x).unwrap(), Tensor::new([n, 3], y).unwrap());
    let tokens = Input::new([steps]);
    let e = Embedding::new(30, 16).mask_zero(true).call(&tokens).unwrap();
    let a = MultiHeadAttention::new(2, 8).call_many(&[&e, &e]).unwrap();
    let h = Add::new().call_many(&[&e, &a]).unwrap();
    let h = LayerNormalization::new().call(&h).unwrap();
    let h = GlobalAveragePooling1D::new().call(&h).unwrap();
    let out = Dense::new(3).activation(Activation::Sigmoid).call(&h).unwrap();
    let mut m = Model::new(&[tokens], &out).unwrap().with_seed(2);
    m.compile(
        &kiln::cpu::CpuBackend,
        Optimizer::adam_lr(0.01),
        Loss::BinaryCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m.fit(&x, &y, &FitOptions::new(40, 32).seed(3)).unwrap();
    let acc = m.evaluate(&x, &y, 128).unwrap().get("accuracy").unwrap();
    assert!(acc > 0.95, "tag accuracy {acc}");
}

/// Every sequence layer survives a save and a load: the configuration (wrapped layers, masks,
/// causal attention) and the weights come back, and the loaded model answers the same.
#[test]
fn sequence_models_save_and_load() {
    let tokens = Input::new([7]);
    let x = Embedding::new(15, 6).mask_zero(true).call(&tokens).unwrap();
    let h = Bidirectional::new(LSTM::new(3).return_sequences(true))
        .call(&x)
        .unwrap();
    let a = MultiHeadAttention::new(2, 3).causal(true).call_many(&[&h, &h]).unwrap();
    let h = TimeDistributed::new(Dense::new(4).activation(Activation::Tanh))
        .call(&a)
        .unwrap();
    let positions = PositionEmbedding::new(7).call(&h).unwrap();
    let h = Add::new().call_many(&[&h, &positions]).unwrap();
    let h = GRU::new(5).reset_after(false).go_backwards(true).call(&h).unwrap();
    let out = Dense::new(2).activation(Activation::Softmax).call(&h).unwrap();
    let mut m = Model::new(&[tokens], &out).unwrap();
    m.compile(
        &kiln::cpu::CpuBackend,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[],
    )
    .unwrap();
    let x = Tensor::new([2, 7], vec![3., 4., 5., 0., 0., 0., 0., 1., 14., 2., 7., 9., 0., 0.]).unwrap();
    let y = Tensor::new([2], vec![0., 1.]).unwrap();
    m.train_on_batch(&x, &y).unwrap();
    let dir = std::env::temp_dir().join(format!("kiln-sequence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.kiln");
    m.save(&path).unwrap();
    let mut loaded = load_model(&path, &kiln::cpu::CpuBackend).unwrap();
    assert_eq!(loaded.summary(), m.summary());
    assert_eq!(loaded.predict(&x, 2).unwrap().data(), m.predict(&x, 2).unwrap().data());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A per-token output keeps the mask, and the loss weighs only the real tokens, as Keras'
/// `apply_mask`: `Σ l·m / (Σ m + ε)`; labels at padded steps change nothing.
#[test]
fn a_masked_per_token_loss_counts_only_real_tokens() {
    let tokens = Input::new([5]);
    let e = Embedding::new(9, 4).mask_zero(true).call(&tokens).unwrap();
    let h = LSTM::new(3).return_sequences(true).call(&e).unwrap();
    let out = Dense::new(3).activation(Activation::Softmax).call(&h).unwrap();
    let mut m = Model::new(&[tokens], &out).unwrap().with_seed(1);
    m.compile(
        &kiln::cpu::CpuBackend,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[],
    )
    .unwrap();
    let x = Tensor::new([2, 5], vec![4., 2., 7., 0., 0., 1., 8., 0., 0., 0.]).unwrap();
    let y = Tensor::new([2, 5], vec![0., 2., 1., 1., 1., 2., 0., 1., 2., 0.]).unwrap();
    let p = m.predict(&x, 2).unwrap();
    let mut sum = 0.0f64;
    for (k, (&token, &label)) in x.data().iter().zip(y.data()).enumerate() {
        if token != 0.0 {
            sum -= f64::from(p.data()[k * 3 + label as usize]).ln();
        }
    }
    let want = (sum / (5.0 + 1e-7)) as f32;
    let got = m.evaluate(&x, &y, 2).unwrap().loss();
    assert!(
        (got - want).abs() < 1e-5 * want.abs().max(1.0),
        "loss {got}, real tokens' mean {want}"
    );
    // Other labels on the padding: the same loss.
    let relabelled = Tensor::new([2, 5], vec![0., 2., 1., 0., 2., 2., 0., 2., 0., 1.]).unwrap();
    let evaluation = m.evaluate(&x, &relabelled, 2).unwrap();
    assert_eq!(evaluation.loss(), got);
    // Confusion matrices would count the padding: there are none for a masked output.
    assert!(evaluation.confusion.is_empty());
}

/// Keras' metrics weigh a masked output's steps by the mask (`MeanMetricWrapper` with
/// `apply_mask`): accuracy is over the real tokens, whatever the labels of the padding; a weighted
/// metric multiplies the sample weights in; metrics that are not means are refused at compile.
#[test]
fn mean_metrics_over_a_masked_output_count_only_real_tokens() {
    let tagger = |device: &dyn Backend, loss: Loss, metrics: &[Metric]| {
        let tokens = Input::new([5]);
        let e = Embedding::new(9, 4).mask_zero(true).call(&tokens).unwrap();
        let h = LSTM::new(3).return_sequences(true).call(&e).unwrap();
        let out = Dense::new(3).activation(Activation::Softmax).call(&h).unwrap();
        let mut m = Model::new(&[tokens], &out).unwrap().with_seed(4);
        m.compile(device, Optimizer::adam(), loss, metrics).map(|_| m)
    };
    let x = Tensor::new([3, 5], vec![4., 2., 7., 0., 0., 1., 8., 0., 0., 0., 3., 3., 5., 6., 1.]).unwrap();
    let y = Tensor::new([3, 5], vec![0., 2., 1., 1., 1., 2., 0., 1., 2., 0., 1., 1., 0., 2., 2.]).unwrap();
    let w = [0.5f32, 2.0, 1.0];
    for device in common::backends() {
        let metrics = [Metric::Accuracy, Metric::Weighted(Box::new(Metric::Accuracy))];
        let mut m = tagger(device.as_ref(), Loss::SparseCategoricalCrossentropy, &metrics).unwrap();
        m.fit(&x, &y, &FitOptions::new(3, 3).verbose(0)).unwrap();
        let p = m.predict(&x, 3).unwrap();
        let (mut hits, mut real, mut weighted_hits, mut weights) = (0.0, 0.0, 0.0, 0.0);
        for (k, (&token, &label)) in x.data().iter().zip(y.data()).enumerate() {
            if token == 0.0 {
                continue;
            }
            let row = &p.data()[k * 3..k * 3 + 3];
            let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            let hit = f32::from(best == label as usize);
            let weight = w[k / 5];
            (hits, real, weighted_hits, weights) =
                (hits + hit, real + 1.0, weighted_hits + weight * hit, weights + weight);
        }
        let e = m.evaluate(&x, &y, 2).unwrap();
        assert_eq!(e.get("accuracy").unwrap(), hits / real, "{:?}", e.values);
        // Other labels on the padding: the same figure.
        let relabelled = Tensor::new([3, 5], vec![0., 2., 1., 2., 0., 2., 0., 0., 1., 2., 1., 1., 0., 2., 2.]).unwrap();
        assert_eq!(
            m.evaluate(&x, &relabelled, 3).unwrap().get("accuracy"),
            e.get("accuracy")
        );
        let weighted = m.evaluate_weighted(&x, &y, &Tensor::vector(w.to_vec()), 3).unwrap();
        let got = weighted.get("weighted_accuracy").unwrap();
        assert!(
            (got - weighted_hits / weights).abs() < 1e-6,
            "{got} vs {}",
            weighted_hits / weights
        );
    }
    // Precision counts true and false positives per sample: it has no mask-weighted form.
    let err = tagger(
        &kiln::cpu::CpuBackend,
        Loss::CategoricalCrossentropy,
        &[Metric::precision()],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("padding mask") && err.contains("precision"), "{err}");
}
