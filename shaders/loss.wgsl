// loss.wgsl — losses from logits and their closed-form gradients.
//
// | binding | name | shape                                                    |
// |---------|------|----------------------------------------------------------|
// | 0       | p    | Params                                                   |
// | 1       | out  | per-row loss [rows], or a gradient / elementwise [n]     |
// | 2       | a    | logits [rows, cols] (or prediction for the error losses) |
// | 3       | b    | labels: [rows] class indices (SPARSE) or [rows, cols]    |
// | 4       | c    | upstream gradient g: [rows] or [n]                       |
// Softmax cross-entropy: Σ_c y_c (lse(z) - z_c); gradient (Σy · softmax(z) - y) · g.
// Sigmoid BCE: max(z, 0) - z t + log(1 + e^-|z|); gradient (σ(z) - t) · g.
// Huber and log-cosh: Keras' formulas elementwise (their gradients compose elementwise ops).

override SPARSE: bool = true;

struct Params {
    rows: u32,
    cols: u32,
    n: u32,
    delta: f32,  // huber
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn row_lse(base: u32) -> f32 {
    var mx = LOWEST;
    for (var j = 0u; j < p.cols; j++) { mx = max(mx, a[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) { s += exp(a[base + j] - mx); }
    return mx + log(s);
}

// The host rejects labels outside 0..cols; clamping keeps a bad one from reading out of bounds.
fn class_of(r: u32) -> u32 {
    return u32(clamp(round(b[r]), 0.0, f32(p.cols - 1u)));
}

@compute @workgroup_size(256)
fn softmax_cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    let lse = row_lse(base);
    if (SPARSE) {
        out[r] = lse - a[base + class_of(r)];
    } else {
        var l = 0.0;
        for (var j = 0u; j < p.cols; j++) { l += b[base + j] * (lse - a[base + j]); }
        out[r] = l;
    }
}

@compute @workgroup_size(256)
fn softmax_cross_entropy_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    let lse = row_lse(base);
    let g = c[r];
    if (SPARSE) {
        let l = class_of(r);
        for (var j = 0u; j < p.cols; j++) {
            out[base + j] = (exp(a[base + j] - lse) - select(0.0, 1.0, j == l)) * g;
        }
    } else {
        var total = 0.0;
        for (var j = 0u; j < p.cols; j++) { total += b[base + j]; }
        for (var j = 0u; j < p.cols; j++) {
            out[base + j] = (total * exp(a[base + j] - lse) - b[base + j]) * g;
        }
    }
}

@compute @workgroup_size(256)
fn sigmoid_binary_cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let z = a[i];
    out[i] = max(z, 0.0) - z * b[i] + log(1.0 + exp(-abs(z)));
}

@compute @workgroup_size(256)
fn sigmoid_binary_cross_entropy_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = (sigmoid1(a[i]) - b[i]) * c[i];
}

@compute @workgroup_size(256)
fn squared_error(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let d = a[i] - b[i];
    out[i] = d * d;
}

@compute @workgroup_size(256)
fn absolute_error(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = abs(a[i] - b[i]);
}

// Keras' Huber: ½d² for |d| ≤ δ, δ(|d| - ½δ) beyond.
@compute @workgroup_size(256)
fn huber(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let d = abs(a[i] - b[i]);
    out[i] = select(p.delta * (d - 0.5 * p.delta), 0.5 * d * d, d <= p.delta);
}

// Keras' log_cosh: d + softplus(-2d) - ln 2, softplus(z) = max(z, 0) + log(1 + e^-|z|).
@compute @workgroup_size(256)
fn log_cosh(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let d = a[i] - b[i];
    let z = -2.0 * d;
    out[i] = d + max(z, 0.0) + log(1.0 + exp(-abs(z))) - log(2.0);
}
