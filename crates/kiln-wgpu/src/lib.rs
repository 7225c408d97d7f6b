//! The GPU backend: executes kiln-graph plans as hand-written WGSL compute kernels through wgpu, on
//! Vulkan, Metal, DX12 or GL alike.

pub mod context;
pub mod kernels;
pub mod session;
pub mod shaders;

use std::sync::Arc;

use kiln_graph::{Backend, PersistentSpec, Result, Session};

pub use context::GpuContext;
pub use session::GpuSession;

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
