//! In-place optimizer updates and the metric accumulator.

use crate::Real;

/// Adam in Keras' "epsilon hat" form: the bias correction is folded into the step size,
/// `lr_t = lr · √(1 - β₂ᵗ) / (1 - β₁ᵗ)`, then `p -= lr_t · m / (√v + ε)`.
#[allow(clippy::too_many_arguments)]
pub fn adam<T: Real>(p: &mut [T], m: &mut [T], v: &mut [T], g: &[T], step: T, lr: T, beta1: T, beta2: T, eps: T) {
    let one = T::one();
    let lr_t = lr * (one - beta2.powf(step)).sqrt() / (one - beta1.powf(step));
    for i in 0..p.len() {
        m[i] = beta1 * m[i] + (one - beta1) * g[i];
        v[i] = beta2 * v[i] + (one - beta2) * g[i] * g[i];
        p[i] = p[i] - lr_t * m[i] / (v[i].sqrt() + eps);
    }
}

/// SGD with momentum as Keras writes it: `vel = μ·vel - lr·g`, then `p += vel` (or, Nesterov,
/// `p += μ·vel - lr·g`).
pub fn sgd<T: Real>(p: &mut [T], vel: &mut [T], g: &[T], lr: T, momentum: T, nesterov: bool) {
    for i in 0..p.len() {
        vel[i] = momentum * vel[i] - lr * g[i];
        p[i] = p[i]
            + if nesterov {
                momentum * vel[i] - lr * g[i]
            } else {
                vel[i]
            };
    }
}

/// `acc[j] += Σ_r x[r·m + j]` with `m = acc.len()`: per-column sums of `x` viewed as rows of `m`.
pub fn accumulate_sum<T: Real>(acc: &mut [T], x: &[T]) {
    let m = acc.len();
    for (j, a) in acc.iter_mut().enumerate() {
        *a = *a + x.iter().skip(j).step_by(m).copied().sum::<T>();
    }
}
