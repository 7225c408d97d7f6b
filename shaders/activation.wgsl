// activation.wgsl — activations and their gradients in terms of the forward output y.
//
// | binding | name | shape                      |
// |---------|------|----------------------------|
// | 0       | p    | Params                     |
// | 1       | out  | [rows, cols]               |
// | 2       | a    | x, or y for the gradients  |
// | 3       | b    | dy (gradients only)        |
// relu, sigmoid, tanh and their gradients: one invocation per element (n = rows * cols).
// softmax and softmax_grad: one invocation per row over the last axis.

struct Params {
    n: u32,     // elements (elementwise entries) or rows (row entries)
    cols: u32,  // length of the last axis
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// Operands a (binding 2) and b (binding 3) are read through `load_a` / `load_b`: storage buffers,
// or texel copies on software rasterisers (operands_storage.wgsl, operands_texel.wgsl).

@compute @workgroup_size(256)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = max(load_a(i), 0.0); }
}

@compute @workgroup_size(256)
fn sigmoid(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = sigmoid1(load_a(i)); }
}

// d relu = dy where y > 0.
@compute @workgroup_size(256)
fn relu_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, load_b(i), load_a(i) > 0.0); }
}

// d sigmoid = dy * y * (1 - y).
@compute @workgroup_size(256)
fn sigmoid_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_b(i) * load_a(i) * (1.0 - load_a(i)); }
}

// tanh from e^(-2|x|), which never overflows (a driver's tanh builtin may give NaN for large |x|);
// named `tanh_` because the builtin holds the name.
@compute @workgroup_size(256)
fn tanh_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) {
        let x = load_a(i);
        let e = exp(-2.0 * abs(x));
        out[i] = sign(x) * (1.0 - e) / (1.0 + e);
    }
}

@compute @workgroup_size(256)
fn tanh_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_b(i) * (1.0 - load_a(i) * load_a(i)); }
}

@compute @workgroup_size(256)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p.n) { return; }
    let base = r * p.cols;
    var mx = LOWEST;
    for (var j = 0u; j < p.cols; j++) { mx = max(mx, load_a(base + j)); }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let e = exp(load_a(base + j) - mx);
        out[base + j] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < p.cols; j++) { out[base + j] *= inv; }
}

// d softmax = y * (dy - sum(dy * y)) per row.
@compute @workgroup_size(256)
fn softmax_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p.n) { return; }
    let base = r * p.cols;
    var dot = 0.0;
    for (var j = 0u; j < p.cols; j++) { dot += load_a(base + j) * load_b(base + j); }
    for (var j = 0u; j < p.cols; j++) { out[base + j] = load_a(base + j) * (load_b(base + j) - dot); }
}
