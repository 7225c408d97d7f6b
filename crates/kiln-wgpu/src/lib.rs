//! The GPU backend: executes kiln-graph plans as hand-written WGSL compute kernels through wgpu, on
//! Vulkan, Metal, DX12 or GL alike.

pub mod context;
pub mod kernels;
mod record;
pub mod session;
pub mod shaders;

use std::sync::Arc;

use kiln_graph::{Backend, PersistentSpec, Result, Session};

pub use context::GpuContext;
pub use kernels::Caps;
pub use session::GpuSession;
pub use wgpu;

/// A GPU adapter as a [`Backend`]. Cloning shares the device and its pipeline cache.
#[derive(Clone)]
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
}

impl GpuBackend {
    /// Opens the adapter chosen by wgpu's environment conventions (see [`GpuContext::from_env`]).
    pub fn from_env() -> Result<Self> {
        Ok(GpuBackend {
            ctx: Arc::new(GpuContext::from_env()?),
        })
    }

    /// Every adapter wgpu finds on any of its backends (Vulkan, Metal, DX12, GL).
    pub fn adapters() -> Vec<wgpu::AdapterInfo> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .iter()
            .map(wgpu::Adapter::get_info)
            .collect()
    }

    /// Opens a new device, with its own empty pipeline cache, on the adapter that [`Self::adapters`]
    /// lists with this backend and name.
    pub fn open(backend: wgpu::Backend, name: &str) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = pollster::block_on(instance.enumerate_adapters(backend.into()))
            .into_iter()
            .find(|a| a.get_info().name == name)
            .ok_or_else(|| kiln_graph::Error::device(name, format!("no such adapter on {backend:?}")))?;
        Ok(GpuBackend {
            ctx: Arc::new(GpuContext::from_adapter(adapter)?),
        })
    }

    /// A new device on the same adapter whose kernel table sees the capabilities as `restrict`
    /// leaves them: the parity tests use it to run, on one machine, the kernels that other adapters
    /// get (storage-buffer operands instead of texel copies, no subgroups).
    pub fn with_caps(&self, restrict: impl FnOnce(&mut Caps)) -> Result<Self> {
        self.reopened(|ctx| restrict(&mut ctx.caps))
    }

    /// A new device on the same adapter whose size checks (buffers, bindings, dispatch grids) see
    /// the limits as `restrict` leaves them: tests use it to act out a smaller device, whose limits
    /// a plan reaches at small shapes.
    pub fn with_limits(&self, restrict: impl FnOnce(&mut wgpu::Limits)) -> Result<Self> {
        self.reopened(|ctx| restrict(&mut ctx.limits))
    }

    /// A new device on the same adapter, its context adjusted by `adjust` before anything uses it.
    fn reopened(&self, adjust: impl FnOnce(&mut GpuContext)) -> Result<Self> {
        let mut fresh = Self::open(self.ctx.info.backend, &self.ctx.info.name)?;
        adjust(Arc::get_mut(&mut fresh.ctx).expect("a freshly opened context is not shared"));
        Ok(fresh)
    }

    /// The device context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        self.ctx.name()
    }

    fn new_session(&self, persistents: &[PersistentSpec]) -> Result<Box<dyn Session>> {
        Ok(Box::new(GpuSession::new(self.ctx.clone(), persistents)?))
    }
}
