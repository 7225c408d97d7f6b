// matmul_common.wgsl — prepended to every matmul family: the params and the epilogue's overrides.

override HAS_BIAS: bool = false;
// The epilogue's activation, as common.wgsl's activate1 numbers them (0 linear, 1 relu, ...).
override ACT: u32 = 0u;

struct Params {
    m: u32,
    k: u32,
    n: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
