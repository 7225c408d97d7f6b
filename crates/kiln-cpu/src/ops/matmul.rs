//! Matrix product with an optional fused bias and activation.
//!
//! Forward: `C = act(op(A) · op(B) + bias)`. Backward (in autodiff, as matmuls):
//! `dA = dC · op(B)ᵀ`, `dB = op(A)ᵀ · dC`, transposed back to the operands' stored layouts.

use kiln_graph::{Epilogue, MatMulOp};

use crate::executor::Args;

use crate::Real;

/// Runs one matmul step.
pub fn compute<T: Real>(op: &MatMulOp, a: &Args<'_, T>, out: &mut [T]) {
    let (m, k, n) = op.dims(a.shape(0), a.shape(1));
    let bias = op.bias.then(|| a.x(2));
    // A batch is one product per matrix, each on its own slices of the operands.
    let (x, y) = (a.x(0), a.x(1));
    let batch = MatMulOp::batch(a.shape(0));
    for i in 0..batch {
        let (sa, sb, so) = (m * k, k * n, m * n);
        let (xa, yb) = (&x[i * sa..(i + 1) * sa], &y[i * sb..(i + 1) * sb]);
        let o = &mut out[i * so..(i + 1) * so];
        matmul(xa, yb, bias, o, (m, k, n), op.trans_a, op.trans_b, op.epilogue);
    }
}

/// `out[m×n] = epilogue(op(a) · op(b) + bias)`, where `a` is stored `[m, k]` (or `[k, m]` when
/// `trans_a`) and `b` is stored `[k, n]` (or `[n, k]` when `trans_b`).
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    (m, k, n): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
    epilogue: Epilogue,
) {
    let (rsa, csa) = if trans_a { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if trans_b { (1, k as isize) } else { (n as isize, 1) };
    T::gemm(m, k, n, a, rsa, csa, b, rsb, csb, out);
    if bias.is_none() && epilogue == Epilogue::Linear {
        return;
    }
    // Relu, the common case, inline; the other activations through their scalar function.
    let act = super::activation::epilogue_fn::<T>(epilogue);
    for row in out.chunks_mut(n.max(1)) {
        for (j, c) in row.iter_mut().enumerate() {
            let z = *c + bias.map_or(T::zero(), |b| b[j]);
            *c = match (epilogue, act) {
                (Epilogue::Relu, _) => z.max(T::zero()),
                (_, Some((f, param))) => f(z, param),
                (_, None) => z,
            };
        }
    }
}
