//! f32 `exp` (of non-positive arguments) and `tanh` as straight-line arithmetic: no libm call and
//! no branch, so a loop over a slice vectorises. libm's `expf` and `tanhf` are scalar calls of
//! 10–20 ns each, and an LSTM step evaluates five of them per unit (measured: the transcendental
//! calls were most of the fused LSTM's CPU time).
//!
//! Both are Cephes' single-precision algorithms (S. L. Moshier, *Methods and Programs for
//! Mathematical Functions*; `expf.c`, `tanhf.c`), within 2 ulp of the correctly rounded result.
//! The f64 reference keeps libm (`Real` chooses).

/// `eˣ` for `x ≤ 0`, the only arguments sigmoid, tanh and a max-shifted softmax need (so the
/// result never overflows). Below `ln(f32::MIN_POSITIVE)` the result would be subnormal and is 0,
/// as the CPU backend flushes subnormals anyway. NaN stays NaN.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOWEST: f32 = -87.336_55; // ln(2⁻¹²⁶)
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let under = x < LOWEST;
    // A comparison, not `max`, so that NaN passes through.
    let x = if under { LOWEST } else { x };
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    // x - n·ln 2 in two parts (Cody and Waite), so the reduced argument is exact to f32.
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p =
        ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    // 2ⁿ built from the bits of `shifted`, whose low mantissa bits hold n: integer arithmetic
    // that vectorises, where `n as i32` (saturating, NaN-checked) would not.
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(MAGIC.to_bits() - 127) << 23);
    let e = (p * r * r + r + 1.0) * two_n;
    if under {
        0.0
    } else {
        e
    }
}

/// `tanh x`: an odd polynomial below |x| = 0.625, `(1 - e)/(1 + e)` with `e = e^{-2|x|}` above.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 0.133_314_42) * z - 0.333_332_8) * z * x
            + x;
    let e = exp_nonpositive(-2.0 * a);
    let large = (1.0 - e) / (1.0 + e);
    let large = if x < 0.0 { -large } else { large };
    if a < 0.625 {
        small
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place between `got` and the f64 reference rounded to f32.
    fn ulps(got: f32, want: f64) -> u32 {
        let want = want as f32;
        if got == want {
            return 0;
        }
        (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_and_tanh_are_within_2_ulp_of_libm_in_f64() {
        let mut worst = (0, 0);
        for i in 0..=400_000 {
            let x = -87.0 + 87.0 * i as f32 / 400_000.0;
            worst.0 = worst.0.max(ulps(exp_nonpositive(x), (x as f64).exp()));
            let t = -12.0 + 24.0 * i as f32 / 400_000.0;
            worst.1 = worst.1.max(ulps(tanh(t), (t as f64).tanh()));
        }
        assert!(
            worst.0 <= 2 && worst.1 <= 2,
            "worst ulps: exp {}, tanh {}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn edges_zero_infinity_and_nan() {
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-88.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(1e-30), 1e-30);
        assert_eq!(tanh(30.0), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }
}
