// optim_texel.wgsl — the Adam update on software rasterisers: parameters, moments and gradient are
// read through texel copies (see operands_texel.wgsl for why), one texel — four floats — per
// invocation; the new values go to the storage buffers, as optim.wgsl's `adam_update` writes them.
//
// | binding | name  | contents                    |
// |---------|-------|-----------------------------|
// | 0       | p     | Params (optim_common.wgsl)  |
// | 1       | param | [n] rw                      |
// | 2       | m     | [n] rw                      |
// | 3       | v     | [n] rw                      |
// | 4       | lr    | [1]                         |
// | 5       | step  | [1]                         |
// | 6       | apply | [1]: 0 skips the step       |
// | 7–10    |       | texels of param, m, v, grad |
// Grid: ceil(n / 4) invocations.

@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> m1: array<f32>;
@group(0) @binding(3) var<storage, read_write> m2: array<f32>;
@group(0) @binding(4) var<storage, read_write> rate: array<f32>;
@group(0) @binding(5) var<storage, read_write> step: array<f32>;
@group(0) @binding(6) var<storage, read_write> apply_flag: array<f32>;
@group(0) @binding(7) var t_param: texture_2d<f32>;
@group(0) @binding(8) var t_m: texture_2d<f32>;
@group(0) @binding(9) var t_v: texture_2d<f32>;
@group(0) @binding(10) var t_grad: texture_2d<f32>;

// Keras' Adam, as `adam_update` in optim.wgsl, on four parameters at once.
@compute @workgroup_size(256)
fn adam_update_texel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    let i = q * 4u;
    if (i >= p.n || apply_flag[0] == 0.0) { return; }
    let t = step[0];
    let lr = rate[0];
    let lr_t = lr * sqrt(1.0 - pow(p.beta2, t)) / (1.0 - pow(p.beta1, t));
    let at = texel_at(q);
    let g = textureLoad(t_grad, at, 0);
    let m = p.beta1 * textureLoad(t_m, at, 0) + (1.0 - p.beta1) * g;
    let v = p.beta2 * textureLoad(t_v, at, 0) + (1.0 - p.beta2) * g * g;
    let w0 = textureLoad(t_param, at, 0);
    let w = w0 - w0 * p.weight_decay * lr - lr_t * m / (sqrt(v) + p.epsilon);
    for (var j = 0u; j < 4u; j++) {
        if (i + j < p.n) {
            param[i + j] = w[j];
            m1[i + j] = m[j];
            m2[i + j] = v[j];
        }
    }
}
