// embedding.wgsl — table lookup and its deterministic gradient.
//
// | binding | name | embedding                  | embedding_grad                 |
// |---------|------|----------------------------|--------------------------------|
// | 0       | p    | Params                     | Params                         |
// | 1       | out  | [positions, dim]           | [vocab, dim]                   |
// | 2       | a    | table [vocab, dim]         | indices [positions] (f32 ints) |
// | 3       | b    | indices [positions]        | dy [positions, dim]            |
// The gradient is a scatter-add written as a gather: one invocation per table row and group of
// DIMS columns scans the indices in order and adds the dy rows that pick its row, so no float
// atomics are needed and every sum runs in position order, as on the CPU. Reading the indices once
// per DIMS columns, not once per column, is what keeps it cheap.

struct Params {
    positions: u32,  // indices in all
    dim: u32,
    vocab: u32,
    steps: u32,      // embedding_mean: indices per sample
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

// The lookup averaged over each sample's steps (indices [n, steps]): the in-order sum of the
// step rows times 1 / steps, as reduce.wgsl's `sum` computes a mean.
@compute @workgroup_size(256)
fn embedding_mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.positions / p.steps * p.dim) { return; }
    let sample = t / p.dim;
    let d = t % p.dim;
    var acc = 0.0;
    for (var s = 0u; s < p.steps; s++) {
        acc += a[row_of(b[sample * p.steps + s]) * p.dim + d];
    }
    out[t] = acc * (1.0 / f32(p.steps));
}

override DIMS: u32 = 16u;

@compute @workgroup_size(256)
fn embedding_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    let groups = (p.dim + DIMS - 1u) / DIMS;
    if (t >= p.vocab * groups) { return; }
    let v = t / groups;
    let row = v * p.dim;
    let d0 = (t % groups) * DIMS;
    let d1 = min(d0 + DIMS, p.dim);
    for (var d = d0; d < d1; d++) { out[row + d] = 0.0; }
    for (var pos = 0u; pos < p.positions; pos++) {
        if (row_of(a[pos]) == v) {
            for (var d = d0; d < d1; d++) { out[row + d] += b[pos * p.dim + d]; }
        }
    }
}
