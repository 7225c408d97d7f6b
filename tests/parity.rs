//! Parity: every op of the table, forward and backward, runs on the CPU reference and on the GPU,
//! and the two agree within 1e-5 + 1e-4·|cpu| elementwise.

mod common;

use std::sync::Arc;

use common::cases::{build, cases, SIZES};
use common::{assert_close, gpu};
use kiln::cpu::CpuSession;
use kiln::graph::{schedule, Backend, PersistentKind, PersistentSpec, ReduceOp, Session, Shape, UpdateOp};
use kiln::wgpu::GpuBackend;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn run(session: &mut dyn Session, plan: Arc<kiln::graph::Plan>, feeds: &[(String, Vec<f32>)]) -> Vec<Vec<f32>> {
    let id = session.load(plan).unwrap();
    let refs: Vec<(&str, &[f32])> = feeds.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    session.run(id, &refs).unwrap();
    session.read_outputs(id).unwrap()
}

#[test]
fn every_op_forward_and_backward_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let checked = check_cases(gpu, |_| true);
    assert!(checked > 200, "only {checked} comparisons ran");
}

/// The kernels other adapters get for matmuls and image ops: storage-buffer operands (no texel
/// copies), with 8-wide subgroups and without, and the workgroup-memory tiled matmul of hardware
/// GPUs. lavapipe itself takes the texel-copy kernels.
#[test]
fn storage_operand_kernels_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let kernel_table_rows = |name: &str| {
        ["matmul", "dense", "pool", "im2col", "conv", "attention", "lstm"]
            .iter()
            .any(|k| name.contains(k))
    };
    for (_, restricted) in storage_kernel_gpus(gpu) {
        let checked = check_cases(&restricted, kernel_table_rows);
        assert!(checked > 50, "only {checked} comparisons ran");
    }
}

/// `gpu` reopened with the kernels other adapters get (storage-buffer operands, no texel copies):
/// with 8-wide subgroups and without, and with the workgroup-memory tiled matmul of hardware GPUs.
fn storage_kernel_gpus(gpu: &GpuBackend) -> Vec<(String, GpuBackend)> {
    [(true, 0), (false, 0), (false, 64)]
        .into_iter()
        .map(|(subgroups, tile)| {
            let restricted = gpu
                .with_caps(|caps| {
                    caps.texel_rows = 0;
                    caps.subgroup8 &= subgroups;
                    caps.matmul_tile = tile;
                })
                .unwrap();
            (
                format!("storage kernels (subgroups {subgroups}, tile {tile})"),
                restricted,
            )
        })
        .collect()
}

/// Runs every case `keep` accepts at every size on the CPU reference and on `gpu`, compares
/// outputs and gradients, and counts the comparisons.
fn check_cases(gpu: &dyn Backend, keep: impl Fn(&str) -> bool) -> usize {
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| keep(c.name)) {
        for &n in &SIZES {
            let built = build(&case, n);
            let plan = Arc::new(schedule(&built.graph, &built.outputs).unwrap());
            let mut rng = StdRng::seed_from_u64(n as u64);
            let feeds: Vec<(String, Vec<f32>)> = built
                .inputs
                .iter()
                .map(|(name, shape, v)| (name.clone(), v.fill(shape, &mut rng)))
                .collect();
            let mut cpu = CpuSession::<f32>::new(&[]);
            let want = run(&mut cpu, plan.clone(), &feeds);
            let mut gpu_session = gpu.new_session(&[]).unwrap();
            let got = run(gpu_session.as_mut(), plan, &feeds);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                let what = match k {
                    0 => "forward".to_string(),
                    1 if built.has_loss => "loss".to_string(),
                    _ => format!("gradient of operand {}", case.diff[k - 2]),
                };
                assert_close(&format!("{} at n={n}, {what}", case.name), g, w, 1e-5, 1e-4);
                checked += 1;
            }
        }
    }
    checked
}

/// `round_f16` gives the CPU's bits on the GPU over every region of the f16 range — ties, the
/// largest finite half, overflow to ±∞, the subnormals, NaN and ±∞ passed through — and
/// `non_finite` flags exactly the ±∞ and NaN among the results.
#[test]
fn round_f16_and_non_finite_match_the_cpu_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let mut data = vec![
        0.0f32,
        -0.0,
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        1e9,
        6e-8,
        2.9e-8,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
    ];
    let mut x = 1.0e-9f32;
    while x < 1.0e6 {
        data.extend([x, -x, x * 1.000_49, -x * 1.000_977]);
        x *= 1.013;
    }
    let n = data.len();
    let mut g = kiln::graph::Graph::new(Vec::new());
    let input = g.input("x", Shape::new([n]));
    let rounded = g.unary(kiln::graph::ElementwiseOp::RoundF16, input).unwrap();
    let flags = g.unary(kiln::graph::ElementwiseOp::NonFinite, rounded).unwrap();
    let plan = Arc::new(schedule(&g, &[rounded, flags]).unwrap());
    let feeds = vec![("x".to_string(), data.clone())];
    let want = run(&mut CpuSession::<f32>::new(&[]), plan.clone(), &feeds);
    let got = run(gpu.new_session(&[]).unwrap().as_mut(), plan, &feeds);
    for (i, &v) in data.iter().enumerate() {
        assert_eq!(got[0][i].to_bits(), want[0][i].to_bits(), "round_f16({v:e})");
        assert_eq!(got[1][i], want[1][i], "non_finite(round_f16({v:e}))");
        assert_eq!(want[1][i], f32::from(!want[0][i].is_finite()), "non_finite at {v:e}");
    }
    assert!(want[0][4].is_infinite() && want[1][4] == 1.0, "65520 overflows to ∞");
}

/// Elementwise and reduction grids past 65535 workgroups are folded into y; check the fold.
#[test]
fn grids_past_65535_workgroups() {
    let Some(gpu) = gpu() else { return };
    let n = 65535 * 256 + 300;
    let mut g = kiln::graph::Graph::new(Vec::new());
    let x = g.input("x", Shape::new([n, 1]));
    let y = g.scale(x, 3.0).unwrap();
    let s = g.unary(ReduceOp::Sum { axis: 1 }, y).unwrap();
    let plan = Arc::new(schedule(&g, &[s]).unwrap());
    let data: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let feeds = vec![("x".to_string(), data.clone())];
    let mut session = gpu.new_session(&[]).unwrap();
    let got = run(session.as_mut(), plan, &feeds);
    for i in [0, 1, 65535 * 256 - 1, 65535 * 256, n - 1] {
        assert_eq!(got[0][i], data[i] * 3.0, "element {i}");
    }
    assert!(got[0].iter().zip(&data).all(|(g, d)| *g == d * 3.0));
}

/// A product over a long k — a conv kernel's gradient sums over batch × height × width, 25,088
/// terms for 32 images of 28×28 — keeps f32's accuracy on every matmul kernel: each sums k in
/// blocks (`K_BLOCK` in matmul_common.wgsl), as the CPU's GEMM does, so the error against f64
/// stays near f32's rounding instead of growing with k. Positive terms, so every one adds: summed
/// in order, the untiled kernels' worst results were 2.9e-6 to 6.8e-6 off and the tiled one's
/// 1.5e-6 to 1.8e-6; in blocks, 6.3e-7 to 8.2e-7 (the CPU's 2.0e-7 to 3.2e-7).
#[test]
fn long_products_keep_f32_accuracy_on_every_kernel() {
    let Some(gpu) = gpu() else { return };
    let (k, m, n) = (25_088, 8, 16);
    let mut rng = StdRng::seed_from_u64(3);
    let a: Vec<f32> = (0..k * m)
        .map(|_| rand::RngExt::random_range(&mut rng, 0.0..1.0))
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|_| rand::RngExt::random_range(&mut rng, 0.0..1.0))
        .collect();
    // The three orientations the kernel table picks apart: Aᵀ·B (a weight gradient), A·B, A·Bᵀ.
    for (ta, tb) in [(true, false), (false, false), (false, true)] {
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let at = |r: usize, kk: usize| f64::from(if ta { a[kk * m + r] } else { a[r * k + kk] });
        let bt = |kk: usize, c: usize| f64::from(if tb { b[c * k + kk] } else { b[kk * n + c] });
        let exact: Vec<f64> = (0..m * n)
            .map(|i| (0..k).map(|kk| at(i / n, kk) * bt(kk, i % n)).sum())
            .collect();
        let mut g = kiln::graph::Graph::new(Vec::new());
        let x = g.input("a", Shape::new(a_shape));
        let y = g.input("b", Shape::new(b_shape));
        let c = g.matmul(x, y, ta, tb).unwrap();
        let plan = Arc::new(schedule(&g, &[c]).unwrap());
        // The same values stored either way: `at` and `bt` read them as stored.
        let feeds = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let cpu = run(&mut CpuSession::<f32>::new(&[]), plan.clone(), &feeds);
        let mut backends: Vec<(String, Vec<f32>)> = vec![("cpu".into(), cpu[0].clone())];
        backends.push((
            "lavapipe's kernels".into(),
            run(gpu.new_session(&[]).unwrap().as_mut(), plan.clone(), &feeds)[0].clone(),
        ));
        for (what, restricted) in storage_kernel_gpus(gpu) {
            let got = run(restricted.new_session(&[]).unwrap().as_mut(), plan.clone(), &feeds)[0].clone();
            backends.push((what, got));
        }
        for (what, got) in backends {
            let worst = got
                .iter()
                .zip(&exact)
                .map(|(&g, &e)| (f64::from(g) - e).abs() / e)
                .fold(0.0, f64::max);
            assert!(
                worst < 1.2e-6,
                "{what}, ta {ta} tb {tb}: relative error {worst:e} against f64"
            );
        }
    }
}

/// Every optimizer update (each with its options and a weight decay) and the accumulator update
/// persistent tensors in place identically on both backends over several steps; a step fed
/// `apply = 0` (a loss-scaled step that overflowed) leaves every optimizer's tensors untouched on
/// both.
#[test]
fn optimizer_accumulator_and_moving_average_updates_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    // Past the CPU's split threshold (64Ki elements), so its updates run in parallel halves.
    let n = (1 << 16) + 5;
    let adam = |weight_decay, amsgrad| UpdateOp::Adam {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
        weight_decay,
        amsgrad,
    };
    let rmsprop = |momentum, centered| UpdateOp::RmsProp {
        rho: 0.9,
        momentum,
        epsilon: 1e-7,
        centered,
        weight_decay: 0.01,
    };
    let sgd = |momentum, nesterov| UpdateOp::Sgd {
        momentum,
        nesterov,
        weight_decay: 0.0,
    };
    let updates = [
        adam(0.0, false),
        adam(0.004, false),
        adam(0.004, true),
        sgd(0.9, false),
        sgd(0.5, true),
        UpdateOp::Sgd {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.1,
        },
        rmsprop(0.0, false),
        rmsprop(0.9, false),
        rmsprop(0.0, true),
        rmsprop(0.9, true),
        UpdateOp::Adagrad {
            epsilon: 1e-7,
            weight_decay: 0.01,
        },
        UpdateOp::Nadam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.01,
        },
        UpdateOp::Adamax {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.01,
        },
        UpdateOp::Lion {
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.01,
        },
    ];
    // Per update: a parameter and its state tensors; then the two accumulators and a moving average.
    let mut specs = Vec::new();
    let mut operands = Vec::new();
    for (u, op) in updates.iter().enumerate() {
        let first = specs.len();
        specs.push(PersistentSpec {
            name: format!("{}#{u}/param", kiln::graph::Family::name(op)),
            shape: Shape::new([n]),
            kind: PersistentKind::Parameter,
        });
        for s in 0..op.state_count() {
            specs.push(PersistentSpec {
                name: format!("{}#{u}/state{s}", kiln::graph::Family::name(op)),
                shape: Shape::new([n]),
                kind: PersistentKind::OptimizerState,
            });
        }
        operands.push(first..specs.len());
    }
    let params: Vec<usize> = operands.iter().map(|r| r.start).collect();
    for (name, len) in [("acc", 1), ("acc_rows", 3)] {
        specs.push(PersistentSpec {
            name: name.into(),
            shape: Shape::new([len]),
            kind: PersistentKind::Accumulator,
        });
    }
    specs.push(PersistentSpec {
        name: "moving_average".into(),
        shape: Shape::new([n]),
        kind: PersistentKind::State,
    });
    let mut g = kiln::graph::Graph::new(specs.clone());
    let ids: Vec<_> = (0..specs.len())
        .map(|i| g.persistent(kiln::graph::PersistentId(i)))
        .collect();
    let grad = g.input("grad", Shape::new([n]));
    let step = g.input("step", Shape::new([1]));
    let lr = g.input("lr", Shape::new([1]));
    let apply = g.input("apply", Shape::new([1]));
    for (op, written) in updates.iter().zip(&operands) {
        let mut ins: Vec<_> = written.clone().map(|i| ids[i]).collect();
        ins.extend([grad, lr]);
        if op.uses_step() {
            ins.push(step);
        }
        ins.push(apply);
        g.push(*op, &ins).unwrap();
    }
    let accs = specs.len() - 3;
    g.push(UpdateOp::AccumulateSum, &[ids[accs], grad]).unwrap();
    let rows = g.input("rows", Shape::new([5, 3]));
    g.push(UpdateOp::AccumulateSum, &[ids[accs + 1], rows]).unwrap();
    g.push(UpdateOp::MovingAverage { momentum: 0.9 }, &[ids[accs + 2], grad])
        .unwrap();
    let plan = Arc::new(schedule(&g, &[]).unwrap());
    let mut cpu: Box<dyn Session> = Box::new(CpuSession::<f32>::new(&specs));
    let mut gpu_session = gpu.new_session(&specs).unwrap();
    let init: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    for s in [cpu.as_mut(), gpu_session.as_mut()] {
        for &p in &params {
            s.write_persistent(kiln::graph::PersistentId(p), &init).unwrap();
        }
    }
    let (cpu_plan, gpu_plan) = (cpu.load(plan.clone()).unwrap(), gpu_session.load(plan).unwrap());
    let optimizer_tensors = |s: &mut dyn Session| -> Vec<Vec<f32>> {
        (0..specs.len() - 3)
            .map(|i| s.read_persistent(kiln::graph::PersistentId(i)).unwrap())
            .collect()
    };
    let mut before_skip = Vec::new();
    for t in 1..=3 {
        // Some exact zeros, where Lion's sign and Adamax's max have their edge cases.
        let grad: Vec<f32> = (0..n)
            .map(|i| {
                if i % 17 == 0 {
                    0.0
                } else {
                    ((i * t) as f32 * 0.11).cos()
                }
            })
            .collect();
        let step = [t as f32];
        let rows: Vec<f32> = (0..15).map(|i| (i * t) as f32 * 0.5).collect();
        let lr = [0.05 / t as f32];
        // The second step is skipped.
        let apply = [if t == 2 { 0.0 } else { 1.0 }];
        let feeds: [(&str, &[f32]); 5] = [
            ("grad", &grad),
            ("step", &step),
            ("rows", &rows),
            ("lr", &lr),
            ("apply", &apply),
        ];
        if t == 2 {
            before_skip = vec![optimizer_tensors(cpu.as_mut()), optimizer_tensors(gpu_session.as_mut())];
        }
        cpu.run(cpu_plan, &feeds).unwrap();
        gpu_session.run(gpu_plan, &feeds).unwrap();
        if t == 2 {
            let after = [optimizer_tensors(cpu.as_mut()), optimizer_tensors(gpu_session.as_mut())];
            for (backend, (before, after)) in ["cpu", "gpu"].iter().zip(before_skip.iter().zip(&after)) {
                for (i, (b, a)) in before.iter().zip(after).enumerate() {
                    assert!(b == a, "{backend}: `{}` changed in a skipped step", specs[i].name);
                }
            }
        }
    }
    for (i, spec) in specs.iter().enumerate() {
        let id = kiln::graph::PersistentId(i);
        let want = cpu.read_persistent(id).unwrap();
        let got = gpu_session.read_persistent(id).unwrap();
        assert_close(&spec.name, &got, &want, 1e-5, 1e-4);
    }
    for (&p, op) in params.iter().zip(&updates) {
        assert_ne!(
            cpu.read_persistent(kiln::graph::PersistentId(p)).unwrap(),
            init,
            "{op:?} changed nothing"
        );
    }
}

/// Gelu, softplus and silu fuse into the matmul epilogue where nothing else reads the product
/// (inference: their gradients read it in training), and so do the activations with a parameter
/// (leaky_relu, elu; in training too, as the rows of the case table check): the fused plan matches
/// the CPU's, which runs the same fused op, and the unfused activation.
#[test]
fn activations_fused_into_the_epilogue_match_the_unfused_ones() {
    use kiln::graph::{ActivationOp, Epilogue, Graph, StepOp};
    let Some(gpu) = gpu() else { return };
    let ops = [
        ActivationOp::Gelu { approximate: false },
        ActivationOp::Gelu { approximate: true },
        ActivationOp::Softplus,
        ActivationOp::Silu,
        ActivationOp::LeakyRelu { slope: 0.2 },
        ActivationOp::Elu { alpha: 0.7 },
    ];
    let mut rng = StdRng::seed_from_u64(3);
    let values = |n: usize, rng: &mut StdRng| -> Vec<f32> {
        use rand::RngExt;
        (0..n).map(|_| rng.random_range(-3.0..3.0)).collect()
    };
    let (x, w, b) = (values(65 * 13, &mut rng), values(13 * 7, &mut rng), values(7, &mut rng));
    for op in ops {
        let plan_for = |fuse: bool| {
            let mut g = Graph::new(Vec::new());
            let (xn, wn, bn) = (g.input("x", [65, 13]), g.input("w", [13, 7]), g.input("b", [7]));
            let z = g.matmul(xn, wn, false, false).unwrap();
            let z = g.bias_add(z, bn).unwrap();
            let y = g.unary(op, z).unwrap();
            // Reading the product as well keeps it apart: the unfused reference.
            let outputs = if fuse { vec![y] } else { vec![y, z] };
            Arc::new(schedule(&g, &outputs).unwrap())
        };
        let fused = plan_for(true);
        let epilogue = fused.steps.iter().find_map(|s| {
            let StepOp::MatMul(m) = &s.op else { return None };
            Some(m.epilogue)
        });
        assert_eq!(epilogue, op.epilogue(), "{op:?} was not fused");
        assert_ne!(epilogue, Some(Epilogue::Linear));
        let feeds: [(&str, &[f32]); 3] = [("x", &x), ("w", &w), ("b", &b)];
        let run = |plan: Arc<kiln::graph::Plan>, session: &mut dyn Session| {
            let id = session.load(plan).unwrap();
            session.run(id, &feeds).unwrap();
            session.read_outputs(id).unwrap().swap_remove(0)
        };
        let mut cpu = CpuSession::<f32>::new(&[]);
        let reference = run(plan_for(false), &mut cpu);
        let on_cpu = run(fused.clone(), &mut cpu);
        let on_gpu = run(fused, gpu.new_session(&[]).unwrap().as_mut());
        assert_close(&format!("{op:?} fused on the CPU"), &on_cpu, &reference, 1e-6, 1e-6);
        assert_close(&format!("{op:?} fused on the GPU"), &on_gpu, &reference, 1e-5, 1e-4);
    }
}

/// An embedding's lookup averaged over the steps fuses into one pass where nothing else reads the
/// lookup (a bag-of-tokens model's Embedding → GlobalAveragePooling1D): the fused plan writes no
/// `[n, steps, d]` lookup, gives the CPU the very numbers of the unfused one (same sums, same
/// scale), and the GPU the same within the parity tolerance; the lookup stays apart where it is
/// read elsewhere.
#[test]
fn an_embedding_mean_fuses_into_one_pass() {
    use kiln::graph::{EmbeddingOp, Graph, ReduceOp, StepOp};
    let mut rng = StdRng::seed_from_u64(5);
    use rand::RngExt;
    let table: Vec<f32> = (0..50 * 9).map(|_| rng.random_range(-1.0..1.0)).collect();
    let tokens: Vec<f32> = (0..33 * 7).map(|_| rng.random_range(0..50) as f32).collect();
    let plan_for = |fuse: bool| {
        let mut g = Graph::new(Vec::new());
        let (t, i) = (g.input("table", [50, 9]), g.input("tokens", [33, 7]));
        let rows = g.push(EmbeddingOp::Lookup, &[t, i]).unwrap();
        let mean = g.push(ReduceOp::Mean { axis: 1 }, &[rows]).unwrap();
        let outputs = if fuse { vec![mean] } else { vec![mean, rows] };
        Arc::new(schedule(&g, &outputs).unwrap())
    };
    let (fused, apart) = (plan_for(true), plan_for(false));
    let ops = |plan: &kiln::graph::Plan| plan.steps.iter().map(|s| s.op.clone()).collect::<Vec<_>>();
    assert_eq!(ops(&fused), vec![StepOp::Embedding(EmbeddingOp::LookupMean)]);
    assert!(ops(&apart).contains(&StepOp::Embedding(EmbeddingOp::Lookup)));
    assert!(fused.arena_len < apart.arena_len);
    let feeds: [(&str, &[f32]); 2] = [("table", &table), ("tokens", &tokens)];
    let run = |plan: Arc<kiln::graph::Plan>, session: &mut dyn Session| {
        let id = session.load(plan).unwrap();
        session.run(id, &feeds).unwrap();
        session.read_outputs(id).unwrap().swap_remove(0)
    };
    let mut cpu = CpuSession::<f32>::new(&[]);
    let reference = run(apart, &mut cpu);
    assert_eq!(run(fused.clone(), &mut cpu), reference);
    if let Some(gpu) = gpu() {
        let on_gpu = run(fused, gpu.new_session(&[]).unwrap().as_mut());
        assert_close("embedding_mean on the GPU", &on_gpu, &reference, 1e-5, 1e-4);
    }
}
