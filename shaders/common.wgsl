// common.wgsl — prepended to every family file when its module is built.
//
// Binding convention for every kernel (group 0):
//   binding 0: Params (uniform), the family's own struct
//   binding 1: the output, or the first tensor an effect op writes in place
//   binding 2..: the operands, in the op's operand order
// Every storage binding is read_write: operands and outputs share one arena buffer, and wgpu
// rejects a buffer used both read-only and read-write in one dispatch. The scheduler guarantees
// that the ranges never overlap.

const WG: u32 = 256u;
// Lowest finite f32: max-reductions start here, never from -inf.
const LOWEST: f32 = -3.4028234e38;

// 1-D index of an invocation in a grid folded over x and y (x is at most 65535 workgroups).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// Sigmoid without overflow: exp only ever sees a non-positive argument.
fn sigmoid1(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// Texel copies (software rasterisers): a tensor's floats, four per rgba32float texel, in rows of
// TEXEL_ROW texels (kernels.rs), so texel i sits at (i % TEXEL_ROW, i / TEXEL_ROW).
const TEXEL_ROW_SHIFT: u32 = 10u;

fn texel_at(i: u32) -> vec2<u32> {
    return vec2<u32>(i & ((1u << TEXEL_ROW_SHIFT) - 1u), i >> TEXEL_ROW_SHIFT);
}
