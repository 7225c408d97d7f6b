//! Every optimizer against Keras 3's published update rule (keras/src/optimizers/<name>.py),
//! written out again here in f64 as a plain reference: ten steps of a fixed quadratic problem on
//! the CPU backend in f64 agree within 1e-6. Exact resume through a saved model for each.

use std::sync::Arc;

use kiln::cpu::{CpuBackend, CpuSession};
use kiln::graph::{schedule, Graph, PersistentId, PersistentKind, PersistentSpec, Session, Shape};
use kiln::nn::Clipping;
use kiln::prelude::*;

const START: [f64; 5] = [0.5, -1.0, 2.0, 0.0, -0.25];
const TARGET: [f64; 5] = [1.0, 1.0, -1.0, 0.0, 0.3];

/// The gradient of `Σ (p - target)²`.
fn grad(p: &[f64]) -> Vec<f64> {
    p.iter().zip(TARGET).map(|(p, t)| 2.0 * (p - t)).collect()
}

/// Keras' `update_step` for `optimizer`, step by step, in f64. `state` holds the optimizer's
/// tensors in Kiln's order; Nadam's `u_product` is kept as Keras keeps it, a running product.
struct Reference {
    optimizer: Optimizer,
    state: Vec<Vec<f64>>,
    u_product: f64,
}

impl Reference {
    fn new(optimizer: Optimizer) -> Self {
        let state = optimizer
            .state()
            .iter()
            .map(|&(_, start)| vec![start as f64; START.len()])
            .collect();
        Reference {
            optimizer,
            state,
            u_product: 1.0,
        }
    }

    /// Step `t` (1-based) of `p` by `g`.
    fn step(&mut self, p: &mut [f64], g: &[f64], t: f64) {
        let f = |x: f32| x as f64;
        let lr = self.optimizer.learning_rate().at(t as u64);
        let wd = f(self.optimizer.weight_decay());
        // BaseOptimizer._apply_weight_decay: variable - variable * wd * lr, before the update.
        for w in p.iter_mut() {
            *w -= *w * wd * lr;
        }
        let s = &mut self.state;
        match self.optimizer {
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
                amsgrad,
                ..
            } => {
                let (b1, b2, eps) = (f(beta1), f(beta2), f(epsilon));
                let alpha = lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
                for i in 0..p.len() {
                    s[0][i] += (g[i] - s[0][i]) * (1.0 - b1);
                    s[1][i] += (g[i] * g[i] - s[1][i]) * (1.0 - b2);
                    let mut v = s[1][i];
                    if amsgrad {
                        s[2][i] = s[2][i].max(v);
                        v = s[2][i];
                    }
                    p[i] -= s[0][i] * alpha / (v.sqrt() + eps);
                }
            }
            Optimizer::Nadam {
                beta1, beta2, epsilon, ..
            } => {
                let (b1, b2, eps) = (f(beta1), f(beta2), f(epsilon));
                // _backend_update_step: u_product *= β1 (1 - 0.5 · 0.96^t), once per step.
                self.u_product *= b1 * (1.0 - 0.5 * 0.96f64.powf(t));
                let u_t = b1 * (1.0 - 0.5 * 0.96f64.powf(t));
                let u_t_1 = b1 * (1.0 - 0.5 * 0.96f64.powf(t + 1.0));
                let u_product_t_1 = self.u_product * u_t_1;
                for i in 0..p.len() {
                    s[0][i] += (g[i] - s[0][i]) * (1.0 - b1);
                    s[1][i] += (g[i] * g[i] - s[1][i]) * (1.0 - b2);
                    let m_hat = u_t_1 * s[0][i] / (1.0 - u_product_t_1) + (1.0 - u_t) * g[i] / (1.0 - self.u_product);
                    let v_hat = s[1][i] / (1.0 - b2.powf(t));
                    p[i] -= m_hat * lr / (v_hat.sqrt() + eps);
                }
            }
            Optimizer::Adamax {
                beta1, beta2, epsilon, ..
            } => {
                let (b1, b2, eps) = (f(beta1), f(beta2), f(epsilon));
                for i in 0..p.len() {
                    s[0][i] += (g[i] - s[0][i]) * (1.0 - b1);
                    s[1][i] = (b2 * s[1][i]).max(g[i].abs());
                    p[i] -= lr * s[0][i] / ((1.0 - b1.powf(t)) * (s[1][i] + eps));
                }
            }
            Optimizer::Sgd { momentum, nesterov, .. } => {
                let mu = f(momentum);
                for i in 0..p.len() {
                    s[0][i] = mu * s[0][i] - lr * g[i];
                    p[i] += if nesterov { mu * s[0][i] - lr * g[i] } else { s[0][i] };
                }
            }
            Optimizer::RmsProp {
                rho,
                momentum,
                epsilon,
                centered,
                ..
            } => {
                let (rho, mu, eps) = (f(rho), f(momentum), f(epsilon));
                let (mom, avg) = match (momentum > 0.0, centered) {
                    (true, true) => (Some(1), Some(2)),
                    (true, false) => (Some(1), None),
                    (false, true) => (None, Some(1)),
                    (false, false) => (None, None),
                };
                for i in 0..p.len() {
                    s[0][i] = rho * s[0][i] + (1.0 - rho) * g[i] * g[i];
                    let denominator = match avg {
                        Some(a) => {
                            s[a][i] = rho * s[a][i] + (1.0 - rho) * g[i];
                            s[0][i] - s[a][i] * s[a][i] + eps
                        }
                        None => s[0][i] + eps,
                    };
                    let increment = lr * g[i] / denominator.sqrt();
                    match mom {
                        Some(m) => {
                            s[m][i] = mu * s[m][i] + increment;
                            p[i] -= s[m][i];
                        }
                        None => p[i] -= increment,
                    }
                }
            }
            Optimizer::Adagrad { epsilon, .. } => {
                for i in 0..p.len() {
                    s[0][i] += g[i] * g[i];
                    p[i] -= lr * g[i] / (s[0][i] + f(epsilon)).sqrt();
                }
            }
            Optimizer::Lion { beta1, beta2, .. } => {
                let (b1, b2) = (f(beta1), f(beta2));
                for i in 0..p.len() {
                    let c = s[0][i] * b1 + g[i] * (1.0 - b1);
                    p[i] -= lr
                        * if c > 0.0 {
                            1.0
                        } else if c < 0.0 {
                            -1.0
                        } else {
                            0.0
                        };
                    s[0][i] = s[0][i] * b2 + g[i] * (1.0 - b2);
                }
            }
        }
    }
}

/// Every optimizer and option, with learning rates large enough that ten steps move far.
fn optimizers() -> Vec<Optimizer> {
    vec![
        Optimizer::adam_lr(0.1),
        Optimizer::adamw().with_learning_rate(0.1).with_weight_decay(0.05),
        Optimizer::adam_lr(0.1).with_amsgrad(true),
        Optimizer::sgd_momentum(0.05, 0.9, true).with_weight_decay(0.01),
        Optimizer::rmsprop().with_learning_rate(0.05),
        Optimizer::rmsprop_with(0.9, false).with_learning_rate(0.05),
        Optimizer::rmsprop_with(0.0, true).with_learning_rate(0.05),
        Optimizer::rmsprop_with(0.5, true)
            .with_learning_rate(0.05)
            .with_weight_decay(0.01),
        Optimizer::adagrad().with_learning_rate(0.3),
        Optimizer::nadam().with_learning_rate(0.1),
        Optimizer::adamax().with_learning_rate(0.1).with_weight_decay(0.02),
        Optimizer::lion().with_learning_rate(0.05).with_weight_decay(0.1),
        // A rate that changes every step: the rate is an operand of the update.
        Optimizer::sgd(0.1).with_learning_rate(Schedule::exponential_decay(0.2, 3, 0.5)),
    ]
}

#[test]
fn ten_steps_of_each_optimizer_match_keras_update_rule_in_f64() {
    for optimizer in optimizers() {
        optimizer.validate().unwrap();
        let op = optimizer.op();
        let n = START.len();
        let mut specs = vec![PersistentSpec {
            name: "p".into(),
            shape: Shape::new([n]),
            kind: PersistentKind::Parameter,
        }];
        for (name, _) in optimizer.state() {
            specs.push(PersistentSpec {
                name: name.into(),
                shape: Shape::new([n]),
                kind: PersistentKind::OptimizerState,
            });
        }
        let mut g = Graph::new(specs.clone());
        let mut ins: Vec<_> = (0..specs.len()).map(|i| g.persistent(PersistentId(i))).collect();
        ins.push(g.input("grad", [n]));
        ins.push(g.input("lr", [1]));
        if op.uses_step() {
            ins.push(g.input("step", [1]));
        }
        ins.push(g.constant(&[1.0], [1]).unwrap());
        g.push(op, &ins).unwrap();
        let mut session = CpuSession::<f64>::new(&specs);
        session
            .write_persistent(PersistentId(0), &START.map(|x| x as f32))
            .unwrap();
        for (i, (_, start)) in optimizer.state().into_iter().enumerate() {
            session.write_persistent(PersistentId(i + 1), &vec![start; n]).unwrap();
        }
        let plan = session.load(Arc::new(schedule(&g, &[]).unwrap())).unwrap();

        let mut reference = Reference::new(optimizer.clone());
        let mut want = START.to_vec();
        for t in 1..=10 {
            // The gradient at the backend's current parameters (the reference's differ by < 1e-6).
            let p: Vec<f64> = session
                .read_persistent(PersistentId(0))
                .unwrap()
                .iter()
                .map(|&x| x as f64)
                .collect();
            let g = grad(&p);
            let g32: Vec<f32> = g.iter().map(|&x| x as f32).collect();
            let lr = [optimizer.learning_rate().at(t) as f32];
            session
                .run(plan, &[("grad", &g32), ("lr", &lr), ("step", &[t as f32])])
                .unwrap();
            let g_want = grad(&want);
            reference.step(&mut want, &g_want, t as f64);
        }
        let got = session.read_persistent(PersistentId(0)).unwrap();
        let moved = want.iter().zip(START).map(|(w, s)| (w - s).abs()).fold(0.0, f64::max);
        assert!(moved > 0.05, "{optimizer:?}: the reference barely moved ({moved})");
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{optimizer:?}: parameter {i} is {g} after 10 steps, Keras' rule gives {w}"
            );
        }
    }
}

#[test]
fn every_optimizer_resumes_exactly_from_a_saved_model() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("optimizer_resume");
    std::fs::create_dir_all(&dir).unwrap();
    let (x, y) = (random::normal([48, 4], 1), random::integers(0, 3, [48], 2));
    for (k, optimizer) in optimizers().into_iter().enumerate() {
        let model = || {
            let optimizer = optimizer.clone();
            let mut m = Sequential::new()
                .seed(3)
                .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
                .add(Dense::new(3).activation(Activation::Softmax));
            m.compile(&CpuBackend, optimizer, Loss::SparseCategoricalCrossentropy, &[])
                .unwrap();
            m
        };
        let mut straight = model();
        straight
            .fit(&x, &y, &FitOptions::new(3, 16).seed(5).verbose(0))
            .unwrap();
        let mut first = model();
        first.fit(&x, &y, &FitOptions::new(1, 16).seed(5).verbose(0)).unwrap();
        let path = dir.join(format!("optimizer{k}.safetensors"));
        first.save(&path).unwrap();
        let mut resumed = load_model(&path, &CpuBackend).unwrap();
        resumed
            .fit(&x, &y, &FitOptions::new(3, 16).seed(5).verbose(0).initial_epoch(1))
            .unwrap();
        assert_eq!(
            straight.weights().unwrap(),
            resumed.weights().unwrap(),
            "{optimizer:?}: the resumed run differs"
        );
    }
}

/// Keras' `_clip_gradients` on two gradients, worked out by hand: per-gradient norm, global norm
/// and value clipping, on the CPU backend in f64.
#[test]
fn clipping_rescales_gradients_as_keras_does() {
    // ‖a‖ = 5 (3, 4), ‖b‖ = 13 (5, 12, 0); together √194.
    let (a, b) = ([3.0f64, -4.0], [5.0f64, 12.0, 0.0]);
    let global = 194f64.sqrt();
    let cases: [(Clipping, [f64; 2], [f64; 3]); 5] = [
        (Clipping::None, a, b),
        (Clipping::Norm(6.0), a, b.map(|v| v * 6.0 / 13.0)),
        (Clipping::Norm(1.0), a.map(|v| v / 5.0), b.map(|v| v / 13.0)),
        (
            Clipping::GlobalNorm(2.0),
            a.map(|v| v * 2.0 / global),
            b.map(|v| v * 2.0 / global),
        ),
        (Clipping::Value(4.5), [3.0, -4.0], [4.5, 4.5, 0.0]),
    ];
    for (clipping, want_a, want_b) in cases {
        let mut g = Graph::new(Vec::new());
        let (ga, gb) = (g.input("a", [2]), g.input("b", [3]));
        let clipped = clipping.apply(&mut g, vec![ga, gb]).unwrap();
        let mut session = CpuSession::<f64>::new(&[]);
        let plan = session.load(Arc::new(schedule(&g, &clipped).unwrap())).unwrap();
        let (fa, fb) = (a.map(|v| v as f32), b.map(|v| v as f32));
        session.run(plan, &[("a", &fa), ("b", &fb)]).unwrap();
        let out = session.read_outputs(plan).unwrap();
        for (got, want) in out.iter().zip([&want_a[..], &want_b[..]]) {
            for (&g, &w) in got.iter().zip(want) {
                assert!(
                    (g as f64 - w).abs() < 1e-6,
                    "{clipping:?}: {got:?}, Keras gives {want:?}"
                );
            }
        }
    }
}
