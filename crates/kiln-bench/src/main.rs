//! `kiln-bench`: trains the standard workloads on every backend of this machine and reports
//! throughput, time to first step, work per step, per-kernel times and matmul GFLOP/s.
//!
//! ```text
//! cargo run --release -p kiln-bench -- [--quick] [--json] [--backend cpu,vulkan,...] [--workload mlp,cnn,embed,resnet,lstm,lstm_unrolled,transformer,matmul] [--cold]
//! ```

use std::process::ExitCode;

use kiln::cpu::CpuBackend;
use kiln::wgpu::{wgpu, GpuBackend};
use kiln::Device;
use kiln_bench::measure::{self, Settings};
use kiln_bench::report::{DeviceReport, Report};
use kiln_bench::workloads::Workload;

const USAGE: &str = "usage: kiln-bench [--quick] [--json] [--backend LIST] [--workload LIST] [--cold]
  --quick          short windows and small matmuls (CI smoke run)
  --json           print the report as JSON instead of tables
  --backend LIST   comma-separated: cpu, vulkan, metal, dx12, gl (default: every one found)
  --workload LIST  comma-separated: mlp, cnn, embed, resnet, lstm, lstm_unrolled, transformer,
                   matmul (default: all but lstm_unrolled)
  --cold           disable the driver's shader cache (Mesa), so time to first step is a first run";

struct Args {
    quick: bool,
    json: bool,
    backends: Option<Vec<String>>,
    workloads: Vec<String>,
    cold: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        json: false,
        backends: None,
        workloads: vec![
            "mlp".into(),
            "cnn".into(),
            "embed".into(),
            "resnet".into(),
            "lstm".into(),
            "transformer".into(),
            "matmul".into(),
        ],
        cold: false,
    };
    let mut it = std::env::args().skip(1);
    let list = |v: Option<String>, flag: &str| -> Result<Vec<String>, String> {
        v.map(|s| s.split(',').map(|p| p.trim().to_lowercase()).collect())
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--json" => args.json = true,
            "--cold" => args.cold = true,
            "--backend" => args.backends = Some(list(it.next(), "--backend")?),
            "--workload" => args.workloads = list(it.next(), "--workload")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    for w in &args.workloads {
        if w != "matmul" && Workload::from_name(w).is_none() {
            return Err(format!("unknown workload `{w}`"));
        }
    }
    Ok(args)
}

/// wgpu's name for a backend, as `--backend` takes it.
fn backend_name(b: wgpu::Backend) -> String {
    match b {
        wgpu::Backend::Vulkan => "vulkan".into(),
        wgpu::Backend::Metal => "metal".into(),
        wgpu::Backend::Dx12 => "dx12".into(),
        wgpu::Backend::Gl => "gl".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn run_device(
    backend: String,
    device: String,
    open: &dyn Fn() -> kiln::Result<Device>,
    args: &Args,
    settings: Settings,
) -> DeviceReport {
    let mut report = DeviceReport {
        backend,
        device,
        workloads: Vec::new(),
        matmul: Vec::new(),
        errors: Vec::new(),
    };
    for name in &args.workloads {
        eprintln!("kiln-bench: {} {} ...", report.backend, name);
        let result = match Workload::from_name(name) {
            Some(w) => measure::train(w, open, settings).map(|r| report.workloads.push(r)),
            None => open()
                .and_then(|d| measure::matmul(&d, settings))
                .map(|m| report.matmul = m),
        };
        if let Err(e) = result {
            report.errors.push((name.clone(), e.to_string()));
        }
    }
    report
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kiln-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.cold {
        // Read by Mesa when the device opens; nothing else in this process depends on it.
        std::env::set_var("MESA_SHADER_CACHE_DISABLE", "true");
    }
    let settings = if args.quick { Settings::QUICK } else { Settings::FULL };
    let wanted = |b: &str| args.backends.as_ref().is_none_or(|l| l.iter().any(|w| w == b));
    let mut devices = Vec::new();
    if wanted("cpu") {
        let cpu = CpuBackend;
        devices.push(run_device(
            "cpu".into(),
            kiln::graph::Backend::name(&cpu),
            &|| Ok(Device::cpu()),
            &args,
            settings,
        ));
    }
    for info in GpuBackend::adapters() {
        let backend = backend_name(info.backend);
        if !wanted(&backend) {
            continue;
        }
        let open = || Ok(GpuBackend::open(info.backend, &info.name).map(Device::Gpu)?);
        devices.push(run_device(backend, info.name.clone(), &open, &args, settings));
    }
    if devices.is_empty() {
        eprintln!(
            "kiln-bench: no device matches --backend {:?}",
            args.backends.unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    let report = Report {
        quick: args.quick,
        host_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        devices,
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("kiln-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
    }
    if report.devices.iter().any(|d| !d.errors.is_empty()) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
