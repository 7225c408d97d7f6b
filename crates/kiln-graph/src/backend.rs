//! What an executor of plans provides. kiln-nn drives models through these traits; kiln-cpu and
//! kiln-wgpu implement them; the facade's `Device` picks one.

use std::sync::Arc;

use crate::{PersistentId, PersistentSpec, Plan, Result};

/// Work counters of a session, for tests and the benchmark harness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Command-buffer submissions (one per run on the GPU).
    pub submits: u64,
    /// Kernel launches.
    pub dispatches: u64,
    /// Device buffers created.
    pub buffer_allocations: u64,
    /// Device buffers freed by unloading plans (`buffer_allocations - buffer_releases` are live).
    pub buffer_releases: u64,
    /// Compute pipelines created (cache misses).
    pub pipeline_creations: u64,
    /// Parameters or optimizer state read back to the host (saving a model does; fit must not).
    pub parameter_reads: u64,
}

/// Time one kernel took in a profiled run.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The kernel (GPU entry point, or CPU op name).
    pub kernel: String,
    pub seconds: f64,
}

/// A place plans run: the CPU reference or a GPU adapter.
pub trait Backend: Send + Sync {
    /// Human-readable name, e.g. `cpu (2 threads)` or `llvmpipe (Vulkan)`.
    fn name(&self) -> String;

    /// Creates the persistent tensors of one model (zero-filled) and an empty plan cache.
    fn new_session(&self, persistents: &[PersistentSpec]) -> Result<Box<dyn Session>>;

    /// The devices a data-parallel strategy spreads a model over, one replica each; `None` (the
    /// default) for a single device.
    fn replicas(&self) -> Option<&[Arc<dyn Backend>]> {
        None
    }

    /// The processes a data-parallel strategy spans beyond this one (MPI ranks); `None` (the
    /// default) for training in one process.
    fn collective(&self) -> Option<Arc<dyn Collective>> {
        None
    }
}

/// Sums across the processes of a distributed job (MPI ranks): the one exchange data-parallel
/// training across processes needs. Every process makes the same calls in the same order.
pub trait Collective: Send + Sync {
    /// This process's index, `0..size`.
    fn rank(&self) -> usize;

    /// Processes in the job.
    fn size(&self) -> usize;

    /// Replaces `values` by their elementwise sum over every process. When a process is gone the
    /// wait is bounded: an error or the end of the job, never a hang.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;
}

/// Handle of a plan loaded into a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlanId(pub usize);

/// One model's state on one backend: its persistent tensors and its compiled plans.
pub trait Session: Send {
    /// Overwrites a persistent tensor (initial weights, a loaded checkpoint, an accumulator reset).
    fn write_persistent(&mut self, id: PersistentId, data: &[f32]) -> Result<()>;

    /// Reads a persistent tensor back to the host.
    fn read_persistent(&mut self, id: PersistentId) -> Result<Vec<f32>>;

    /// Turns a plan into an executable once: pipelines, arena and bindings are built here, never
    /// during [`Session::run`].
    fn load(&mut self, plan: Arc<Plan>) -> Result<PlanId>;

    /// Frees a loaded plan's arena and bindings; its id is invalid afterwards.
    fn unload(&mut self, plan: PlanId) -> Result<()>;

    /// Uploads the named inputs and runs every step of the plan. Inputs the plan does not use are
    /// ignored; a missing one is an error.
    fn run(&mut self, plan: PlanId, inputs: &[(&str, &[f32])]) -> Result<()>;

    /// Reads the plan's outputs as left by the most recent run, waiting for it to finish.
    fn read_outputs(&mut self, plan: PlanId) -> Result<Vec<Vec<f32>>>;

    /// Runs the plan once per batch, `batches` times, like [`Session::run`] then
    /// [`Session::read_outputs`]: `feed(i)` gives batch `i`'s inputs and `outputs(i, values)` takes
    /// its outputs (what `predict` does). A backend may keep its workers busy across the whole loop
    /// (the CPU backend enters its thread pool once for all the batches, not once per batch).
    fn run_each<'a>(
        &mut self,
        plan: PlanId,
        batches: usize,
        feed: &mut (dyn FnMut(usize) -> Vec<(&'a str, &'a [f32])> + Send),
        outputs: &mut (dyn FnMut(usize, Vec<Vec<f32>>) + Send),
    ) -> Result<()> {
        run_batches(self, plan, batches, feed, outputs)
    }

    /// Waits until every submitted run has finished on the device (for timing; runs themselves do
    /// not wait).
    fn finish(&mut self) -> Result<()>;

    /// Runs the plan once like [`Session::run`], timing each kernel: on the GPU with timestamp
    /// queries around every dispatch, on the CPU with the host clock. `None` where the device
    /// cannot time kernels. Slower than `run` (one pass per kernel); for the benchmark harness.
    fn profile(&mut self, plan: PlanId, inputs: &[(&str, &[f32])]) -> Result<Option<Vec<KernelTime>>>;

    /// Marks a restore point: the parameters and optimizer state as the next run starts from them
    /// are kept on the device (copied there in that run's own submission — no readback, no extra
    /// submit), so that [`Session::restore`] can go back to them.
    fn keep_restore_point(&mut self) -> Result<()>;

    /// Puts back the parameters and optimizer state of the last restore point (nothing to do when
    /// no run has happened since it was marked). An error when none was marked.
    fn restore(&mut self) -> Result<()>;

    /// Bytes of the plan's arena of transient tensors.
    fn arena_bytes(&self, plan: PlanId) -> Result<usize>;

    /// Work counters since the session was created.
    fn counters(&self) -> Counters;
}

/// [`Session::run_each`]'s loop: run, then read the outputs back, batch by batch. The default
/// method, and what a backend's own `run_each` wraps.
pub fn run_batches<'a, S: Session + ?Sized>(
    session: &mut S,
    plan: PlanId,
    batches: usize,
    feed: &mut (dyn FnMut(usize) -> Vec<(&'a str, &'a [f32])> + Send),
    outputs: &mut (dyn FnMut(usize, Vec<Vec<f32>>) + Send),
) -> Result<()> {
    for i in 0..batches {
        session.run(plan, &feed(i))?;
        outputs(i, session.read_outputs(plan)?);
    }
    Ok(())
}
