// attention_texel.wgsl — attention.wgsl's operands as texel copies at bindings 2..8 (see
// `texel_at` in common.wgsl), for software rasterisers, where a texel fetch is one vectorised
// gather and a storage load a per-lane loop. Float i is component i % 4 of texel i / 4.

@group(0) @binding(2) var tq_: texture_2d<f32>;
@group(0) @binding(3) var tk_: texture_2d<f32>;
@group(0) @binding(4) var tv_: texture_2d<f32>;
@group(0) @binding(5) var tkeep: texture_2d<f32>;
@group(0) @binding(6) var tdraw: texture_2d<f32>;
@group(0) @binding(7) var te: texture_2d<f32>;
@group(0) @binding(8) var tf: texture_2d<f32>;

fn ld_q(i: u32) -> f32 { return textureLoad(tq_, texel_at(i >> 2u), 0)[i & 3u]; }
fn ld_k(i: u32) -> f32 { return textureLoad(tk_, texel_at(i >> 2u), 0)[i & 3u]; }
fn ld_v(i: u32) -> f32 { return textureLoad(tv_, texel_at(i >> 2u), 0)[i & 3u]; }
fn ld_keep(i: u32) -> f32 { return textureLoad(tkeep, texel_at(i >> 2u), 0)[i & 3u]; }
fn ld_draw(i: u32) -> f32 { return textureLoad(tdraw, texel_at(i >> 2u), 0)[i & 3u]; }
fn ld_e(i: u32) -> f32 { return textureLoad(te, texel_at(i >> 2u), 0)[i & 3u]; }
fn ld_f(i: u32) -> f32 { return textureLoad(tf, texel_at(i >> 2u), 0)[i & 3u]; }

// Floats i..i+4 (i a multiple of 4).
fn ld_q4(i: u32) -> vec4<f32> { return textureLoad(tq_, texel_at(i >> 2u), 0); }
fn ld_k4(i: u32) -> vec4<f32> { return textureLoad(tk_, texel_at(i >> 2u), 0); }
fn ld_v4(i: u32) -> vec4<f32> { return textureLoad(tv_, texel_at(i >> 2u), 0); }
fn ld_e4(i: u32) -> vec4<f32> { return textureLoad(te, texel_at(i >> 2u), 0); }
fn ld_f4(i: u32) -> vec4<f32> { return textureLoad(tf, texel_at(i >> 2u), 0); }
