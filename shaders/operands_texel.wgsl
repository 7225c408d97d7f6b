// operands_texel.wgsl — operands A and B as texel copies at bindings 2 and 3 (see `texel_at` in
// common.wgsl), for software rasterisers: there a storage load is a per-lane loop with a
// store-forwarding stall per float, while a texel fetch is one vectorised gather. Float i is
// component i % 4 of texel i / 4.

@group(0) @binding(2) var ta: texture_2d<f32>;
@group(0) @binding(3) var tb: texture_2d<f32>;

fn load_a(i: u32) -> f32 {
    return textureLoad(ta, texel_at(i >> 2u), 0)[i & 3u];
}

fn load_b(i: u32) -> f32 {
    return textureLoad(tb, texel_at(i >> 2u), 0)[i & 3u];
}

// Floats 4q..4q+4 of A: texel q, one fetch.
fn load_a4(q: u32) -> vec4<f32> {
    return textureLoad(ta, texel_at(q), 0);
}

fn load_b4(q: u32) -> vec4<f32> {
    return textureLoad(tb, texel_at(q), 0);
}
