//! The float types the reference runs in: f32 for parity with the GPU, f64 for gradient checks.

use num_traits::Float;

/// A float the reference kernels are generic over.
pub trait Real: Float + Default + Send + Sync + std::fmt::Debug + std::iter::Sum + 'static {
    /// Converts from the f32 the host API speaks.
    fn of(x: f32) -> Self;
    /// Converts back to f32.
    fn to_f32(self) -> f32;
    /// The error function (for the exact gelu), from libm at this precision.
    fn erf(self) -> Self;
    /// `eˣ` for `x ≤ 0` (sigmoid, tanh, a max-shifted softmax): f32 through
    /// [`crate::fastmath::exp_nonpositive`], which vectorises; f64 through libm.
    fn exp_nonpositive(self) -> Self;
    /// `tanh`: f32 through [`crate::fastmath::tanh`], which vectorises; f64 through libm.
    fn tanh_vec(self) -> Self;
    /// The value f16 storage would hold ([`kiln_graph::round_f16`]) in f32; unchanged in f64, the
    /// gradient check's exact reference, where the rounding is a cast with derivative 1.
    fn round_f16(self) -> Self;
    /// `c = a · b` with element strides (row, column) for each operand; `c` is row-major `m × n`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        rsa: isize,
        csa: isize,
        b: &[Self],
        rsb: isize,
        csb: isize,
        c: &mut [Self],
    );
}

macro_rules! real_impl {
    ($t:ty, $erf:path, $exp:expr, $tanh:expr, $round_f16:expr) => {
        impl Real for $t {
            #[inline(always)]
            fn round_f16(self) -> Self {
                $round_f16(self)
            }
            #[inline(always)]
            fn exp_nonpositive(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn tanh_vec(self) -> Self {
                $tanh(self)
            }
            fn of(x: f32) -> Self {
                x as $t
            }
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                rsa: isize,
                csa: isize,
                b: &[Self],
                rsb: isize,
                csb: isize,
                c: &mut [Self],
            ) {
                assert!(c.len() >= m * n, "gemm output too small");
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    c[..m * n].fill(0.0);
                    return;
                }
                // SAFETY: the scheduler checked the operand shapes, so every index the strides reach
                // is inside `a` and `b`, and `c` holds m·n elements (asserted above). With
                // `read_dst` false the old contents of `c` are never read: `c = 1 · a · b`.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        csa,
                        rsa,
                        b.as_ptr(),
                        csb,
                        rsb,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        // Rayon's pool, all of its threads: the crate decides per shape how many
                        // to use (small products run on the calling thread).
                        gemm::Parallelism::Rayon(0),
                    );
                }
            }
        }
    };
}

real_impl!(
    f32,
    libm::erff,
    crate::fastmath::exp_nonpositive,
    crate::fastmath::tanh,
    kiln_graph::round_f16
);
real_impl!(f64, libm::erf, f64::exp, f64::tanh, |x: f64| x);
