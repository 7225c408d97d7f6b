//! Every op variant of the registry has a row in the op test table (`tests/common/cases.rs`), which
//! both the CPU/GPU parity test and the f64 gradient check read, or a written exemption here. The
//! variant names come from `StepOp::all_names`, which the compiler keeps complete, so a new op
//! fails this test until it has its row.

mod common;

use std::collections::BTreeSet;

use common::cases::{build, cases};
use kiln::graph::{gradients, Error, Op, StepOp};

/// Ops tested outside the table, and where.
const EXEMPT: &[(&str, &str)] = &[
    (
        "adam_update",
        "in-place update with no output: tests/parity.rs `optimizer_and_accumulator_updates_match_the_cpu` \
         runs it for several steps on both backends, tests/training.rs checks it against Keras' numbers",
    ),
    (
        "sgd_update",
        "in-place update with no output: the same parity test, plain, momentum and Nesterov",
    ),
    (
        "nadam_update",
        "in-place update with no output: the same parity test; tests/optimizers.rs checks every optimizer \
         against Keras' update rule in f64",
    ),
    ("adamax_update", "in-place update with no output: as nadam_update"),
    (
        "rmsprop_update",
        "in-place update with no output: as nadam_update, plain, momentum, centered and both",
    ),
    ("adagrad_update", "in-place update with no output: as nadam_update"),
    ("lion_update", "in-place update with no output: as nadam_update"),
    (
        "accumulate_sum",
        "in-place update with no output: the same parity test, scalar and per-label",
    ),
    (
        "moving_average",
        "in-place update with no output: the same parity test; tests/batch_norm.rs checks the moving \
         statistics against Keras' formula",
    ),
];

/// The ops a case's graph holds, forward and (for rows with a gradient) backward.
fn ops_of(case: &common::cases::Case) -> BTreeSet<&'static str> {
    let built = build(case, 3);
    built
        .graph
        .nodes()
        .iter()
        .filter_map(|n| match &n.op {
            Op::Step(op) => Some(op.name()),
            Op::Leaf(_) => None,
        })
        .collect()
}

#[test]
fn every_op_variant_has_a_row_or_a_written_exemption() {
    let table = cases();
    let covered: BTreeSet<&str> = table.iter().flat_map(ops_of).collect();
    let exempt: BTreeSet<&str> = EXEMPT.iter().map(|(name, _)| *name).collect();
    let missing: Vec<&str> = StepOp::all_names()
        .into_iter()
        .filter(|name| !covered.contains(name) && !exempt.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "ops with no row in tests/common/cases.rs: {missing:?}"
    );
    let stale: Vec<&&str> = exempt.iter().filter(|name| covered.contains(*name)).collect();
    assert!(stale.is_empty(), "exempt ops that now have rows: {stale:?}");
    // 43 computations (plus the three leaf kinds) when this test was written.
    assert!(StepOp::all_names().len() >= 43, "the registry lists too few ops");
}

/// A row without a gradient is only right for an op that has none: differentiating its output
/// must be refused as not differentiable.
#[test]
fn rows_without_a_gradient_are_for_ops_that_have_none() {
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| c.diff.is_empty()) {
        let mut built = build(&case, 3);
        let g = &mut built.graph;
        let y = built.outputs[0];
        let loss = g.sum_all(y).unwrap();
        let inputs: Vec<_> = (0..g.nodes().len())
            .filter(|&i| matches!(g.nodes()[i].op, Op::Leaf(_)))
            .map(kiln::graph::NodeId)
            .collect();
        match gradients(g, loss, &inputs) {
            Err(Error::NotDifferentiable { .. }) => checked += 1,
            other => panic!("{}: a row without a gradient, but autodiff gave {other:?}", case.name),
        }
    }
    assert!(checked >= 5, "only {checked} rows checked");
}
