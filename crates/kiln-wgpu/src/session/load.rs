//! Loading a plan onto the device: its arena, constants, uniform params, pipelines, bind groups and
//! texel copies, built once so that a run only records and submits.

use std::sync::Arc;

use super::*;

impl GpuSession {
    /// Builds a plan's arena, bindings and dispatches ([`Session::load`] wraps it in an
    /// out-of-memory scope).
    pub(super) fn load_plan(&mut self, plan: Arc<Plan>) -> Result<PlanId> {
        if plan.persistents != self.specs {
            return Err(Error::invalid("session", "plan was built for another model's tensors"));
        }
        let allocated_before = self.counters.buffer_allocations;
        let limits = self.ctx.limits.clone();
        let arena_bytes = f32_bytes(plan.arena_len);
        if arena_bytes > limits.max_buffer_size {
            return Err(Error::too_large(
                self.ctx.name(),
                format!(
                    "the model needs {} MiB of activations at this batch size; the device allows {} MiB per buffer: use a smaller batch size",
                    arena_bytes >> 20,
                    limits.max_buffer_size >> 20
                ),
            ));
        }
        let arena = self.buffer(
            "kiln arena",
            arena_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        );
        for (r, data) in &plan.constants {
            self.ctx
                .queue
                .write_buffer(&arena, (r.offset * 4) as u64, bytemuck::cast_slice(data));
        }
        let kernels: Vec<Kernel> = plan.steps.iter().map(|s| kernel_for(s, self.ctx.caps)).collect();
        for (k, step) in kernels.iter().zip(&plan.steps) {
            for b in &k.bindings {
                if f32_bytes(b.len()) > limits.max_storage_buffer_binding_size {
                    return Err(Error::too_large(
                        self.ctx.name(),
                        format!(
                            "{}: a {} tensor exceeds the {} bytes the device binds at once: use a smaller batch size",
                            step.op.name(),
                            b.shape,
                            limits.max_storage_buffer_binding_size
                        ),
                    ));
                }
            }
            if k.grid.iter().any(|&g| g > limits.max_compute_workgroups_per_dimension) {
                return Err(Error::too_large(
                    self.ctx.name(),
                    format!(
                        "{}: grid {:?} exceeds the device's limit: use a smaller batch size",
                        step.op.name(),
                        k.grid
                    ),
                ));
            }
        }
        let uniforms = (!kernels.is_empty()).then(|| {
            let buf = self.buffer(
                "kiln params",
                UNIFORM_STRIDE * kernels.len() as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            );
            let mut bytes = vec![0u8; (UNIFORM_STRIDE as usize) * kernels.len()];
            for (i, k) in kernels.iter().enumerate() {
                let at = i * UNIFORM_STRIDE as usize;
                bytes[at..at + k.params.len()].copy_from_slice(&k.params);
            }
            self.ctx.queue.write_buffer(&buf, 0, &bytes);
            buf
        });
        let mut dispatches = Vec::with_capacity(kernels.len());
        for (i, k) in kernels.iter().enumerate() {
            let (storage, textures) = (k.bindings.len(), k.texels.len());
            let (pipeline, created) = self.ctx.pipeline(k.shader, k.entry, &k.overrides, storage, textures)?;
            if created {
                self.counters.pipeline_creations += 1;
            }
            let layout = self.ctx.layout(storage, textures);
            // One copy per distinct tensor: an operand bound twice (an unread slot) shares its texture.
            let mut copies: Vec<TexelCopy> = Vec::new();
            let mut views: Vec<wgpu::TextureView> = Vec::new();
            for (j, t) in k.texels.iter().enumerate() {
                let view = match k.texels[..j].iter().position(|u| u == t) {
                    Some(first) => views[first].clone(),
                    None => {
                        let copy = self.texel_copy(&arena, t);
                        let view = copy.texture.create_view(&Default::default());
                        copies.push(copy);
                        view
                    }
                };
                views.push(view);
            }
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: uniforms.as_ref().expect("kernels have params"),
                    offset: i as u64 * UNIFORM_STRIDE,
                    size: wgpu::BufferSize::new(k.shader.params_size() as u64),
                }),
            }];
            for (j, r) in k.bindings.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: j as u32 + 1,
                    resource: self.binding(&arena, r),
                });
            }
            for (j, view) in views.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: (storage + 1 + j) as u32,
                    resource: wgpu::BindingResource::TextureView(view),
                });
            }
            let bind_group = self.ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(k.entry),
                layout: &layout,
                entries: &entries,
            });
            dispatches.push(Dispatch {
                label: k.entry,
                pipeline,
                bind_group,
                grid: k.grid,
                copies,
            });
        }
        let out_len: usize = plan.outputs.iter().map(ArenaRef::len).sum();
        let readback = (!plan.outputs.is_empty()).then(|| {
            self.buffer(
                "kiln outputs",
                f32_bytes(out_len),
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )
        });
        let buffers = self.counters.buffer_allocations - allocated_before;
        self.plans.push(Some(GpuPlan {
            plan,
            arena,
            dispatches,
            readback,
            _uniforms: uniforms,
            buffers,
        }));
        Ok(PlanId(self.plans.len() - 1))
    }

    /// A texture for `t`'s texel copy (allocated once, at load) and where its bytes come from.
    fn texel_copy(&mut self, arena: &wgpu::Buffer, t: &TensorRef) -> TexelCopy {
        let texels = t.len().div_ceil(4) as u32;
        self.counters.buffer_allocations += 1;
        let texture = self.ctx.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("kiln texels"),
            size: wgpu::Extent3d {
                width: TEXEL_ROW,
                height: texel_copy_rows(texels),
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let (buffer, offset) = match t.location {
            Location::Arena { offset } => (arena.clone(), (offset * 4) as u64),
            Location::Persistent(id) => (self.persistents[id.0].clone(), 0),
        };
        TexelCopy {
            buffer,
            offset,
            texels,
            texture,
        }
    }

    fn binding<'a>(&'a self, arena: &'a wgpu::Buffer, r: &TensorRef) -> wgpu::BindingResource<'a> {
        match r.location {
            Location::Arena { offset } => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: arena,
                offset: (offset * 4) as u64,
                size: wgpu::BufferSize::new(f32_bytes(r.len())),
            }),
            Location::Persistent(id) => self.persistents[id.0].as_entire_binding(),
        }
    }
}
