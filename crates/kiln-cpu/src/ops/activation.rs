//! Activations and their gradients, each written in terms of the forward output `y`:
//! relu' = `[y > 0]`, sigmoid' = `y(1 - y)`, tanh' = `1 - y²`, softmax' · dy = `y ⊙ (dy - Σ dy·y)` per row.

use kiln_graph::ActivationOp;

use crate::executor::Args;
use crate::Real;

/// Runs one activation step.
pub fn compute<T: Real>(op: ActivationOp, a: &Args<'_, T>, out: &mut [T]) {
    let cols = a.shape(0).last();
    match op {
        ActivationOp::Relu => relu(a.x(0), out),
        ActivationOp::Sigmoid => sigmoid(a.x(0), out),
        ActivationOp::Softmax => softmax(a.x(0), cols, out),
        ActivationOp::Tanh => tanh(a.x(0), out),
        ActivationOp::ReluGrad => relu_grad(a.x(0), a.x(1), out),
        ActivationOp::SigmoidGrad => sigmoid_grad(a.x(0), a.x(1), out),
        ActivationOp::SoftmaxGrad => softmax_grad(a.x(0), a.x(1), cols, out),
        ActivationOp::TanhGrad => tanh_grad(a.x(0), a.x(1), out),
    }
}

/// Sigmoid that never overflows: for negative `x` it uses `eˣ / (1 + eˣ)`.
pub fn sigmoid_scalar<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `out = max(x, 0)`.
pub fn relu<T: Real>(x: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.max(T::zero());
    }
}

/// `out = sigmoid(x)`.
pub fn sigmoid<T: Real>(x: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = sigmoid_scalar(v);
    }
}

/// Softmax over rows of length `n`, shifted by the row maximum.
pub fn softmax<T: Real>(x: &[T], n: usize, out: &mut [T]) {
    for (xr, or) in x.chunks(n).zip(out.chunks_mut(n)) {
        let max = xr.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        let mut sum = T::zero();
        for (o, &v) in or.iter_mut().zip(xr) {
            *o = (v - max).exp();
            sum = sum + *o;
        }
        for o in or.iter_mut() {
            *o = *o / sum;
        }
    }
}

/// `out = tanh(x)`.
pub fn tanh<T: Real>(x: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.tanh();
    }
}

/// `out = dy · (1 - y²)`.
pub fn tanh_grad<T: Real>(y: &[T], dy: &[T], out: &mut [T]) {
    for ((o, &yv), &d) in out.iter_mut().zip(y).zip(dy) {
        *o = d * (T::one() - yv * yv);
    }
}

/// `out = dy · [y > 0]`.
pub fn relu_grad<T: Real>(y: &[T], dy: &[T], out: &mut [T]) {
    for ((o, &yv), &d) in out.iter_mut().zip(y).zip(dy) {
        *o = if yv > T::zero() { d } else { T::zero() };
    }
}

/// `out = dy · y · (1 - y)`.
pub fn sigmoid_grad<T: Real>(y: &[T], dy: &[T], out: &mut [T]) {
    for ((o, &yv), &d) in out.iter_mut().zip(y).zip(dy) {
        *o = d * yv * (T::one() - yv);
    }
}

/// `out = y ⊙ (dy - Σ dy·y)` over rows of length `n`.
pub fn softmax_grad<T: Real>(y: &[T], dy: &[T], n: usize, out: &mut [T]) {
    for ((yr, dr), or) in y.chunks(n).zip(dy.chunks(n)).zip(out.chunks_mut(n)) {
        let dot: T = yr.iter().zip(dr).map(|(&a, &b)| a * b).sum();
        for j in 0..yr.len() {
            or[j] = yr[j] * (dr[j] - dot);
        }
    }
}
