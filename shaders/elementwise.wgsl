// elementwise.wgsl — one invocation per element, grid folded for more than 65535 workgroups.
//
// | binding | name | shape            |
// |---------|------|------------------|
// | 0       | p    | Params           |
// | 1       | out  | [n]              |
// | 2       | a    | [n]              |
// | 3       | b    | [n] (bias: [m])  |
// Gradients are composed in autodiff from these same entry points.

struct Params {
    n: u32,      // elements
    m: u32,      // bias length (bias_add), seed (dropout)
    alpha: f32,  // factor (scale), threshold (greater), value (fill), 1 / (1 - rate) (dropout)
    pad: u32,    // keep threshold (dropout)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// Operands a (binding 2) and b (binding 3) are read through `load_a` / `load_b`: storage buffers,
// or texel copies on software rasterisers (operands_storage.wgsl, operands_texel.wgsl).

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = p.alpha; }
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) + load_b(i); }
}

@compute @workgroup_size(256)
fn sub(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) - load_b(i); }
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) * load_b(i); }
}

@compute @workgroup_size(256)
fn equal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, 1.0, load_a(i) == load_b(i)); }
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = p.alpha * load_a(i); }
}

@compute @workgroup_size(256)
fn signum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = sign(load_a(i)); }
}

@compute @workgroup_size(256)
fn greater(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, 1.0, load_a(i) > p.alpha); }
}

@compute @workgroup_size(256)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) + load_b(i % p.m); }
}

@compute @workgroup_size(256)
fn div(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) / load_b(i); }
}

// Natural log; named `ln` because WGSL reserves `log`.
@compute @workgroup_size(256)
fn ln(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = log(load_a(i)); }
}

// clamp(a, alpha, beta); b unused. The clip bounds travel in alpha and in the bits of `m`.
@compute @workgroup_size(256)
fn clip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = min(max(load_a(i), p.alpha), bitcast<f32>(p.m)); }
}

// kiln_graph::lowbias32: the dropout mask hash, bit for bit.
fn lowbias32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    return x ^ (x >> 16u);
}

// Inverted dropout: load_b(0) is the step counter; the mask is kiln_graph::dropout_keeps.
@compute @workgroup_size(256)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) {
        let h = lowbias32(i ^ lowbias32(u32(load_b(0)) ^ lowbias32(p.m)));
        out[i] = select(0.0, p.alpha * load_a(i), h >= p.pad);
    }
}
