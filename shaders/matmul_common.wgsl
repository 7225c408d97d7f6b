// matmul_common.wgsl — prepended to every matmul family: the params and the epilogue's overrides.

override HAS_BIAS: bool = false;
// The epilogue's activation, as common.wgsl's activate1 numbers them (0 linear, 1 relu, ...), and
// past them the activations with a parameter: 11 leaky_relu, 12 elu.
override ACT: u32 = 0u;
// The epilogue's parameter: leaky_relu's negative slope, elu's alpha; unread by the others.
override ACT_PARAM: f32 = 0.0;

// The epilogue's activation of one value, the same formulas as activation.wgsl's entry points.
fn epilogue1(z: f32) -> f32 {
    if (ACT == 11u) { return select(ACT_PARAM * z, z, z > 0.0); }
    if (ACT == 12u) { return elu1(z, ACT_PARAM); }
    return activate1(ACT, z);
}

// k steps summed apart before joining the running sums: a product over k in order gathers
// rounding error in proportion to k, in blocks of K_BLOCK it grows with K_BLOCK + k / K_BLOCK (a
// conv kernel's gradient sums over batch × height × width, 25,088 terms for 32 images of 28×28).
// The reduce family's SUM_BLOCK and the CPU's blocked sums use the same length.
const K_BLOCK: u32 = 128u;

struct Params {
    m: u32,
    k: u32,
    n: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
