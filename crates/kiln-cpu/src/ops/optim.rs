//! In-place optimizer updates and the metric accumulator. Each rule is Keras 3's `update_step`
//! (keras/src/optimizers/<name>.py), element by element; see [`UpdateOp`] for the operands.

use kiln_graph::{TensorRef, UpdateOp};

use crate::executor::Memory;
use crate::Real;

/// Runs one in-place update on `mem`: the written operands (parameter and state) are taken out of
/// memory, updated while the gradient and step are read, and put back.
pub fn update<T: Real>(op: &UpdateOp, ins: &[TensorRef], mem: &mut Memory<'_, T>) {
    if let UpdateOp::AccumulateSum = op {
        let mut acc = mem.take(&ins[0]);
        accumulate_sum(&mut acc, mem.read(&ins[1]));
        mem.put(&ins[0], acc);
        return;
    }
    let g = op.grad_operand();
    let mut written: Vec<Vec<T>> = ins[..g].iter().map(|r| mem.take(r)).collect();
    let lr = mem.read(&ins[g + 1])[0];
    let step = op.uses_step().then(|| mem.read(&ins[g + 2])[0]);
    let (p, state) = written.split_first_mut().expect("an update writes its parameter");
    apply(op, p, state, mem.read(&ins[g]), lr, step.unwrap_or_else(T::one));
    for (r, v) in ins.iter().zip(written) {
        mem.put(r, v);
    }
}

/// Keras' `sign`: 0 at 0 (`Float::signum` gives ±1 there).
fn sign<T: Real>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

/// Nadam's momentum-schedule product `Π_{s=1..t} β₁(1 - ½·0.96ˢ)`, which Keras keeps as a running
/// variable (`_u_product`). Here it comes from the step alone, so a resumed run needs no extra
/// state: `β₁ᵗ · exp(S(t))` with `S(t) = Σₛ ln(1 - ½·0.96ˢ) = -Σₖ (½ᵏ/k)·0.96ᵏ(1 - 0.96ᵏᵗ)/(1 - 0.96ᵏ)`
/// (expanding each logarithm); 30 terms leave an error below ½³⁰. `nadam_update` in optim.wgsl
/// computes the same series.
pub fn nadam_u_product<T: Real>(beta1: T, t: T) -> T {
    let (half, decay) = (T::of(0.5), T::of(0.96));
    let mut s = T::zero();
    let (mut h, mut d) = (T::one(), T::one());
    for k in 1..=30 {
        h = h * half;
        d = d * decay;
        s = s - h / T::of(k as f32) * d * (T::one() - d.powf(t)) / (T::one() - d);
    }
    beta1.powf(t) * s.exp()
}

/// One update of `p` with its `state` (in [`UpdateOp::state_count`] order) by gradient `g` at
/// learning rate `lr` and 1-based step `t`.
fn apply<T: Real>(op: &UpdateOp, p: &mut [T], state: &mut [Vec<T>], g: &[T], lr: T, t: T) {
    let one = T::one();
    let decay = weight_decay(op);
    // Keras' decoupled weight decay, before the update: `p -= p · wd · lr`.
    if decay != T::zero() {
        p.iter_mut().for_each(|w| *w = *w - *w * decay * lr);
    }
    match *op {
        UpdateOp::Adam {
            beta1,
            beta2,
            epsilon,
            amsgrad,
            ..
        } => {
            let (b1, b2, eps) = (T::of(beta1), T::of(beta2), T::of(epsilon));
            // The bias correction folded into the step size: lr · √(1 - β₂ᵗ) / (1 - β₁ᵗ).
            let alpha = lr * (one - b2.powf(t)).sqrt() / (one - b1.powf(t));
            let [m, v, rest @ ..] = state else {
                unreachable!("adam keeps m and v")
            };
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (one - b1) * g[i];
                v[i] = b2 * v[i] + (one - b2) * g[i] * g[i];
                let mut denom = v[i];
                if amsgrad {
                    let v_hat = &mut rest[0];
                    v_hat[i] = v_hat[i].max(v[i]);
                    denom = v_hat[i];
                }
                p[i] = p[i] - alpha * m[i] / (denom.sqrt() + eps);
            }
        }
        UpdateOp::Nadam {
            beta1, beta2, epsilon, ..
        } => {
            let (b1, b2, eps) = (T::of(beta1), T::of(beta2), T::of(epsilon));
            let schedule = |s: T| b1 * (one - T::of(0.5) * T::of(0.96).powf(s));
            let (u_t, u_next) = (schedule(t), schedule(t + one));
            let u_product = nadam_u_product(b1, t);
            let u_product_next = u_product * u_next;
            let v_correction = one - b2.powf(t);
            let [m, v] = state else {
                unreachable!("nadam keeps m and v")
            };
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (one - b1) * g[i];
                v[i] = b2 * v[i] + (one - b2) * g[i] * g[i];
                let m_hat = u_next * m[i] / (one - u_product_next) + (one - u_t) * g[i] / (one - u_product);
                let v_hat = v[i] / v_correction;
                p[i] = p[i] - m_hat * lr / (v_hat.sqrt() + eps);
            }
        }
        UpdateOp::Adamax {
            beta1, beta2, epsilon, ..
        } => {
            let (b1, b2, eps) = (T::of(beta1), T::of(beta2), T::of(epsilon));
            let correction = one - b1.powf(t);
            let [m, u] = state else {
                unreachable!("adamax keeps m and u")
            };
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (one - b1) * g[i];
                u[i] = (b2 * u[i]).max(g[i].abs());
                p[i] = p[i] - lr * m[i] / (correction * (u[i] + eps));
            }
        }
        UpdateOp::Sgd { momentum, nesterov, .. } => {
            // vel = μ·vel - lr·g, then p += vel (or, Nesterov, p += μ·vel - lr·g).
            let mu = T::of(momentum);
            let [vel] = state else {
                unreachable!("sgd keeps a velocity")
            };
            for i in 0..p.len() {
                vel[i] = mu * vel[i] - lr * g[i];
                p[i] = p[i] + if nesterov { mu * vel[i] - lr * g[i] } else { vel[i] };
            }
        }
        UpdateOp::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
            ..
        } => {
            let (rho, mu, eps) = (T::of(rho), T::of(momentum), T::of(epsilon));
            let (v, rest) = state.split_first_mut().expect("rmsprop keeps a velocity");
            let (mom, avg) = match (momentum > 0.0, centered, rest) {
                (true, true, [mom, avg]) => (Some(mom), Some(avg)),
                (true, false, [mom]) => (Some(mom), None),
                (false, true, [avg]) => (None, Some(avg)),
                _ => (None, None),
            };
            let (mut mom, mut avg) = (mom, avg);
            for i in 0..p.len() {
                v[i] = rho * v[i] + (one - rho) * g[i] * g[i];
                let denom = match avg.as_deref_mut() {
                    Some(a) => {
                        a[i] = rho * a[i] + (one - rho) * g[i];
                        v[i] - a[i] * a[i] + eps
                    }
                    None => v[i] + eps,
                };
                let increment = lr * g[i] / denom.sqrt();
                p[i] = p[i]
                    - match mom.as_deref_mut() {
                        Some(m) => {
                            m[i] = mu * m[i] + increment;
                            m[i]
                        }
                        None => increment,
                    };
            }
        }
        UpdateOp::Adagrad { epsilon, .. } => {
            let eps = T::of(epsilon);
            let [acc] = state else {
                unreachable!("adagrad keeps an accumulator")
            };
            for i in 0..p.len() {
                acc[i] = acc[i] + g[i] * g[i];
                p[i] = p[i] - lr * g[i] / (acc[i] + eps).sqrt();
            }
        }
        UpdateOp::Lion { beta1, beta2, .. } => {
            let (b1, b2) = (T::of(beta1), T::of(beta2));
            let [m] = state else { unreachable!("lion keeps m") };
            for i in 0..p.len() {
                p[i] = p[i] - lr * sign(m[i] * b1 + g[i] * (one - b1));
                m[i] = m[i] * b2 + g[i] * (one - b2);
            }
        }
        UpdateOp::AccumulateSum => unreachable!("the accumulator is not an optimizer"),
    }
}

/// The weight decay of an optimizer update.
fn weight_decay<T: Real>(op: &UpdateOp) -> T {
    T::of(match *op {
        UpdateOp::Adam { weight_decay, .. }
        | UpdateOp::Nadam { weight_decay, .. }
        | UpdateOp::Adamax { weight_decay, .. }
        | UpdateOp::Sgd { weight_decay, .. }
        | UpdateOp::RmsProp { weight_decay, .. }
        | UpdateOp::Adagrad { weight_decay, .. }
        | UpdateOp::Lion { weight_decay, .. } => weight_decay,
        UpdateOp::AccumulateSum => 0.0,
    })
}

/// `acc[j] += Σ_r x[r·m + j]` with `m = acc.len()`: per-column sums of `x` viewed as rows of `m`.
pub fn accumulate_sum<T: Real>(acc: &mut [T], x: &[T]) {
    let m = acc.len();
    for (j, a) in acc.iter_mut().enumerate() {
        *a = *a + x.iter().skip(j).step_by(m).copied().sum::<T>();
    }
}
