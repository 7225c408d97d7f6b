//! Matrix products: `C = op(A) · op(B)`, with the bias and activation the scheduler fuses in.

use super::check::not_differentiable;
use super::{Backward, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

/// An activation's parameter inside an [`Epilogue`], kept as its bits so that the op stays `Eq`
/// and `Hash` (pipelines are cached by op); two parameters are equal when their bits are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Param(u32);

impl Param {
    pub fn new(v: f32) -> Self {
        Param(v.to_bits())
    }

    pub fn get(self) -> f32 {
        f32::from_bits(self.0)
    }
}

/// Activation fused into a matmul epilogue: the elementwise activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
    GeluTanh,
    Selu,
    Softplus,
    Silu,
    HardSigmoid,
    Relu6,
    LeakyRelu { slope: Param },
    Elu { alpha: Param },
}

impl Epilogue {
    /// The activation op this epilogue computes; `None` for the identity.
    pub fn activation(self) -> Option<super::ActivationOp> {
        use super::ActivationOp as A;
        Some(match self {
            Epilogue::Linear => return None,
            Epilogue::Relu => A::Relu,
            Epilogue::Sigmoid => A::Sigmoid,
            Epilogue::Tanh => A::Tanh,
            Epilogue::Gelu => A::Gelu { approximate: false },
            Epilogue::GeluTanh => A::Gelu { approximate: true },
            Epilogue::Selu => A::Selu,
            Epilogue::Softplus => A::Softplus,
            Epilogue::Silu => A::Silu,
            Epilogue::HardSigmoid => A::HardSigmoid,
            Epilogue::Relu6 => A::Relu6,
            Epilogue::LeakyRelu { slope } => A::LeakyRelu { slope: slope.get() },
            Epilogue::Elu { alpha } => A::Elu { alpha: alpha.get() },
        })
    }
}

/// `C = op(A) · op(B)` on 2-D operands, or on a batch of matrices (`[batch, .., ..]` operands with
/// the same batch: one product per matrix, as attention's per-head products), `op` transposing
/// the last two axes where asked; the scheduler may fuse a bias (third operand, `[n]`) and an
/// activation into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatMulOp {
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: bool,
    pub epilogue: Epilogue,
}

impl MatMulOp {
    /// The op's name, as a one-variant family.
    pub const NAMES: &'static [&'static str] = &["matmul"];

    /// A product with no bias and no activation, as autodiff and layers build it.
    pub fn plain(trans_a: bool, trans_b: bool) -> Self {
        MatMulOp {
            trans_a,
            trans_b,
            bias: false,
            epilogue: Epilogue::Linear,
        }
    }

    /// `(m, k, n)` of each `op(A) [m, k] · op(B) [k, n]`: the one place the transposes are read, for
    /// the shape rule and both backends. Operands must be 2-D or 3-D (the shape rule checks).
    pub fn dims(&self, a: &Shape, b: &Shape) -> (usize, usize, usize) {
        let (a, b) = (matrix(a), matrix(b));
        let (m, k) = if self.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
        let n = if self.trans_b { b[0] } else { b[1] };
        (m, k, n)
    }

    /// How many products: the leading axis of 3-D operands, 1 for 2-D ones.
    pub fn batch(a: &Shape) -> usize {
        if a.rank() == 3 {
            a.dims()[0]
        } else {
            1
        }
    }
}

/// The most matrices one batched product multiplies.
pub const MAX_BATCH: usize = 65_535;

/// The last two dimensions: the matrix of a (batched) operand.
fn matrix(s: &Shape) -> [usize; 2] {
    let d = s.dims();
    [d[d.len() - 2], d[d.len() - 1]]
}

impl Family for MatMulOp {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn arity(&self) -> usize {
        2 + usize::from(self.bias)
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let (name, a, b) = (self.name(), s[0], s[1]);
        let batched = a.rank() == 3 && b.rank() == 3 && a.dims()[0] == b.dims()[0];
        if !(batched || a.rank() == 2 && b.rank() == 2) {
            return Err(Error::shape(
                name,
                crate::error::shapes_list(&[a, b]),
                "two 2-D operands, or two 3-D ones with the same batch",
            ));
        }
        let (m, ka, n) = self.dims(a, b);
        let kb = matrix(b)[usize::from(self.trans_b)];
        if ka != kb {
            let t = |on: bool| if on { "ᵀ" } else { "" };
            return Err(Error::shape(
                name,
                format!("{a}{} · {b}{}", t(self.trans_a), t(self.trans_b)),
                format!("inner dimensions to agree ({ka} vs {kb})"),
            ));
        }
        if self.bias && s[2].dims() != [n] {
            return Err(Error::shape(name, format!("bias {}", s[2]), format!("[{n}]")));
        }
        if batched {
            // One workgroup layer per matrix on the GPU: a dispatch dimension's limit.
            if a.dims()[0] > MAX_BATCH {
                return Err(Error::invalid(
                    name,
                    format!("a batch of {} products; at most {MAX_BATCH}", a.dims()[0]),
                ));
            }
            Ok(Some(Shape::new([a.dims()[0], m, n])))
        } else {
            Ok(Some(Shape::new([m, n])))
        }
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        if self.bias || self.epilogue != Epilogue::Linear {
            // Fusion runs in the scheduler, after autodiff.
            return Err(not_differentiable(
                self.name(),
                "a fused matmul appears only after scheduling",
            ));
        }
        let (a, b, dy) = (at.x[0], at.x[1], at.dy);
        let (da, db) = match (self.trans_a, self.trans_b) {
            (false, false) => (g.matmul(dy, b, false, true)?, g.matmul(a, dy, true, false)?),
            (true, false) => (g.matmul(b, dy, false, true)?, g.matmul(a, dy, false, false)?),
            (false, true) => (g.matmul(dy, b, false, false)?, g.matmul(dy, a, true, false)?),
            (true, true) => (g.matmul(b, dy, true, true)?, g.matmul(dy, a, true, true)?),
        };
        Ok(vec![Some(da), Some(db)])
    }
}
