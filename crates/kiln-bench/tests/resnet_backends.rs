//! The residual CNN with BatchNormalization (the `resnet` workload, `examples/residual_cnn.rs`) on
//! the MNIST sample: the GPU's first 20 batch losses agree with the CPU's (lavapipe in CI, where a
//! missing adapter fails the test).

use kiln::prelude::*;
use kiln::wgpu::GpuBackend;
use kiln_bench::workloads::Workload;

#[test]
fn the_first_20_batch_losses_agree_between_cpu_and_gpu() {
    let gpu = match GpuBackend::from_env() {
        Ok(g) => Device::Gpu(g),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI requires a GPU adapter: {e}"),
        Err(e) => return eprintln!("no GPU adapter, skipped outside CI: {e}"),
    };
    let data = datasets::mnist().unwrap();
    let x = data
        .x_train
        .slice_rows(0..640)
        .map(|p| p / 255.0)
        .reshape([640, 28, 28, 1])
        .unwrap();
    let y = data.y_train.slice_rows(0..640);
    let options = FitOptions::new(1, 32).seed(1).record_batch_loss();
    let mut losses = Vec::new();
    for device in [Device::cpu(), gpu] {
        let mut model = Workload::Resnet.compile(&device).unwrap();
        let history = model.fit(&x, &y, &options).unwrap();
        assert_eq!(history.batch_loss.len(), 20);
        losses.push(history.batch_loss);
    }
    // The first batch sees the same weights on both (one forward pass apart by rounding); after
    // it, Adam's normalised steps turn rounding-sized gradient differences into full-sized ones.
    // Since both backends sum long reductions and products in blocks of 128 in the same order,
    // the largest gap over the 20 batches is 6.4e-4 on a 2-core AVX2 machine (1.9e-3 before).
    let diffs: Vec<f32> = losses[0].iter().zip(&losses[1]).map(|(c, g)| (c - g).abs()).collect();
    assert!(diffs[0] <= 1e-5, "first batch: {diffs:?}");
    for (step, &d) in diffs.iter().enumerate() {
        assert!(d <= 1e-3, "batch {step}: |CPU - GPU| = {d}; every batch: {diffs:?}");
    }
    // And the loss came down: the model trains.
    assert!(losses[0][19] < losses[0][0], "{:?}", losses[0]);
}
