// operands_storage.wgsl — operands A and B as storage buffers at bindings 2 and 3, read one float
// at a time through `load_a` / `load_b`. Prepended to the families that read through those.

@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

fn load_a(i: u32) -> f32 {
    return a[i];
}

fn load_b(i: u32) -> f32 {
    return b[i];
}

// Floats 4q..4q+4 of A (a whole texel's worth).
fn load_a4(q: u32) -> vec4<f32> {
    return vec4<f32>(a[4u * q], a[4u * q + 1u], a[4u * q + 2u], a[4u * q + 3u]);
}

fn load_b4(q: u32) -> vec4<f32> {
    return vec4<f32>(b[4u * q], b[4u * q + 1u], b[4u * q + 2u], b[4u * q + 3u]);
}
