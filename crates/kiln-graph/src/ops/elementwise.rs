//! Elementwise arithmetic, comparisons, fills, dropout and uniform draws: one output element per
//! element of the operands (a bias is broadcast over the leading axes).

use super::check::{not_differentiable, same};
use super::{op_names, Backward, Family, ReduceOp};
use crate::error::shapes_list;
use crate::{Error, Graph, NodeId, Result, Shape};

/// Why comparisons have no backward rule.
const STEP_FUNCTION: &str = "its derivative is zero almost everywhere; it belongs in metrics, not in a loss";

#[derive(Clone, Debug, PartialEq)]
pub enum ElementwiseOp {
    /// A tensor with every element equal to `value` (no operands).
    Fill { value: f32, shape: Shape },
    /// `x[..., n] + b[n]`.
    BiasAdd,
    /// `a + b` (same shapes).
    Add,
    /// `a - b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `s · x`.
    Scale { factor: f32 },
    /// `sign(x)` in {-1, 0, 1}.
    Sign,
    /// `1` where `a == b`, else `0`.
    Equal,
    /// `1` where `x > threshold`, else `0`.
    Greater { threshold: f32 },
    /// Natural logarithm (the caller keeps the operand positive, e.g. with `Clip`).
    Log,
    /// `x` clamped to `[min, max]`.
    Clip { min: f32, max: f32 },
    /// `x · s` with `s` a `[1]` tensor: operands `(x, s)`.
    ScaleByScalar,
    /// `x^exponent` for `x ≥ 0` (NaN below 0 on every backend, as WGSL's `pow`): focal factors,
    /// square roots of norms.
    Pow { exponent: f32 },
    /// Keras' `clip_by_norm` factor from a squared norm `s [1]`: `c / max(√s, c)` with `c =
    /// max_norm`, so that `g · factor` has a norm of at most `c` (keras/src/ops/numerical... via
    /// `BaseOptimizer._clip_by_norm` and `clip_by_global_norm`).
    ClipNormFactor { max_norm: f32 },
    /// Inverted dropout: operands `(x, draw [3])`; keeps element `i` with probability `1 - rate`,
    /// scaled by `1 / (1 - rate)`, and zeroes the rest. `draw` is `(step, first sample, samples)`:
    /// the mask is a hash of `(seed, step, element)` ([`dropout_keeps`]) where the element counts
    /// from the batch's first sample ([`dropout_element`]), so a shard of a batch (a data-parallel
    /// replica's) draws exactly the mask its rows get in the whole batch. The CPU and the GPU drop
    /// the same elements, every step draws a new mask, and the backward pass (this same op on
    /// `dy`) recomputes the forward's mask.
    Dropout { rate: f32, seed: u32 },
    /// Uniform random values in `[low, high)` of `shape` (batch first): operand `draw [3]` as
    /// [`ElementwiseOp::Dropout`]'s, the value of element `i` drawn from the same hash
    /// ([`uniform_unit`]), so the CPU and the GPU draw the same values and a shard of a batch the
    /// values its samples get in the whole batch. Random augmentation draws its amounts from it.
    Uniform {
        low: f32,
        high: f32,
        seed: u32,
        shape: Shape,
    },
    /// `x` rounded to the nearest IEEE half-precision value ([`round_f16`]): what storing it as
    /// f16 and reading it back gives, so a value that crosses layers under the `mixed_float16`
    /// policy carries f16's precision and range (beyond ±65504 it is ±∞). The backward rounds
    /// `dy` the same way: a cast's gradient is the cast of the gradient, and gradients of f16
    /// values are f16 values, which is what underflows without loss scaling. An executor in f64
    /// (the gradient check's exact reference) leaves values as they are.
    RoundF16,
    /// `1` where `x` is ±∞ or NaN, else `0`: an integer test of the exponent bits, which compilers
    /// that assume finite floats cannot fold away. The loss scale's overflow check.
    NonFinite,
}

op_names!(ElementwiseOp {
    Fill => "fill",
    BiasAdd => "bias_add",
    Add => "add",
    Sub => "sub",
    Mul => "mul",
    Div => "div",
    Scale => "scale",
    Sign => "sign",
    Equal => "equal",
    Greater => "greater",
    Log => "log",
    Clip => "clip",
    ScaleByScalar => "scale_by_scalar",
    Pow => "pow",
    ClipNormFactor => "clip_norm_factor",
    Dropout => "dropout",
    Uniform => "uniform",
    RoundF16 => "round_f16",
    NonFinite => "non_finite",
});

impl Family for ElementwiseOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            ElementwiseOp::Fill { .. } => 0,
            ElementwiseOp::Scale { .. }
            | ElementwiseOp::Sign
            | ElementwiseOp::Greater { .. }
            | ElementwiseOp::Log
            | ElementwiseOp::Clip { .. }
            | ElementwiseOp::Pow { .. }
            | ElementwiseOp::ClipNormFactor { .. }
            | ElementwiseOp::Uniform { .. }
            | ElementwiseOp::RoundF16
            | ElementwiseOp::NonFinite => 1,
            ElementwiseOp::BiasAdd
            | ElementwiseOp::Add
            | ElementwiseOp::Sub
            | ElementwiseOp::Mul
            | ElementwiseOp::Div
            | ElementwiseOp::Equal
            | ElementwiseOp::ScaleByScalar
            | ElementwiseOp::Dropout { .. } => 2,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        let out = match self {
            ElementwiseOp::Fill { shape, .. } => shape.clone(),
            ElementwiseOp::Uniform { low, high, shape, .. } => {
                if !(low.is_finite() && high.is_finite() && low <= high) {
                    return Err(Error::invalid(name, format!("[{low}, {high}) is not a finite range")));
                }
                if s[0].numel() != 3 {
                    return Err(Error::shape(
                        name,
                        format!("draw {}", s[0]),
                        "[3] (step, first sample, samples)",
                    ));
                }
                shape.clone()
            }
            ElementwiseOp::BiasAdd => {
                let (x, b) = (s[0], s[1]);
                if x.rank() == 0 || b.dims() != [x.last()] {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[x, b]),
                        format!("x [.., n] and bias [{}]", x.last()),
                    ));
                }
                x.clone()
            }
            ElementwiseOp::Add
            | ElementwiseOp::Sub
            | ElementwiseOp::Mul
            | ElementwiseOp::Div
            | ElementwiseOp::Equal => {
                same(name, s[0], s[1])?;
                s[0].clone()
            }
            ElementwiseOp::Scale { .. }
            | ElementwiseOp::Sign
            | ElementwiseOp::Greater { .. }
            | ElementwiseOp::Log
            | ElementwiseOp::Clip { .. }
            | ElementwiseOp::RoundF16
            | ElementwiseOp::NonFinite => s[0].clone(),
            ElementwiseOp::Pow { exponent } => {
                if !exponent.is_finite() {
                    return Err(Error::invalid(name, format!("exponent {exponent} is not finite")));
                }
                s[0].clone()
            }
            ElementwiseOp::ScaleByScalar => {
                if s[1].numel() != 1 {
                    return Err(Error::shape(name, format!("scalar {}", s[1]), "[1]"));
                }
                s[0].clone()
            }
            ElementwiseOp::ClipNormFactor { max_norm } => {
                if !(max_norm.is_finite() && *max_norm > 0.0) {
                    return Err(Error::invalid(
                        name,
                        format!("max_norm {max_norm} is not a positive finite number"),
                    ));
                }
                if s[0].numel() != 1 {
                    return Err(Error::shape(name, format!("squared norm {}", s[0]), "[1]"));
                }
                Shape::new([1])
            }
            ElementwiseOp::Dropout { rate, .. } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(Error::invalid(name, format!("rate {rate} is not in [0, 1)")));
                }
                if s[1].numel() != 3 {
                    return Err(Error::shape(
                        name,
                        format!("draw {}", s[1]),
                        "[3] (step, first sample, samples)",
                    ));
                }
                s[0].clone()
            }
        };
        Ok(Some(out))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let (x, y, dy) = (at.x, at.y, at.dy);
        Ok(match self {
            ElementwiseOp::Fill { .. } => vec![],
            // A draw, not a function of anything differentiable.
            ElementwiseOp::Uniform { .. } => vec![None],
            ElementwiseOp::BiasAdd => {
                let mut db = dy;
                while g.shape(db)?.rank() > 1 {
                    db = g.push(ReduceOp::Sum { axis: 0 }, &[db])?;
                }
                vec![Some(dy), Some(db)]
            }
            ElementwiseOp::Add => vec![Some(dy), Some(dy)],
            ElementwiseOp::Sub => vec![Some(dy), Some(g.scale(dy, -1.0)?)],
            ElementwiseOp::Mul => vec![Some(g.mul(dy, x[1])?), Some(g.mul(dy, x[0])?)],
            ElementwiseOp::Div => {
                // d(a/b) = (dy / b, -dy · a / b²) = (dy / b, -(dy / b) · y)
                let da = g.div(dy, x[1])?;
                let t = g.mul(da, y)?;
                vec![Some(da), Some(g.scale(t, -1.0)?)]
            }
            ElementwiseOp::Scale { factor } => vec![Some(g.scale(dy, *factor)?)],
            ElementwiseOp::Log => vec![Some(g.div(dy, x[0])?)],
            ElementwiseOp::Clip { min, max } => {
                // dy where min < x < max: the gate is [x > min] - [x > max].
                let above_min = g.unary(ElementwiseOp::Greater { threshold: *min }, x[0])?;
                let above_max = g.unary(ElementwiseOp::Greater { threshold: *max }, x[0])?;
                let gate = g.sub(above_min, above_max)?;
                vec![Some(g.mul(dy, gate)?)]
            }
            ElementwiseOp::Dropout { rate, seed } => {
                let op = ElementwiseOp::Dropout {
                    rate: *rate,
                    seed: *seed,
                };
                vec![Some(g.push(op, &[dy, x[1]])?), None]
            }
            // d xᵉ = e·xᵉ⁻¹·dy.
            ElementwiseOp::Pow { exponent } => {
                let slope = g.unary(
                    ElementwiseOp::Pow {
                        exponent: exponent - 1.0,
                    },
                    x[0],
                )?;
                let slope = g.scale(slope, *exponent)?;
                vec![Some(g.mul(slope, dy)?)]
            }
            // d(x·s) = (dy·s, Σ dy·x).
            ElementwiseOp::ScaleByScalar => vec![
                Some(g.push(ElementwiseOp::ScaleByScalar, &[dy, x[1]])?),
                Some(g.push(ReduceOp::Dot, &[dy, x[0]])?),
            ],
            ElementwiseOp::ClipNormFactor { max_norm } => {
                // Past the limit, y = c·s^(-1/2) and dy/ds = -y / (2s); below it y = 1, flat. The
                // clip keeps the quotient finite where the gate zeroes it.
                let limit = max_norm * max_norm;
                let gate = g.unary(ElementwiseOp::Greater { threshold: limit }, x[0])?;
                let safe = g.unary(
                    ElementwiseOp::Clip {
                        min: limit,
                        max: f32::MAX,
                    },
                    x[0],
                )?;
                let slope = g.div(y, safe)?;
                let slope = g.mul(slope, gate)?;
                let d = g.mul(dy, slope)?;
                vec![Some(g.scale(d, -0.5)?)]
            }
            ElementwiseOp::RoundF16 => vec![Some(g.unary(ElementwiseOp::RoundF16, dy)?)],
            ElementwiseOp::Sign | ElementwiseOp::Equal | ElementwiseOp::Greater { .. } | ElementwiseOp::NonFinite => {
                return Err(not_differentiable(self.name(), STEP_FUNCTION))
            }
        })
    }
}

/// A 32-bit integer hash with good avalanche (Chris Wellons' "lowbias32"); `shaders/elementwise.wgsl`
/// has the same function. Inlined: the CPU's dropout calls it once per element.
#[inline]
pub fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The IEEE binary16 value nearest `x` (ties to even), as an f32: ±∞ from 65520 on (the first
/// magnitude that rounds past f16's largest, 65504), multiples of 2⁻²⁴ below 2⁻¹⁴ (f16's
/// subnormals), NaN and ±∞ unchanged. Integer arithmetic on the bits, so every backend rounds the
/// same way; `round_f16` in `shaders/elementwise.wgsl` is the same function.
pub fn round_f16(x: f32) -> f32 {
    let bits = x.to_bits();
    let sign = bits & 0x8000_0000;
    let magnitude = bits & 0x7fff_ffff;
    if magnitude >= 0x7f80_0000 {
        return x;
    }
    if magnitude >= 0x477f_f000 {
        return f32::from_bits(sign | 0x7f80_0000);
    }
    if magnitude < 0x3880_0000 {
        // The subnormal range: a multiple of 2⁻²⁴, scaled exactly by powers of two.
        let q = (x.abs() * 16_777_216.0).round_ties_even() * (1.0 / 16_777_216.0);
        return f32::from_bits(sign | q.to_bits());
    }
    // Keep 10 of the 23 mantissa bits, rounding the 13 dropped ones to nearest, ties to even; a
    // carry into the exponent is the correct rounding up to the next binade.
    let lsb = (magnitude >> 13) & 1;
    f32::from_bits(sign | ((magnitude + 0xfff + lsb) & 0xffff_e000))
}

/// Hashes at or above this keep their element under [`ElementwiseOp::Dropout`] with `rate`.
pub fn dropout_threshold(rate: f32) -> u32 {
    (f64::from(rate) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32
}

/// The element [`ElementwiseOp::Dropout`]'s mask draws for element `i` of a tensor of `n` elements
/// holding `samples` samples from the batch's sample `first` on: `i` counted from the start of
/// the whole batch, since each sample's elements are contiguous (the batch is the outer axis).
/// Wrapping arithmetic, as the GPU's.
#[inline]
pub fn dropout_element(i: u32, n: u32, first: u32, samples: u32) -> u32 {
    i.wrapping_add(first.wrapping_mul(n / samples.max(1)))
}

/// The part of the dropout hash that depends on `(seed, step)` alone: one value per pass, which
/// [`uniform_from_key`] and [`keeps_from_key`] mix with each element.
#[inline]
pub fn draw_key(seed: u32, step: u32) -> u32 {
    lowbias32(step ^ lowbias32(seed))
}

/// [`ElementwiseOp::Uniform`]'s draw for `element` at `step`, in `[0, 1)`: the top 24 bits of
/// the dropout hash, so the value is exact in f32 on every backend.
pub fn uniform_unit(seed: u32, step: u32, element: u32) -> f32 {
    uniform_from_key(draw_key(seed, step), element)
}

/// [`uniform_unit`] with its [`draw_key`] computed once.
#[inline]
pub fn uniform_from_key(key: u32, element: u32) -> f32 {
    (lowbias32(element ^ key) >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Whether [`ElementwiseOp::Dropout`] keeps element `i` at `step`: integer arithmetic only, so every
/// backend draws the same mask.
pub fn dropout_keeps(seed: u32, step: u32, i: u32, threshold: u32) -> bool {
    keeps_from_key(draw_key(seed, step), i, threshold)
}

/// [`dropout_keeps`] with its [`draw_key`] computed once.
#[inline]
pub fn keeps_from_key(key: u32, i: u32, threshold: u32) -> bool {
    lowbias32(i ^ key) >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_f16_is_the_nearest_half_value() {
        // Every f16 boundary region and a sweep of ordinary values, against the `half` crate's
        // conversion (round to nearest, ties to even; overflow to infinity).
        let mut values = vec![
            0.0f32, -0.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e9, 6e-8, 3e-8, 2.9e-8, 1e-10,
        ];
        values.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            6.1035156e-5,
            6.1e-5,
        ]);
        let mut x = 1.0e-9f32;
        while x < 1.0e6 {
            values.extend([x, -x, x * 1.000_49, x * 1.000_977]);
            x *= 1.013;
        }
        for bits in (0x3870_0000u32..0x3890_0000).step_by(97) {
            values.push(f32::from_bits(bits));
        }
        for &v in &values {
            let want = half::f16::from_f32(v).to_f32();
            let got = round_f16(v);
            assert!(got.to_bits() == want.to_bits(), "{v:e}: {got:e} vs {want:e}");
        }
        assert!(round_f16(f32::NAN).is_nan());
        // Ties go to even: 1 + 2⁻¹¹ lies halfway between 1 and 1 + 2⁻¹⁰.
        assert_eq!(round_f16(1.0 + 1.0 / 2048.0), 1.0);
        assert_eq!(round_f16(1.0 + 3.0 / 2048.0), 1.0 + 2.0 / 1024.0);
    }

    #[test]
    fn uniform_draws_cover_the_unit_interval_evenly_and_anew_each_step() {
        let draws: Vec<f32> = (0..100_000u32).map(|i| uniform_unit(5, 2, i)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().map(|&u| f64::from(u)).sum::<f64>() / 1e5;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let below = draws.iter().filter(|&&u| u < 0.1).count() as f64 / 1e5;
        assert!((below - 0.1).abs() < 0.01, "{below}");
        assert_ne!(uniform_unit(5, 2, 7), uniform_unit(5, 3, 7));
    }

    #[test]
    fn dropout_keeps_about_one_minus_rate_and_draws_a_new_mask_each_step() {
        for rate in [0.1f32, 0.5, 0.8] {
            let t = dropout_threshold(rate);
            let kept = (0..100_000u32).filter(|&i| dropout_keeps(3, 1, i, t)).count() as f32 / 1e5;
            assert!((kept - (1.0 - rate)).abs() < 0.01, "rate {rate}: kept {kept}");
        }
        let t = dropout_threshold(0.5);
        let mask = |seed, step| (0..256u32).map(|i| dropout_keeps(seed, step, i, t)).collect::<Vec<_>>();
        assert_eq!(mask(3, 1), mask(3, 1));
        assert_ne!(mask(3, 1), mask(3, 2));
        assert_ne!(mask(3, 1), mask(4, 1));
        assert!((0..1000u32).all(|i| dropout_keeps(9, 9, i, dropout_threshold(0.0))));
    }
}
