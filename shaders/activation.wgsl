// activation.wgsl — activations and their gradients, in terms of the forward output y where the
// function allows, else of the input x (gelu, softplus, silu). Formulas: keras/src/backend/numpy/nn.py.
//
// | binding | name | shape                                        |
// |---------|------|----------------------------------------------|
// | 0       | p    | Params                                       |
// | 1       | out  | [rows, cols]                                 |
// | 2       | a    | x, or for the gradients y (or x, see above)  |
// | 3       | b    | dy (gradients only)                          |
// Elementwise entries: one invocation per element (n = rows * cols).
// softmax and softmax_grad: one invocation per row over the last axis.

struct Params {
    n: u32,      // elements (elementwise entries) or rows (row entries)
    cols: u32,   // length of the last axis
    slope: f32,  // leaky_relu's negative slope
    alpha: f32,  // elu's alpha
}

// The scalar helpers (tanh1, erf1, gelu_exact, activate1, ...) are in common.wgsl, which the
// matmul epilogues share.

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

// Named `tanh_` because the builtin holds the name.
@compute @workgroup_size(256)
fn tanh_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = tanh1(load_a(i)); }
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

@compute @workgroup_size(256)
fn gelu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(4u, load_a(i)); }
}

@compute @workgroup_size(256)
fn gelu_approximate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(5u, load_a(i)); }
}

@compute @workgroup_size(256)
fn leaky_relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { let x = load_a(i); out[i] = select(p.slope * x, x, x > 0.0); }
}

@compute @workgroup_size(256)
fn elu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = elu1(load_a(i), p.alpha); }
}

@compute @workgroup_size(256)
fn selu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(6u, load_a(i)); }
}

@compute @workgroup_size(256)
fn softplus(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(7u, load_a(i)); }
}

@compute @workgroup_size(256)
fn silu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(8u, load_a(i)); }
}

@compute @workgroup_size(256)
fn hard_sigmoid(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(9u, load_a(i)); }
}

@compute @workgroup_size(256)
fn relu6(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = activate1(10u, load_a(i)); }
}

// a = x.
@compute @workgroup_size(256)
fn gelu_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_b(i) * gelu_exact(load_a(i)).y; }
}

// a = x.
@compute @workgroup_size(256)
fn gelu_approximate_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_b(i) * gelu_tanh(load_a(i)).y; }
}

// a = y, which has x's sign for slope ≥ 0.
@compute @workgroup_size(256)
fn leaky_relu_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_b(i) * select(p.slope, 1.0, load_a(i) > 0.0); }
}

// a = y: below 0, alpha·eˣ = y + alpha.
@compute @workgroup_size(256)
fn elu_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { let y = load_a(i); out[i] = load_b(i) * select(y + p.alpha, 1.0, y > 0.0); }
}

// a = y.
@compute @workgroup_size(256)
fn selu_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) {
        let y = load_a(i);
        out[i] = load_b(i) * select(y + SELU_SCALE * SELU_ALPHA, SELU_SCALE, y > 0.0);
    }
}

// a = x.
@compute @workgroup_size(256)
fn softplus_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_b(i) * sigmoid1(load_a(i)); }
}

// a = x.
@compute @workgroup_size(256)
fn silu_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) {
        let x = load_a(i);
        let s = sigmoid1(x);
        out[i] = load_b(i) * s * (1.0 + x * (1.0 - s));
    }
}

// a = y.
@compute @workgroup_size(256)
fn hard_sigmoid_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { let y = load_a(i); out[i] = select(0.0, load_b(i) / 6.0, y > 0.0 && y < 1.0); }
}

// a = y.
@compute @workgroup_size(256)
fn relu6_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { let y = load_a(i); out[i] = select(0.0, load_b(i), y > 0.0 && y < 6.0); }
}
