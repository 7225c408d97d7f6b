//! The CPU backend's own thread pool: every plan runs on it, start to end.
//!
//! A plan run enters the pool once (`install`) and every op's parallel work — the GEMM's
//! threads, images of a convolution, halves of an optimizer update — is split among workers that
//! are already awake, instead of each op handing its work from the caller's thread to the pool and
//! back (two wake-ups per op; on 2 cores those cost mlp inference at batch 256 about a tenth of
//! its time). Owning the pool also lets every worker run with subnormals flushed to zero for its
//! whole life (see [`crate::subnormals`]), which a shared global pool could not promise; the
//! threads calling Kiln keep their own floating-point mode.

use std::sync::{Arc, OnceLock};

use crate::subnormals;

/// A pool of workers that flush subnormals; `threads` 0 is one per core (`RAYON_NUM_THREADS`
/// overrides, as for any rayon pool).
fn build(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("kiln-cpu-{i}"))
        .start_handler(|_| subnormals::flush_on_this_thread())
        .build()
}

/// The shared pool, built on first use with one worker per core. `None` where the threads could
/// not be started; plans then run on the caller.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| build(0).ok()).as_ref()
}

/// Runs `f` on the shared pool, with subnormals flushed on whichever thread runs any part of it.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) => pool.install(f),
        None => {
            let _flushed = subnormals::FlushedSubnormals::new();
            f()
        }
    }
}

/// Threads the shared pool computes on.
pub fn threads() -> usize {
    pool().map_or(1, rayon::ThreadPool::current_num_threads)
}

/// The workers a CPU session runs its plans on: the shared pool, or a pool of its own with a
/// fixed number of threads (a data-parallel replica's share of the cores).
#[derive(Clone, Debug, Default)]
pub struct Workers(Option<Arc<rayon::ThreadPool>>);

impl Workers {
    /// A pool of its own with `threads` workers (at least 1).
    pub fn own(threads: usize) -> kiln_graph::Result<Self> {
        let pool = build(threads.max(1))
            .map_err(|e| kiln_graph::Error::device("cpu", format!("could not start {threads} threads: {e}")))?;
        Ok(Workers(Some(Arc::new(pool))))
    }

    /// Runs `f` on these workers (see [`run`]).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(f),
            None => run(f),
        }
    }

    /// How many threads they are.
    pub fn threads(&self) -> usize {
        self.0.as_ref().map_or_else(threads, |p| p.current_num_threads())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_flushes_subnormals_and_the_caller_keeps_its_mode() {
        let tiny = std::hint::black_box(1.4e-45f32);
        let decay = |x: f32| std::hint::black_box(x) * std::hint::black_box(0.9f32);
        let (a, b) = run(|| rayon::join(|| decay(tiny), || decay(tiny)));
        if cfg!(target_arch = "x86_64") {
            assert_eq!((a, b), (0.0, 0.0));
        }
        assert!(decay(tiny) > 0.0, "the calling thread's mode is untouched");
        let own = Workers::own(1).unwrap();
        assert_eq!(own.threads(), 1);
        let (a, inside) = own.run(|| (decay(tiny), rayon::current_num_threads()));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(a, 0.0);
        }
        assert_eq!(inside, 1, "work on an own pool splits among its workers only");
    }
}
