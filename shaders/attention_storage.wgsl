// attention_storage.wgsl — attention.wgsl's operands as storage buffers at bindings 2..8, read one
// float at a time through `ld_*`.

@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> keep: array<f32>;
@group(0) @binding(6) var<storage, read_write> draw: array<f32>;
@group(0) @binding(7) var<storage, read_write> e: array<f32>;
@group(0) @binding(8) var<storage, read_write> f: array<f32>;

fn ld_q(i: u32) -> f32 { return q[i]; }
fn ld_k(i: u32) -> f32 { return k[i]; }
fn ld_v(i: u32) -> f32 { return v[i]; }
fn ld_keep(i: u32) -> f32 { return keep[i]; }
fn ld_draw(i: u32) -> f32 { return draw[i]; }
fn ld_e(i: u32) -> f32 { return e[i]; }
fn ld_f(i: u32) -> f32 { return f[i]; }

// Floats i..i+4 (i a multiple of 4).
fn ld_q4(i: u32) -> vec4<f32> { return vec4<f32>(q[i], q[i + 1u], q[i + 2u], q[i + 3u]); }
fn ld_k4(i: u32) -> vec4<f32> { return vec4<f32>(k[i], k[i + 1u], k[i + 2u], k[i + 3u]); }
fn ld_v4(i: u32) -> vec4<f32> { return vec4<f32>(v[i], v[i + 1u], v[i + 2u], v[i + 3u]); }
fn ld_e4(i: u32) -> vec4<f32> { return vec4<f32>(e[i], e[i + 1u], e[i + 2u], e[i + 3u]); }
fn ld_f4(i: u32) -> vec4<f32> { return vec4<f32>(f[i], f[i + 1u], f[i + 2u], f[i + 3u]); }
