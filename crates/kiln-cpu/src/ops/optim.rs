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
    if let UpdateOp::MovingAverage { momentum } = *op {
        let mut avg = mem.take(&ins[0]);
        let (keep, take) = (T::of(momentum), T::one() - T::of(momentum));
        for (a, &x) in avg.iter_mut().zip(mem.read(&ins[1])) {
            *a = *a * keep + x * take;
        }
        mem.put(&ins[0], avg);
        return;
    }
    // A skipped step (its loss-scaled gradients overflowed) leaves everything as it was.
    if mem.read(&ins[op.apply_operand()])[0] == T::zero() {
        return;
    }
    let g = op.grad_operand();
    // At most the parameter and three state tensors; the unused slots stay empty `Vec`s, which
    // do not allocate, so a training step allocates nothing here.
    let mut written: [Vec<T>; 4] = std::array::from_fn(|i| if i < g { mem.take(&ins[i]) } else { Vec::new() });
    let lr = mem.read(&ins[g + 1])[0];
    let step = op.uses_step().then(|| mem.read(&ins[g + 2])[0]);
    let [p, a, b, c] = &mut written;
    let state = [a.as_mut_slice(), b.as_mut_slice(), c.as_mut_slice()];
    let t = step.unwrap_or_else(T::one);
    split_apply(op, p, state, g - 1, mem.read(&ins[g]), lr, t);
    for (r, v) in ins.iter().zip(written).take(g) {
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

/// Elements per task of a parallel update: below this a parameter updates on one thread, since
/// waking a second thread costs more than the pass it would save (a 64K-element Adam step takes
/// ~40 µs; the embed workload ran 25% slower split at 16K).
const SPLIT: usize = 1 << 16;

/// [`apply`] on halves of the slices in parallel (rayon's `join`), down to [`SPLIT`] elements: every
/// rule is element by element, so any split gives the same result. `state` holds `slots` state
/// tensors, then empty slices; splitting fixed arrays keeps a training step free of allocations.
fn split_apply<T: Real>(op: &UpdateOp, p: &mut [T], state: [&mut [T]; 3], slots: usize, g: &[T], lr: T, t: T) {
    if p.len() <= SPLIT {
        let [a, b, c] = state;
        let mut state = [a, b, c];
        return apply(op, p, &mut state[..slots], g, lr, t);
    }
    let mid = p.len() / 2;
    let (p0, p1) = p.split_at_mut(mid);
    let (g0, g1) = g.split_at(mid);
    let halves = state.map(|s| {
        let at = if s.is_empty() { 0 } else { mid };
        s.split_at_mut(at)
    });
    let [(a0, a1), (b0, b1), (c0, c1)] = halves;
    rayon::join(
        || split_apply(op, p0, [a0, b0, c0], slots, g0, lr, t),
        || split_apply(op, p1, [a1, b1, c1], slots, g1, lr, t),
    );
}

/// One update of `p` with its `state` (in [`UpdateOp::state_count`] order) by gradient `g` at
/// learning rate `lr` and 1-based step `t`. Every rule is a branch-free pass zipping the slices it
/// touches (options are decided outside the loops), so the compiler vectorises it.
fn apply<T: Real>(op: &UpdateOp, p: &mut [T], state: &mut [&mut [T]], g: &[T], lr: T, t: T) {
    let one = T::one();
    let decay = weight_decay(op);
    // Keras' decoupled weight decay, before the update: `p -= p · wd · lr`.
    if decay != T::zero() {
        p.iter_mut().for_each(|w| *w = *w - *w * decay * lr);
    }
    let (first, rest) = state.split_first_mut().expect("every optimizer keeps state");
    let first = &mut **first;
    match *op {
        UpdateOp::Adam {
            beta1, beta2, epsilon, ..
        } => {
            let (b1, b2, eps) = (T::of(beta1), T::of(beta2), T::of(epsilon));
            // The bias correction folded into the step size: lr · √(1 - β₂ᵗ) / (1 - β₁ᵗ).
            let alpha = lr * (one - b2.powf(t)).sqrt() / (one - b1.powf(t));
            let moments = |m: &mut T, v: &mut T, g: T| {
                *m = b1 * *m + (one - b1) * g;
                *v = b2 * *v + (one - b2) * g * g;
            };
            match rest {
                [v] => {
                    for (((p, m), v), &g) in p.iter_mut().zip(first.iter_mut()).zip(v.iter_mut()).zip(g) {
                        moments(m, v, g);
                        *p = *p - alpha * *m / (v.sqrt() + eps);
                    }
                }
                // AMSGrad: divide by the running maximum of v.
                [v, v_hat] => {
                    let both = v.iter_mut().zip(v_hat.iter_mut());
                    for (((p, m), (v, h)), &g) in p.iter_mut().zip(first.iter_mut()).zip(both).zip(g) {
                        moments(m, v, g);
                        *h = h.max(*v);
                        *p = *p - alpha * *m / (h.sqrt() + eps);
                    }
                }
                _ => unreachable!("adam keeps m, v and with amsgrad v_hat"),
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
            let [v] = rest else { unreachable!("nadam keeps m and v") };
            for (((p, m), v), &g) in p.iter_mut().zip(first.iter_mut()).zip(v.iter_mut()).zip(g) {
                *m = b1 * *m + (one - b1) * g;
                *v = b2 * *v + (one - b2) * g * g;
                let m_hat = u_next * *m / (one - u_product_next) + (one - u_t) * g / (one - u_product);
                let v_hat = *v / v_correction;
                *p = *p - m_hat * lr / (v_hat.sqrt() + eps);
            }
        }
        UpdateOp::Adamax {
            beta1, beta2, epsilon, ..
        } => {
            let (b1, b2, eps) = (T::of(beta1), T::of(beta2), T::of(epsilon));
            let correction = one - b1.powf(t);
            let [u] = rest else {
                unreachable!("adamax keeps m and u")
            };
            for (((p, m), u), &g) in p.iter_mut().zip(first.iter_mut()).zip(u.iter_mut()).zip(g) {
                *m = b1 * *m + (one - b1) * g;
                *u = (b2 * *u).max(g.abs());
                *p = *p - lr * *m / (correction * (*u + eps));
            }
        }
        UpdateOp::Sgd { momentum, nesterov, .. } => {
            // vel = μ·vel - lr·g, then p += vel (or, Nesterov, p += μ·vel - lr·g).
            let mu = T::of(momentum);
            let steps = p.iter_mut().zip(first.iter_mut()).zip(g);
            if nesterov {
                steps.for_each(|((p, vel), &g)| {
                    *vel = mu * *vel - lr * g;
                    *p = *p + mu * *vel - lr * g;
                });
            } else {
                steps.for_each(|((p, vel), &g)| {
                    *vel = mu * *vel - lr * g;
                    *p = *p + *vel;
                });
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
            let velocity = |v: &mut T, g: T| *v = rho * *v + (one - rho) * g * g;
            let average = |a: &mut T, g: T| *a = rho * *a + (one - rho) * g;
            let steps = p.iter_mut().zip(first.iter_mut()).zip(g);
            match (momentum > 0.0, centered, rest) {
                (false, false, []) => steps.for_each(|((p, v), &g)| {
                    velocity(v, g);
                    *p = *p - lr * g / (*v + eps).sqrt();
                }),
                (true, false, [mom]) => steps.zip(mom.iter_mut()).for_each(|(((p, v), &g), mom)| {
                    velocity(v, g);
                    *mom = mu * *mom + lr * g / (*v + eps).sqrt();
                    *p = *p - *mom;
                }),
                (false, true, [avg]) => steps.zip(avg.iter_mut()).for_each(|(((p, v), &g), a)| {
                    velocity(v, g);
                    average(a, g);
                    *p = *p - lr * g / (*v - *a * *a + eps).sqrt();
                }),
                (true, true, [mom, avg]) => {
                    let extra = mom.iter_mut().zip(avg.iter_mut());
                    steps.zip(extra).for_each(|(((p, v), &g), (mom, a))| {
                        velocity(v, g);
                        average(a, g);
                        *mom = mu * *mom + lr * g / (*v - *a * *a + eps).sqrt();
                        *p = *p - *mom;
                    })
                }
                _ => unreachable!("rmsprop keeps a velocity, and a momentum and an average as configured"),
            }
        }
        UpdateOp::Adagrad { epsilon, .. } => {
            let eps = T::of(epsilon);
            for ((p, acc), &g) in p.iter_mut().zip(first.iter_mut()).zip(g) {
                *acc = *acc + g * g;
                *p = *p - lr * g / (*acc + eps).sqrt();
            }
        }
        UpdateOp::Lion { beta1, beta2, .. } => {
            let (b1, b2) = (T::of(beta1), T::of(beta2));
            for ((p, m), &g) in p.iter_mut().zip(first.iter_mut()).zip(g) {
                *p = *p - lr * sign(*m * b1 + g * (one - b1));
                *m = *m * b2 + g * (one - b2);
            }
        }
        UpdateOp::AccumulateSum | UpdateOp::MovingAverage { .. } => {
            unreachable!("statistics are not optimizers")
        }
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
        UpdateOp::AccumulateSum | UpdateOp::MovingAverage { .. } => 0.0,
    })
}

/// `acc[j] += Σ_r x[r·m + j]` with `m = acc.len()`: per-column sums of `x` viewed as rows of `m`.
pub fn accumulate_sum<T: Real>(acc: &mut [T], x: &[T]) {
    let m = acc.len();
    for (j, a) in acc.iter_mut().enumerate() {
        *a = *a + x.iter().skip(j).step_by(m).copied().sum::<T>();
    }
}
