//! Activations and their gradients, written in terms of the forward output `y` where the function
//! allows (relu' = `[y > 0]`, sigmoid' = `y(1 - y)`, tanh' = `1 - y²`, softmax' · dy =
//! `y ⊙ (dy - Σ dy·y)` per row, elu' = `y + α` below 0), else of the input `x` (gelu, softplus,
//! silu). Formulas: keras/src/backend/numpy/nn.py.

use kiln_graph::{ActivationOp, Epilogue, SELU_ALPHA, SELU_SCALE};

use super::par::{self, map, zip};
use crate::executor::Args;
use crate::Real;

/// Runs one activation step.
pub fn compute<T: Real>(op: ActivationOp, a: &Args<'_, T>, out: &mut [T]) {
    let cols = a.shape(0).last();
    // The input, or the forward value a gradient reads (`x` or `y`); the gradients' `dy` is a.x(1).
    let x = a.x(0);
    match op {
        ActivationOp::Relu => map(x, out, |v| v.max(T::zero())),
        ActivationOp::Sigmoid => map(x, out, sigmoid_scalar),
        ActivationOp::Softmax => softmax(x, cols, out),
        ActivationOp::Tanh => map(x, out, T::tanh_vec),
        ActivationOp::Gelu { approximate: false } => map(x, out, gelu_exact),
        ActivationOp::Gelu { approximate: true } => map(x, out, gelu_tanh),
        ActivationOp::LeakyRelu { slope } => {
            let slope = T::of(slope);
            map(x, out, |v| leaky_relu(v, slope))
        }
        ActivationOp::Elu { alpha } => map(x, out, |v| elu(v, T::of(alpha))),
        ActivationOp::Selu => map(x, out, selu),
        ActivationOp::Softplus => map(x, out, softplus),
        ActivationOp::Silu => map(x, out, silu),
        ActivationOp::HardSigmoid => map(x, out, hard_sigmoid),
        ActivationOp::Relu6 => map(x, out, relu6),
        ActivationOp::ReluGrad => zip(x, a.x(1), out, |y, d| if y > T::zero() { d } else { T::zero() }),
        ActivationOp::SigmoidGrad => zip(x, a.x(1), out, |y, d| d * y * (T::one() - y)),
        ActivationOp::SoftmaxGrad => softmax_grad(x, a.x(1), cols, out),
        ActivationOp::TanhGrad => zip(x, a.x(1), out, |y, d| d * (T::one() - y * y)),
        ActivationOp::GeluGrad { approximate } => zip(x, a.x(1), out, |v, d| d * gelu(v, approximate).1),
        ActivationOp::LeakyReluGrad { slope } => {
            let slope = T::of(slope);
            zip(x, a.x(1), out, |y, d| if y > T::zero() { d } else { d * slope })
        }
        ActivationOp::EluGrad { alpha } => {
            let alpha = T::of(alpha);
            zip(x, a.x(1), out, |y, d| if y > T::zero() { d } else { d * (y + alpha) })
        }
        ActivationOp::SeluGrad => {
            let (alpha, scale) = selu_constants();
            zip(x, a.x(1), out, |y, d| {
                if y > T::zero() {
                    d * scale
                } else {
                    d * (y + scale * alpha)
                }
            })
        }
        ActivationOp::SoftplusGrad => zip(x, a.x(1), out, |v, d| d * sigmoid_scalar(v)),
        ActivationOp::SiluGrad => zip(x, a.x(1), out, |v, d| {
            let s = sigmoid_scalar(v);
            d * s * (T::one() + v * (T::one() - s))
        }),
        ActivationOp::HardSigmoidGrad => zip(x, a.x(1), out, |y, d| {
            if y > T::zero() && y < T::one() {
                d / T::of(6.0)
            } else {
                T::zero()
            }
        }),
        ActivationOp::Relu6Grad => zip(x, a.x(1), out, |y, d| {
            if y > T::zero() && y < T::of(6.0) {
                d
            } else {
                T::zero()
            }
        }),
    }
}

/// An activation of a value and its parameter.
pub type WithParam<T> = fn(T, T) -> T;

/// The scalar form of a matmul epilogue's activation (the same functions the activation ops
/// map) as `f(v, parameter)` with its parameter (0 where it takes none), `None` for the identity.
pub fn epilogue_fn<T: Real>(epilogue: Epilogue) -> Option<(WithParam<T>, T)> {
    let none = T::zero();
    Some(match epilogue {
        Epilogue::Linear => return None,
        Epilogue::Relu => (|v: T, _| v.max(T::zero()), none),
        Epilogue::Sigmoid => (|v, _| sigmoid_scalar(v), none),
        Epilogue::Tanh => (|v: T, _| v.tanh_vec(), none),
        Epilogue::Gelu => (|v, _| gelu_exact(v), none),
        Epilogue::GeluTanh => (|v, _| gelu_tanh(v), none),
        Epilogue::Selu => (|v, _| selu(v), none),
        Epilogue::Softplus => (|v, _| softplus(v), none),
        Epilogue::Silu => (|v, _| silu(v), none),
        Epilogue::HardSigmoid => (|v, _| hard_sigmoid(v), none),
        Epilogue::Relu6 => (|v, _| relu6(v), none),
        Epilogue::LeakyRelu { slope } => (leaky_relu, T::of(slope.get())),
        Epilogue::Elu { alpha } => (elu, T::of(alpha.get())),
    })
}

/// `x` above 0, `slope·x` below.
fn leaky_relu<T: Real>(x: T, slope: T) -> T {
    if x > T::zero() {
        x
    } else {
        slope * x
    }
}

fn gelu_exact<T: Real>(v: T) -> T {
    gelu(v, false).0
}

fn gelu_tanh<T: Real>(v: T) -> T {
    gelu(v, true).0
}

fn selu<T: Real>(v: T) -> T {
    let (alpha, scale) = selu_constants();
    scale * elu(v, alpha)
}

/// `ln(1 + eˣ)` as `max(x, 0) + ln(1 + e^-|x|)`, which never overflows.
fn softplus<T: Real>(v: T) -> T {
    v.max(T::zero()) + (-v.abs()).exp().ln_1p()
}

fn silu<T: Real>(v: T) -> T {
    v * sigmoid_scalar(v)
}

fn hard_sigmoid<T: Real>(v: T) -> T {
    (v / T::of(6.0) + T::of(0.5)).max(T::zero()).min(T::one())
}

fn relu6<T: Real>(v: T) -> T {
    v.max(T::zero()).min(T::of(6.0))
}

/// `x` above 0, `alpha·(eˣ - 1)` below (`exp_m1`, exact near 0).
fn elu<T: Real>(x: T, alpha: T) -> T {
    if x > T::zero() {
        x
    } else {
        alpha * x.exp_m1()
    }
}

/// SELU's `(alpha, scale)` at this precision.
fn selu_constants<T: Real>() -> (T, T) {
    (
        T::from(SELU_ALPHA).expect("a float"),
        T::from(SELU_SCALE).expect("a float"),
    )
}

/// gelu(x) and its derivative: exact `x·Φ(x)` with `Φ(x) = ½(1 + erf(x/√2))` and derivative
/// `Φ(x) + x·φ(x)`, or the tanh approximation `½x(1 + t)`, `t = tanh(c(x + 0.044715x³))`,
/// `c = √(2/π)`, with derivative `½(1 + t) + ½x(1 - t²)·c(1 + 3·0.044715x²)`.
pub fn gelu<T: Real>(x: T, approximate: bool) -> (T, T) {
    let half = T::of(0.5);
    if approximate {
        let c = T::from(std::f64::consts::FRAC_2_PI.sqrt()).expect("a float");
        let k = T::from(0.044715).expect("a float");
        let t = (c * (x + k * x * x * x)).tanh();
        let dt = c * (T::one() + T::of(3.0) * k * x * x);
        (
            half * x * (T::one() + t),
            half * (T::one() + t) + half * x * (T::one() - t * t) * dt,
        )
    } else {
        let cdf = half * (T::one() + (x * T::from(std::f64::consts::FRAC_1_SQRT_2).expect("a float")).erf());
        let pdf = (-half * x * x).exp()
            * T::from(0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2).expect("a float");
        (x * cdf, cdf + x * pdf)
    }
}

/// Sigmoid that never overflows: `1 / (1 + e)` with `e = e^{-|x|}`, times `e` for negative `x`
/// (`eˣ / (1 + eˣ)`). Branch-free, so a pass over a slice vectorises.
#[inline(always)]
pub fn sigmoid_scalar<T: Real>(x: T) -> T {
    let e = (-x.abs()).exp_nonpositive();
    let s = T::one() / (T::one() + e);
    if x >= T::zero() {
        s
    } else {
        e * s
    }
}

/// Softmax over rows of length `n`, shifted by the row maximum.
pub fn softmax<T: Real>(x: &[T], n: usize, out: &mut [T]) {
    let work = out.len();
    par::rows(out, n, work, |first, rows| softmax_rows(&x[first * n..], n, rows));
}

/// [`softmax`] over the rows of `out`, reading `x` from its start.
fn softmax_rows<T: Real>(x: &[T], n: usize, out: &mut [T]) {
    for (xr, or) in x.chunks(n).zip(out.chunks_mut(n)) {
        let max = xr.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        // The exponentials first, a pass that vectorises; then their sum in order (one loop
        // would carry the sum and stay scalar).
        for (o, &v) in or.iter_mut().zip(xr) {
            *o = (v - max).exp_nonpositive();
        }
        let sum = or.iter().fold(T::zero(), |s, &o| s + o);
        for o in or.iter_mut() {
            *o = *o / sum;
        }
    }
}

/// `out = y ⊙ (dy - Σ dy·y)` over rows of length `n`.
pub fn softmax_grad<T: Real>(y: &[T], dy: &[T], n: usize, out: &mut [T]) {
    let work = out.len();
    par::rows(out, n, work, |first, rows| {
        softmax_grad_rows(&y[first * n..], &dy[first * n..], n, rows);
    });
}

/// [`softmax_grad`] over the rows of `out`, reading `y` and `dy` from their starts.
fn softmax_grad_rows<T: Real>(y: &[T], dy: &[T], n: usize, out: &mut [T]) {
    for ((yr, dr), or) in y.chunks(n).zip(dy.chunks(n)).zip(out.chunks_mut(n)) {
        let dot: T = yr.iter().zip(dr).map(|(&a, &b)| a * b).sum();
        for j in 0..yr.len() {
            or[j] = yr[j] * (dr[j] - dot);
        }
    }
}
