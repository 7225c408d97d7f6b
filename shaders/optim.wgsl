// optim.wgsl — in-place optimizer updates (Keras 3's `update_step`, keras/src/optimizers/<name>.py;
// the CPU twin is kiln-cpu's ops/optim.rs) and the metric accumulator.
//
// Bindings follow the op's operands: 0 is Params, then the parameter, its state tensors (read and
// written), the gradient, the learning rate, the step where the rule reads it, and the apply flag.
//
// | entry                            | 1     | 2        | 3        | 4        | 5     | 6    | 7    | 8     |
// |----------------------------------|-------|----------|----------|----------|-------|------|------|-------|
// | adam_update                      | param | m        | v        | grad     | lr    | step | apply|       |
// | adam_amsgrad_update              | param | m        | v        | v_hat    | grad  | lr   | step | apply |
// | nadam_update, adamax_update      | param | m        | v or u   | grad     | lr    | step | apply|       |
// | sgd_update, rmsprop_update       | param | velocity | grad     | lr       | apply |      |      |       |
// | rmsprop_momentum_update          | param | velocity | momentum | grad     | lr    | apply|      |       |
// | rmsprop_centered_update          | param | velocity | avg_grad | grad     | lr    | apply|      |       |
// | rmsprop_centered_momentum_update | param | velocity | momentum | avg_grad | grad  | lr   | apply|       |
// | adagrad_update, lion_update      | param | acc or m | grad     | lr       | apply |      |      |       |
// | accumulate_sum, accumulate_rows  | acc   | x        |          |          |       |      |      |       |
// | moving_average                   | avg   | x        |          |          |       |      |      |       |
// `apply` [1]: 0 skips the step (loss-scaled gradients that overflowed), leaving every tensor as
// it was.
// accumulate_sum: acc [1] += Σ x (one workgroup, a fixed tree). accumulate_rows: acc [width] +=
// column sums of x viewed as [n / width, width], one invocation per column.

@group(0) @binding(1) var<storage, read_write> t0: array<f32>;
@group(0) @binding(2) var<storage, read_write> t1: array<f32>;
@group(0) @binding(3) var<storage, read_write> t2: array<f32>;
@group(0) @binding(4) var<storage, read_write> t3: array<f32>;
@group(0) @binding(5) var<storage, read_write> t4: array<f32>;
@group(0) @binding(6) var<storage, read_write> t5: array<f32>;
@group(0) @binding(7) var<storage, read_write> t6: array<f32>;
@group(0) @binding(8) var<storage, read_write> t7: array<f32>;

// Adam's bias correction folded into the step size: lr · sqrt(1 - β2^t) / (1 - β1^t).
fn adam_alpha(lr: f32, t: f32) -> f32 {
    return lr * sqrt(1.0 - pow(p.beta2, t)) / (1.0 - pow(p.beta1, t));
}

// Keras' Adam: m, v moving averages; p -= alpha · m / (sqrt(v) + ε).
@compute @workgroup_size(256)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t6[0] == 0.0) { return; }  // a skipped step
    let g = t3[i];
    let m = p.beta1 * t1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * t2[i] + (1.0 - p.beta2) * g * g;
    t1[i] = m;
    t2[i] = v;
    t0[i] = decayed(t0[i], t4[0]) - adam_alpha(t4[0], t5[0]) * m / (sqrt(v) + p.epsilon);
}

// AMSGrad: as adam_update, dividing by the running maximum of v.
@compute @workgroup_size(256)
fn adam_amsgrad_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t7[0] == 0.0) { return; }  // a skipped step
    let g = t4[i];
    let m = p.beta1 * t1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * t2[i] + (1.0 - p.beta2) * g * g;
    let v_hat = max(t3[i], v);
    t1[i] = m;
    t2[i] = v;
    t3[i] = v_hat;
    t0[i] = decayed(t0[i], t5[0]) - adam_alpha(t5[0], t6[0]) * m / (sqrt(v_hat) + p.epsilon);
}

// Nadam's schedule product Π_{s=1..t} β1(1 - 0.5·0.96^s) from the step alone: β1^t · exp(S(t)),
// S(t) = -Σ_k (0.5^k / k) · 0.96^k (1 - 0.96^(k t)) / (1 - 0.96^k); see nadam_u_product in
// kiln-cpu's ops/optim.rs for the derivation.
fn nadam_u_product(t: f32) -> f32 {
    var s = 0.0;
    var h = 1.0;
    var d = 1.0;
    for (var k = 1u; k <= 30u; k++) {
        h *= 0.5;
        d *= 0.96;
        s -= h / f32(k) * d * (1.0 - pow(d, t)) / (1.0 - d);
    }
    return pow(p.beta1, t) * exp(s);
}

// Keras' Nadam: Adam's moments with a Nesterov-style m_hat under the 0.96 momentum schedule.
@compute @workgroup_size(256)
fn nadam_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t6[0] == 0.0) { return; }  // a skipped step
    let lr = t4[0];
    let t = t5[0];
    let u_t = p.beta1 * (1.0 - 0.5 * pow(0.96, t));
    let u_next = p.beta1 * (1.0 - 0.5 * pow(0.96, t + 1.0));
    let u_product = nadam_u_product(t);
    let u_product_next = u_product * u_next;
    let g = t3[i];
    let m = p.beta1 * t1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * t2[i] + (1.0 - p.beta2) * g * g;
    t1[i] = m;
    t2[i] = v;
    let m_hat = u_next * m / (1.0 - u_product_next) + (1.0 - u_t) * g / (1.0 - u_product);
    let v_hat = v / (1.0 - pow(p.beta2, t));
    t0[i] = decayed(t0[i], lr) - m_hat * lr / (sqrt(v_hat) + p.epsilon);
}

// Keras' Adamax: u = max(β2·u, |g|); p -= lr · m / ((1 - β1^t)(u + ε)).
@compute @workgroup_size(256)
fn adamax_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t6[0] == 0.0) { return; }  // a skipped step
    let g = t3[i];
    let m = p.beta1 * t1[i] + (1.0 - p.beta1) * g;
    let u = max(p.beta2 * t2[i], abs(g));
    t1[i] = m;
    t2[i] = u;
    t0[i] = decayed(t0[i], t4[0]) - t4[0] * m / ((1.0 - pow(p.beta1, t5[0])) * (u + p.epsilon));
}

// Keras' SGD: vel = μ·vel - lr·g; p += vel (or, Nesterov, p += μ·vel - lr·g).
@compute @workgroup_size(256)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t4[0] == 0.0) { return; }  // a skipped step
    let g = t2[i];
    let lr = t3[0];
    let vel = p.momentum * t1[i] - lr * g;
    t1[i] = vel;
    let w = decayed(t0[i], lr);
    if (p.nesterov != 0u) {
        t0[i] = w + p.momentum * vel - lr * g;
    } else {
        t0[i] = w + vel;
    }
}

// Keras' RMSprop: v = ρ·v + (1 - ρ)·g²; increment lr·g / sqrt(v + ε), or, centered, over
// sqrt(v - avg² + ε) with avg = ρ·avg + (1 - ρ)·g; with momentum, mom = μ·mom + increment and
// p -= mom. One entry per combination, since each binds only the state Keras creates.
fn rms_velocity(i: u32, g: f32) -> f32 {
    let v = p.rho * t1[i] + (1.0 - p.rho) * g * g;
    t1[i] = v;
    return v;
}

@compute @workgroup_size(256)
fn rmsprop_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t4[0] == 0.0) { return; }  // a skipped step
    let g = t2[i];
    let lr = t3[0];
    let v = rms_velocity(i, g);
    t0[i] = decayed(t0[i], lr) - lr * g / sqrt(v + p.epsilon);
}

@compute @workgroup_size(256)
fn rmsprop_momentum_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t5[0] == 0.0) { return; }  // a skipped step
    let g = t3[i];
    let lr = t4[0];
    let v = rms_velocity(i, g);
    let mom = p.momentum * t2[i] + lr * g / sqrt(v + p.epsilon);
    t2[i] = mom;
    t0[i] = decayed(t0[i], lr) - mom;
}

@compute @workgroup_size(256)
fn rmsprop_centered_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t5[0] == 0.0) { return; }  // a skipped step
    let g = t3[i];
    let lr = t4[0];
    let v = rms_velocity(i, g);
    let avg = p.rho * t2[i] + (1.0 - p.rho) * g;
    t2[i] = avg;
    t0[i] = decayed(t0[i], lr) - lr * g / sqrt(v - avg * avg + p.epsilon);
}

@compute @workgroup_size(256)
fn rmsprop_centered_momentum_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t6[0] == 0.0) { return; }  // a skipped step
    let g = t4[i];
    let lr = t5[0];
    let v = rms_velocity(i, g);
    let avg = p.rho * t3[i] + (1.0 - p.rho) * g;
    t3[i] = avg;
    let mom = p.momentum * t2[i] + lr * g / sqrt(v - avg * avg + p.epsilon);
    t2[i] = mom;
    t0[i] = decayed(t0[i], lr) - mom;
}

// Keras' Adagrad: acc += g²; p -= lr · g / sqrt(acc + ε).
@compute @workgroup_size(256)
fn adagrad_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t4[0] == 0.0) { return; }  // a skipped step
    let g = t2[i];
    let lr = t3[0];
    let acc = t1[i] + g * g;
    t1[i] = acc;
    t0[i] = decayed(t0[i], lr) - lr * g / sqrt(acc + p.epsilon);
}

// Keras' Lion: p -= lr · sign(β1·m + (1 - β1)·g); then m = β2·m + (1 - β2)·g.
@compute @workgroup_size(256)
fn lion_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    if (t4[0] == 0.0) { return; }  // a skipped step
    let g = t2[i];
    let lr = t3[0];
    let m = t1[i];
    t0[i] = decayed(t0[i], lr) - lr * sign(m * p.beta1 + g * (1.0 - p.beta1));
    t1[i] = m * p.beta2 + g * (1.0 - p.beta2);
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

// BatchNormalization's moving statistics: avg = avg · momentum + x · (1 - momentum).
@compute @workgroup_size(256)
fn moving_average(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    t0[i] = t0[i] * p.momentum + t1[i] * (1.0 - p.momentum);
}
