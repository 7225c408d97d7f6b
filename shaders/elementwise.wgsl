// elementwise.wgsl — one invocation per element, grid folded for more than 65535 workgroups.
//
// | binding | name | shape            |
// |---------|------|------------------|
// | 0       | p    | Params           |
// | 1       | out  | [n]              |
// | 2       | a    | [n]              |
// | 3       | b    | [n] (bias: [m])  |
// Gradients are composed in autodiff from these same entry points.

// Each field has one meaning; an entry point reads the ones its op needs.
struct Params {
    n: u32,         // elements
    bias_len: u32,  // bias_add: length of the bias
    seed: u32,      // dropout: the op's seed
    keep_at: u32,   // dropout: hashes at or above this keep their element
    scalar: f32,    // the op's one scalar: factor (scale), threshold (greater), value (fill),
                    // 1 / (1 - rate) (dropout), max_norm (clip_norm_factor)
    lo: f32,        // clip: lower bound
    hi: f32,        // clip: upper bound
    uniform_low: f32,   // uniform: the range's start
    uniform_span: f32,  // uniform: high - low
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// Operands a (binding 2) and b (binding 3) are read through `load_a` / `load_b`: storage buffers,
// or texel copies on software rasterisers (operands_storage.wgsl, operands_texel.wgsl).

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = p.scalar; }
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) + load_b(i); }
}

@compute @workgroup_size(256)
fn sub(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) - load_b(i); }
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) * load_b(i); }
}

@compute @workgroup_size(256)
fn equal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, 1.0, load_a(i) == load_b(i)); }
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = p.scalar * load_a(i); }
}

@compute @workgroup_size(256)
fn signum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = sign(load_a(i)); }
}

@compute @workgroup_size(256)
fn greater(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, 1.0, load_a(i) > p.scalar); }
}

@compute @workgroup_size(256)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) + load_b(i % p.bias_len); }
}

@compute @workgroup_size(256)
fn div(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) / load_b(i); }
}

// Natural log; named `ln` because WGSL reserves `log`.
@compute @workgroup_size(256)
fn ln(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = log(load_a(i)); }
}

// clamp(a, lo, hi); b unused.
@compute @workgroup_size(256)
fn clip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = min(max(load_a(i), p.lo), p.hi); }
}

// x · s, with s the one element of b.
@compute @workgroup_size(256)
fn scale_by_scalar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = load_a(i) * load_b(0u); }
}

// x^e for x ≥ 0 (NaN below, as the CPU reference): WGSL's pow is exp2(e · log2 x). 0^e is 1 for
// e = 0 and 0 for e > 0, spelled out since log2(0) is -inf.
@compute @workgroup_size(256)
fn pow_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) { return; }
    let x = load_a(i);
    var y = pow(x, p.scalar);
    if (x == 0.0) { y = select(select(bitcast<f32>(0x7f800000u), 0.0, p.scalar > 0.0), 1.0, p.scalar == 0.0); }
    if (x < 0.0) { y = bitcast<f32>(0x7fc00000u); }
    out[i] = y;
}

// Keras' clip-by-norm factor from a squared norm: c / max(sqrt(s), c).
@compute @workgroup_size(256)
fn clip_norm_factor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = p.scalar / max(sqrt(load_a(i)), p.scalar); }
}

// Inverted dropout: b is the draw (step, first sample, samples); the mask is
// kiln_graph::dropout_keeps of the element kiln_graph::dropout_element counts from the batch's start.
@compute @workgroup_size(256)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) {
        let element = i + u32(load_b(1)) * (p.n / max(u32(load_b(2)), 1u));
        let h = lowbias32(element ^ lowbias32(u32(load_b(0)) ^ lowbias32(p.seed)));
        out[i] = select(0.0, p.scalar * load_a(i), h >= p.keep_at);
    }
}

// Uniform draws in [low, high): a is the draw (step, first sample, samples); the value is
// kiln_graph::uniform_unit of the element kiln_graph::dropout_element counts from the batch's start.
@compute @workgroup_size(256)
fn uniform_draw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) {
        let element = i + u32(load_a(1)) * (p.n / max(u32(load_a(2)), 1u));
        let h = lowbias32(element ^ lowbias32(u32(load_a(0)) ^ lowbias32(p.seed)));
        let u = f32(h >> 8u) * (1.0 / 16777216.0);
        out[i] = p.uniform_low + p.uniform_span * u;
    }
}

// The nearest f16 value of x, as an f32 (ties to even; ±inf from 65520 on; NaN and ±inf kept):
// integer arithmetic on the bits, the same function as kiln-graph's `round_f16`, so every adapter
// rounds alike whether or not it has SHADER_F16.
fn round_to_f16(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    let sign = bits & 0x80000000u;
    let magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) { return x; }
    if (magnitude >= 0x477ff000u) { return bitcast<f32>(sign | 0x7f800000u); }
    if (magnitude < 0x38800000u) {
        // f16's subnormals: multiples of 2^-24 (WGSL's round is ties-to-even).
        let q = round(abs(x) * 16777216.0) * (1.0 / 16777216.0);
        return bitcast<f32>(sign | bitcast<u32>(q));
    }
    let lsb = (magnitude >> 13u) & 1u;
    return bitcast<f32>(sign | ((magnitude + 0xfffu + lsb) & 0xffffe000u));
}

@compute @workgroup_size(256)
fn round_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = round_to_f16(load_a(i)); }
}

// 1 where a is ±inf or NaN: a test of the exponent bits, which a compiler assuming finite floats
// cannot fold away as it may `a != a`.
@compute @workgroup_size(256)
fn non_finite(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, 1.0, (bitcast<u32>(load_a(i)) & 0x7f800000u) == 0x7f800000u); }
}
