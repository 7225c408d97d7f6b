//! The harness's output: one record per device, printed as aligned tables or as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::measure::{MatmulReport, TrainReport};

/// Everything measured on one device.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceReport {
    /// `cpu`, `vulkan`, `metal`, `dx12` or `gl`.
    pub backend: String,
    pub device: String,
    pub workloads: Vec<TrainReport>,
    pub matmul: Vec<MatmulReport>,
    /// Workloads that failed on this device, with the error.
    pub errors: Vec<(String, String)>,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    pub host_threads: usize,
    pub devices: Vec<DeviceReport>,
}

fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(x: f64) -> String {
    if x < 100.0 {
        format!("{x:.1}")
    } else {
        thousands(x)
    }
}

impl Report {
    /// Aligned tables: training, kernels, matmul.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<8} {:<34} {:<11} {:>5} {:>12} {:>7} {:>10} {:>8} {:>11} {:>9} {:>12}",
            "backend",
            "device",
            "work",
            "batch",
            "train smp/s",
            "spread",
            "1st step s",
            "submits",
            "dispatches",
            "arena MiB",
            "infer smp/s"
        );
        for d in &self.devices {
            for w in &d.workloads {
                let _ = writeln!(
                    s,
                    "{:<8} {:<34} {:<11} {:>5} {:>12} {:>6.0}% {:>10.2} {:>8.2} {:>11.1} {:>9.1} {:>12}",
                    d.backend,
                    truncate(&d.device, 34),
                    w.workload,
                    w.batch,
                    rate(w.train_samples_per_s.median),
                    w.train_samples_per_s.spread() * 100.0,
                    w.first_step_seconds,
                    w.per_step.submits,
                    w.per_step.dispatches,
                    w.peak_arena_bytes as f64 / (1 << 20) as f64,
                    rate(w.inference_samples_per_s.median),
                );
            }
            for (what, e) in &d.errors {
                let _ = writeln!(
                    s,
                    "{:<8} {:<34} {:<11} failed: {e}",
                    d.backend,
                    truncate(&d.device, 34),
                    what
                );
            }
        }
        let _ = writeln!(s, "\ntop kernels per training step (share of summed kernel time)");
        for d in &self.devices {
            for w in &d.workloads {
                if w.kernels.is_empty() {
                    let _ = writeln!(s, "{:<8} {:<11} (no timestamp queries)", d.backend, w.workload);
                    continue;
                }
                let top: Vec<String> = w
                    .kernels
                    .iter()
                    .take(4)
                    .map(|k| {
                        format!(
                            "{} {:.0}% ({}×, {:.2} ms)",
                            k.kernel,
                            k.share * 100.0,
                            k.launches,
                            k.milliseconds
                        )
                    })
                    .collect();
                let _ = writeln!(s, "{:<8} {:<11} {}", d.backend, w.workload, top.join(", "));
            }
        }
        let _ = writeln!(s, "\nmatmul GFLOP/s (median [min–max])");
        for d in &self.devices {
            let cells: Vec<String> = d
                .matmul
                .iter()
                .map(|m| {
                    format!(
                        "{}: {:.1} [{:.1}–{:.1}]",
                        m.n, m.gflops.median, m.gflops.min, m.gflops.max
                    )
                })
                .collect();
            let _ = writeln!(s, "{:<8} {}", d.backend, cells.join("   "));
        }
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
