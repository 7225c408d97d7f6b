//! Public functions that used to panic on bad input now return an `Err` naming the problem (or, for
//! std-style accessors, document their panic and offer a checked sibling).

use kiln::data::{parse_idx, parse_npy, to_categorical};
use kiln::graph::{Graph, NodeId};
use kiln::nn::Evaluation;
use kiln::prelude::*;

#[test]
fn tensor_accessors_have_checked_forms() {
    let t = Tensor::new([3, 2], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    assert_eq!(t.get_row(2), Some(&[4.0, 5.0][..]));
    assert_eq!(t.get_row(3), None);
    assert!(t.try_slice_rows(1..3).is_ok());
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 2..1;
    for bad in [2..4, backwards] {
        let e = t.try_slice_rows(bad.clone()).unwrap_err().to_string();
        assert!(e.contains("3 rows"), "{bad:?}: {e}");
    }
    assert_eq!(t.try_select_rows(&[2, 0]).unwrap().data(), &[4.0, 5.0, 0.0, 1.0]);
    assert!(t.try_select_rows(&[0, 7]).unwrap_err().to_string().contains("row 7"));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 2..1;
    assert!(t.columns(backwards).is_err());
    assert!(t.columns(1..3).is_err());
}

#[test]
fn random_generators_have_checked_forms() {
    let e = random::try_integers(3, 3, [4], 0).unwrap_err().to_string();
    assert!(e.contains("3..3 is empty"), "{e}");
    let t = random::try_integers(-2, 3, [50], 7).unwrap();
    assert!(t.data().iter().all(|&v| v.fract() == 0.0 && (-2.0..3.0).contains(&v)));
    assert_eq!(t.data(), random::integers(-2, 3, [50], 7).data());
    for r in [
        random::try_uniform([1 << 32, 1 << 32], 0),
        random::try_normal([1 << 32, 1 << 32], 0),
        random::try_integers(0, 2, [1 << 32, 1 << 32], 0),
    ] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("more values than memory can address"), "{e}");
    }
}

#[test]
fn sizes_that_overflow_are_errors_not_empty_tensors() {
    let e = Tensor::new([1 << 32, 1 << 32], vec![]).unwrap_err().to_string();
    assert!(e.contains("more values than memory can address"), "{e}");

    // An IDX header of three 2^31 dimensions (u8 data, rank 3).
    let mut idx = vec![0, 0, 0x08, 3];
    for _ in 0..3 {
        idx.extend_from_slice(&0x8000_0000u32.to_be_bytes());
    }
    let e = parse_idx("huge.idx", &idx).unwrap_err().to_string();
    assert!(e.contains("more values than memory can address"), "{e}");

    // An NPY header whose shape product overflows.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let padded = format!("{header:<118}\n");
    npy.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    npy.extend_from_slice(padded.as_bytes());
    let e = parse_npy("huge.npy", &npy).unwrap_err().to_string();
    assert!(e.contains("more values than memory can address"), "{e}");

    // A graph whose tensors' sizes overflow is refused when scheduled, before any backend sizes a
    // buffer from it: one tensor too large, and two that only overflow together.
    let mut g = Graph::new(Vec::new());
    let x = g.input("x", [1 << 40, 1 << 40]);
    let e = kiln::graph::schedule(&g, &[x]).unwrap_err().to_string();
    assert!(e.contains("more values than memory can address"), "{e}");
    let mut g = Graph::new(Vec::new());
    let a = g.input("a", [1 << 31, 1 << 30]);
    let b = g.input("b", [1 << 31, 1 << 30]);
    let sum = g.push(kiln::graph::ElementwiseOp::Add, &[a, b]).unwrap();
    let e = kiln::graph::schedule(&g, &[sum]).unwrap_err().to_string();
    assert!(e.contains("more values than memory can address"), "{e}");
    assert_eq!(kiln::graph::Shape::new([1 << 40, 1 << 40, 0]).numel(), 0);
    assert_eq!(kiln::graph::Shape::new([1 << 40, 1 << 40]).numel(), usize::MAX);

    let labels = Tensor::vector(vec![0.0, 1.0]);
    let e = to_categorical(&labels, usize::MAX / 2).unwrap_err().to_string();
    assert!(e.contains("to_categorical"), "{e}");
    assert_eq!(to_categorical(&labels, 3).unwrap().shape(), &[2, 3]);
}

#[test]
fn a_custom_loss_returning_a_node_of_another_graph_is_an_error() {
    let stray = Loss::custom("stray", |_g: &mut Graph, _y: NodeId, _p: NodeId| Ok(NodeId(1_000_000)));
    let mut m = Sequential::new().add(Dense::new(1).input_dim(2));
    m.compile(&Device::cpu(), Optimizer::adam(), stray, &[]).unwrap();
    let x = Tensor::new([4, 2], vec![0.5; 8]).unwrap();
    let e = m.fit(&x, &Tensor::new([4, 1], vec![1.0; 4]).unwrap(), &FitOptions::default());
    let e = e.unwrap_err().to_string();
    assert!(e.contains("not in this graph"), "{e}");
}

#[test]
fn an_unresolved_accuracy_metric_and_an_empty_evaluation_do_not_panic() {
    let mut g = Graph::new(Vec::new());
    let (y, p) = (g.input("y", [4, 1]), g.input("p", [4, 1]));
    let out = kiln::nn::layers::plain(p);
    let e = Metric::Accuracy
        .values(&mut g, out, Activation::Sigmoid, y, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Metric::resolve"), "{e}");
    assert!(Evaluation::default().loss().is_nan());
}
