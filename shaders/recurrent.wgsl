// recurrent.wgsl — a whole LSTM or GRU over a batch of sequences, and their backward passes
// through time. One workgroup per sequence: the state lives in workgroup memory and every time
// step is a loop iteration between barriers, so a layer is one dispatch instead of a few dozen
// per step. The CPU twins are kiln-cpu's ops/recurrent.rs, which writes out the formulas.
//
// | binding | name | shape                                                                  |
// |---------|------|------------------------------------------------------------------------|
// | 0       | p    | Params                                                                 |
// | 1       | out  | lstm: states [n, steps, 6u]; lstm_grad: dz [n, steps, 4u]              |
// |         |      | gru: states [n, steps, 5u]; gru_grad: (d xw, d m) [n, steps, 6u]       |
// | 2       | a    | lstm, gru: xw [n, steps, gates·u]; *_grad: the states                  |
// | 3       | b    | recurrent kernel [u, gates·u]                                          |
// | 4       | c    | *_grad: d_states; gru: recurrent bias [3u]; lstm: bound to a, unread   |
// | 5       | init | with INITIAL: the initial state [n, k·u] (h₀, and the LSTM's c₀);      |
// |         |      | without: bound to a, unread                                            |
// With INITIAL the gradient kernels write one row more per sequence, after its steps: the
// gradient carried past the first step (lstm_grad: d h₀, d c₀, 0, 0; gru_grad: d h₀, 0, ...).
// LSTM states per step: i, f, c̃, o after their activations, then c_t and h_t (u values each).
// GRU states per step: z, r, h̃, m_h (h·U_h + b_rh, before the reset), h_t.
// Grid: (n, 1, 1) workgroups of LANES.

struct Params {
    n: u32,
    steps: u32,
    units: u32,
    flags: u32,  // REVERSE, INITIAL
}

// The steps are read from the last to the first (go_backwards).
const REVERSE: u32 = 1u;
// The state starts from `init` rather than zero.
const INITIAL: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read_write> init: array<f32>;

const LANES: u32 = 64u;
// RecurrentOp::MAX_UNITS.
var<workgroup> hs: array<f32, 256>;   // lstm: h; lstm_grad: dh carried to the step read before
var<workgroup> cs: array<f32, 256>;   // lstm: c; lstm_grad: dc carried to the step read before
var<workgroup> zs: array<f32, 1024>;  // lstm: h·U; lstm_grad: dz of the step

// The time index of the `r`-th step read.
fn time_at(r: u32) -> u32 {
    if ((p.flags & REVERSE) != 0u) { return p.steps - 1u - r; }
    return r;
}

fn has_initial() -> bool {
    return (p.flags & INITIAL) != 0u;
}

// Rows per sequence of a gradient kernel's output: one more for the initial state's gradient.
fn grad_rows() -> u32 {
    return p.steps + select(0u, 1u, has_initial());
}

// Part `part` (h₀: 0, c₀: 1) of sequence s's initial state at unit k, of `parts` parts; zero
// without one.
fn initial_at(s: u32, parts: u32, part: u32, k: u32) -> f32 {
    if (!has_initial()) { return 0.0; }
    return init[(s * parts + part) * p.units + k];
}

// Sequence s's state before the first step read, `parts` parts (zero without an initial state);
// a barrier must follow.
fn start_state(s: u32, parts: u32, lane: u32) {
    for (var k = lane; k < p.units; k += LANES) {
        hs[k] = initial_at(s, parts, 0u, k);
        cs[k] = 0.0;
        if (parts > 1u) { cs[k] = initial_at(s, parts, 1u, k); }
    }
}

// Zero carried gradients before the last step read; a barrier must follow.
fn zero_carried(lane: u32) {
    for (var k = lane; k < p.units; k += LANES) {
        hs[k] = 0.0;
        cs[k] = 0.0;
    }
}

@compute @workgroup_size(64)
fn lstm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let s = wg.x;
    let u = p.units;
    let width = 4u * u;
    start_state(s, 2u, lane);
    workgroupBarrier();
    for (var r = 0u; r < p.steps; r++) {
        let t = time_at(r);
        let x = (s * p.steps + t) * width;
        for (var j = lane; j < width; j += LANES) {
            var acc = a[x + j];
            for (var k = 0u; k < u; k++) { acc += hs[k] * b[k * width + j]; }
            zs[j] = acc;
        }
        workgroupBarrier();
        let o_at = (s * p.steps + t) * 6u * u;
        for (var k = lane; k < u; k += LANES) {
            let i = sigmoid1(zs[k]);
            let f = sigmoid1(zs[u + k]);
            let cand = tanh1(zs[2u * u + k]);
            let o = sigmoid1(zs[3u * u + k]);
            let cell = f * cs[k] + i * cand;
            let hidden = o * tanh1(cell);
            out[o_at + k] = i;
            out[o_at + u + k] = f;
            out[o_at + 2u * u + k] = cand;
            out[o_at + 3u * u + k] = o;
            out[o_at + 4u * u + k] = cell;
            out[o_at + 5u * u + k] = hidden;
            cs[k] = cell;
            hs[k] = hidden;
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn lstm_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let s = wg.x;
    let u = p.units;
    let width = 4u * u;
    zero_carried(lane);
    workgroupBarrier();
    for (var back = 0u; back < p.steps; back++) {
        let r = p.steps - 1u - back;
        let t = time_at(r);
        let at = (s * p.steps + t) * 6u * u;
        for (var k = lane; k < u; k += LANES) {
            let i = a[at + k];
            let f = a[at + u + k];
            let cand = a[at + 2u * u + k];
            let o = a[at + 3u * u + k];
            let cell = a[at + 4u * u + k];
            var c_prev = initial_at(s, 2u, 1u, k);
            if (r > 0u) {
                c_prev = a[(s * p.steps + time_at(r - 1u)) * 6u * u + 4u * u + k];
            }
            let squashed = tanh1(cell);
            let dh = c[at + 5u * u + k] + hs[k];
            let dc = c[at + 4u * u + k] + dh * o * (1.0 - squashed * squashed) + cs[k];
            let di = c[at + k] + dc * cand;
            let df = c[at + u + k] + dc * c_prev;
            let dcand = c[at + 2u * u + k] + dc * i;
            let d_o = c[at + 3u * u + k] + dh * squashed;
            zs[k] = di * i * (1.0 - i);
            zs[u + k] = df * f * (1.0 - f);
            zs[2u * u + k] = dcand * (1.0 - cand * cand);
            zs[3u * u + k] = d_o * o * (1.0 - o);
            cs[k] = dc * f;
        }
        workgroupBarrier();
        let dz_at = (s * grad_rows() + t) * width;
        for (var j = lane; j < width; j += LANES) {
            out[dz_at + j] = zs[j];
        }
        // dh for the step read before: dz · Uᵀ.
        for (var k = lane; k < u; k += LANES) {
            var acc = 0.0;
            for (var j = 0u; j < width; j++) { acc += zs[j] * b[k * width + j]; }
            hs[k] = acc;
        }
        workgroupBarrier();
    }
    if (has_initial()) {
        let row = (s * grad_rows() + p.steps) * width;
        for (var k = lane; k < u; k += LANES) {
            out[row + k] = hs[k];
            out[row + u + k] = cs[k];
            out[row + 2u * u + k] = 0.0;
            out[row + 3u * u + k] = 0.0;
        }
    }
}

// Keras' GRU with reset_after: m = h·U + b_r, z = σ(xw_z + m_z), r = σ(xw_r + m_r),
// h̃ = tanh(xw_h + r·m_h), h = h̃ + z·(h - h̃).
@compute @workgroup_size(64)
fn gru(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let s = wg.x;
    let u = p.units;
    let width = 3u * u;
    start_state(s, 1u, lane);
    workgroupBarrier();
    for (var r = 0u; r < p.steps; r++) {
        let t = time_at(r);
        for (var j = lane; j < width; j += LANES) {
            var acc = c[j];
            for (var k = 0u; k < u; k++) { acc += hs[k] * b[k * width + j]; }
            zs[j] = acc;
        }
        workgroupBarrier();
        let x = (s * p.steps + t) * width;
        let o_at = (s * p.steps + t) * 5u * u;
        for (var k = lane; k < u; k += LANES) {
            let z = sigmoid1(a[x + k] + zs[k]);
            let reset = sigmoid1(a[x + u + k] + zs[u + k]);
            let m_h = zs[2u * u + k];
            let cand = tanh1(a[x + 2u * u + k] + reset * m_h);
            let hidden = cand + z * (hs[k] - cand);
            out[o_at + k] = z;
            out[o_at + u + k] = reset;
            out[o_at + 2u * u + k] = cand;
            out[o_at + 3u * u + k] = m_h;
            out[o_at + 4u * u + k] = hidden;
            // Only this lane reads unit k between the barriers.
            hs[k] = hidden;
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn gru_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let s = wg.x;
    let u = p.units;
    let width = 3u * u;
    zero_carried(lane);
    workgroupBarrier();
    for (var back = 0u; back < p.steps; back++) {
        let r = p.steps - 1u - back;
        let t = time_at(r);
        let at = (s * p.steps + t) * 5u * u;
        let d_at = (s * grad_rows() + t) * 6u * u;
        for (var k = lane; k < u; k += LANES) {
            let z = a[at + k];
            let reset = a[at + u + k];
            let cand = a[at + 2u * u + k];
            let m_h = a[at + 3u * u + k];
            var h_prev = initial_at(s, 1u, 0u, k);
            if (r > 0u) {
                h_prev = a[(s * p.steps + time_at(r - 1u)) * 5u * u + 4u * u + k];
            }
            let dh = c[at + 4u * u + k] + hs[k];
            let dz = (c[at + k] + dh * (h_prev - cand)) * z * (1.0 - z);
            let da = (c[at + 2u * u + k] + dh * (1.0 - z)) * (1.0 - cand * cand);
            let dr = (c[at + u + k] + da * m_h) * reset * (1.0 - reset);
            out[d_at + k] = dz;
            out[d_at + u + k] = dr;
            out[d_at + 2u * u + k] = da;
            zs[k] = dz;
            zs[u + k] = dr;
            zs[2u * u + k] = c[at + 3u * u + k] + da * reset;
            cs[k] = dh * z;
        }
        workgroupBarrier();
        for (var j = lane; j < width; j += LANES) {
            out[d_at + width + j] = zs[j];
        }
        // dh for the step read before: dh·z + d m · Uᵀ.
        for (var k = lane; k < u; k += LANES) {
            var acc = cs[k];
            for (var j = 0u; j < width; j++) { acc += zs[j] * b[k * width + j]; }
            hs[k] = acc;
        }
        workgroupBarrier();
    }
    if (has_initial()) {
        let row = (s * grad_rows() + p.steps) * 6u * u;
        for (var k = lane; k < 6u * u; k += LANES) {
            var d = 0.0;
            if (k < u) { d = hs[k]; }
            out[row + k] = d;
        }
    }
}
