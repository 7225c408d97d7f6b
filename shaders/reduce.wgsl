// reduce.wgsl — reductions over one axis of a tensor viewed as [outer, len, inner], and broadcast.
//
// | binding | name | shape                                   |
// |---------|------|-----------------------------------------|
// | 0       | p    | Params                                  |
// | 1       | out  | sum: [outer, inner]; broadcast: [outer, len, inner]; argmax: [outer] |
// | 2       | a    | sum: [outer, len, inner]; broadcast: [outer, inner]; argmax: [outer, len]; count_above: scores [outer, len] |
// | 3       | b    | count_above: labels [outer, len]; dot: b [len] (other entries: bound to a, unread) |
// count_above writes [2, len, inner] ROC counts with inner thresholds, one invocation each.
// sum (mean = sum with scale 1/len): one invocation per output element, a loop over len in blocks
// of SUM_BLOCK rows whose partial sums join the total (kiln-cpu's reduce::BLOCK: the same order,
// so the CPU and the GPU give the same sums, and rounding grows with SUM_BLOCK + len / SUM_BLOCK
// rather than len).
// dot: out [1] = Σ a·b over len elements, one workgroup: strided partial sums, then a fixed tree,
// so the result is the same every run (within rounding of the CPU's sequential order).

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    scale: f32,
}

// Rows per partial sum of `sum` (kiln-cpu's reduce::BLOCK).
const SUM_BLOCK: u32 = 128u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// Operands a (binding 2) and b (binding 3) are read through `load_a` / `load_b`: storage buffers,
// or texel copies on software rasterisers (operands_storage.wgsl, operands_texel.wgsl).

@compute @workgroup_size(256)
fn sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.outer * p.inner) { return; }
    let o = t / p.inner;
    let i = t % p.inner;
    var acc = 0.0;
    for (var start = 0u; start < p.len; start += SUM_BLOCK) {
        var part = 0.0;
        let end = min(start + SUM_BLOCK, p.len);
        for (var l = start; l < end; l++) { part += load_a((o * p.len + l) * p.inner + i); }
        acc += part;
    }
    out[t] = acc * p.scale;
}

@compute @workgroup_size(256)
fn broadcast(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.outer * p.len * p.inner) { return; }
    let i = t % p.inner;
    let o = t / (p.len * p.inner);
    out[t] = load_a(o * p.inner + i);
}

// First index of the row maximum, as f32 (exact below 2^24 classes).
@compute @workgroup_size(256)
fn argmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p.outer) { return; }
    let base = r * p.len;
    var best = 0u;
    var mx = load_a(base);
    for (var j = 1u; j < p.len; j++) {
        let v = load_a(base + j);
        if (v > mx) { mx = v; best = j; }
    }
    out[r] = f32(best);
}

// Same thresholds as kiln_graph::roc_threshold.
fn roc_threshold(t: u32, n: u32) -> f32 {
    if (t == 0u) { return -1e-7; }
    if (t + 1u == n) { return 1.0 + 1e-7; }
    return f32(t) / f32(n - 1u);
}

@compute @workgroup_size(256)
fn count_above(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = flat_index(gid, nwg);
    if (o >= 2u * p.len * p.inner) { return; }
    let t = o % p.inner;
    let j = (o / p.inner) % p.len;
    let negatives = o >= p.len * p.inner;
    let theta = roc_threshold(t, p.inner);
    var count = 0.0;
    for (var r = 0u; r < p.outer; r++) {
        let positive = load_b(r * p.len + j) > 0.5;
        if (load_a(r * p.len + j) > theta && positive != negatives) { count += 1.0; }
    }
    out[o] = count;
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn dot(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.len; i += WG) { s += load_a(i) * load_b(i); }
    partial[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid < stride) { partial[lid] += partial[lid + stride]; }
        workgroupBarrier();
    }
    if (lid == 0u) { out[0] = partial[0]; }
}
