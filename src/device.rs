//! `Device`: the CPU reference or a GPU adapter, chosen at run time.

use kiln_cpu::CpuBackend;
use kiln_graph::{Backend, Error, PersistentSpec, Result, Session};
use kiln_wgpu::GpuBackend;

/// Where a model runs. Both variants execute the same plans; the CPU one is the reference the GPU
/// is tested against.
#[derive(Clone)]
pub enum Device {
    Cpu(CpuBackend),
    Gpu(GpuBackend),
}

impl Device {
    /// The CPU reference backend.
    pub fn cpu() -> Self {
        Device::Cpu(CpuBackend)
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
            Device::Gpu(b) => b,
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
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}
