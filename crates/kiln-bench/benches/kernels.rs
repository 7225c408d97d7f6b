//! Criterion benches of each kernel family on every backend here, one plan per family on
//! persistent operands (nothing uploaded per iteration); each iteration is one run plus a wait
//! for the device. Families: conv2d (im2col, matmul, both gradients, col2im), conv2d forward next to
//! the GEMM of the same shape (conv forward GFLOP/s against matmul GFLOP/s), max-pooling (forward
//! and gradient), elementwise and activations, reductions, softmax cross-entropy with its
//! gradient, and the Adam update.
//!
//! `cargo bench -p kiln-bench --bench kernels` (`matmul` has its own bench).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kiln::graph::{
    schedule, ActivationOp, Backend, ConvOp, ElementwiseOp, Graph, LossOp, NodeId, PersistentId, PersistentKind,
    PersistentSpec, ReduceOp, Result, Shape, UpdateOp, Window2d,
};
use kiln::Device;

/// A kernel family: its persistent operands and the graph over them.
struct Family {
    name: &'static str,
    operands: &'static [&'static [usize]],
    build: fn(&mut Graph, &[NodeId]) -> Result<Vec<NodeId>>,
}

fn conv2d(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let w = Window2d::new(28, 28, 8, (3, 3), (1, 1), true)?;
    let cols = g.push(ConvOp::Im2Col { window: w }, &[p[0]])?;
    let y = g.matmul(cols, p[1], false, false)?;
    let dk = g.matmul(cols, y, true, false)?;
    let dcols = g.matmul(y, p[1], false, true)?;
    let dx = g.push(ConvOp::Col2Im { window: w }, &[dcols])?;
    Ok(vec![dk, dx])
}

/// The seed-004 CNN's second convolution, forward only: im2col then the matmul.
fn conv2d_forward(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let w = Window2d::new(31, 31, 32, (3, 3), (1, 1), false)?;
    let cols = g.push(ConvOp::Im2Col { window: w }, &[p[0]])?;
    Ok(vec![g.matmul(cols, p[1], false, false)?])
}

/// The GEMM that convolution amounts to: [32·29·29, 288] · [288, 64], same FLOPs.
fn gemm(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    Ok(vec![g.matmul(p[0], p[1], false, false)?])
}

fn max_pool(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let w = Window2d::new(28, 28, 16, (2, 2), (2, 2), false)?;
    let y = g.push(ConvOp::MaxPool2d { window: w }, &[p[0]])?;
    let dx = g.push(ConvOp::MaxPool2dGrad { window: w }, &[p[0], y])?;
    Ok(vec![dx])
}

fn elementwise(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let r = g.unary(ActivationOp::Relu, p[0])?;
    let s = g.unary(ActivationOp::Sigmoid, p[1])?;
    let m = g.binary(ElementwiseOp::Mul, r, s)?;
    let a = g.binary(ElementwiseOp::Add, m, p[0])?;
    Ok(vec![g.binary(ActivationOp::ReluGrad, r, a)?])
}

fn reduce(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let rows = g.push(ReduceOp::Sum { axis: 0 }, &[p[0]])?;
    let cols = g.push(ReduceOp::Mean { axis: 1 }, &[p[0]])?;
    Ok(vec![rows, cols])
}

fn softmax_cross_entropy(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let loss = g.push(LossOp::SoftmaxCrossEntropy { sparse: false }, &[p[0], p[1]])?;
    let grad = g.push(LossOp::SoftmaxCrossEntropyGrad { sparse: false }, &[p[0], p[1], loss])?;
    Ok(vec![loss, grad])
}

fn adam(g: &mut Graph, p: &[NodeId]) -> Result<Vec<NodeId>> {
    let update = UpdateOp::Adam {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
        weight_decay: 0.0,
        amsgrad: false,
    };
    // (param, m, v, grad, learning rate, step, apply).
    let apply = g.constant(&[1.0], [1])?;
    g.push(update, &[p[0], p[1], p[2], p[3], p[4], p[5], apply])?;
    Ok(vec![])
}

const FAMILIES: &[Family] = &[
    Family {
        name: "conv2d_3x3_28x28x8_to_16_fwd_bwd",
        operands: &[&[16, 28, 28, 8], &[72, 16]],
        build: conv2d,
    },
    // Convolution forward against the equivalent GEMM: same FLOPs (0.99 GFLOP), so the ratio of
    // their times is the ratio of their GFLOP/s.
    Family {
        name: "conv2d_fwd_3x3_32x31x31x32_to_64",
        operands: &[&[32, 31, 31, 32], &[288, 64]],
        build: conv2d_forward,
    },
    Family {
        name: "gemm_26912x288x64",
        operands: &[&[26912, 288], &[288, 64]],
        build: gemm,
    },
    Family {
        name: "max_pool2d_2x2_28x28x16_fwd_bwd",
        operands: &[&[16, 28, 28, 16]],
        build: max_pool,
    },
    Family {
        name: "elementwise_1M",
        operands: &[&[1024, 1024], &[1024, 1024]],
        build: elementwise,
    },
    Family {
        name: "reduce_4096x256",
        operands: &[&[4096, 256]],
        build: reduce,
    },
    Family {
        name: "softmax_cross_entropy_1024x10",
        operands: &[&[1024, 10], &[1024, 10]],
        build: softmax_cross_entropy,
    },
    Family {
        name: "adam_1M",
        operands: &[&[1 << 20], &[1 << 20], &[1 << 20], &[1 << 20], &[1], &[1]],
        build: adam,
    },
];

fn kernels(c: &mut Criterion) {
    let mut devices = vec![Device::cpu()];
    match Device::gpu() {
        Ok(gpu) => devices.push(gpu),
        Err(e) => eprintln!("no GPU adapter, benchmarking the CPU only: {e}"),
    }
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    for device in &devices {
        let label = if device.is_gpu() { "wgpu" } else { "cpu" };
        for family in FAMILIES {
            let specs: Vec<PersistentSpec> = family
                .operands
                .iter()
                .enumerate()
                .map(|(i, dims)| PersistentSpec {
                    name: format!("operand{i}"),
                    shape: Shape::new(dims.to_vec()),
                    kind: PersistentKind::Parameter,
                })
                .collect();
            let mut g = Graph::new(specs.clone());
            let operands: Vec<NodeId> = (0..specs.len()).map(|i| g.persistent(PersistentId(i))).collect();
            let outputs = (family.build)(&mut g, &operands).expect("the family's graph builds");
            let plan = Arc::new(schedule(&g, &outputs).expect("the family's graph schedules"));
            let mut session = device.new_session(&specs).expect("a session opens");
            for (i, s) in specs.iter().enumerate() {
                let values: Vec<f32> = (0..s.shape.numel()).map(|k| ((k % 89) as f32) / 89.0).collect();
                session
                    .write_persistent(PersistentId(i), &values)
                    .expect("operands upload");
            }
            let id = session.load(plan).expect("the plan loads");
            group.bench_with_input(BenchmarkId::new(family.name, label), &(), |bench, _| {
                bench.iter(|| {
                    session.run(id, &[]).expect("the plan runs");
                    session.finish().expect("the device finishes");
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
