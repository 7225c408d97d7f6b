//! Measuring one workload on one device: steady-state throughput over timed windows, time to the
//! first step, work counted per step, per-kernel times, arena size, and inference throughput.

use std::time::Instant;

use kiln::graph::{Backend, KernelTime, PersistentId};
use kiln::prelude::*;
use serde::Serialize;

use crate::workloads::{matmul_plan, Workload};

/// How long and how often to measure.
/// Batch size of the inference windows: `predict` at 256, whatever the training batch.
pub const INFER_BATCH: usize = 256;

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Timed windows after warm-up; the median is reported.
    pub windows: usize,
    /// Target length of one window (each is at least one step).
    pub window_seconds: f64,
    /// Matmul sizes.
    pub matmul_sizes: &'static [usize],
    /// The precision the workloads train in.
    pub policy: DTypePolicy,
}

impl Settings {
    pub const FULL: Settings = Settings {
        windows: 5,
        window_seconds: 1.0,
        matmul_sizes: &[256, 512, 1024, 2048],
        policy: DTypePolicy::Float32,
    };
    /// A smoke run for CI: every workload, short windows.
    pub const QUICK: Settings = Settings {
        windows: 2,
        window_seconds: 0.2,
        matmul_sizes: &[256, 512],
        policy: DTypePolicy::Float32,
    };
}

/// Median and range of a set of rates.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let median = match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Stats {
            median,
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Spread as a fraction of the median: (max − min) / median.
    pub fn spread(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

/// One kernel's share of a profiled training step (launches of the same kernel summed).
#[derive(Clone, Debug, Serialize)]
pub struct KernelShare {
    pub kernel: String,
    pub launches: usize,
    pub milliseconds: f64,
    /// Fraction of the step's summed kernel time.
    pub share: f64,
}

/// Kernel times summed by kernel name, largest first.
pub fn kernel_shares(times: &[KernelTime]) -> Vec<KernelShare> {
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    let mut by_name: Vec<KernelShare> = Vec::new();
    for t in times {
        match by_name.iter_mut().find(|s| s.kernel == t.kernel) {
            Some(s) => {
                s.launches += 1;
                s.milliseconds += t.seconds * 1e3;
            }
            None => by_name.push(KernelShare {
                kernel: t.kernel.clone(),
                launches: 1,
                milliseconds: t.seconds * 1e3,
                share: 0.0,
            }),
        }
    }
    for s in &mut by_name {
        s.share = if total > 0.0 {
            s.milliseconds * 1e-3 / total
        } else {
            0.0
        };
    }
    by_name.sort_by(|a, b| b.milliseconds.total_cmp(&a.milliseconds));
    by_name
}

/// What one steady-state training step costs in work, from the session's counters.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PerStep {
    pub submits: f64,
    pub dispatches: f64,
    /// Device buffers created per step (0 in steady state).
    pub buffer_allocations: f64,
    /// Pipelines created per step (0 in steady state).
    pub pipeline_creations: f64,
}

/// Everything measured for one training workload on one device.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub workload: &'static str,
    pub batch: usize,
    /// Training samples per second over the timed windows.
    pub train_samples_per_s: Stats,
    pub steps_per_window: usize,
    /// Device opened, model compiled (pipelines created) and one step finished.
    pub first_step_seconds: f64,
    pub per_step: PerStep,
    pub peak_arena_bytes: usize,
    pub inference_samples_per_s: Stats,
    /// Per-kernel GPU (or host) time of one profiled step; empty where the device cannot time.
    pub kernels: Vec<KernelShare>,
}

/// Runs `steps` training steps on `model` and returns the counters' difference per step.
pub fn per_step(model: &mut Model, x: &Tensor, y: &Tensor, steps: usize) -> Result<PerStep> {
    let before = model.counters();
    for _ in 0..steps {
        model.train_on_batch(x, y)?;
    }
    let after = model.counters();
    let per = |a: u64, b: u64| (a - b) as f64 / steps as f64;
    Ok(PerStep {
        submits: per(after.submits, before.submits),
        dispatches: per(after.dispatches, before.dispatches),
        buffer_allocations: per(after.buffer_allocations, before.buffer_allocations),
        pipeline_creations: per(after.pipeline_creations, before.pipeline_creations),
    })
}

/// Measures `workload` on a device that `open` creates fresh (so the first step pays for every
/// pipeline, as on a first run).
pub fn train<D: Backend>(
    workload: Workload,
    open: impl FnOnce() -> Result<D>,
    settings: Settings,
) -> Result<TrainReport> {
    let batch = workload.batch();
    let start = Instant::now();
    let device = open()?;
    let mut model = workload.compile_with(&device, settings.policy)?;
    let (x1, y1) = workload.data(batch, 7);
    model.train_on_batch(&x1, &y1)?;
    let first_step_seconds = start.elapsed().as_secs_f64();

    // Steady-state work per step, and a rate estimate that sizes the windows.
    let probe = Instant::now();
    let per_step = per_step(&mut model, &x1, &y1, 2)?;
    let step_seconds = probe.elapsed().as_secs_f64() / 2.0;
    let steps = ((settings.window_seconds / step_seconds).ceil() as usize).clamp(1, 500);
    let (x, y) = workload.data(steps * batch, 11);

    let fit = |model: &mut Model, seed: u64| -> Result<f64> {
        let t = Instant::now();
        // An epoch ends by reading the loss accumulator, which waits for the device.
        model.fit(&x, &y, &FitOptions::new(1, batch).verbose(0).seed(seed))?;
        Ok((steps * batch) as f64 / t.elapsed().as_secs_f64())
    };
    fit(&mut model, 0)?; // warm-up: the plan for the last (full) batch, caches, clocks.
    let rates = (0..settings.windows)
        .map(|i| fit(&mut model, i as u64 + 1))
        .collect::<Result<Vec<f64>>>()?;

    let kernels = model
        .profile_on_batch(&x1, &y1)?
        .map(|t| kernel_shares(&t))
        .unwrap_or_default();

    model.predict(&x, INFER_BATCH)?; // warm-up: the prediction plan.
    let inference = (0..settings.windows.min(3))
        .map(|_| {
            let t = Instant::now();
            model.predict(&x, INFER_BATCH)?;
            Ok(x.rows() as f64 / t.elapsed().as_secs_f64())
        })
        .collect::<Result<Vec<f64>>>()?;

    Ok(TrainReport {
        workload: workload.name(),
        batch,
        train_samples_per_s: Stats::of(&rates),
        steps_per_window: steps,
        first_step_seconds,
        per_step,
        peak_arena_bytes: model.peak_arena_bytes()?,
        inference_samples_per_s: Stats::of(&inference),
        kernels,
    })
}

/// GEMM throughput at one size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MatmulReport {
    pub n: usize,
    pub gflops: Stats,
}

/// Square f32 matmul at each of `settings.matmul_sizes`: runs back to back in windows, waiting
/// for the device at the end of each.
pub fn matmul(device: &dyn Backend, settings: Settings) -> Result<Vec<MatmulReport>> {
    settings
        .matmul_sizes
        .iter()
        .map(|&n| {
            let (plan, specs) = matmul_plan(n)?;
            let mut session = device.new_session(&specs)?;
            let values: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32 - 48.0) / 97.0).collect();
            session.write_persistent(PersistentId(0), &values)?;
            session.write_persistent(PersistentId(1), &values)?;
            let id = session.load(std::sync::Arc::new(plan))?;
            let t = Instant::now();
            session.run(id, &[])?;
            session.finish()?;
            let once = t.elapsed().as_secs_f64();
            let reps = ((settings.window_seconds / once).ceil() as usize).clamp(1, 1000);
            let flops = 2.0 * (n as f64).powi(3);
            let rates = (0..settings.windows.max(2))
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        session.run(id, &[])?;
                    }
                    session.finish()?;
                    Ok(flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9)
                })
                .collect::<Result<Vec<f64>>>()?;
            Ok(MatmulReport {
                n,
                gflops: Stats::of(&rates),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_take_the_middle_and_the_range() {
        let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert_eq!(Stats::of(&[4.0, 1.0, 9.0]).median, 4.0);
        assert!((s.spread() - 3.6).abs() < 1e-12);
    }
}
