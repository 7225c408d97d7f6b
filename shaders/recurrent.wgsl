// recurrent.wgsl — a whole LSTM over a batch of sequences, and its backward pass through time.
// One workgroup per sequence: the state lives in workgroup memory and every time step is a loop
// iteration between barriers, so a layer is one dispatch instead of a few dozen per step.
//
// | binding | name | shape                                                                  |
// |---------|------|------------------------------------------------------------------------|
// | 0       | p    | Params                                                                 |
// | 1       | out  | lstm: states [n, steps, 6u]; lstm_grad: dz [n, steps, 4u]              |
// | 2       | a    | lstm: xw [n, steps, 4u]; lstm_grad: states [n, steps, 6u]              |
// | 3       | b    | recurrent kernel [u, 4u]                                               |
// | 4       | c    | lstm_grad: d_states [n, steps, 6u] (lstm: bound to a, unread)          |
// States per step: i, f, c̃, o after their activations, then c_t and h_t (u values each).
// Grid: (n, 1, 1) workgroups of LANES.

struct Params {
    n: u32,
    steps: u32,
    units: u32,
    reverse: u32,  // 1: steps read from the last to the first (go_backwards)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const LANES: u32 = 64u;
// RecurrentOp::MAX_UNITS.
var<workgroup> hs: array<f32, 256>;   // lstm: h; lstm_grad: dh carried to the step read before
var<workgroup> cs: array<f32, 256>;   // lstm: c; lstm_grad: dc carried to the step read before
var<workgroup> zs: array<f32, 1024>;  // lstm: h·U; lstm_grad: dz of the step

// The time index of the `r`-th step read.
fn time_at(r: u32) -> u32 {
    if (p.reverse != 0u) { return p.steps - 1u - r; }
    return r;
}

// Zero state (or zero carried gradients) before the first step read; a barrier must follow.
fn start_state(lane: u32) {
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
    start_state(lane);
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
    start_state(lane);
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
            var c_prev = 0.0;
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
        let dz_at = (s * p.steps + t) * width;
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
}
