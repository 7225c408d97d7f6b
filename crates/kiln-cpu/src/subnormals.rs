//! Subnormal floats flushed to zero while a plan runs.
//!
//! An optimizer's moment of a parameter whose gradient stays zero (a dead ReLU's weights, a pixel
//! that is always black) decays by β every step, reaches the subnormal range after a few hundred
//! steps and then sticks at the smallest subnormal for good: `0.9 · 1.4e-45` rounds back to
//! `1.4e-45`. x86 cores run arithmetic on subnormals through microcode assists, so the update
//! slows down the longer training runs (measured on an AMD EPYC: 0.19 ms against 0.10 ms for an
//! Adam update of 102k parameters stuck there; Intel cores pay more). With flush-to-zero and
//! denormals-are-zero set, such values are zero and every op runs at full speed; GPUs commonly flush
//! subnormals too, so the two backends agree more closely, not less.

/// Sets flush-to-zero and denormals-are-zero on this thread until dropped, then restores the
/// thread's previous floating-point mode (the caller's code is left as it was). A no-op off x86-64:
/// the ARM cores Kiln targets handle subnormals without assists.
pub struct FlushedSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

/// MXCSR bits: FTZ (bit 15) and DAZ (bit 6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

impl FlushedSubnormals {
    /// Flushes subnormals on this thread from now until the guard drops.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            write_mxcsr(saved | FTZ_DAZ);
            FlushedSubnormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushedSubnormals {}
    }
}

/// Flushes subnormals on this thread for good: for threads that run only Kiln's kernels (the
/// workers of [`crate::pool`]).
pub fn flush_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    write_mxcsr(read_mxcsr() | FTZ_DAZ);
}

impl Default for FlushedSubnormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushedSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr stores the 32-bit control register to the given, valid address.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: ldmxcsr loads a value read from the register with only the FTZ/DAZ bits changed;
    // every bit it sets is defined, so no exception is raised.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_are_zero_inside_the_guard_and_the_mode_comes_back_after() {
        let tiny = std::hint::black_box(1.4e-45f32);
        assert!(
            tiny * 0.9 > 0.0,
            "without the guard the smallest subnormal survives a decay"
        );
        {
            let _flushed = FlushedSubnormals::new();
            let decayed = std::hint::black_box(tiny) * std::hint::black_box(0.9f32);
            if cfg!(target_arch = "x86_64") {
                assert_eq!(decayed, 0.0);
            }
        }
        assert!(std::hint::black_box(tiny) * std::hint::black_box(0.9f32) > 0.0);
    }
}
