//! Memory stays flat however a model is called: the plan cache keeps a bounded number of plans, so
//! `predict` over a hundred batch sizes leaves the live buffer count where a few left it.

mod common;

use kiln::prelude::*;

#[test]
fn predict_with_a_hundred_batch_sizes_keeps_the_buffer_count_bounded() {
    for device in common::backends() {
        let what = device.name();
        let mut m = Sequential::new()
            .add(Dense::new(16).activation(Activation::Relu).input_dim(6))
            .add(Dense::new(3).activation(Activation::Softmax));
        m.compile(
            device.as_ref(),
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[],
        )
        .unwrap();
        let live = |m: &Model| {
            let c = m.counters();
            c.buffer_allocations - c.buffer_releases
        };
        let x = random::normal([100, 6], 3);
        for rows in 1..=10 {
            m.predict(&x.slice_rows(0..rows), rows).unwrap();
        }
        let after_ten = live(&m);
        for rows in 11..=100 {
            let p = m.predict(&x.slice_rows(0..rows), rows).unwrap();
            assert_eq!(p.shape(), &[rows, 3]);
        }
        assert!(m.counters().buffer_releases > 0, "{what}: no plan was ever unloaded");
        assert!(
            live(&m) <= after_ten,
            "{what}: {} live buffers after 100 batch sizes, {after_ten} after 10",
            live(&m)
        );
        // An evicted plan comes back when its batch size returns, with the same answers.
        let first = m.predict(&x.slice_rows(0..1), 1).unwrap();
        assert_eq!(first, m.predict(&x.slice_rows(0..1), 1).unwrap(), "{what}");
    }
}
