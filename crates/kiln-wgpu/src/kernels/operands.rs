//! How kernels read their operands: from storage buffers, or — on adapters where texel fetches are
//! the fast path (software rasterisers such as lavapipe, whose JIT turns a storage load into a
//! per-lane loop) — from texel copies of them. The strategy is fixed per adapter by [`Caps`], so one
//! loaded plan uses one strategy throughout.

use kiln_graph::TensorRef;

use super::Kernel;

/// What the adapter offers that changes which kernel a step gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Subgroup operations with subgroups of exactly 8 invocations (lavapipe on AVX2).
    pub subgroup8: bool,
    /// Most rows a texel copy may have (`TEXEL_ROW` texels each), on adapters where operands read
    /// through textures are the fast path (software rasterisers); 0 elsewhere.
    pub texel_rows: u32,
    /// Edge of the square tile of C a workgroup of the workgroup-memory matmul computes
    /// (`matmul_tiled.wgsl`), or 0 where that kernel is not used; see [`Caps::matmul_tile_for`].
    pub matmul_tile: u32,
}

/// Texels per row of a texel copy (`TEXEL_ROW_SHIFT` in matmul_texel.wgsl): a tensor's floats, four
/// per rgba32float texel, wrapped at this width whatever the tensor's shape.
pub const TEXEL_ROW: u32 = 1024;

impl Caps {
    /// The matmul tile per adapter class. Hardware GPUs (discrete, integrated, virtual) get the
    /// 64×64 workgroup-memory tiles, whose barriers they run for almost nothing; software
    /// rasterisers (`Cpu`) and unknown adapters keep the untiled register-blocked kernels, which
    /// measured faster on lavapipe, where a barrier ends a JIT-compiled loop nest.
    pub fn matmul_tile_for(device_type: wgpu::DeviceType) -> u32 {
        match device_type {
            wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu => {
                super::matmul::TILE
            }
            wgpu::DeviceType::Cpu | wgpu::DeviceType::Other => 0,
        }
    }

    /// Whether a tensor fits a texel copy on this adapter (with the spare row a copy may add).
    pub fn texel_fits(self, t: &TensorRef) -> bool {
        let texels = t.len().div_ceil(4);
        self.texel_rows > 0 && texels.div_ceil(TEXEL_ROW as usize) < self.texel_rows as usize
    }

    /// Whether every tensor of `ts` fits a texel copy.
    pub fn texels_fit(self, ts: &[TensorRef]) -> bool {
        ts.iter().all(|t| self.texel_fits(t))
    }
}

/// On adapters where texel fetches are the fast path, a family with a texel variant reads its
/// operands (the storage bindings after the output) through texel copies instead. (The matmul and
/// Adam tables choose their texel kernels themselves: their texel variants are other kernels.)
pub fn through_texels(mut k: Kernel, caps: Caps) -> Kernel {
    let Some(variant) = k.shader.texel_variant() else {
        return k;
    };
    if k.bindings.len() < 2 || !caps.texels_fit(&k.bindings[1..]) {
        return k;
    }
    k.shader = variant;
    k.texels = k.bindings.split_off(1);
    k
}
