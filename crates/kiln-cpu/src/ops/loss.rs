//! Losses computed from logits, as Keras does with `from_logits=True`, with their closed-form
//! gradients:
//! - softmax cross-entropy `Σ_c y_c (lse(z) - z_c)`, gradient `(Σy · softmax(z) - y) · g`;
//! - sigmoid binary cross-entropy `max(z, 0) - z·t + log(1 + e^-|z|)`, gradient `(σ(z) - t) · g`;
//! - squared and absolute error, whose gradients autodiff builds from elementwise ops.

use crate::ops::activation::sigmoid_scalar;
use kiln_graph::LossOp;

use crate::executor::Args;
use crate::Real;

/// Runs one loss step.
pub fn compute<T: Real>(op: &LossOp, a: &Args<'_, T>, out: &mut [T]) {
    let classes = a.shape(0).last();
    match *op {
        LossOp::SoftmaxCrossEntropy { sparse } => softmax_cross_entropy(a.x(0), a.x(1), classes, sparse, out),
        LossOp::SoftmaxCrossEntropyGrad { sparse } => {
            softmax_cross_entropy_grad(a.x(0), a.x(1), a.x(2), classes, sparse, out)
        }
        LossOp::SigmoidBinaryCrossEntropy => sigmoid_binary_cross_entropy(a.x(0), a.x(1), out),
        LossOp::SigmoidBinaryCrossEntropyGrad => sigmoid_binary_cross_entropy_grad(a.x(0), a.x(1), a.x(2), out),
        LossOp::SquaredError => squared_error(a.x(0), a.x(1), out),
        LossOp::AbsoluteError => absolute_error(a.x(0), a.x(1), out),
        LossOp::Huber { delta } => huber(a.x(0), a.x(1), T::of(delta), out),
        LossOp::LogCosh => log_cosh(a.x(0), a.x(1), out),
    }
}

/// The row's log-sum-exp, shifted by its maximum so large logits do not overflow.
fn log_sum_exp<T: Real>(z: &[T]) -> T {
    let max = z.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
    max + z.iter().map(|&v| (v - max).exp()).sum::<T>().ln()
}

/// Label of a row as a class index, clamped into `0..classes` (the host rejects bad labels first).
fn class_of<T: Real>(label: T, classes: usize) -> usize {
    label.to_f32().round().clamp(0.0, (classes - 1) as f32) as usize
}

/// Per-row cross-entropy of `softmax(logits)` over rows of `classes`.
pub fn softmax_cross_entropy<T: Real>(logits: &[T], labels: &[T], classes: usize, sparse: bool, out: &mut [T]) {
    for (r, z) in logits.chunks(classes).enumerate() {
        let lse = log_sum_exp(z);
        out[r] = if sparse {
            lse - z[class_of(labels[r], classes)]
        } else {
            let y = &labels[r * classes..(r + 1) * classes];
            y.iter().zip(z).map(|(&yc, &zc)| yc * (lse - zc)).sum()
        };
    }
}

/// Gradient of [`softmax_cross_entropy`] with respect to the logits, scaled by the upstream `g[r]`.
pub fn softmax_cross_entropy_grad<T: Real>(
    logits: &[T],
    labels: &[T],
    g: &[T],
    classes: usize,
    sparse: bool,
    out: &mut [T],
) {
    for (r, (z, o)) in logits.chunks(classes).zip(out.chunks_mut(classes)).enumerate() {
        let lse = log_sum_exp(z);
        if sparse {
            let l = class_of(labels[r], classes);
            for j in 0..classes {
                let y = if j == l { T::one() } else { T::zero() };
                o[j] = ((z[j] - lse).exp() - y) * g[r];
            }
        } else {
            let y = &labels[r * classes..(r + 1) * classes];
            let total: T = y.iter().copied().sum();
            for j in 0..classes {
                o[j] = (total * (z[j] - lse).exp() - y[j]) * g[r];
            }
        }
    }
}

/// Elementwise binary cross-entropy of `sigmoid(z)` against `t`.
pub fn sigmoid_binary_cross_entropy<T: Real>(z: &[T], t: &[T], out: &mut [T]) {
    for ((o, &zv), &tv) in out.iter_mut().zip(z).zip(t) {
        *o = zv.max(T::zero()) - zv * tv + (T::one() + (-zv.abs()).exp()).ln();
    }
}

/// `out = (sigmoid(z) - t) · g`.
pub fn sigmoid_binary_cross_entropy_grad<T: Real>(z: &[T], t: &[T], g: &[T], out: &mut [T]) {
    for (((o, &zv), &tv), &gv) in out.iter_mut().zip(z).zip(t).zip(g) {
        *o = (sigmoid_scalar(zv) - tv) * gv;
    }
}

/// `out = (a - b)²`.
pub fn squared_error<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (x - y) * (x - y);
    }
}

/// `out = |a - b|`.
pub fn absolute_error<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = (x - y).abs();
    }
}

/// Keras' Huber: `½d²` for `|d| ≤ δ`, `δ(|d| - ½δ)` beyond, with `d = a - b`.
pub fn huber<T: Real>(a: &[T], b: &[T], delta: T, out: &mut [T]) {
    let half = T::of(0.5);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let d = (x - y).abs();
        *o = if d <= delta {
            half * d * d
        } else {
            delta * (d - half * delta)
        };
    }
}

/// `log cosh(a - b)` as Keras writes it: `d + softplus(-2d) - ln 2`, with softplus(z) =
/// `max(z, 0) + ln(1 + e^-|z|)` so nothing overflows.
pub fn log_cosh<T: Real>(a: &[T], b: &[T], out: &mut [T]) {
    let two = T::of(2.0);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let z = -two * (x - y);
        let softplus = z.max(T::zero()) + (-z.abs()).exp().ln_1p();
        *o = (x - y) + softplus - two.ln();
    }
}
