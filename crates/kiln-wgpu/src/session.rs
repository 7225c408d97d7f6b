//! A model's state on a GPU: persistent buffers, and per plan one arena, one uniform buffer of
//! kernel params, prebuilt bind groups and a readback buffer. A run uploads the inputs, records
//! every dispatch into one compute pass and submits once.

use std::sync::mpsc;
use std::sync::Arc;

use kiln_graph::{
    ArenaRef, Counters, Error, KernelTime, Location, PersistentId, PersistentKind, PersistentSpec, Plan, PlanId,
    Result, Session, TensorRef,
};

use crate::context::GpuContext;
use crate::kernels::{kernel_for, Kernel, TEXEL_ROW};
mod load;

use crate::record::{record, record_all, texel_copy_rows, Dispatch, TexelCopy, UNIFORM_STRIDE};

/// A plan loaded in a GPU session: its arena, prebuilt dispatches and readback buffer.
struct GpuPlan {
    plan: Arc<Plan>,
    arena: wgpu::Buffer,
    dispatches: Vec<Dispatch>,
    /// MAP_READ buffer the outputs are copied into at the end of every run.
    readback: Option<wgpu::Buffer>,
    /// The uniform buffer stays alive as long as the bind groups that point into it.
    _uniforms: Option<wgpu::Buffer>,
    /// Buffers and textures created for this plan, released with it.
    buffers: u64,
}

/// A model's state on one GPU device.
pub struct GpuSession {
    ctx: Arc<GpuContext>,
    specs: Vec<PersistentSpec>,
    persistents: Vec<wgpu::Buffer>,
    /// Loaded plans by id; `None` once unloaded.
    plans: Vec<Option<GpuPlan>>,
    /// MAP_READ buffers for persistent reads, by size, so epoch-end metric reads allocate nothing.
    readbacks: std::collections::HashMap<u64, wgpu::Buffer>,
    counters: Counters,
    /// Device copies of the training state at the last restore point, in spec order (see
    /// [`Session::keep_restore_point`]); allocated at the first one.
    restore_point: Vec<wgpu::Buffer>,
    /// Whether a restore point is marked but not yet taken (the next run's submission takes it).
    restore_pending: bool,
}

fn f32_bytes(n: usize) -> u64 {
    (n.max(1) as u64).saturating_mul(4)
}

impl GpuSession {
    /// Zero-filled persistent buffers for `specs`.
    pub fn new(ctx: Arc<GpuContext>, specs: &[PersistentSpec]) -> Result<Self> {
        let mut counters = Counters::default();
        let mut persistents = Vec::with_capacity(specs.len());
        for s in specs {
            // Whole 16-byte texels, so a texel copy of the tensor never reads past the buffer.
            let size = f32_bytes(s.shape.numel()).next_multiple_of(16);
            if size > ctx.limits.max_storage_buffer_binding_size || size > ctx.limits.max_buffer_size {
                return Err(Error::device(
                    ctx.name(),
                    format!(
                        "{} {} needs {size} bytes; the device binds at most {} bytes per buffer",
                        s.name, s.shape, ctx.limits.max_storage_buffer_binding_size
                    ),
                ));
            }
            persistents.push(ctx.allocating(&s.name, size, || {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&s.name),
                    size,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                })
            })?);
            counters.buffer_allocations += 1;
        }
        Ok(GpuSession {
            ctx,
            specs: specs.to_vec(),
            persistents,
            plans: Vec::new(),
            readbacks: std::collections::HashMap::new(),
            counters,
            restore_point: Vec::new(),
            restore_pending: false,
        })
    }

    fn spec(&self, id: PersistentId) -> Result<&PersistentSpec> {
        self.specs
            .get(id.0)
            .ok_or_else(|| Error::invalid("session", format!("no persistent tensor #{}", id.0)))
    }

    fn buffer(&mut self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.counters.buffer_allocations += 1;
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    /// The persistent buffers a restore point keeps, in spec order.
    fn training_state(&self) -> Vec<&wgpu::Buffer> {
        self.specs
            .iter()
            .zip(&self.persistents)
            .filter(|(s, _)| s.kind.is_training_state())
            .map(|(_, b)| b)
            .collect()
    }

    /// Records the copy of the training state into the restore point, if one is pending: into the
    /// encoder of the run that starts from that state, so taking it costs no submit of its own.
    fn take_restore_point(&mut self, enc: &mut wgpu::CommandEncoder) {
        if !std::mem::take(&mut self.restore_pending) {
            return;
        }
        if self.restore_point.is_empty() {
            let sizes: Vec<u64> = self.training_state().iter().map(|b| b.size()).collect();
            self.restore_point = sizes
                .into_iter()
                .map(|size| {
                    self.buffer(
                        "kiln restore point",
                        size,
                        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    )
                })
                .collect();
        }
        for (live, kept) in self.training_state().into_iter().zip(&self.restore_point) {
            enc.copy_buffer_to_buffer(live, 0, kept, 0, live.size());
        }
    }

    /// Copies `size` bytes of `src` into a (cached) readback buffer and reads them.
    fn read_buffer(&mut self, src: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<f32>> {
        let staging = match self.readbacks.get(&size) {
            Some(b) => b.clone(),
            None => {
                let b = self.buffer(
                    "kiln readback",
                    size,
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                );
                self.readbacks.insert(size, b.clone());
                b
            }
        };
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("kiln read"),
        });
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
        self.ctx.queue.submit([enc.finish()]);
        self.counters.submits += 1;
        map_read(&self.ctx, &staging, &[(0, (size / 4) as usize)]).map(|mut v| v.pop().expect("one range requested"))
    }

    fn loaded(&self, id: PlanId) -> Result<&GpuPlan> {
        self.plans
            .get(id.0)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::invalid("session", format!("no plan #{}", id.0)))
    }

    /// Writes the plan's inputs into its arena (queued before the next submit).
    fn upload(&self, loaded: &GpuPlan, inputs: &[(&str, &[f32])]) -> Result<()> {
        for (offset, data) in loaded.plan.match_inputs(inputs)? {
            if !data.is_empty() {
                self.ctx
                    .queue
                    .write_buffer(&loaded.arena, (offset * 4) as u64, bytemuck::cast_slice(data));
            }
        }
        Ok(())
    }
}

/// Records the copy of the plan's outputs into its readback buffer.
fn copy_outputs(loaded: &GpuPlan, enc: &mut wgpu::CommandEncoder) {
    if let Some(rb) = &loaded.readback {
        let mut at = 0u64;
        for r in &loaded.plan.outputs {
            let size = f32_bytes(r.len()).min(rb.size() - at);
            enc.copy_buffer_to_buffer(&loaded.arena, (r.offset * 4) as u64, rb, at, size);
            at += (r.len() * 4) as u64;
        }
    }
}

/// Maps `buffer`, waits for the GPU, and copies out each `(offset, len)` range, counted in `T`s.
fn map_read<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    ranges: &[(usize, usize)],
) -> Result<Vec<Vec<T>>> {
    let (tx, rx) = mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|_| Error::device(ctx.name(), "readback was dropped"))?
        .map_err(|e| Error::device(ctx.name(), format!("readback failed: {e}")))?;
    let out = {
        let view = buffer
            .get_mapped_range(..)
            .map_err(|e| Error::device(ctx.name(), format!("readback failed: {e}")))?;
        let all: &[T] = bytemuck::cast_slice(&view);
        ranges.iter().map(|&(o, n)| all[o..o + n].to_vec()).collect()
    };
    buffer.unmap();
    Ok(out)
}

impl Session for GpuSession {
    fn write_persistent(&mut self, id: PersistentId, data: &[f32]) -> Result<()> {
        let spec = self.spec(id)?;
        if data.len() != spec.shape.numel() {
            return Err(Error::shape(
                &spec.name,
                format!("{} values", data.len()),
                format!("{} for shape {}", spec.shape.numel(), spec.shape),
            ));
        }
        self.ctx
            .queue
            .write_buffer(&self.persistents[id.0], 0, bytemuck::cast_slice(data));
        Ok(())
    }

    fn read_persistent(&mut self, id: PersistentId) -> Result<Vec<f32>> {
        let spec = self.spec(id)?;
        let n = spec.shape.numel();
        if spec.kind != PersistentKind::Accumulator {
            self.counters.parameter_reads += 1;
        }
        let buf = self.persistents[id.0].clone();
        let mut v = self.read_buffer(&buf, 0, f32_bytes(n))?;
        v.truncate(n);
        Ok(v)
    }

    fn load(&mut self, plan: Arc<Plan>) -> Result<PlanId> {
        let ctx = self.ctx.clone();
        let loaded = self.plans.len();
        match ctx.allocating("a plan", f32_bytes(plan.arena_len), || self.load_plan(plan)) {
            Ok(id) => id,
            Err(e) => {
                // The plan's buffers are unusable: drop whatever was made of it.
                self.plans.truncate(loaded);
                Err(e)
            }
        }
    }

    fn run(&mut self, id: PlanId, inputs: &[(&str, &[f32])]) -> Result<()> {
        self.ctx.check()?;
        let loaded = self.loaded(id)?;
        self.upload(loaded, inputs)?;
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("kiln step"),
        });
        self.take_restore_point(&mut enc);
        let loaded = self.loaded(id)?;
        record_all(&mut enc, &loaded.dispatches);
        copy_outputs(loaded, &mut enc);
        let dispatched = loaded.dispatches.len() as u64;
        self.ctx.queue.submit([enc.finish()]);
        self.counters.submits += 1;
        self.counters.dispatches += dispatched;
        Ok(())
    }

    fn profile(&mut self, id: PlanId, inputs: &[(&str, &[f32])]) -> Result<Option<Vec<KernelTime>>> {
        let n = self.loaded(id)?.dispatches.len();
        let count = 2 * n as u32;
        if !self.ctx.timestamps || n == 0 {
            return Ok(None);
        }
        // A query set holds at most QUERY_SET_MAX_QUERIES timestamps: a long plan (an unrolled
        // recurrence) spreads its dispatches over several sets, resolved side by side.
        let per_set = wgpu::QUERY_SET_MAX_QUERIES / 2;
        let sets: Vec<wgpu::QuerySet> = (0..(n as u32).div_ceil(per_set))
            .map(|k| {
                self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kiln profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2 * per_set.min(n as u32 - k * per_set),
                })
            })
            .collect();
        let bytes = u64::from(count) * 8;
        let resolved = self.buffer(
            "kiln profile",
            bytes,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        );
        let staging = self.buffer(
            "kiln profile readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let loaded = self.loaded(id)?;
        self.upload(loaded, inputs)?;
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("kiln profiled step"),
        });
        self.take_restore_point(&mut enc);
        let loaded = self.loaded(id)?;
        for (i, d) in loaded.dispatches.iter().enumerate() {
            for c in &d.copies {
                c.record(&mut enc);
            }
            let (set, at) = (i as u32 / per_set, 2 * (i as u32 % per_set));
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &sets[set as usize],
                    beginning_of_pass_write_index: Some(at),
                    end_of_pass_write_index: Some(at + 1),
                }),
            });
            record(&mut pass, d);
        }
        for (k, set) in sets.iter().enumerate() {
            let queries = 2 * per_set.min(n as u32 - k as u32 * per_set);
            let offset = u64::from(k as u32 * 2 * per_set) * 8;
            enc.resolve_query_set(set, 0..queries, &resolved, offset);
        }
        enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
        copy_outputs(loaded, &mut enc);
        self.ctx.queue.submit([enc.finish()]);
        let ticks: Vec<u64> = map_read(&self.ctx, &staging, &[(0, count as usize)])?.swap_remove(0);
        let period_ns = f64::from(self.ctx.queue.get_timestamp_period());
        let times = loaded
            .dispatches
            .iter()
            .zip(ticks.chunks_exact(2))
            .map(|(d, t)| KernelTime {
                kernel: d.label.to_string(),
                seconds: t[1].saturating_sub(t[0]) as f64 * period_ns * 1e-9,
            })
            .collect();
        self.counters.submits += 1;
        self.counters.dispatches += n as u64;
        Ok(Some(times))
    }

    fn unload(&mut self, id: PlanId) -> Result<()> {
        let buffers = self.loaded(id)?.buffers;
        self.plans[id.0] = None;
        self.counters.buffer_releases += buffers;
        Ok(())
    }

    fn keep_restore_point(&mut self) -> Result<()> {
        self.restore_pending = true;
        Ok(())
    }

    fn restore(&mut self) -> Result<()> {
        if self.restore_pending {
            return Ok(());
        }
        let live = self.training_state();
        if live.len() != self.restore_point.len() {
            return Err(Error::invalid("restore", "no restore point was marked"));
        }
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("kiln restore"),
        });
        for (live, kept) in live.into_iter().zip(&self.restore_point) {
            enc.copy_buffer_to_buffer(kept, 0, live, 0, live.size());
        }
        self.ctx.queue.submit([enc.finish()]);
        self.counters.submits += 1;
        Ok(())
    }

    fn arena_bytes(&self, id: PlanId) -> Result<usize> {
        Ok(self.loaded(id)?.arena.size() as usize)
    }

    fn read_outputs(&mut self, id: PlanId) -> Result<Vec<Vec<f32>>> {
        let loaded = self.loaded(id)?;
        let Some(rb) = &loaded.readback else {
            return Ok(Vec::new());
        };
        let mut ranges = Vec::new();
        let mut at = 0;
        for r in &loaded.plan.outputs {
            ranges.push((at, r.len()));
            at += r.len();
        }
        map_read(&self.ctx, rb, &ranges)
    }

    fn finish(&mut self) -> Result<()> {
        self.ctx.wait()
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}
