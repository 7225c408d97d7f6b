//! Elementwise arithmetic and comparisons. Gradients (in autodiff): `d(a±b) = (dy, ±dy)`,
//! `d(a·b) = (dy·b, dy·a)`, `d(s·x) = s·dy`, `d round_f16(x) = round_f16(dy)`; sign, equal,
//! greater and non_finite have none.

use kiln_graph::ElementwiseOp;

use super::par::{self, map, zip};
use crate::executor::Args;
use crate::Real;

/// Runs one elementwise step.
pub fn compute<T: Real>(op: &ElementwiseOp, a: &Args<'_, T>, out: &mut [T]) {
    match op {
        ElementwiseOp::Fill { value, .. } => fill(T::of(*value), out),
        ElementwiseOp::BiasAdd => bias_add(a.x(0), a.x(1), out),
        ElementwiseOp::Add => add(a.x(0), a.x(1), out),
        ElementwiseOp::Sub => sub(a.x(0), a.x(1), out),
        ElementwiseOp::Mul => mul(a.x(0), a.x(1), out),
        ElementwiseOp::Div => div(a.x(0), a.x(1), out),
        ElementwiseOp::Scale { factor } => scale(a.x(0), T::of(*factor), out),
        ElementwiseOp::Sign => signum(a.x(0), out),
        ElementwiseOp::Equal => equal(a.x(0), a.x(1), out),
        ElementwiseOp::Greater { threshold } => greater(a.x(0), T::of(*threshold), out),
        ElementwiseOp::Log => ln(a.x(0), out),
        ElementwiseOp::Clip { min, max } => clip(a.x(0), T::of(*min), T::of(*max), out),
        ElementwiseOp::ScaleByScalar => scale(a.x(0), a.x(1)[0], out),
        ElementwiseOp::Pow { exponent } => pow(a.x(0), T::of(*exponent), out),
        ElementwiseOp::ClipNormFactor { max_norm } => out[0] = clip_norm_factor(a.x(0)[0], T::of(*max_norm)),
        ElementwiseOp::Dropout { rate, seed } => dropout(a.x(0), a.x(1), *rate, *seed, out),
        ElementwiseOp::Uniform { low, high, seed, .. } => uniform(a.x(0), *low, *high, *seed, out),
        ElementwiseOp::RoundF16 => map(a.x(0), out, T::round_f16),
        ElementwiseOp::NonFinite => map(a.x(0), out, |v| if v.is_finite() { T::zero() } else { T::one() }),
    }
}

/// `out = a + b`.
pub fn add<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    zip(a, b, out, |x, y| x + y);
}

/// `out = a - b`.
pub fn sub<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    zip(a, b, out, |x, y| x - y);
}

/// `out = a · b`.
pub fn mul<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    zip(a, b, out, |x, y| x * y);
}

/// `out = 1` where `a == b`, else `0`.
pub fn equal<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    zip(a, b, out, |x, y| if x == y { T::one() } else { T::zero() });
}

/// `out = factor · x`.
/// Inverted dropout with the mask of [`kiln_graph::dropout_keeps`]; `draw` is `(step, first
/// sample, samples)`.
pub fn dropout<T: Real>(x: &[T], draw: &[T], rate: f32, seed: u32, out: &mut [T]) {
    let threshold = kiln_graph::dropout_threshold(rate);
    let scale = T::of(1.0 / (1.0 - rate));
    let (key, offset) = draw_of(draw, seed, x.len());
    par::map_indexed(x, out, |i, v| {
        // Wrapping, as the GPU's: element `i` of the batch from its first sample on.
        let keep = kiln_graph::keeps_from_key(key, (i as u32).wrapping_add(offset), threshold);
        // A dropped element is 0 even where it was not finite, as the GPU's `select`.
        if keep {
            v * scale
        } else {
            T::zero()
        }
    });
}

/// Uniform values in `[low, high)` from [`kiln_graph::uniform_unit`]; `draw` as [`dropout`]'s.
pub fn uniform<T: Real>(draw: &[T], low: f32, high: f32, seed: u32, out: &mut [T]) {
    let (key, offset) = draw_of(draw, seed, out.len());
    par::indexed(out, |i| {
        let u = kiln_graph::uniform_from_key(key, (i as u32).wrapping_add(offset));
        // In f32 as the GPU computes it, then widened: the same draw in f64 runs.
        T::of(low + (high - low) * u)
    });
}

/// The hash key of a draw `(step, first, samples)` and the offset of this tensor's first element
/// in the whole batch ([`kiln_graph::dropout_element`] of element 0), for `n` elements.
fn draw_of<T: Real>(draw: &[T], seed: u32, n: usize) -> (u32, u32) {
    let [step, first, samples] = [0, 1, 2].map(|k| draw[k].to_f32() as u32);
    (
        kiln_graph::draw_key(seed, step),
        kiln_graph::dropout_element(0, n as u32, first, samples),
    )
}

pub fn scale<T: Real>(x: &[T], factor: T, out: &mut [T]) {
    map(x, out, |v| v * factor);
}

/// `out = sign(x)`, with `sign(0) = 0` (named `signum` because WGSL reserves `sign`).
pub fn signum<T: Real>(x: &[T], out: &mut [T]) {
    map(x, out, |v| {
        if v > T::zero() {
            T::one()
        } else if v < T::zero() {
            -T::one()
        } else {
            T::zero()
        }
    });
}

/// `out = 1` where `x > threshold`, else `0`.
pub fn greater<T: Real>(x: &[T], threshold: T, out: &mut [T]) {
    map(x, out, |v| if v > threshold { T::one() } else { T::zero() });
}

/// `out = value` everywhere.
pub fn fill<T: Real>(value: T, out: &mut [T]) {
    out.fill(value);
}

/// `out[r, j] = x[r, j] + bias[j]`.
pub fn bias_add<T: Real>(x: &[T], bias: &[T], out: &mut [T]) {
    let n = bias.len().max(1);
    for (xr, or) in x.chunks(n).zip(out.chunks_mut(n)) {
        for j in 0..xr.len() {
            or[j] = xr[j] + bias[j];
        }
    }
}

/// `out = a / b`. Gradient (in autodiff): `(dy / b, -(dy / b) · out)`.
pub fn div<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    zip(a, b, out, |x, y| x / y);
}

/// `out = ln(x)` (named `ln` because WGSL reserves `log`). Gradient: `dy / x`.
pub fn ln<T: Real>(x: &[T], out: &mut [T]) {
    map(x, out, |v| v.ln());
}

/// `out = clamp(x, min, max)`. Gradient: `dy` where `min < x <= max`, else 0.
pub fn clip<T: Real>(x: &[T], min: T, max: T, out: &mut [T]) {
    map(x, out, |v| v.max(min).min(max));
}

/// `xᵉ` for `x ≥ 0`, NaN below (as WGSL's `pow`, which the GPU runs).
pub fn pow<T: Real>(x: &[T], e: T, out: &mut [T]) {
    map(x, out, |v| if v < T::zero() { T::nan() } else { v.powf(e) });
}

/// `c / max(√s, c)`: the factor that brings a gradient of squared norm `s` to a norm of at most `c`.
pub fn clip_norm_factor<T: Real>(s: T, c: T) -> T {
    c / s.sqrt().max(c)
}
