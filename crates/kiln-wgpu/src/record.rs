//! Recording a plan's dispatches: runs of dispatches share a compute pass, broken where a dispatch
//! first needs texel copies of its operands (the operand strategy of software rasterisers).

use std::sync::Arc;

use crate::kernels::TEXEL_ROW;

/// Bytes between the params of consecutive steps in the uniform buffer (the largest
/// `min_uniform_buffer_offset_alignment` wgpu allows).
pub(crate) const UNIFORM_STRIDE: u64 = 256;

pub(crate) struct Dispatch {
    pub(crate) label: &'static str,
    pub(crate) pipeline: Arc<wgpu::ComputePipeline>,
    pub(crate) bind_group: wgpu::BindGroup,
    pub(crate) grid: [u32; 3],
    /// Texel copies of the kernel's operands, recorded right before it (outside any pass).
    pub(crate) copies: Vec<TexelCopy>,
}

/// `texels` texels (16 bytes each) of `buffer` from byte `offset`, copied into `texture` in rows of
/// `TEXEL_ROW` texels.
pub(crate) struct TexelCopy {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) offset: u64,
    pub(crate) texels: u32,
    pub(crate) texture: wgpu::Texture,
}

impl TexelCopy {
    pub(crate) fn record(&self, enc: &mut wgpu::CommandEncoder) {
        let row_bytes = u64::from(TEXEL_ROW) * 16;
        let (full, rest) = (self.texels / TEXEL_ROW, self.texels % TEXEL_ROW);
        let source = |offset| wgpu::TexelCopyBufferInfo {
            buffer: &self.buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset,
                bytes_per_row: Some(row_bytes as u32),
                rows_per_image: None,
            },
        };
        let extent = |width, height| wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        };
        if full > 0 {
            enc.copy_buffer_to_texture(
                source(self.offset),
                self.texture.as_image_copy(),
                extent(TEXEL_ROW, full),
            );
        }
        if rest > 0 {
            let last_row = wgpu::TexelCopyTextureInfo {
                origin: wgpu::Origin3d { x: 0, y: full, z: 0 },
                ..self.texture.as_image_copy()
            };
            enc.copy_buffer_to_texture(
                source(self.offset + u64::from(full) * row_bytes),
                last_row,
                extent(rest, 1),
            );
        }
    }
}

/// Rows of the texture that holds `texels` texels. Every texture has the same shape class — full
/// power-of-two rows, and a row count that is not a power of two (at most two spare rows) — because
/// llvmpipe compiles a kernel once per class of the textures bound to it: with mixed classes, one
/// Adam pipeline compiled three times on a first step.
pub fn texel_copy_rows(texels: u32) -> u32 {
    let rows = texels.div_ceil(TEXEL_ROW).max(3);
    if rows.is_power_of_two() {
        rows + 1
    } else {
        rows
    }
}

/// Records `dispatches` into `enc`: runs of dispatches share a compute pass, broken where a
/// dispatch needs its texel copies first.
pub(crate) fn record_all(enc: &mut wgpu::CommandEncoder, dispatches: &[Dispatch]) {
    let mut start = 0;
    while start < dispatches.len() {
        let end = (start + 1..dispatches.len())
            .find(|&i| !dispatches[i].copies.is_empty())
            .unwrap_or(dispatches.len());
        for c in &dispatches[start].copies {
            c.record(enc);
        }
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("kiln step"),
            timestamp_writes: None,
        });
        for d in &dispatches[start..end] {
            record(&mut pass, d);
        }
        start = end;
    }
}

/// Records one dispatch into `pass`.
pub(crate) fn record(pass: &mut wgpu::ComputePass<'_>, d: &Dispatch) {
    pass.insert_debug_marker(d.label);
    pass.set_pipeline(&d.pipeline);
    pass.set_bind_group(0, &d.bind_group, &[]);
    pass.dispatch_workgroups(d.grid[0], d.grid[1], d.grid[2]);
}
