//! Regression guard for the harness's workloads: a steady-state training step is one submit with
//! no buffer or pipeline created, on the CPU and on the GPU (lavapipe in CI); and the arena stays
//! the same size across 100 epochs. Counts, not times.

use kiln::graph::Backend;
use kiln::prelude::FitOptions;
use kiln::wgpu::GpuBackend;
use kiln::Device;
use kiln_bench::measure::per_step;
use kiln_bench::workloads::Workload;

/// The GPU, or `None` outside CI on a machine without an adapter; in CI (`CI=true`) a missing
/// adapter fails the test.
fn devices() -> Vec<Device> {
    let mut devices = vec![Device::cpu()];
    match GpuBackend::from_env() {
        Ok(g) => devices.push(Device::Gpu(g)),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI requires a GPU adapter: {e}"),
        Err(e) => eprintln!("no GPU adapter, GPU checks skipped outside CI: {e}"),
    }
    devices
}

#[test]
fn every_workload_steps_with_one_submit_and_no_allocation() {
    for device in devices() {
        for w in Workload::ALL {
            let mut model = w.compile(&device).unwrap();
            let (x, y) = w.data(w.batch(), 3);
            model.train_on_batch(&x, &y).unwrap(); // builds and loads the plan
            let per = per_step(&mut model, &x, &y, 3).unwrap();
            let what = format!("{} on {}", w.name(), device.name());
            assert_eq!(per.submits, 1.0, "{what}: submits per step");
            assert_eq!(per.buffer_allocations, 0.0, "{what}: buffers created per step");
            assert_eq!(per.pipeline_creations, 0.0, "{what}: pipelines created per step");
            assert!(
                per.dispatches >= 10.0,
                "{what}: only {} kernels per step",
                per.dispatches
            );
            assert_eq!(model.counters().parameter_reads, 0, "{what}: parameters read back");
        }
    }
}

#[test]
fn arena_and_allocations_stay_flat_across_100_epochs() {
    for device in devices() {
        let w = Workload::Mlp;
        let mut model = w.compile(&device).unwrap();
        // 200 samples: a full batch and a ragged one, so two training plans are in play.
        let (x, y) = w.data(200, 5);
        let options = FitOptions::new(1, w.batch()).verbose(0);
        model.fit(&x, &y, &options).unwrap();
        let (arena, counters) = (model.peak_arena_bytes().unwrap(), model.counters());
        assert!(arena > 0);
        let history = model.fit(&x, &y, &FitOptions { epochs: 99, ..options }).unwrap();
        assert_eq!(history.epochs(), 99);
        let after = model.counters();
        let what = device.name();
        assert_eq!(model.peak_arena_bytes().unwrap(), arena, "{what}: arena grew");
        assert_eq!(
            after.buffer_allocations, counters.buffer_allocations,
            "{what}: buffers created"
        );
        assert_eq!(
            after.pipeline_creations, counters.pipeline_creations,
            "{what}: pipelines created"
        );
        // Per epoch: two steps, and on the GPU one copy of the loss accumulator to read it.
        let submits = after.submits - counters.submits;
        assert!(
            (99 * 2..=99 * 3).contains(&submits),
            "{what}: {submits} submits in 99 epochs"
        );
    }
}

#[test]
fn a_profiled_step_times_every_kernel() {
    // The LSTM's unrolled step has more kernels than one GPU query set has timestamps.
    for (device, w) in devices()
        .into_iter()
        .flat_map(|d| [(d.clone(), Workload::Mlp), (d, Workload::Lstm)])
    {
        let mut model = w.compile(&device).unwrap();
        let (x, y) = w.data(w.batch(), 3);
        model.train_on_batch(&x, &y).unwrap();
        let dispatches = model.counters().dispatches;
        let times = model
            .profile_on_batch(&x, &y)
            .unwrap()
            .expect("lavapipe and the CPU time kernels");
        assert_eq!(
            times.len() as u64,
            dispatches,
            "{} {}: one time per kernel",
            w.name(),
            device.name()
        );
        assert!(times.iter().any(|t| t.kernel.starts_with("matmul") && t.seconds > 0.0));
        assert!(times.iter().all(|t| t.seconds.is_finite() && t.seconds >= 0.0));
        let shares = kiln_bench::measure::kernel_shares(&times);
        let total: f64 = shares.iter().map(|s| s.share).sum();
        assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
        assert!(shares.windows(2).all(|p| p[0].milliseconds >= p[1].milliseconds));
    }
}
