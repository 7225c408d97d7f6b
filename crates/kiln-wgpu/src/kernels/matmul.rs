//! Matmul kernels: the widest variant the shapes and the adapter allow, chosen by [`variant`].

use kiln_graph::{Epilogue, MatMulOp};

use super::{Caps, Io, Kernel};
use crate::shaders::{MatmulParams, Shader};

/// Edge of the tile of C a workgroup of `matmul_tiled.wgsl` computes (its `TILE`).
pub const TILE: u32 = 64;

/// The matmul kernels, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Operands through texel copies on 8-wide subgroups: `op(A)·op(B)` for NN, TN and NT layouts.
    Texel(&'static str),
    /// Operands through texel copies, one float at a time: every other shape.
    TexelScalar,
    /// Storage operands on 8-wide subgroups, vec4 loads (`matmul_subgroup` or `_tn`).
    Subgroup(&'static str),
    /// Storage operands, vec4 loads, 32×32 tiles.
    Vec4,
    /// Storage operands, one float at a time.
    Scalar,
    /// Storage operands through workgroup-memory slabs, 64×64 tiles of C with 4×4 per invocation:
    /// every shape and layout, batched, on adapters whose class gets tiles ([`Caps::matmul_tile`]).
    Tiled,
}

impl Variant {
    fn shader(self) -> Shader {
        match self {
            Variant::Texel(_) => Shader::MatmulTexel,
            Variant::TexelScalar => Shader::MatmulTexelScalar,
            Variant::Subgroup(_) => Shader::MatmulSubgroup,
            Variant::Vec4 => Shader::MatmulVec4,
            Variant::Scalar => Shader::Matmul,
            Variant::Tiled => Shader::MatmulTiled,
        }
    }

    fn entry(self) -> &'static str {
        match self {
            Variant::Texel(e) | Variant::Subgroup(e) => e,
            Variant::TexelScalar => "matmul_texel_scalar",
            Variant::Vec4 => "matmul_vec4",
            Variant::Scalar => "matmul",
            Variant::Tiled => "matmul_tiled",
        }
    }

    /// Whether the kernel reads A and B through texel copies.
    fn texels(self) -> bool {
        matches!(self, Variant::Texel(_) | Variant::TexelScalar)
    }

    /// Workgroups for an `m × n` output.
    fn grid(self, m: usize, n: usize) -> [u32; 3] {
        let (m, n) = (m as u32, n as u32);
        match self {
            Variant::Texel(_) | Variant::Subgroup(_) => [n.div_ceil(32), m.div_ceil(64), 1],
            Variant::TexelScalar => [n.div_ceil(8), m.div_ceil(64), 1],
            Variant::Vec4 | Variant::Scalar => [n.div_ceil(32), m.div_ceil(32), 1],
            Variant::Tiled => [n.div_ceil(TILE), m.div_ceil(TILE), 1],
        }
    }
}

/// The kernel for `op` on `(m, k, n)`: texel kernels where the adapter reads operands through texel
/// copies (`texels`, 8-wide subgroups), else the widest storage kernel. 16-byte loads need the
/// contiguous dimensions to divide by 4; the subgroup kernels need 8-wide subgroups.
pub fn variant(op: &MatMulOp, (m, k, n): (usize, usize, usize), caps: Caps, texels: bool) -> Variant {
    let (ta, tb) = (op.trans_a, op.trans_b);
    if caps.matmul_tile == TILE {
        return Variant::Tiled;
    }
    if caps.subgroup8 && texels {
        if n % 4 != 0 || (tb && k % 4 != 0) {
            return Variant::TexelScalar;
        }
        return match (ta, tb) {
            (false, false) => Variant::Texel("matmul_texel"),
            (true, false) => Variant::Texel("matmul_texel_tn"),
            (false, true) => Variant::Texel("matmul_texel_nt"),
            (true, true) => Variant::TexelScalar,
        };
    }
    let vec4 = n % 4 == 0
        && match (ta, tb) {
            (true, false) => m % 4 == 0,
            (true, true) => false,
            (false, false) | (false, true) => k % 4 == 0,
        };
    if !vec4 {
        Variant::Scalar
    } else if caps.subgroup8 && !ta && !tb {
        Variant::Subgroup("matmul_subgroup")
    } else if caps.subgroup8 && ta && !tb && k % 4 == 0 {
        Variant::Subgroup("matmul_subgroup_tn")
    } else {
        Variant::Vec4
    }
}

pub(super) fn kernel(op: &MatMulOp, io: &Io, caps: Caps) -> Kernel {
    let (a, b) = (&io.ins[0], &io.ins[1]);
    let (m, k, n) = op.dims(&a.shape, &b.shape);
    let batch = MatMulOp::batch(&a.shape);
    // A batch of products runs on a storage kernel, one matrix per workgroup layer: the tiled one
    // where the adapter takes tiles, else the scalar one.
    let v = if batch > 1 && caps.matmul_tile != TILE {
        Variant::Scalar
    } else {
        variant(op, (m, k, n), caps, caps.texel_fits(a) && caps.texel_fits(b))
    };
    let mut grid = v.grid(m, n);
    grid[2] = batch as u32;
    // common.wgsl's activate1 numbering.
    let act = match op.epilogue {
        Epilogue::Linear => 0.0,
        Epilogue::Relu => 1.0,
        Epilogue::Sigmoid => 2.0,
        Epilogue::Tanh => 3.0,
        Epilogue::Gelu => 4.0,
        Epilogue::GeluTanh => 5.0,
        Epilogue::Selu => 6.0,
        Epilogue::Softplus => 7.0,
        Epilogue::Silu => 8.0,
        Epilogue::HardSigmoid => 9.0,
        Epilogue::Relu6 => 10.0,
        Epilogue::LeakyRelu { .. } => 11.0,
        Epilogue::Elu { .. } => 12.0,
    };
    let act_param = match op.epilogue {
        Epilogue::LeakyRelu { slope: v } | Epilogue::Elu { alpha: v } => f64::from(v.get()),
        Epilogue::Linear
        | Epilogue::Relu
        | Epilogue::Sigmoid
        | Epilogue::Tanh
        | Epilogue::Gelu
        | Epilogue::GeluTanh
        | Epilogue::Selu
        | Epilogue::Softplus
        | Epilogue::Silu
        | Epilogue::HardSigmoid
        | Epilogue::Relu6 => 0.0,
    };
    let params = MatmulParams {
        m: m as u32,
        k: k as u32,
        n: n as u32,
        pad: 0,
    };
    let bit = |on: bool| f64::from(u8::from(on));
    let mut kernel = if v.texels() {
        // Without a bias, the bias binding still needs a buffer: C is bound there and never read.
        let bias = if op.bias { io.ins[2].clone() } else { io.out() };
        let mut k = Kernel::new(v.shader(), v.entry(), params, vec![io.out(), bias], grid);
        k.texels = vec![a.clone(), b.clone()];
        k
    } else {
        // Without a bias, the bias binding still needs a buffer: A is bound there and never read.
        let bias = if op.bias { io.ins[2].clone() } else { a.clone() };
        let bindings = vec![io.out(), a.clone(), b.clone(), bias];
        Kernel::new(v.shader(), v.entry(), params, bindings, grid)
    };
    kernel = kernel
        .with("HAS_BIAS", bit(op.bias))
        .with("ACT", act)
        .with("ACT_PARAM", act_param);
    match v {
        // Rows of the stored A on whole texels; if not, the vec4 texel kernels read A float by float.
        Variant::Texel(_) => kernel.with("A_ALIGNED", bit(if op.trans_a { m % 4 == 0 } else { k % 4 == 0 })),
        Variant::Subgroup(_) => kernel,
        Variant::TexelScalar | Variant::Vec4 | Variant::Scalar | Variant::Tiled => {
            kernel.with("TRANS_A", bit(op.trans_a)).with("TRANS_B", bit(op.trans_b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVAPIPE: Caps = Caps {
        subgroup8: true,
        texel_rows: 8192,
        matmul_tile: 0,
    };
    const PLAIN: Caps = Caps {
        subgroup8: false,
        texel_rows: 0,
        matmul_tile: 0,
    };
    const HARDWARE: Caps = Caps {
        subgroup8: false,
        texel_rows: 0,
        matmul_tile: 64,
    };

    #[test]
    fn the_widest_kernel_the_shapes_allow() {
        let nn = MatMulOp::plain(false, false);
        let tn = MatMulOp::plain(true, false);
        let nt = MatMulOp::plain(false, true);
        let tt = MatMulOp::plain(true, true);
        // Texel copies: vec4 layouts on subgroups, the scalar texel kernel for the rest.
        assert_eq!(
            variant(&nn, (64, 27, 32), LAVAPIPE, true),
            Variant::Texel("matmul_texel")
        );
        assert_eq!(
            variant(&tn, (27, 64, 32), LAVAPIPE, true),
            Variant::Texel("matmul_texel_tn")
        );
        assert_eq!(
            variant(&nt, (64, 32, 12), LAVAPIPE, true),
            Variant::Texel("matmul_texel_nt")
        );
        assert_eq!(variant(&nt, (64, 27, 12), LAVAPIPE, true), Variant::TexelScalar);
        assert_eq!(variant(&nn, (64, 32, 10), LAVAPIPE, true), Variant::TexelScalar);
        assert_eq!(variant(&tt, (8, 8, 8), LAVAPIPE, true), Variant::TexelScalar);
        // Storage operands: subgroups where offered, vec4 where the contiguous dimensions divide by 4.
        assert_eq!(
            variant(&nn, (7, 16, 12), LAVAPIPE, false),
            Variant::Subgroup("matmul_subgroup")
        );
        assert_eq!(
            variant(&tn, (8, 4, 12), LAVAPIPE, false),
            Variant::Subgroup("matmul_subgroup_tn")
        );
        assert_eq!(variant(&tn, (8, 5, 12), LAVAPIPE, false), Variant::Vec4);
        assert_eq!(variant(&nn, (7, 16, 12), PLAIN, false), Variant::Vec4);
        assert_eq!(variant(&nn, (7, 17, 12), PLAIN, false), Variant::Scalar);
        assert_eq!(variant(&tt, (8, 8, 8), PLAIN, false), Variant::Scalar);
        // Adapter classes with tiles: the tiled kernel for every shape and layout.
        for op in [nn, tn, nt, tt] {
            assert_eq!(variant(&op, (7, 17, 12), HARDWARE, false), Variant::Tiled);
            assert_eq!(variant(&op, (512, 512, 512), HARDWARE, false), Variant::Tiled);
        }
        assert_eq!(Caps::matmul_tile_for(wgpu::DeviceType::DiscreteGpu), 64);
        assert_eq!(Caps::matmul_tile_for(wgpu::DeviceType::Cpu), 0);
    }
}
