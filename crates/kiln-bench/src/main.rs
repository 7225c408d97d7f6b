//! `kiln-bench`: trains the standard workloads on every backend of this machine and reports
//! throughput, time to first step, work per step, per-kernel times and matmul GFLOP/s.
//!
//! ```text
//! cargo run --release -p kiln-bench -- [--quick] [--json] [--backend cpu,vulkan,...] [--workload mlp,cnn,embed,resnet,lstm,lstm_unrolled,gru,gru_unrolled,transformer,transformer_long,matmul] [--replicas N] [--policy NAME] [--cold]
//! ```

use std::process::ExitCode;

use kiln::nn::DTypePolicy;
use kiln::wgpu::{wgpu, GpuBackend};
use kiln::Device;
use kiln_bench::measure::{self, Settings};
use kiln_bench::report::{DeviceReport, Report};
use kiln_bench::workloads::Workload;

const USAGE: &str =
    "usage: kiln-bench [--quick] [--json] [--backend LIST] [--workload LIST] [--replicas N] [--policy NAME] [--cold]
  --quick          short windows and small matmuls (CI smoke run)
  --json           print the report as JSON instead of tables
  --backend LIST   comma-separated: cpu, vulkan, metal, dx12, gl (default: every one found)
  --workload LIST  comma-separated: mlp, cnn, embed, resnet, lstm, lstm_unrolled, gru,
                   gru_unrolled, transformer, transformer_long, matmul (default: all but the
                   unrolled ones, gru and transformer_long)
  --replicas N     train data-parallel on N replicas of each device (the CPU's threads split
                   evenly among them); the all-reduce shows as the kernel `all_reduce`
  --policy NAME    the workloads' precision: float32 (default) or mixed_float16
  --cold           disable the driver's shader cache (Mesa), so time to first step is a first run";

struct Args {
    quick: bool,
    json: bool,
    backends: Option<Vec<String>>,
    workloads: Vec<String>,
    replicas: usize,
    policy: DTypePolicy,
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
        replicas: 1,
        policy: DTypePolicy::Float32,
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
            "--replicas" => {
                args.replicas = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n >= 1)
                    .ok_or("--replicas needs a whole number of at least 1")?
            }
            "--policy" => {
                let name = it.next().ok_or("--policy needs a value")?;
                args.policy = DTypePolicy::from_name(&name).map_err(|e| e.to_string())?;
            }
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
    let settings = Settings {
        policy: args.policy,
        ..if args.quick { Settings::QUICK } else { Settings::FULL }
    };
    let wanted = |b: &str| args.backends.as_ref().is_none_or(|l| l.iter().any(|w| w == b));
    let mut devices = Vec::new();
    let host_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let replicas = args.replicas;
    if wanted("cpu") {
        let open = || -> kiln::Result<Device> {
            if replicas == 1 {
                return Ok(Device::cpu());
            }
            let threads = (host_threads / replicas).max(1);
            let cpus = (0..replicas)
                .map(|_| Device::cpu_threads(threads))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Device::data_parallel(cpus)?)
        };
        let name = open().map_or_else(|e| e.to_string(), |d| kiln::graph::Backend::name(&d));
        devices.push(run_device("cpu".into(), name, &open, &args, settings));
    }
    for info in GpuBackend::adapters() {
        let backend = backend_name(info.backend);
        if !wanted(&backend) {
            continue;
        }
        let open = || -> kiln::Result<Device> {
            let gpu = Device::Gpu(GpuBackend::open(info.backend, &info.name)?);
            if replicas == 1 {
                return Ok(gpu);
            }
            Ok(Device::data_parallel(vec![gpu; replicas])?)
        };
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
        host_threads,
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
