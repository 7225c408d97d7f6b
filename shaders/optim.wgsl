// optim.wgsl — in-place optimizer updates and the metric accumulator.
//
// | binding | adam_update   | sgd_update    | accumulate_sum |
// |---------|---------------|---------------|----------------|
// | 0       | Params        | Params        | Params         |
// | 1       | param [n] rw  | param [n] rw  | acc [1] rw     |
// | 2       | m [n] rw      | velocity rw   | x [n]          |
// accumulate_sum: acc [1] += Σ x (one workgroup, a fixed tree). accumulate_rows: acc [width] +=
// column sums of x viewed as [n / width, width], one invocation per column.
// | 3       | v [n] rw      | grad [n]      |                |
// | 4       | grad [n]      |               |                |
// | 5       | step [1]      |               |                |

@group(0) @binding(1) var<storage, read_write> t0: array<f32>;
@group(0) @binding(2) var<storage, read_write> t1: array<f32>;
@group(0) @binding(3) var<storage, read_write> t2: array<f32>;
@group(0) @binding(4) var<storage, read_write> t3: array<f32>;
@group(0) @binding(5) var<storage, read_write> t4: array<f32>;

// Keras' Adam: lr_t = lr · sqrt(1 - β2^t) / (1 - β1^t); p -= lr_t · m / (sqrt(v) + ε).
@compute @workgroup_size(256)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let t = t4[0];
    let lr_t = p.lr * sqrt(1.0 - pow(p.beta2, t)) / (1.0 - pow(p.beta1, t));
    let g = t3[i];
    let m = p.beta1 * t1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * t2[i] + (1.0 - p.beta2) * g * g;
    t1[i] = m;
    t2[i] = v;
    t0[i] = t0[i] - lr_t * m / (sqrt(v) + p.epsilon);
}

// Keras' SGD: vel = μ·vel - lr·g; p += vel (or, Nesterov, p += μ·vel - lr·g).
@compute @workgroup_size(256)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let g = t2[i];
    let vel = p.momentum * t1[i] - p.lr * g;
    t1[i] = vel;
    if (p.nesterov != 0u) {
        t0[i] = t0[i] + p.momentum * vel - p.lr * g;
    } else {
        t0[i] = t0[i] + vel;
    }
}

var<workgroup> partial: array<f32, 256>;

// acc[0] += Σ x, one workgroup: strided partial sums, then a fixed-shape tree, so the result is
// the same every run.
@compute @workgroup_size(256)
fn accumulate_sum(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.n; i += WG) { s += t1[i]; }
    partial[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid < stride) { partial[lid] += partial[lid + stride]; }
        workgroupBarrier();
    }
    if (lid == 0u) { t0[0] = t0[0] + partial[0]; }
}

@compute @workgroup_size(256)
fn accumulate_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    if (j >= p.width) { return; }
    var s = 0.0;
    for (var i = j; i < p.n; i += p.width) { s += t1[i]; }
    t0[j] = t0[j] + s;
}
