//! The CPU reference backend: executes kiln-graph plans on host memory, generic over f32 (for
//! parity with the GPU) and f64 (for finite-difference gradient checks).

pub mod executor;
pub mod fastmath;
pub mod ops;
pub mod pool;
mod real;
pub mod simd;
pub mod subnormals;

use std::sync::Arc;

use rayon::prelude::*;

use kiln_graph::{
    Backend, Counters, Error, KernelTime, PersistentId, PersistentKind, PersistentSpec, Plan, PlanId, Result, Session,
};

pub use real::Real;

/// Elements per task when inputs are copied into the arena (256 KiB of f32).
const UPLOAD_CHUNK: usize = 1 << 16;

/// The CPU backend. Plans run on its own thread pool ([`pool`]); matmuls use every worker through
/// the `gemm` crate.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> String {
        let threads = pool::threads();
        format!("cpu ({threads} threads)")
    }

    fn new_session(&self, persistents: &[PersistentSpec]) -> Result<Box<dyn Session>> {
        Ok(Box::new(CpuSession::<f32>::try_new(persistents)?))
    }
}

/// The CPU backend on a pool of its own with a fixed number of threads, rather than the shared
/// one with a thread per core: what a data-parallel replica runs on when the cores are split
/// between replicas. Its sessions share the pool.
#[derive(Clone, Debug)]
pub struct CpuThreads {
    workers: pool::Workers,
}

impl CpuThreads {
    /// A pool of `threads` workers (at least 1), started now.
    pub fn new(threads: usize) -> Result<Self> {
        Ok(CpuThreads {
            workers: pool::Workers::own(threads)?,
        })
    }
}

impl Backend for CpuThreads {
    fn name(&self) -> String {
        format!("cpu ({} threads, own pool)", self.workers.threads())
    }

    fn new_session(&self, persistents: &[PersistentSpec]) -> Result<Box<dyn Session>> {
        let mut session = CpuSession::<f32>::try_new(persistents)?;
        session.workers = self.workers.clone();
        Ok(Box::new(session))
    }
}

/// A plan loaded in a CPU session, with its arena.
struct CpuPlan<T> {
    plan: Arc<Plan>,
    arena: Vec<T>,
}

/// A model's state on the CPU, in element type `T`.
pub struct CpuSession<T> {
    specs: Vec<PersistentSpec>,
    persistents: Vec<Vec<T>>,
    /// Loaded plans by id; `None` once unloaded.
    plans: Vec<Option<CpuPlan<T>>>,
    counters: Counters,
    /// The training state of the last restore point (see [`Session::keep_restore_point`]).
    restore_point: Vec<Vec<T>>,
    /// Whether a restore point is marked but not yet taken (it is taken as the next run starts).
    restore_pending: bool,
    /// Where its plans run.
    workers: pool::Workers,
}

impl<T: Real> CpuSession<T> {
    /// Zero-filled persistents for `specs`.
    ///
    /// # Panics
    /// When memory cannot hold them; [`CpuSession::try_new`] is the checked form (the backend uses it).
    pub fn new(specs: &[PersistentSpec]) -> Self {
        Self::try_new(specs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Zero-filled persistents for `specs`, or an error naming the tensor that did not fit in memory.
    pub fn try_new(specs: &[PersistentSpec]) -> Result<Self> {
        let persistents = specs
            .iter()
            .map(|s| {
                let too_big = || {
                    Error::device(
                        "cpu",
                        format!("{} {} does not fit in this machine's memory", s.name, s.shape),
                    )
                };
                let n = s.shape.checked_numel().ok_or_else(too_big)?;
                let mut v = Vec::new();
                v.try_reserve_exact(n).map_err(|_| too_big())?;
                v.resize(n, T::zero());
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CpuSession {
            specs: specs.to_vec(),
            persistents,
            plans: Vec::new(),
            restore_point: Vec::new(),
            restore_pending: false,
            workers: pool::Workers::default(),
            counters: Counters {
                buffer_allocations: specs.len() as u64,
                ..Counters::default()
            },
        })
    }

    fn spec(&self, id: PersistentId) -> Result<&PersistentSpec> {
        self.specs
            .get(id.0)
            .ok_or_else(|| Error::invalid("session", format!("no persistent tensor #{}", id.0)))
    }

    /// Writes a persistent tensor in `T`.
    pub fn write_typed(&mut self, id: PersistentId, data: &[T]) -> Result<()> {
        let spec = self.spec(id)?;
        if data.len() != spec.shape.numel() {
            return Err(Error::shape(
                &spec.name,
                format!("{} values", data.len()),
                format!("{} for shape {}", spec.shape.numel(), spec.shape),
            ));
        }
        self.persistents[id.0].copy_from_slice(data);
        Ok(())
    }

    /// Reads a persistent tensor in `T`.
    pub fn read_typed(&self, id: PersistentId) -> Result<Vec<T>> {
        self.spec(id)?;
        Ok(self.persistents[id.0].clone())
    }

    /// Loads a plan; see [`Session::load`].
    pub fn load_plan(&mut self, plan: Arc<Plan>) -> Result<PlanId> {
        if plan.persistents != self.specs {
            return Err(Error::invalid("session", "plan was built for another model's tensors"));
        }
        let mut arena = Vec::new();
        arena.try_reserve_exact(plan.arena_len).map_err(|_| {
            Error::device(
                "cpu",
                format!(
                    "the plan's arena needs {} MiB, which this machine cannot allocate; use a smaller batch",
                    (plan.arena_len * std::mem::size_of::<T>()) >> 20
                ),
            )
        })?;
        arena.resize(plan.arena_len, T::zero());
        self.counters.buffer_allocations += 1;
        for (r, data) in &plan.constants {
            for (a, &v) in arena[r.range()].iter_mut().zip(data.iter()) {
                *a = T::of(v);
            }
        }
        self.plans.push(Some(CpuPlan { arena, plan }));
        Ok(PlanId(self.plans.len() - 1))
    }

    fn loaded(&mut self, id: PlanId) -> Result<&mut CpuPlan<T>> {
        self.plans
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::invalid("session", format!("no plan #{}", id.0)))
    }

    /// Runs a plan with inputs in `T`.
    pub fn run_typed(&mut self, id: PlanId, inputs: &[(&str, &[T])]) -> Result<()> {
        self.execute(id, inputs, |x| x, |plan, mem| executor::run_plan(plan, mem))
    }

    /// Uploads `inputs` (in `T`, or in the f32 the host API speaks, converted while they are
    /// copied into the arena: no intermediate buffer) and hands the plan and its memory to `exec`.
    fn execute<U: Copy + Sync, R: Send>(
        &mut self,
        id: PlanId,
        inputs: &[(&str, &[U])],
        convert: impl Fn(U) -> T + Sync,
        exec: impl FnOnce(&Plan, &mut executor::Memory<'_, T>) -> R + Send,
    ) -> Result<R> {
        let loaded = self
            .plans
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::invalid("session", format!("no plan #{}", id.0)))?;
        if std::mem::take(&mut self.restore_pending) {
            let kept = self
                .specs
                .iter()
                .zip(&self.persistents)
                .filter(|(s, _)| s.kind.is_training_state());
            self.restore_point.resize(kept.clone().count(), Vec::new());
            for (slot, (_, p)) in self.restore_point.iter_mut().zip(kept) {
                slot.clone_from(p);
            }
        }
        let uploads = loaded.plan.match_inputs(inputs)?;
        let mut mem = executor::Memory {
            arena: &mut loaded.arena,
            persistents: &mut self.persistents,
        };
        let plan = &loaded.plan;
        let out = self.workers.run(|| {
            // A batch of inputs is megabytes (mlp inference: 0.8 MB per batch of 256): copied
            // by every worker, a chunk each, rather than by one thread while the others wait.
            for (offset, data) in uploads {
                let arena = &mut mem.arena[offset..offset + data.len()];
                arena
                    .par_chunks_mut(UPLOAD_CHUNK)
                    .zip(data.par_chunks(UPLOAD_CHUNK))
                    .for_each(|(a, x)| {
                        a.iter_mut().zip(x).for_each(|(a, &x)| *a = convert(x));
                    });
            }
            exec(plan, &mut mem)
        });
        self.counters.submits += 1;
        self.counters.dispatches += loaded.plan.steps.len() as u64;
        Ok(out)
    }

    /// The plan's outputs in `T`, from the last run.
    pub fn outputs_typed(&mut self, id: PlanId) -> Result<Vec<Vec<T>>> {
        let loaded = self.loaded(id)?;
        Ok(loaded
            .plan
            .outputs
            .iter()
            .map(|r| loaded.arena[r.range()].to_vec())
            .collect())
    }
}

impl<T: Real> Session for CpuSession<T> {
    fn write_persistent(&mut self, id: PersistentId, data: &[f32]) -> Result<()> {
        let v: Vec<T> = data.iter().map(|&x| T::of(x)).collect();
        self.write_typed(id, &v)
    }

    fn read_persistent(&mut self, id: PersistentId) -> Result<Vec<f32>> {
        if self.spec(id)?.kind != PersistentKind::Accumulator {
            self.counters.parameter_reads += 1;
        }
        Ok(self.read_typed(id)?.into_iter().map(Real::to_f32).collect())
    }

    fn load(&mut self, plan: Arc<Plan>) -> Result<PlanId> {
        self.load_plan(plan)
    }

    fn run(&mut self, plan: PlanId, inputs: &[(&str, &[f32])]) -> Result<()> {
        self.execute(plan, inputs, T::of, |plan, mem| executor::run_plan(plan, mem))
    }

    fn run_each<'a>(
        &mut self,
        plan: PlanId,
        batches: usize,
        feed: &mut (dyn FnMut(usize) -> Vec<(&'a str, &'a [f32])> + Send),
        outputs: &mut (dyn FnMut(usize, Vec<Vec<f32>>) + Send),
    ) -> Result<()> {
        // The whole loop on the pool: each run's own entry is then a call on a worker already
        // there (measured ~15–25 µs per hand-off from another thread, an eighth of a batch of
        // the embed workload's inference).
        let workers = self.workers.clone();
        workers.run(|| kiln_graph::run_batches(self, plan, batches, feed, outputs))
    }

    fn profile(&mut self, plan: PlanId, inputs: &[(&str, &[f32])]) -> Result<Option<Vec<KernelTime>>> {
        self.execute(plan, inputs, T::of, |plan, mem| {
            Some(executor::run_plan_timed(plan, mem))
        })
    }

    fn keep_restore_point(&mut self) -> Result<()> {
        self.restore_pending = true;
        Ok(())
    }

    fn restore(&mut self) -> Result<()> {
        if self.restore_pending {
            return Ok(());
        }
        let kept = self
            .specs
            .iter()
            .zip(&mut self.persistents)
            .filter(|(s, _)| s.kind.is_training_state());
        let mut saved = self.restore_point.iter();
        for (_, p) in kept {
            let Some(s) = saved.next() else {
                return Err(Error::invalid("restore", "no restore point was marked"));
            };
            p.copy_from_slice(s);
        }
        Ok(())
    }

    fn unload(&mut self, plan: PlanId) -> Result<()> {
        self.loaded(plan)?;
        self.plans[plan.0] = None;
        self.counters.buffer_releases += 1;
        Ok(())
    }

    fn arena_bytes(&self, plan: PlanId) -> Result<usize> {
        self.plans
            .get(plan.0)
            .and_then(Option::as_ref)
            .map(|l| l.plan.arena_len * 4)
            .ok_or_else(|| Error::invalid("session", format!("no plan #{}", plan.0)))
    }

    fn read_outputs(&mut self, plan: PlanId) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .outputs_typed(plan)?
            .into_iter()
            .map(|v| v.into_iter().map(Real::to_f32).collect())
            .collect())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}
