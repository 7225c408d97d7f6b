//! The sessions a compiled model runs on: one, or one per device of a [`crate::DataParallel`],
//! and the other processes of the job when it spans several.
//!
//! Every replica holds the same persistent tensors and loads the same plans in the same order, so
//! a [`PlanId`] names the same plan on each. What changes the model's state goes to every replica
//! (weights written, plans loaded, restore points); what reads it reads the first, since the
//! replicas stay identical — except the metric accumulators, which each replica fills from its own
//! shard of the batches and which read as their sum over the replicas and the processes.

use std::sync::Arc;

use kiln_graph::{Collective, Counters, PersistentId, PersistentKind, PersistentSpec, Plan, PlanId, Session};

use crate::{Error, Result};

pub(crate) struct Replicas {
    sessions: Vec<Box<dyn Session>>,
    /// Per persistent tensor, whether it is a metric accumulator (read as the replicas' sum).
    summed: Vec<bool>,
    /// The other processes of the job, when it spans several.
    collective: Option<Arc<dyn Collective>>,
}

impl Replicas {
    /// Replicas over `sessions` (at least one), all created from `specs`, in a job spanning the
    /// processes of `collective` when given.
    pub(crate) fn new(
        sessions: Vec<Box<dyn Session>>,
        specs: &[PersistentSpec],
        collective: Option<Arc<dyn Collective>>,
    ) -> Self {
        assert!(!sessions.is_empty(), "a model runs on at least one session");
        Replicas {
            sessions,
            summed: specs.iter().map(|s| s.kind == PersistentKind::Accumulator).collect(),
            collective,
        }
    }

    /// How many replicas there are in this process.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether training is data-parallel: several replicas here, or several processes.
    pub(crate) fn data_parallel(&self) -> bool {
        self.sessions.len() > 1 || self.collective.is_some()
    }

    /// Sums `values` over the processes of the job (nothing to do in one process).
    pub(crate) fn sum_over_processes(&self, values: &mut [f32]) -> Result<()> {
        match &self.collective {
            Some(c) => Ok(c.all_reduce_sum(values)?),
            None => Ok(()),
        }
    }

    /// Checks that every process of the job gives the same `value` (a count every process must
    /// agree on, or one waits forever for the others): an error on every process when not.
    pub(crate) fn check_agreed(&self, what: &str, value: usize) -> Result<()> {
        let Some(c) = &self.collective else { return Ok(()) };
        // Each process writes its value into its own two slots (low and high 12 bits apart, so
        // every f32 holds an integer exactly) and the sum gathers them all.
        let mut slots = vec![0.0f32; 2 * c.size()];
        let mine = 2 * c.rank();
        slots[mine] = (value % 4096) as f32;
        slots[mine + 1] = (value / 4096) as f32;
        c.all_reduce_sum(&mut slots)?;
        let values: Vec<usize> = slots
            .chunks_exact(2)
            .map(|pair| pair[0] as usize + 4096 * pair[1] as usize)
            .collect();
        if values.iter().any(|&v| v != value) {
            return Err(Error::invalid(
                "data parallel",
                format!(
                    "the processes do not all have the same number of {what} ({values:?} by rank); \
                     give every process as many samples (kiln_data::rank_shard)"
                ),
            ));
        }
        Ok(())
    }

    /// The first replica: where single-device work runs, and what state reads come from.
    pub(crate) fn primary(&mut self) -> &mut dyn Session {
        &mut *self.sessions[0]
    }

    /// The first replica, to inspect.
    pub(crate) fn primary_ref(&self) -> &dyn Session {
        &*self.sessions[0]
    }

    /// Writes a persistent tensor on every replica.
    pub(crate) fn write_persistent(&mut self, id: PersistentId, data: &[f32]) -> Result<()> {
        for s in &mut self.sessions {
            s.write_persistent(id, data)?;
        }
        Ok(())
    }

    /// Reads a persistent tensor: a metric accumulator as the sum over the replicas and the
    /// processes, anything else from the first replica (the replicas hold the same values).
    pub(crate) fn read_persistent(&mut self, id: PersistentId) -> Result<Vec<f32>> {
        let mut total = self.sessions[0].read_persistent(id)?;
        if self.summed.get(id.0).copied().unwrap_or(false) {
            for s in &mut self.sessions[1..] {
                let part = s.read_persistent(id)?;
                total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
            }
            self.sum_over_processes(&mut total)?;
        }
        Ok(total)
    }

    /// Reads a persistent tensor from each replica.
    pub(crate) fn read_each(&mut self, id: PersistentId) -> Result<Vec<Vec<f32>>> {
        self.sessions.iter_mut().map(|s| Ok(s.read_persistent(id)?)).collect()
    }

    /// Loads `plan` on every replica; its id is the same on each.
    pub(crate) fn load(&mut self, plan: Arc<Plan>) -> Result<PlanId> {
        let id = self.sessions[0].load(plan.clone())?;
        for s in &mut self.sessions[1..] {
            let other = s.load(plan.clone())?;
            if other != id {
                return Err(Error::invalid(
                    "data parallel",
                    format!("a replica loaded a plan as #{} where the first has #{}", other.0, id.0),
                ));
            }
        }
        Ok(id)
    }

    /// Unloads a plan from every replica.
    pub(crate) fn unload(&mut self, plan: PlanId) -> Result<()> {
        for s in &mut self.sessions {
            s.unload(plan)?;
        }
        Ok(())
    }

    /// Marks a restore point on every replica.
    pub(crate) fn keep_restore_point(&mut self) -> Result<()> {
        for s in &mut self.sessions {
            s.keep_restore_point()?;
        }
        Ok(())
    }

    /// Puts every replica back to its restore point.
    pub(crate) fn restore(&mut self) -> Result<()> {
        for s in &mut self.sessions {
            s.restore()?;
        }
        Ok(())
    }

    /// The work counters of all replicas together.
    pub(crate) fn counters(&self) -> Counters {
        self.sessions
            .iter()
            .map(|s| s.counters())
            .fold(Counters::default(), |a, b| Counters {
                submits: a.submits + b.submits,
                dispatches: a.dispatches + b.dispatches,
                buffer_allocations: a.buffer_allocations + b.buffer_allocations,
                buffer_releases: a.buffer_releases + b.buffer_releases,
                pipeline_creations: a.pipeline_creations + b.pipeline_creations,
                parameter_reads: a.parameter_reads + b.parameter_reads,
            })
    }

    /// Runs `work(replica, session)` on every replica at once — the first on the calling thread,
    /// each other on a thread of its own — and returns the results in replica order. Replicas
    /// compute independently; a CPU replica's run blocks its thread, a GPU replica's waits on its
    /// device, so the threads are what lets them overlap.
    pub(crate) fn each<R: Send>(
        &mut self,
        work: impl Fn(usize, &mut dyn Session) -> Result<R> + Sync,
    ) -> Result<Vec<R>> {
        let (first, rest) = self.sessions.split_first_mut().expect("at least one replica");
        let work = &work;
        std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter_mut()
                .enumerate()
                .map(|(i, s)| scope.spawn(move || work(i + 1, &mut **s)))
                .collect();
            let mut results = vec![work(0, &mut **first)];
            for handle in others {
                results.push(
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(Error::invalid("data parallel", "a replica's thread panicked"))),
                );
            }
            results.into_iter().collect()
        })
    }
}
