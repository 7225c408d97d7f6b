//! Adapter and device selection, and the pipeline cache shared by every session on a device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kiln_graph::{Error, Result};

use crate::kernels::Caps;
use crate::shaders::Shader;

/// Key of a cached pipeline: the shader family, the entry point and its override constants.
type PipelineKey = (Shader, &'static str, Vec<(&'static str, u64)>);

#[derive(Default)]
struct Cache {
    modules: HashMap<Shader, wgpu::ShaderModule>,
    layouts: HashMap<(usize, usize), (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    pipelines: HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>,
}

/// How long [`GpuContext::wait`] waits for submitted work before calling it hung. One submit is
/// one training step, which takes milliseconds on a GPU and seconds on a software rasteriser for
/// the largest models Kiln trains; ten minutes is far past any of them.
pub const WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// One wgpu device and queue, with the caches built on it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Adapter capabilities the kernel table chooses by.
    pub caps: Caps,
    /// Timestamp queries are enabled (per-kernel GPU times in the benchmark harness).
    pub timestamps: bool,
    cache: Mutex<Cache>,
    /// The first error no scope caught, or the device's loss: wgpu's default handler panics, so
    /// both are recorded here and every later run answers with them (see [`GpuContext::check`]).
    fault: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Opens the adapter wgpu's conventions pick: `WGPU_BACKEND` chooses the backends (default:
    /// Vulkan, Metal and DX12),
    /// `WGPU_ADAPTER_NAME` picks by name (substring, case-insensitive), `WGPU_POWER_PREF` breaks
    /// ties; by default the high-performance adapter.
    pub fn from_env() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env());
        let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(wanted) => {
                let wanted = wanted.to_lowercase();
                let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                    .ok_or_else(|| {
                        Error::device(
                            "wgpu",
                            format!("WGPU_ADAPTER_NAME={wanted} matches no adapter; found {names:?}"),
                        )
                    })?
            }
            Err(_) => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            }))
            .map_err(|e| Error::device("wgpu", format!("no adapter: {e}")))?,
        };
        Self::from_adapter(adapter)
    }

    /// Opens a device on `adapter` with the adapter's own limits, so large models fit where the
    /// hardware allows.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let subgroups = adapter.features() & wgpu::Features::SUBGROUP;
        let timestamps = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let caps = Caps {
            subgroup8: !subgroups.is_empty() && info.subgroup_min_size == 8 && info.subgroup_max_size == 8,
            // llvmpipe fetches texels vectorised but loads storage buffers lane by lane; measured,
            // and covered by the parity tests, on lavapipe (its Vulkan face) only.
            matmul_tile: Caps::matmul_tile_for(info.device_type),
            texel_rows: if info.device_type == wgpu::DeviceType::Cpu && info.backend == wgpu::Backend::Vulkan {
                limits.max_texture_dimension_2d
            } else {
                0
            },
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("kiln"),
            required_features: subgroups | timestamps,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::device(&info.name, format!("cannot open device: {e}")))?;
        let fault = Arc::new(Mutex::new(None));
        let record = |fault: &Arc<Mutex<Option<String>>>, what: String| {
            if let Ok(mut f) = fault.lock() {
                f.get_or_insert(what);
            }
        };
        let f = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&f, e.to_string())));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, message| {
            record(&f, format!("the device was lost ({reason:?}): {message}"))
        });
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            caps,
            timestamps: !timestamps.is_empty(),
            cache: Mutex::new(Cache::default()),
            fault,
        })
    }

    /// An error if the device was lost or reported an error that no scope caught (out of memory
    /// outside a checked allocation, say); the device is unusable from then on.
    pub fn check(&self) -> Result<()> {
        match self.fault.lock().map(|f| f.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(fault)) => Err(Error::device(self.name(), fault)),
            Err(_) => Err(Error::device(
                self.name(),
                "a thread panicked while recording a device fault",
            )),
        }
    }

    /// Blocks until the GPU has finished the work submitted so far, or returns an error naming the
    /// wait after [`WAIT_TIMEOUT`]: a hung driver or a runaway kernel becomes an `Err`, not a hang.
    pub fn wait(&self) -> Result<()> {
        self.check()?;
        let wait = wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(WAIT_TIMEOUT),
        };
        match self.device.poll(wait) {
            Ok(_) => self.check(),
            Err(wgpu::PollError::Timeout) => Err(Error::device(
                self.name(),
                format!(
                    "the GPU did not finish within {} s: the driver or a kernel is hung; restart the process",
                    WAIT_TIMEOUT.as_secs()
                ),
            )),
            Err(e) => Err(Error::device(self.name(), format!("waiting for the GPU failed: {e}"))),
        }
    }

    /// Runs `allocate` inside an out-of-memory error scope: running out of device memory becomes
    /// an error naming `what` and the bytes it needed.
    pub fn allocating<T>(&self, what: &str, bytes: u64, allocate: impl FnOnce() -> T) -> Result<T> {
        self.check()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let made = allocate();
        match pollster::block_on(scope.pop()) {
            None => Ok(made),
            Some(e) => Err(Error::too_large(
                self.name(),
                format!("out of device memory for {what} ({} MiB): {e}", bytes >> 20),
            )),
        }
    }

    /// `name (backend)`, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// The bind group layout for kernels with `storage` storage bindings after the params, then
    /// `textures` float textures.
    pub fn layout(&self, storage: usize, textures: usize) -> wgpu::BindGroupLayout {
        let mut cache = self.cache.lock().expect("pipeline cache poisoned");
        self.layout_locked(&mut cache, storage, textures).0.clone()
    }

    fn layout_locked<'c>(
        &self,
        cache: &'c mut Cache,
        storage: usize,
        textures: usize,
    ) -> &'c (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        cache.layouts.entry((storage, textures)).or_insert_with(|| {
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }];
            for b in 1..=storage as u32 {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: b,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            for t in 0..textures as u32 {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: storage as u32 + 1 + t,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                });
            }
            let label = format!("kiln layout ({storage} storage, {textures} textures)");
            let bgl = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&label),
                entries: &entries,
            });
            let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
            (bgl, pl)
        })
    }

    /// The pipeline for `entry` of `shader` with these overrides, and whether it had to be
    /// created (a cache miss). Creation runs inside a validation error scope, so a bad shader comes
    /// back as an error naming its entry point instead of a panic.
    pub fn pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
        overrides: &[(&'static str, f64)],
        storage: usize,
        textures: usize,
    ) -> Result<(Arc<wgpu::ComputePipeline>, bool)> {
        let key: PipelineKey = (
            shader,
            entry,
            overrides.iter().map(|(k, v)| (*k, v.to_bits())).collect(),
        );
        let mut cache = self.cache.lock().expect("pipeline cache poisoned");
        if let Some(p) = cache.pipelines.get(&key) {
            return Ok((p.clone(), false));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        if let std::collections::hash_map::Entry::Vacant(slot) = cache.modules.entry(shader) {
            let source = shader.source();
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(shader.file()),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            let module = if shader.trusted() {
                // SAFETY: this family's kernels index only within the sizes in their params (clamped
                // or guarded in the shader), which the parity tests exercise at edge sizes.
                unsafe {
                    self.device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            } else {
                self.device.create_shader_module(desc)
            };
            slot.insert(module);
        }
        let layout = self.layout_locked(&mut cache, storage, textures).1.clone();
        let module = &cache.modules[&shader];
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&layout),
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: overrides,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::device(
                self.name(),
                format!("pipeline `{entry}` of {}: {e}", shader.file()),
            ));
        }
        let pipeline = Arc::new(pipeline);
        cache.pipelines.insert(key, pipeline.clone());
        Ok((pipeline, true))
    }
}
