//! A model applied as a layer of another (Keras' `model(x)`): it computes what its layers do, a
//! trained model carries its weights over, one model called twice is a siamese pair sharing its
//! layers, on both backends; errors and saving.

mod common;

use kiln::graph::Backend;
use kiln::nn::{Call, Input, Model, SymbolicTensor};
use kiln::prelude::*;

/// Input [6] → Dense(5, relu) → Dense(3).
fn inner() -> Model {
    let x = Input::new([6]);
    let h = Dense::new(5).activation(Activation::Relu).call(&x).unwrap();
    Model::new(&[x], &Dense::new(3).call(&h).unwrap()).unwrap()
}

fn compiled(device: &dyn Backend, mut m: Model, seed: u64) -> Model {
    m = m.with_seed(seed);
    m.compile(device, Optimizer::adam_lr(0.01), Loss::MeanSquaredError, &[])
        .unwrap();
    m
}

#[test]
fn a_model_called_as_a_layer_computes_what_its_layers_do() {
    let x = random::normal([9, 6], 1);
    for device in common::backends() {
        // The same layers in the same order draw the same weights from one seed.
        let input = Input::new([6]);
        let nested = Dense::new(2).call(&inner().call(&input).unwrap()).unwrap();
        let mut nested = compiled(device.as_ref(), Model::new(&[input], &nested).unwrap(), 5);
        let input = Input::new([6]);
        let h = Dense::new(5).activation(Activation::Relu).call(&input).unwrap();
        let flat = Dense::new(2).call(&Dense::new(3).call(&h).unwrap()).unwrap();
        let mut flat = compiled(device.as_ref(), Model::new(&[input], &flat).unwrap(), 5);
        assert_eq!(nested.layer_names(), ["dense", "dense_1", "dense_2"]);
        assert_eq!(
            nested.predict(&x, 9).unwrap(),
            flat.predict(&x, 9).unwrap(),
            "{}",
            device.name()
        );
    }
}

#[test]
fn a_trained_model_carries_its_weights_into_the_model_that_calls_it() {
    let x = random::normal([32, 6], 2);
    let y = random::normal([32, 3], 3);
    let mut base = compiled(&kiln::cpu::CpuBackend, inner(), 7);
    base.fit(&x, &y, &FitOptions::new(5, 8)).unwrap();
    let trained = base.weights().unwrap();
    let want = base.predict(&x, 32).unwrap();
    for device in common::backends() {
        let input = Input::new([6]);
        let out = base.call(&input).unwrap();
        // Another seed: the carried weights, not a draw, must decide the outputs.
        let mut outer = compiled(device.as_ref(), Model::new(&[input], &out).unwrap(), 99);
        let carried: Vec<Vec<f32>> = outer.weights().unwrap().into_iter().map(|w| w.values).collect();
        assert_eq!(carried, trained.iter().map(|w| w.values.clone()).collect::<Vec<_>>());
        let got = outer.predict(&x, 32).unwrap();
        common::assert_close(
            &format!("predictions on {}", device.name()),
            got.data(),
            want.data(),
            1e-5,
            1e-4,
        );
    }
    // An uncompiled model's layers start from their initialisers: the seed decides.
    let input = Input::new([6]);
    let out = inner().call(&input).unwrap();
    let mut fresh = compiled(&kiln::cpu::CpuBackend, Model::new(&[input], &out).unwrap(), 99);
    assert_ne!(fresh.weights().unwrap()[0].values, trained[0].values);
}

/// One encoder model applied to both inputs, their squared difference read by a sigmoid unit.
fn siamese() -> (Model, Model) {
    let x = Input::new([10]);
    let h = Dense::new(16).activation(Activation::Relu).call(&x).unwrap();
    let mut encoder = Model::new(&[x], &Dense::new(8).call(&h).unwrap()).unwrap();
    let (a, b) = (Input::new([10]), Input::new([10]));
    let (ea, eb): (SymbolicTensor, SymbolicTensor) = (encoder.call(&a).unwrap(), encoder.call(&b).unwrap());
    let d = Subtract::new().call_many(&[&ea, &eb]).unwrap();
    let squared = Multiply::new().call_many(&[&d, &d]).unwrap();
    let out = Dense::new(1).activation(Activation::Sigmoid).call(&squared).unwrap();
    (Model::new(&[a, b], &out).unwrap().with_seed(3), encoder)
}

#[test]
fn one_model_called_twice_is_a_siamese_pair_that_trains_on_both_backends() {
    let (a, b, y) = common::same_or_different_pairs(512, 10);
    let (ta, tb, ty) = common::same_or_different_pairs(256, 20);
    for device in common::backends() {
        let (mut m, _) = siamese();
        m.compile(
            device.as_ref(),
            Optimizer::adam_lr(0.01),
            Loss::BinaryCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        // The encoder's layers once: 10·16 + 16 + 16·8 + 8, and the head's 8 + 1.
        assert_eq!(m.layer_names(), ["dense", "dense_1", "subtract", "multiply", "dense_2"]);
        assert!(m.summary().contains("Trainable params: 321"), "{}", m.summary());
        m.fit([&a, &b], &y, &FitOptions::new(20, 32).seed(1)).unwrap();
        let acc = m.evaluate([&ta, &tb], &ty, 64).unwrap().get("accuracy").unwrap();
        assert!(acc >= 0.9, "{}: held-out accuracy {acc}", device.name());
    }
}

#[test]
fn calls_are_checked_and_the_caller_saves_and_loads() {
    let mut m = inner();
    let wrong = Input::new([7]);
    let e = m.call(&wrong).unwrap_err().to_string();
    assert!(e.contains("Model::call") && e.contains("[7]"), "{e}");
    let (p, q) = (Input::new([6]), Input::new([6]));
    let e = m.call_many(&[&p, &q]).unwrap_err().to_string();
    assert!(e.contains("takes 1 inputs, got 2"), "{e}");

    // A model whose output is a state a layer returns (an LSTM's `c`) applies like any other.
    let x = Input::new([6]);
    let rows = Reshape::new([2, 3]).call(&x).unwrap();
    let mut reshaped = Model::new(&[x], &rows).unwrap();
    let seq = Input::new([6]);
    let states = LSTM::new(4)
        .return_state(true)
        .call_states(&[&reshaped.call(&seq).unwrap()])
        .unwrap();
    let mut encoder = Model::new(&[seq], &states[2]).unwrap();
    let y = Input::new([6]);
    let c = encoder.call(&y).unwrap();
    assert_eq!(c.shape(), [4]);

    let (mut siamese, _) = siamese();
    siamese
        .compile(&kiln::cpu::CpuBackend, Optimizer::adam(), Loss::BinaryCrossentropy, &[])
        .unwrap();
    let (a, b, _) = common::same_or_different_pairs(8, 30);
    let want = siamese.predict([&a, &b], 8).unwrap();
    let dir = std::env::temp_dir().join(format!("kiln-nested-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("siamese.safetensors");
    siamese.save(&path).unwrap();
    let mut loaded = load_model(&path, &kiln::cpu::CpuBackend).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.predict([&a, &b], 8).unwrap(), want);
}
