//! Square f32 matmul on every backend here. Criterion's throughput is set to 2·n³ "elements", so
//! the `Gelem/s` it prints is GFLOP/s. Each iteration is one run plus a wait for the device.
//!
//! `cargo bench -p kiln-bench --bench matmul`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kiln::graph::{Backend, PersistentId};
use kiln::Device;
use kiln_bench::workloads::matmul_plan;

fn matmul(c: &mut Criterion) {
    let mut devices = vec![Device::cpu()];
    match Device::gpu() {
        Ok(gpu) => devices.push(gpu),
        Err(e) => eprintln!("no GPU adapter, benchmarking the CPU only: {e}"),
    }
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for device in &devices {
        for n in [128usize, 256, 512, 1024] {
            let (plan, specs) = matmul_plan(n).unwrap();
            let plan = Arc::new(plan);
            let mut session = device.new_session(&specs).unwrap();
            let values: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32 - 48.0) / 97.0).collect();
            session.write_persistent(PersistentId(0), &values).unwrap();
            session.write_persistent(PersistentId(1), &values).unwrap();
            let id = session.load(plan).unwrap();
            group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
            let label = if device.is_gpu() { "wgpu" } else { "cpu" };
            group.bench_with_input(BenchmarkId::new(label, n), &n, |bench, _| {
                bench.iter(|| {
                    session.run(id, &[]).unwrap();
                    session.finish().unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, matmul);
criterion_main!(benches);
