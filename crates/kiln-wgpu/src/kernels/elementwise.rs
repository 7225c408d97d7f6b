//! Elementwise kernels (elementwise.wgsl): one invocation per output element.

use kiln_graph::{dropout_threshold, ElementwiseOp};

use super::{grid_1d, Io, Kernel};
use crate::shaders::{ElementwiseParams, Shader};

pub(super) fn kernel(op: &ElementwiseOp, io: &Io) -> Kernel {
    let mut p = ElementwiseParams {
        n: io.n() as u32,
        ..Default::default()
    };
    let (entry, operands): (_, &[usize]) = match *op {
        ElementwiseOp::Fill { value, .. } => {
            p.scalar = value;
            ("fill", &[])
        }
        ElementwiseOp::BiasAdd => {
            p.bias_len = io.ins[1].len() as u32;
            ("bias_add", &[0, 1])
        }
        ElementwiseOp::Add => ("add", &[0, 1]),
        ElementwiseOp::Sub => ("sub", &[0, 1]),
        ElementwiseOp::Mul => ("mul", &[0, 1]),
        ElementwiseOp::Div => ("div", &[0, 1]),
        ElementwiseOp::Equal => ("equal", &[0, 1]),
        ElementwiseOp::Scale { factor } => {
            p.scalar = factor;
            ("scale", &[0])
        }
        ElementwiseOp::Sign => ("signum", &[0]),
        ElementwiseOp::Greater { threshold } => {
            p.scalar = threshold;
            ("greater", &[0])
        }
        // WGSL reserves `log`.
        ElementwiseOp::Log => ("ln", &[0]),
        ElementwiseOp::Clip { min, max } => {
            (p.lo, p.hi) = (min, max);
            ("clip", &[0])
        }
        ElementwiseOp::ScaleByScalar => ("scale_by_scalar", &[0, 1]),
        ElementwiseOp::Pow { exponent } => {
            p.scalar = exponent;
            ("pow_", &[0])
        }
        ElementwiseOp::ClipNormFactor { max_norm } => {
            p.scalar = max_norm;
            ("clip_norm_factor", &[0])
        }
        ElementwiseOp::Dropout { rate, seed } => {
            (p.seed, p.keep_at, p.scalar) = (seed, dropout_threshold(rate), 1.0 / (1.0 - rate));
            ("dropout", &[0, 1])
        }
        ElementwiseOp::Uniform { low, high, seed, .. } => {
            (p.seed, p.uniform_low, p.uniform_span) = (seed, low, high - low);
            // `uniform` is an address space in WGSL.
            ("uniform_draw", &[0])
        }
        ElementwiseOp::RoundF16 => ("round_f16", &[0]),
        ElementwiseOp::NonFinite => ("non_finite", &[0]),
    };
    Kernel::new(Shader::Elementwise, entry, p, io.with_out(operands), grid_1d(io.n()))
}
