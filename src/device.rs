//! `Device`: the CPU reference or a GPU adapter, chosen at run time.

use std::sync::Arc;

use kiln_cpu::{CpuBackend, CpuThreads};
use kiln_graph::{Backend, Collective, Error, PersistentSpec, Result, Session};
use kiln_nn::DataParallel;
use kiln_wgpu::GpuBackend;

/// Where a model runs. Both variants execute the same plans; the CPU one is the reference the GPU
/// is tested against.
#[derive(Clone)]
pub enum Device {
    Cpu(CpuBackend),
    /// The CPU backend on a pool of its own with a fixed number of threads.
    CpuThreads(CpuThreads),
    Gpu(GpuBackend),
    /// One replica of the model per device, trained data-parallel ([`kiln_nn::DataParallel`]).
    DataParallel(DataParallel),
}

impl Device {
    /// The CPU reference backend.
    pub fn cpu() -> Self {
        Device::Cpu(CpuBackend)
    }

    /// The CPU backend on `threads` threads of its own (a data-parallel replica's share of the
    /// cores; see [`kiln_nn::DataParallel`]).
    pub fn cpu_threads(threads: usize) -> Result<Self> {
        Ok(Device::CpuThreads(CpuThreads::new(threads)?))
    }

    /// Data-parallel replicas on `devices` (Keras' `keras.distribution.DataParallel`): every
    /// training step splits its batch across them and averages their gradients. Several
    /// replicas of one device are allowed.
    pub fn data_parallel(devices: impl IntoIterator<Item = Device>) -> Result<Self> {
        let devices = devices.into_iter().map(|d| Arc::new(d) as Arc<dyn Backend>).collect();
        Ok(Device::DataParallel(
            DataParallel::new(devices).map_err(|e| Error::invalid("Device::data_parallel", e.to_string()))?,
        ))
    }

    /// The GPU adapter wgpu's conventions pick (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
    /// `WGPU_POWER_PREF`), or an error if there is none.
    pub fn gpu() -> Result<Self> {
        Ok(Device::Gpu(GpuBackend::from_env()?))
    }

    /// The best device here: `KILN_DEVICE=cpu|gpu` forces one; otherwise a hardware GPU if an
    /// adapter opens, else the CPU backend, with one line on stderr saying why. A software adapter
    /// (lavapipe, WARP: a CPU emulating a GPU) loses to the native CPU backend, so it is used only
    /// when forced.
    pub fn auto() -> Result<Self> {
        match std::env::var("KILN_DEVICE").as_deref() {
            Ok("cpu") => Ok(Device::cpu()),
            Ok("gpu") => Device::gpu(),
            Ok(other) => Err(Error::invalid(
                "KILN_DEVICE",
                format!("`{other}` is neither `cpu` nor `gpu`"),
            )),
            Err(_) => Ok(match GpuBackend::from_env() {
                Ok(gpu) if gpu.context().info.device_type == kiln_wgpu::wgpu::DeviceType::Cpu => {
                    eprintln!(
                        "kiln: the only GPU adapter is a software one ({}); running on the faster CPU backend \
                         (KILN_DEVICE=gpu to use it)",
                        gpu.name()
                    );
                    Device::cpu()
                }
                Ok(gpu) => Device::Gpu(gpu),
                Err(e) => {
                    eprintln!("kiln: no usable GPU ({e}); running on the CPU backend");
                    Device::cpu()
                }
            }),
        }
    }

    /// True for a GPU device.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    fn inner(&self) -> &dyn Backend {
        match self {
            Device::Cpu(b) => b,
            Device::CpuThreads(b) => b,
            Device::Gpu(b) => b,
            Device::DataParallel(b) => b,
        }
    }
}

impl Backend for Device {
    fn name(&self) -> String {
        self.inner().name()
    }

    fn new_session(&self, persistents: &[PersistentSpec]) -> Result<Box<dyn Session>> {
        self.inner().new_session(persistents)
    }

    fn replicas(&self) -> Option<&[Arc<dyn Backend>]> {
        self.inner().replicas()
    }

    fn collective(&self) -> Option<Arc<dyn Collective>> {
        self.inner().collective()
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}
