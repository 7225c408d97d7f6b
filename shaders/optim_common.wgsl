// optim_common.wgsl — prepended to the optimizer families (optim.wgsl, optim_texel.wgsl): their
// params, the Rust twin of which is `OptimParams`.

struct Params {
    n: u32,
    nesterov: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    momentum: f32,
    width: u32,  // accumulate_rows: accumulator length
}

@group(0) @binding(0) var<uniform> p: Params;
