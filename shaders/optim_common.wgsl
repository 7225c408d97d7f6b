// optim_common.wgsl — prepended to the optimizer families (optim.wgsl, optim_texel.wgsl): their
// params, the Rust twin of which is `OptimParams`.

struct Params {
    n: u32,
    nesterov: u32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    momentum: f32,
    width: u32,  // accumulate_rows: accumulator length
    weight_decay: f32,
    rho: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Keras' decoupled weight decay, applied before every optimizer's update: p - p · wd · lr.
fn decayed(w: f32, lr: f32) -> f32 {
    return w - w * p.weight_decay * lr;
}

@group(0) @binding(0) var<uniform> p: Params;
