//! The CPU backend's own thread pool: every plan runs on it, start to end.
//!
//! A plan run enters the pool once (`install`) and every op's parallel work — the GEMM's
//! threads, images of a convolution, halves of an optimizer update — is split among workers that
//! are already awake, instead of each op handing its work from the caller's thread to the pool and
//! back (two wake-ups per op; on 2 cores those cost mlp inference at batch 256 about a tenth of
//! its time). Owning the pool also lets every worker run with subnormals flushed to zero for its
//! whole life (see [`crate::subnormals`]), which a shared global pool could not promise; the
//! threads calling Kiln keep their own floating-point mode.

use std::sync::OnceLock;

use crate::subnormals;

/// The pool, built on first use: one worker per core (`RAYON_NUM_THREADS` overrides, as for any
/// rayon pool). `None` where the threads could not be started; plans then run on the caller.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("kiln-cpu-{i}"))
            .start_handler(|_| subnormals::flush_on_this_thread())
            .build()
            .ok()
    })
    .as_ref()
}

/// Runs `f` on the pool, with subnormals flushed on whichever thread runs any part of it.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) => pool.install(f),
        None => {
            let _flushed = subnormals::FlushedSubnormals::new();
            f()
        }
    }
}

/// Threads the CPU backend computes on.
pub fn threads() -> usize {
    pool().map_or(1, rayon::ThreadPool::current_num_threads)
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
    }
}
