// attention.wgsl — scaled dot-product attention of every head in one dispatch, and its backward
// pass in one. The formulas are kiln-graph's ops/attention.rs; the CPU twins, kiln-cpu's
// ops/attention.rs. Scores are recomputed from q and k, never stored; a row's result accumulates
// in a private block of 4·BLOCK4 columns (wider heads take one pass per block), read four floats at
// a time where the head widths allow (VEC4), from registers where they are at most 64 (CACHED).
//
// attention: one invocation per query row (sample, step, head), walking the keys in order.
// attention_grad: one workgroup per (sample, head). Phase 1, a lane per query row: the row's
// (m, l, D), stored in the packed output, and its dq. Phase 2, after a barrier, a lane per key
// row: dk and dv, reading the (m, l, D) of every query row back.
//
// | binding | name | shape                                                                      |
// |---------|------|----------------------------------------------------------------------------|
// | 0       | p    | Params                                                                     |
// | 1       | out  | attention: O [n, tq, h, dv]; attention_grad: per sample dq [tq, h, d],     |
// |         |      | dk [tk, h, d], dv [tk, h, dv], then (m, l, D) [tq, h, 3]                   |
// | 2       | q    | [n, tq, h, d]                                                              |
// | 3       | k    | [n, tk, h, d]                                                              |
// | 4       | v    | [n, tk, h, dv]                                                             |
// | 5       | keep | [n, tq, tk] when MASKED (else bound to q, unread)                          |
// | 6       | draw | (step, first sample, samples) when DROPOUT (else bound to q, unread)       |
// | 7       | e    | attention_grad: the forward's output O (attention: bound to q, unread)     |
// | 8       | f    | attention_grad: its gradient dO (attention: bound to q, unread)            |
// Grid: attention, one invocation per query row (1-D, folded over x and y); attention_grad, one
// workgroup of LANES per (sample, head), folded over x and y.

struct Params {
    n: u32,
    tq: u32,
    tk: u32,
    heads: u32,
    d: u32,
    dv: u32,
    flags: u32,   // CAUSAL | MASKED | DROPOUT | VEC4 | CACHED
    seed: u32,
    scale: f32,
    keep_at: u32,      // dropout keeps a weight whose hash is at least this
    drop_scale: f32,   // 1 / (1 - rate)
    weights: u32,      // n·heads·tq·tk, the dropout tensor's elements
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

const CAUSAL: u32 = 1u;
const MASKED: u32 = 2u;
const DROPOUT: u32 = 4u;
// d and dv are multiples of 4: every row starts on a texel, and reads take whole vec4s.
const VEC4: u32 = 8u;
// VEC4, and d and dv at most 64: the *_cached kernels below, which hold the rows an invocation
// walks against in registers and read every other row once per step of the walk.
const CACHED: u32 = 16u;
// vec4s of a row accumulated per pass (at most 16): an override constant, so that every loop
// over them has a constant trip count, unrolls, and keeps the accumulators in registers.
override BLOCK4: u32 = 16u;
// The most columns a pass accumulates (16 vec4s: BLOCK4's largest).
const COLS_MAX: u32 = 64u;
const LANES: u32 = 64u;

// The dropout hash's pass key and the batch offset of this shard's first weight, set once per
// invocation by start_dropout.
var<private> drop_key: u32;
var<private> drop_first: u32;

// Start of row (s, t, head) of a [n, steps, heads, width] tensor.
fn at(steps: u32, s: u32, t: u32, head: u32, width: u32) -> u32 {
    return ((s * steps + t) * p.heads + head) * width;
}

fn allowed(s: u32, i: u32, j: u32) -> bool {
    if ((p.flags & CAUSAL) != 0u && j > i) { return false; }
    if ((p.flags & MASKED) != 0u && ld_keep((s * p.tq + i) * p.tk + j) == 0.0) { return false; }
    return true;
}

// δ_ij: dropout's factor for a kept weight, 0 for a dropped one, 1 without dropout. The element
// is the weight's in the [n, heads, tq, tk] tensor counted from the batch's first sample
// (kiln_graph::dropout_element), as the Dropout op's mask over that tensor.
fn dropped(s: u32, head: u32, i: u32, j: u32) -> f32 {
    if ((p.flags & DROPOUT) == 0u) { return 1.0; }
    let element = (((s * p.heads + head) * p.tq + i) * p.tk + j) + drop_first;
    return select(0.0, p.drop_scale, lowbias32(element ^ drop_key) >= p.keep_at);
}

fn start_dropout() {
    if ((p.flags & DROPOUT) != 0u) {
        drop_first = u32(ld_draw(1)) * (p.weights / max(u32(ld_draw(2)), 1u));
        drop_key = lowbias32(u32(ld_draw(0)) ^ lowbias32(p.seed));
    }
}

// s_ij = Σ_c (q_ic·scale)·k_jc.
fn score(s: u32, i: u32, j: u32, head: u32) -> f32 {
    let qb = at(p.tq, s, i, head, p.d);
    let kb = at(p.tk, s, j, head, p.d);
    var acc = 0.0;
    if ((p.flags & VEC4) != 0u) {
        for (var c0 = 0u; c0 < p.d; c0 += 4u * BLOCK4) {
            for (var c4 = 0u; c4 < BLOCK4; c4++) {
                let c = c0 + 4u * c4;
                if (c < p.d) { acc += dot(ld_q4(qb + c) * p.scale, ld_k4(kb + c)); }
            }
        }
        return acc;
    }
    for (var c = 0u; c < p.d; c++) {
        acc += (ld_q(qb + c) * p.scale) * ld_k(kb + c);
    }
    return acc;
}

// dP_ij = dO_i·v_j, with dO in f.
fn d_weight(s: u32, i: u32, j: u32, head: u32) -> f32 {
    let ob = at(p.tq, s, i, head, p.dv);
    let vb = at(p.tk, s, j, head, p.dv);
    var acc = 0.0;
    if ((p.flags & VEC4) != 0u) {
        for (var c0 = 0u; c0 < p.dv; c0 += 4u * BLOCK4) {
            for (var c4 = 0u; c4 < BLOCK4; c4++) {
                let c = c0 + 4u * c4;
                if (c < p.dv) { acc += dot(ld_f4(ob + c), ld_v4(vb + c)); }
            }
        }
        return acc;
    }
    for (var c = 0u; c < p.dv; c++) {
        acc += ld_f(ob + c) * ld_v(vb + c);
    }
    return acc;
}

// (m, l) of query i: the largest allowed score and Σ exp(s - m) over the allowed keys; (0, 0)
// when nothing is allowed. One pass, the sum rescaled whenever the largest score grows (the
// online softmax): every score is computed once.
fn stats(s: u32, i: u32, head: u32) -> vec2<f32> {
    var m = LOWEST;
    var l = 0.0;
    for (var j = 0u; j < p.tk; j++) {
        if (allowed(s, i, j)) {
            let x = score(s, i, j, head);
            if (x > m) {
                l = l * exp(m - x) + 1.0;
                m = x;
            } else {
                l += exp(x - m);
            }
        }
    }
    if (l == 0.0) { return vec2<f32>(0.0, 0.0); }
    return vec2<f32>(m, l);
}

// Query row r's (sample, step, head).
fn query_of(r: u32) -> vec3<u32> {
    return vec3<u32>(r / (p.tq * p.heads), (r / p.heads) % p.tq, r % p.heads);
}

@compute @workgroup_size(256)
fn attention(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= p.n * p.tq * p.heads) { return; }
    start_dropout();
    let at_q = query_of(r);
    let s = at_q.x; let i = at_q.y; let head = at_q.z;
    if ((p.flags & CACHED) != 0u) {
        forward_cached(r, s, i, head);
        return;
    }
    let ml = stats(s, i, head);
    for (var c0 = 0u; c0 < p.dv; c0 += 4u * BLOCK4) {
        let cols = min(4u * BLOCK4, p.dv - c0);
        var acc: array<vec4<f32>, COLS_MAX / 4u>;
        for (var j = 0u; j < p.tk; j++) {
            if (!allowed(s, i, j)) { continue; }
            let w = exp(score(s, i, j, head) - ml.x) / ml.y * dropped(s, head, i, j);
            let vb = at(p.tk, s, j, head, p.dv) + c0;
            if ((p.flags & VEC4) != 0u) {
                for (var c4 = 0u; c4 < BLOCK4; c4++) { let c = 4u * c4; if (c < cols) { acc[c4] += w * ld_v4(vb + c); } }
            } else {
                for (var c = 0u; c < cols; c++) { acc[c / 4u][c % 4u] += w * ld_v(vb + c); }
            }
        }
        for (var c = 0u; c < cols; c++) {
            out[r * p.dv + c0 + c] = acc[c / 4u][c % 4u];
        }
    }
}

// Where each part of sample s's packed gradient starts: dq, dk, dv, the rows' (m, l, D).
fn parts(s: u32) -> vec4<u32> {
    let q_len = p.tq * p.heads * p.d;
    let k_len = p.tk * p.heads * p.d;
    let v_len = p.tk * p.heads * p.dv;
    let base = s * (q_len + k_len + v_len + p.tq * p.heads * 3u);
    return vec4<u32>(base, base + q_len, base + q_len + k_len, base + q_len + k_len + v_len);
}

// Phase 1 for query row i: its (m, l, D) into the packed rows, and dq_i = scale·Σ_j G_ij·k_j.
fn query_gradient(s: u32, i: u32, head: u32, at_parts: vec4<u32>) {
    let ml = stats(s, i, head);
    let ob = at(p.tq, s, i, head, p.dv);
    var big_d = 0.0;
    if ((p.flags & VEC4) != 0u) {
        for (var c0 = 0u; c0 < p.dv; c0 += 4u * BLOCK4) {
            for (var c4 = 0u; c4 < BLOCK4; c4++) {
                let c = c0 + 4u * c4;
                if (c < p.dv) { big_d += dot(ld_e4(ob + c), ld_f4(ob + c)); }
            }
        }
    } else {
        for (var c = 0u; c < p.dv; c++) { big_d += ld_e(ob + c) * ld_f(ob + c); }
    }
    let rb = at_parts.w + (i * p.heads + head) * 3u;
    out[rb] = ml.x;
    out[rb + 1u] = ml.y;
    out[rb + 2u] = big_d;
    let qb = at_parts.x + (i * p.heads + head) * p.d;
    for (var c0 = 0u; c0 < p.d; c0 += 4u * BLOCK4) {
        let cols = min(4u * BLOCK4, p.d - c0);
        var acc: array<vec4<f32>, COLS_MAX / 4u>;
        for (var j = 0u; j < p.tk; j++) {
            if (!allowed(s, i, j)) { continue; }
            let w = exp(score(s, i, j, head) - ml.x) / ml.y;
            let g = w * (dropped(s, head, i, j) * d_weight(s, i, j, head) - big_d);
            let kb = at(p.tk, s, j, head, p.d) + c0;
            if ((p.flags & VEC4) != 0u) {
                for (var c4 = 0u; c4 < BLOCK4; c4++) { let c = 4u * c4; if (c < cols) { acc[c4] += g * ld_k4(kb + c); } }
            } else {
                for (var c = 0u; c < cols; c++) { acc[c / 4u][c % 4u] += g * ld_k(kb + c); }
            }
        }
        for (var c = 0u; c < cols; c++) {
            out[qb + c0 + c] = acc[c / 4u][c % 4u] * p.scale;
        }
    }
}

// Phase 2 for key row j: dk_j = Σ_i G_ij·(q_i·scale) and dv_j = Σ_i P_ij·δ_ij·dO_i, with each
// query row's (m, l, D) read back from the packed rows.
fn key_gradient(s: u32, j: u32, head: u32, at_parts: vec4<u32>) {
    let kb = at_parts.y + (j * p.heads + head) * p.d;
    let vb = at_parts.z + (j * p.heads + head) * p.dv;
    // One pass over the queries per block of columns, for dk and dv together.
    for (var c0 = 0u; c0 < max(p.d, p.dv); c0 += 4u * BLOCK4) {
        let cols_k = min(4u * BLOCK4, max(p.d, c0) - c0);
        let cols_v = min(4u * BLOCK4, max(p.dv, c0) - c0);
        var acc_k: array<vec4<f32>, COLS_MAX / 4u>;
        var acc_v: array<vec4<f32>, COLS_MAX / 4u>;
        for (var i = 0u; i < p.tq; i++) {
            if (!allowed(s, i, j)) { continue; }
            let rb = at_parts.w + (i * p.heads + head) * 3u;
            let w = exp(score(s, i, j, head) - out[rb]) / out[rb + 1u];
            let delta = dropped(s, head, i, j);
            if (cols_k > 0u) {
                let g = w * (delta * d_weight(s, i, j, head) - out[rb + 2u]);
                let qb = at(p.tq, s, i, head, p.d) + c0;
                if ((p.flags & VEC4) != 0u) {
                    for (var c4 = 0u; c4 < BLOCK4; c4++) { let c = 4u * c4; if (c < cols_k) { acc_k[c4] += g * (ld_q4(qb + c) * p.scale); } }
                } else {
                    for (var c = 0u; c < cols_k; c++) { acc_k[c / 4u][c % 4u] += g * (ld_q(qb + c) * p.scale); }
                }
            }
            let ob = at(p.tq, s, i, head, p.dv) + c0;
            let wd = w * delta;
            if ((p.flags & VEC4) != 0u) {
                for (var c4 = 0u; c4 < BLOCK4; c4++) { let c = 4u * c4; if (c < cols_v) { acc_v[c4] += wd * ld_f4(ob + c); } }
            } else {
                for (var c = 0u; c < cols_v; c++) { acc_v[c / 4u][c % 4u] += wd * ld_f(ob + c); }
            }
        }
        for (var c = 0u; c < cols_k; c++) {
            out[kb + c0 + c] = acc_k[c / 4u][c % 4u];
        }
        for (var c = 0u; c < cols_v; c++) {
            out[vb + c0 + c] = acc_v[c / 4u][c % 4u];
        }
    }
}

@compute @workgroup_size(64)
fn attention_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lane: u32) {
    let block = wg.x + wg.y * nwg.x;
    if (block >= p.n * p.heads) { return; }
    start_dropout();
    let s = block / p.heads;
    let head = block % p.heads;
    let at_parts = parts(s);
    let fast = (p.flags & CACHED) != 0u;
    for (var i = lane; i < p.tq; i += LANES) {
        if (fast) {
            query_gradient_cached(s, i, head, at_parts);
        } else {
            query_gradient(s, i, head, at_parts);
        }
    }
    // The rows' statistics, written above by other lanes, are read below.
    storageBarrier();
    workgroupBarrier();
    for (var j = lane; j < p.tk; j += LANES) {
        if (fast) {
            key_gradient_cached(s, j, head, at_parts);
        } else {
            key_gradient(s, j, head, at_parts);
        }
    }
}

// The CACHED kernels: head widths that are multiples of 4 and at most 64 (BLOCK4 vec4s), every
// loop over a row's vec4s of constant length, so the rows live in registers. Each row is read
// once per step of the walk: the scores' other operand, then reused for the gradient.

// q_i·scale as vec4s.
fn query_row(s: u32, i: u32, head: u32) -> array<vec4<f32>, 16> {
    var row: array<vec4<f32>, 16>;
    let qb = at(p.tq, s, i, head, p.d);
    for (var c4 = 0u; c4 < BLOCK4; c4++) {
        if (4u * c4 < p.d) { row[c4] = ld_q4(qb + 4u * c4) * p.scale; }
    }
    return row;
}

// The forward in one pass over the keys (the online softmax: the weighted sum and l rescaled
// whenever the largest score grows), O = Σ_j exp(s_ij - m)·δ_ij·v_j / l.
fn forward_cached(r: u32, s: u32, i: u32, head: u32) {
    let qs = query_row(s, i, head);
    var acc: array<vec4<f32>, 16>;
    var m = LOWEST;
    var l = 0.0;
    for (var j = 0u; j < p.tk; j++) {
        if (!allowed(s, i, j)) { continue; }
        let kb = at(p.tk, s, j, head, p.d);
        var x = 0.0;
        for (var c4 = 0u; c4 < BLOCK4; c4++) {
            if (4u * c4 < p.d) { x += dot(qs[c4], ld_k4(kb + 4u * c4)); }
        }
        var e = 1.0;
        if (x > m) {
            let shrink = exp(m - x);
            l *= shrink;
            for (var c4 = 0u; c4 < BLOCK4; c4++) { acc[c4] *= shrink; }
            m = x;
        } else {
            e = exp(x - m);
        }
        l += e;
        let w = e * dropped(s, head, i, j);
        let vb = at(p.tk, s, j, head, p.dv);
        for (var c4 = 0u; c4 < BLOCK4; c4++) {
            if (4u * c4 < p.dv) { acc[c4] += w * ld_v4(vb + 4u * c4); }
        }
    }
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var c4 = 0u; c4 < BLOCK4; c4++) {
        if (4u * c4 < p.dv) {
            let o = acc[c4] * inv;
            let ob = r * p.dv + 4u * c4;
            out[ob] = o.x;
            out[ob + 1u] = o.y;
            out[ob + 2u] = o.z;
            out[ob + 3u] = o.w;
        }
    }
}

// Phase 1 for query row i (as query_gradient).
fn query_gradient_cached(s: u32, i: u32, head: u32, at_parts: vec4<u32>) {
    let qs = query_row(s, i, head);
    let ob = at(p.tq, s, i, head, p.dv);
    var d_out: array<vec4<f32>, 16>;
    var big_d = 0.0;
    for (var c4 = 0u; c4 < BLOCK4; c4++) {
        if (4u * c4 < p.dv) {
            d_out[c4] = ld_f4(ob + 4u * c4);
            big_d += dot(ld_e4(ob + 4u * c4), d_out[c4]);
        }
    }
    let ml = stats(s, i, head);
    let rb = at_parts.w + (i * p.heads + head) * 3u;
    out[rb] = ml.x;
    out[rb + 1u] = ml.y;
    out[rb + 2u] = big_d;
    var acc: array<vec4<f32>, 16>;
    for (var j = 0u; j < p.tk; j++) {
        if (!allowed(s, i, j)) { continue; }
        let kb = at(p.tk, s, j, head, p.d);
        let vb = at(p.tk, s, j, head, p.dv);
        var kj: array<vec4<f32>, 16>;
        var x = 0.0;
        var dp = 0.0;
        for (var c4 = 0u; c4 < BLOCK4; c4++) {
            if (4u * c4 < p.d) {
                kj[c4] = ld_k4(kb + 4u * c4);
                x += dot(qs[c4], kj[c4]);
            }
            if (4u * c4 < p.dv) { dp += dot(d_out[c4], ld_v4(vb + 4u * c4)); }
        }
        let g = exp(x - ml.x) / ml.y * (dropped(s, head, i, j) * dp - big_d);
        for (var c4 = 0u; c4 < BLOCK4; c4++) { acc[c4] += g * kj[c4]; }
    }
    let qb = at_parts.x + (i * p.heads + head) * p.d;
    for (var c4 = 0u; c4 < BLOCK4; c4++) {
        if (4u * c4 < p.d) {
            let dq = acc[c4] * p.scale;
            out[qb + 4u * c4] = dq.x;
            out[qb + 4u * c4 + 1u] = dq.y;
            out[qb + 4u * c4 + 2u] = dq.z;
            out[qb + 4u * c4 + 3u] = dq.w;
        }
    }
}

// Phase 2 for key row j (as key_gradient).
fn key_gradient_cached(s: u32, j: u32, head: u32, at_parts: vec4<u32>) {
    let kb = at(p.tk, s, j, head, p.d);
    let vb = at(p.tk, s, j, head, p.dv);
    var kj: array<vec4<f32>, 16>;
    var vj: array<vec4<f32>, 16>;
    for (var c4 = 0u; c4 < BLOCK4; c4++) {
        if (4u * c4 < p.d) { kj[c4] = ld_k4(kb + 4u * c4); }
        if (4u * c4 < p.dv) { vj[c4] = ld_v4(vb + 4u * c4); }
    }
    var acc_k: array<vec4<f32>, 16>;
    var acc_v: array<vec4<f32>, 16>;
    for (var i = 0u; i < p.tq; i++) {
        if (!allowed(s, i, j)) { continue; }
        let rb = at_parts.w + (i * p.heads + head) * 3u;
        let qs = query_row(s, i, head);
        let ob = at(p.tq, s, i, head, p.dv);
        var d_out: array<vec4<f32>, 16>;
        var x = 0.0;
        var dp = 0.0;
        for (var c4 = 0u; c4 < BLOCK4; c4++) {
            if (4u * c4 < p.d) { x += dot(qs[c4], kj[c4]); }
            if (4u * c4 < p.dv) {
                d_out[c4] = ld_f4(ob + 4u * c4);
                dp += dot(d_out[c4], vj[c4]);
            }
        }
        let w = exp(x - out[rb]) / out[rb + 1u];
        let delta = dropped(s, head, i, j);
        let g = w * (delta * dp - out[rb + 2u]);
        for (var c4 = 0u; c4 < BLOCK4; c4++) {
            acc_k[c4] += g * qs[c4];
            acc_v[c4] += w * delta * d_out[c4];
        }
    }
    let dkb = at_parts.y + (j * p.heads + head) * p.d;
    let dvb = at_parts.z + (j * p.heads + head) * p.dv;
    for (var c4 = 0u; c4 < BLOCK4; c4++) {
        if (4u * c4 < p.d) {
            out[dkb + 4u * c4] = acc_k[c4].x;
            out[dkb + 4u * c4 + 1u] = acc_k[c4].y;
            out[dkb + 4u * c4 + 2u] = acc_k[c4].z;
            out[dkb + 4u * c4 + 3u] = acc_k[c4].w;
        }
        if (4u * c4 < p.dv) {
            out[dvb + 4u * c4] = acc_v[c4].x;
            out[dvb + 4u * c4 + 1u] = acc_v[c4].y;
            out[dvb + 4u * c4 + 2u] = acc_v[c4].z;
            out[dvb + 4u * c4 + 3u] = acc_v[c4].w;
        }
    }
}
