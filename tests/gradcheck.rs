//! Gradient check: for every differentiable op of the table, the CPU reference's backward in f64
//! agrees with central finite differences of its forward.

mod common;

use std::sync::Arc;

use common::cases::{build, cases};
use kiln::cpu::CpuSession;
use kiln::graph::schedule;
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn backward_matches_finite_differences_in_f64() {
    let h = 1e-6;
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| !c.diff.is_empty()) {
        for n in [1usize, 3] {
            let built = build(&case, n);
            let plan = Arc::new(schedule(&built.graph, &built.outputs).unwrap());
            let mut rng = StdRng::seed_from_u64(7 + n as u64);
            let mut feeds: Vec<(String, Vec<f64>)> = built
                .inputs
                .iter()
                .map(|(name, shape, v)| {
                    (
                        name.clone(),
                        v.fill(shape, &mut rng).into_iter().map(f64::from).collect(),
                    )
                })
                .collect();
            let mut session = CpuSession::<f64>::new(&[]);
            let id = session.load_plan(plan).unwrap();
            let mut eval = |feeds: &[(String, Vec<f64>)]| {
                let refs: Vec<(&str, &[f64])> = feeds.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
                session.run_typed(id, &refs).unwrap();
                session.outputs_typed(id).unwrap()
            };
            let analytic = eval(&feeds);
            for (k, &operand) in case.diff.iter().enumerate() {
                let grad = &analytic[2 + k];
                for (j, &analytic_j) in grad.iter().enumerate() {
                    let x = feeds[operand].1[j];
                    feeds[operand].1[j] = x + h;
                    let up = eval(&feeds)[1][0];
                    feeds[operand].1[j] = x - h;
                    let down = eval(&feeds)[1][0];
                    feeds[operand].1[j] = x;
                    let numeric = (up - down) / (2.0 * h);
                    assert!(
                        (analytic_j - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(),
                        "{} n={n}: d/d(operand {operand})[{j}] analytic {analytic_j} vs numeric {numeric}",
                        case.name
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} derivatives checked");
}
