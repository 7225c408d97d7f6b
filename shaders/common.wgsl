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

// kiln_graph::lowbias32: the dropout mask hash (elementwise dropout, attention's), bit for bit.
fn lowbias32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    return x ^ (x >> 16u);
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

// Activation helpers, shared by the activation family and the matmul epilogues (formulas:
// keras/src/backend/numpy/nn.py).
// SELU's constants (keras/src/backend/numpy/nn.py).
const SELU_ALPHA: f32 = 1.6732632423543772;
const SELU_SCALE: f32 = 1.0507009873554805;
// √(2/π), gelu's tanh form.
const GELU_C: f32 = 0.7978845608028654;
// 1/√(2π), the normal density's factor.
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// tanh from e^(-2|x|), which never overflows (a driver's tanh builtin may give NaN for large |x|).
fn tanh1(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), odd by symmetry.
fn erf1(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-z * z));
}

// ln(1 + e) accurate for tiny e (Goldberg's form: the rounding of 1 + e cancels out).
fn log1p1(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) { return e; }
    return log(u) * e / (u - 1.0);
}

// eˣ - 1 accurate near 0 (Kahan's form).
fn expm1_(x: f32) -> f32 {
    let u = exp(x);
    if (u == 1.0) { return x; }
    let um1 = u - 1.0;
    if (um1 == -1.0) { return -1.0; }
    return um1 * x / log(u);
}

fn elu1(x: f32, alpha: f32) -> f32 {
    return select(alpha * expm1_(x), x, x > 0.0);
}

// gelu and its derivative at x: vec2(value, derivative).
fn gelu_exact(x: f32) -> vec2<f32> {
    let cdf = 0.5 * (1.0 + erf1(x * 0.7071067811865476));
    let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
    return vec2<f32>(x * cdf, cdf + x * pdf);
}

fn gelu_tanh(x: f32) -> vec2<f32> {
    let t = tanh1(GELU_C * (x + 0.044715 * x * x * x));
    let dt = GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
    return vec2<f32>(0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dt);
}

// The forward activation of epilogue code `act` (0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 gelu,
// 5 gelu tanh form, 6 selu, 7 softplus, 8 silu, 9 hard_sigmoid, 10 relu6): the same formulas as
// the activation entries.
fn activate1(act: u32, z: f32) -> f32 {
    switch act {
        case 1u: { return max(z, 0.0); }
        case 2u: { return sigmoid1(z); }
        case 3u: { return tanh1(z); }
        case 4u: { return gelu_exact(z).x; }
        case 5u: { return gelu_tanh(z).x; }
        case 6u: { return SELU_SCALE * elu1(z, SELU_ALPHA); }
        case 7u: { return max(z, 0.0) + log1p1(exp(-abs(z))); }
        case 8u: { return z * sigmoid1(z); }
        case 9u: { return clamp(z / 6.0 + 0.5, 0.0, 1.0); }
        case 10u: { return clamp(z, 0.0, 6.0); }
        default: { return z; }
    }
}
