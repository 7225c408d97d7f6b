//! Data parallelism across processes and machines over MPI (feature `mpi`): [`Mpi`] is the
//! [`Collective`] a [`kiln_nn::DataParallel`] spans the ranks of a job with.
//!
//! ```rust,ignore
//! let mpi = kiln::mpi::Mpi::init()?;
//! let (x, y) = (rank_shard(&x, mpi.rank(), mpi.size())?, rank_shard(&y, mpi.rank(), mpi.size())?);
//! let devices = DataParallel::new(vec![Arc::new(Device::auto()?)])?.across_processes(mpi.clone());
//! model.compile(&devices, Optimizer::adam(), Loss::SparseCategoricalCrossentropy, &[Metric::Accuracy])?;
//! model.fit(&x, &y, &FitOptions::new(10, 32).verbose(if mpi.rank() == 0 { 1 } else { 0 }))?;
//! if mpi.rank() == 0 { model.save("model.safetensors")?; }
//! ```
//!
//! Run with `mpirun -np N program`. Every step all-reduces one buffer (the gradients, the loss and
//! the layers' state) with a non-blocking `MPI_Iallreduce` polled against a deadline: a rank that
//! dies or stops answering makes the others abort the whole job with an error (`MPI_Abort`)
//! instead of waiting forever.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_graph::{Collective, Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

/// How long an all-reduce waits for the other ranks before aborting the job, unless
/// `KILN_MPI_TIMEOUT` (seconds) or [`Mpi::with_timeout`] says otherwise. Generous: a step of a
/// large model on a slow rank may take many seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The exit code every rank ends with when the job is aborted for a missing rank.
pub const ABORT_CODE: i32 = 75;

/// The MPI job this process is a rank of.
pub struct Mpi {
    comm: Mutex<Comm>,
    rank: usize,
    size: usize,
    timeout: Duration,
}

/// The MPI environment and its world communicator.
struct Comm {
    world: SimpleCommunicator,
    /// Finalises MPI when the last handle goes.
    _universe: Universe,
}

// SAFETY: MPI is initialised with `MPI_THREAD_SERIALIZED` (checked in `Mpi::init`): calls may come
// from any thread as long as no two are concurrent, which the mutex around `Comm` guarantees.
unsafe impl Send for Comm {}

impl Mpi {
    /// Initialises MPI (once per process) and joins the job `mpirun` started.
    pub fn init() -> Result<Arc<Mpi>> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::invalid("Mpi::init", "MPI is already initialised in this process"))?;
        if threading < Threading::Serialized {
            return Err(Error::invalid(
                "Mpi::init",
                format!("this MPI offers {threading:?} threading; Kiln needs Serialized"),
            ));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let timeout = std::env::var("KILN_MPI_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
        Ok(Arc::new(Mpi {
            comm: Mutex::new(Comm {
                world,
                _universe: universe,
            }),
            rank,
            size,
            timeout,
        }))
    }

    /// The same job with all-reduces that wait at most `timeout` for the other ranks.
    pub fn with_timeout(self: Arc<Self>, timeout: Duration) -> Result<Arc<Mpi>> {
        let mpi = Arc::try_unwrap(self)
            .map_err(|_| Error::invalid("Mpi::with_timeout", "set the timeout before sharing the handle"))?;
        Ok(Arc::new(Mpi { timeout, ..mpi }))
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Ranks in the job.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let comm = self
            .comm
            .lock()
            .map_err(|_| Error::invalid("mpi", "an earlier all-reduce panicked"))?;
        let send = values.to_vec();
        let deadline = Instant::now() + self.timeout;
        let started = Instant::now();
        mpi::request::scope(|scope| {
            let mut request = comm
                .world
                .immediate_all_reduce_into(scope, &send[..], values, SystemOperation::sum());
            loop {
                match request.test() {
                    Ok(_) => break,
                    Err(pending) => request = pending,
                }
                if Instant::now() > deadline {
                    // An unfinished request cannot be dropped, and the missing rank will not
                    // come back: end the whole job, every rank with an error.
                    eprintln!(
                        "kiln: rank {} of {}: an all-reduce waited {:.0} s for the other ranks (one \
                         has died or stopped); aborting the job",
                        self.rank,
                        self.size,
                        self.timeout.as_secs_f64()
                    );
                    comm.world.abort(ABORT_CODE);
                }
                // Spin briefly (a step's all-reduce on one machine takes microseconds), then
                // give the core back.
                if started.elapsed() < Duration::from_millis(2) {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        Ok(())
    }
}
