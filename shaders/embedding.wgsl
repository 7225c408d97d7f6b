// embedding.wgsl — table lookup and its deterministic gradient.
//
// | binding | name | embedding                  | embedding_grad                 |
// |---------|------|----------------------------|--------------------------------|
// | 0       | p    | Params                     | Params                         |
// | 1       | out  | [positions, dim]           | [vocab, dim]                   |
// | 2       | a    | table [vocab, dim]         | indices [positions] (f32 ints) |
// | 3       | b    | indices [positions]        | dy [positions, dim]            |
// The gradient is a scatter-add written as a gather: one invocation per table element loops over
// every position in order, so no float atomics are needed and the sum is the same on every run
// and on the CPU.

struct Params {
    positions: u32,
    dim: u32,
    vocab: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

// The host rejects indices outside 0..vocab; clamping keeps a bad one from reading out of bounds.
fn row_of(i: f32) -> u32 {
    return u32(clamp(round(i), 0.0, f32(p.vocab - 1u)));
}

@compute @workgroup_size(256)
fn embedding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.positions * p.dim) { return; }
    let pos = t / p.dim;
    let d = t % p.dim;
    out[t] = a[row_of(b[pos]) * p.dim + d];
}

@compute @workgroup_size(256)
fn embedding_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.vocab * p.dim) { return; }
    let v = t / p.dim;
    let d = t % p.dim;
    var s = 0.0;
    for (var pos = 0u; pos < p.positions; pos++) {
        if (row_of(a[pos]) == v) { s += b[pos * p.dim + d]; }
    }
    out[t] = s;
}
