//! Whole training steps, per backend: the harness's workloads (the seed programs' shapes: an MLP, the
//! seed-004 CNN and the embedding tagger), each iteration one `train_on_batch` — upload the batch,
//! one submit of forward, backward and Adam, and the loss read back — on every device here (the CPU
//! backend, and the GPU adapter where there is one).
//!
//! `cargo bench --bench training_step` (per-kernel benches: `cargo bench -p kiln-bench`).

// The workload definitions are the harness's own, so both measure the same models.
#[path = "../crates/kiln-bench/src/workloads.rs"]
#[allow(dead_code)]
mod workloads;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kiln::graph::Backend;
use kiln::Device;
use workloads::Workload;

fn devices() -> Vec<Device> {
    let mut devices = vec![Device::cpu()];
    match Device::gpu() {
        Ok(gpu) => devices.push(gpu),
        Err(e) => eprintln!("no GPU adapter, CPU backend only: {e}"),
    }
    devices
}

fn training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("training_step");
    group.sample_size(10);
    for device in devices() {
        for workload in Workload::ALL {
            let mut model = workload.compile(&device).expect("compile");
            let (x, y) = workload.data(workload.batch(), 3);
            // The first step builds and loads the plan; time the steady state.
            model.train_on_batch(&x, &y).expect("first step");
            group.bench_with_input(BenchmarkId::new(workload.name(), device.name()), &(), |b, _| {
                b.iter(|| model.train_on_batch(&x, &y).expect("step"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, training_step);
criterion_main!(benches);
