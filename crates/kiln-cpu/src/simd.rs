//! Wider vectors where the CPU has them. The crate is built for the x86-64 baseline (4-wide SSE2)
//! so that its binaries run anywhere; the hot element loops — activations, the fused LSTM's gate
//! rows, elementwise passes, optimizer updates — are worth compiling a second time for AVX2
//! (8 wide) and choosing at run time. Only the vector width changes: no fused multiply-add is
//! enabled, so every result is bit-identical to the baseline build's.

/// Runs `f` compiled with AVX2 enabled when this CPU has it (detected once, then cached by std),
/// else as built. `f` and what it calls must be inlined into it to benefit: the callers pass
/// closures over `#[inline(always)]` kernels.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { with_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
