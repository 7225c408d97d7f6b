//! In-place optimizer updates and the metric accumulator.

use kiln_graph::{TensorRef, UpdateOp};

use crate::executor::Memory;
use crate::Real;

/// Runs one in-place update on `mem`: the written operands are taken out of memory, updated while
/// the others are read, and put back.
pub fn update<T: Real>(op: &UpdateOp, ins: &[TensorRef], mem: &mut Memory<'_, T>) {
    match *op {
        UpdateOp::Adam {
            lr,
            beta1,
            beta2,
            epsilon,
        } => {
            let (mut p, mut m, mut v) = (mem.take(&ins[0]), mem.take(&ins[1]), mem.take(&ins[2]));
            let step = mem.read(&ins[4])[0];
            let hyper = [lr, beta1, beta2, epsilon].map(T::of);
            adam(
                &mut p,
                &mut m,
                &mut v,
                mem.read(&ins[3]),
                step,
                hyper[0],
                hyper[1],
                hyper[2],
                hyper[3],
            );
            mem.put(&ins[0], p);
            mem.put(&ins[1], m);
            mem.put(&ins[2], v);
        }
        UpdateOp::Sgd { lr, momentum, nesterov } => {
            let (mut p, mut vel) = (mem.take(&ins[0]), mem.take(&ins[1]));
            sgd(
                &mut p,
                &mut vel,
                mem.read(&ins[2]),
                T::of(lr),
                T::of(momentum),
                nesterov,
            );
            mem.put(&ins[0], p);
            mem.put(&ins[1], vel);
        }
        UpdateOp::AccumulateSum => {
            let mut acc = mem.take(&ins[0]);
            accumulate_sum(&mut acc, mem.read(&ins[1]));
            mem.put(&ins[0], acc);
        }
    }
}

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
