// matmul.wgsl — C = act(op(A) · op(B) + bias), register-blocked: each invocation owns a 4×4 block
// of C and keeps it in four vec4 accumulators; no workgroup memory, because barriers are what
// software rasterisers like lavapipe pay for most.
//
// | binding | name | shape                                   |
// |---------|------|-----------------------------------------|
// | 0       | p    | Params                                  |
// | 1       | out  | C [batch, m, n]                         |
// | 2       | a    | A [batch, m, k], or [batch, k, m] when TRANS_A |
// | 3       | b    | B [batch, k, n], or [batch, n, k] when TRANS_B |
// | 4       | bias | [n] when HAS_BIAS (else bound to A, unread) |
// Grid: (ceil(n / 32), ceil(m / 32), batch) workgroups of 8×8: the third axis picks the matrix.

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> bias: array<f32>;

// The first element of this invocation's matrix in A, B and C.
var<private> base_a: u32;
var<private> base_b: u32;
var<private> base_c: u32;

fn load_a(r: u32, kk: u32) -> f32 {
    if (TRANS_A) { return a[base_a + kk * p.m + r]; }
    return a[base_a + r * p.k + kk];
}

fn load_b(kk: u32, c: u32) -> f32 {
    if (TRANS_B) { return b[base_b + c * p.k + kk]; }
    return b[base_b + kk * p.n + c];
}

fn finish(r: u32, c: u32, v: f32) {
    if (r >= p.m || c >= p.n) { return; }
    var z = v;
    if (HAS_BIAS) { z += bias[c]; }
    z = epilogue1(z);
    out[base_c + r * p.n + c] = z;
}

@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r0 = gid.y * 4u;
    let c0 = gid.x * 4u;
    if (r0 >= p.m || c0 >= p.n) { return; }
    base_a = gid.z * p.m * p.k;
    base_b = gid.z * p.k * p.n;
    base_c = gid.z * p.m * p.n;
    // Clamp edge rows/columns to valid ones: their results are computed but never stored.
    let rl = p.m - 1u;
    let cl = p.n - 1u;
    let r = vec4<u32>(r0, min(r0 + 1u, rl), min(r0 + 2u, rl), min(r0 + 3u, rl));
    let c = vec4<u32>(c0, min(c0 + 1u, cl), min(c0 + 2u, cl), min(c0 + 3u, cl));
    // Sums of the current K_BLOCK, added to the totals at each block's end.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var rows = array<vec4<f32>, 4>();
    for (var kk = 0u; kk < p.k; kk++) {
        let bv = vec4<f32>(load_b(kk, c.x), load_b(kk, c.y), load_b(kk, c.z), load_b(kk, c.w));
        acc0 += load_a(r.x, kk) * bv;
        acc1 += load_a(r.y, kk) * bv;
        acc2 += load_a(r.z, kk) * bv;
        acc3 += load_a(r.w, kk) * bv;
        if (kk % K_BLOCK == K_BLOCK - 1u || kk + 1u == p.k) {
            rows[0] += acc0;
            rows[1] += acc1;
            rows[2] += acc2;
            rows[3] += acc3;
            acc0 = vec4<f32>(0.0);
            acc1 = vec4<f32>(0.0);
            acc2 = vec4<f32>(0.0);
            acc3 = vec4<f32>(0.0);
        }
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            finish(r0 + i, c0 + j, rows[i][j]);
        }
    }
}
