// layout.wgsl — ops that move data, on tensors viewed as [outer, len, inner] around one axis. One
// invocation per output element.
//
// | binding | name | shape                                              |
// |---------|------|----------------------------------------------------|
// | 0       | p    | Params                                             |
// | 1       | out  | concat: [outer, len_a + len_b, inner]; slice: [outer, len_b, inner]; swap: [outer, len_b, len_a, inner] |
// | 2       | a    | concat: [outer, len_a, inner]; slice: [outer, len_a, inner] (the source); swap: [outer, len_a, len_b, inner] |
// | 3       | b    | concat: [outer, len_b, inner]; slice: bound to a, unread |

struct Params {
    outer: u32,
    len_a: u32,
    len_b: u32,
    inner: u32,
    start: u32,  // slice: first entry taken along the axis
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

@compute @workgroup_size(256)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    let row = (p.len_a + p.len_b) * p.inner;
    if (t >= p.outer * row) { return; }
    let o = t / row;
    let r = t % row;
    let split = p.len_a * p.inner;
    if (r < split) {
        out[t] = a[o * split + r];
    } else {
        out[t] = b[o * p.len_b * p.inner + (r - split)];
    }
}

@compute @workgroup_size(256)
fn slice(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    let row = p.len_b * p.inner;
    if (t >= p.outer * row) { return; }
    let o = t / row;
    let r = t % row;
    out[t] = a[o * p.len_a * p.inner + p.start * p.inner + r];
}

// [outer, len_a, len_b, inner] to [outer, len_b, len_a, inner].
@compute @workgroup_size(256)
fn swap_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.outer * p.len_a * p.len_b * p.inner) { return; }
    let r = t % p.inner;
    let i = (t / p.inner) % p.len_a;
    let j = (t / (p.inner * p.len_a)) % p.len_b;
    let o = t / (p.inner * p.len_a * p.len_b);
    out[t] = a[((o * p.len_a + i) * p.len_b + j) * p.inner + r];
}

// reshape: the values unchanged (outer = element count).
@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.outer) { return; }
    out[t] = a[t];
}
