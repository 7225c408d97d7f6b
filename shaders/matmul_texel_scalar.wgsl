// matmul_texel_scalar.wgsl — C = act(op(A) · op(B) + bias) for any shapes and layouts, on software
// rasterisers, reading A and B through texel copies (see matmul_texel.wgsl for why and for the
// texture layout). It takes the shapes matmul_texel.wgsl cannot: a width not divisible by 4 (a
// 10-class output layer, a 27-wide im2col of an RGB image), both operands transposed.
//
// A subgroup of 8 lanes owns 8 rows × 8 columns of C, one column per lane: per k, each lane fetches
// one A value (its row's, broadcast to the others) and one B value (its column's).
//
// | binding | name | contents                                            |
// |---------|------|-----------------------------------------------------|
// | 0       | p    | Params                                              |
// | 1       | out  | C [m, n]                                            |
// | 2       | bias | [n] when HAS_BIAS (else bound to C, unread)         |
// | 3       | ta   | A's texels: A [m, k], or [k, m] when TRANS_A        |
// | 4       | tb   | B's texels: B [k, n], or [n, k] when TRANS_B        |
// Workgroup: 64 invocations = 8 subgroups of 8, covering 64 rows × 8 columns.
// Grid: (ceil(n / 8), ceil(m / 64)).

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var ta: texture_2d<f32>;
@group(0) @binding(4) var tb: texture_2d<f32>;

// Float e of A: component e % 4 of texel e / 4.
fn elem_a(e: u32) -> f32 {
    return textureLoad(ta, texel_at(e >> 2u), 0)[e & 3u];
}

fn elem_b(e: u32) -> f32 {
    return textureLoad(tb, texel_at(e >> 2u), 0)[e & 3u];
}

fn finish(r: u32, c: u32, v: f32) {
    if (r >= p.m) { return; }
    var z = v;
    if (HAS_BIAS) { z += bias[c]; }
    z = epilogue1(z);
    out[r * p.n + c] = z;
}

@compute @workgroup_size(64)
fn matmul_texel_scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let r0 = wid.y * 64u + (li / 8u) * 8u;
    let c = wid.x * 8u + lane;
    // Out-of-range lanes fetch clamped, valid elements; only stores are guarded, so every lane
    // takes part in every broadcast.
    let col = min(c, p.n - 1u);
    let my_row = min(r0 + lane, p.m - 1u);
    // Element index of (my_row, k = 0) and its step per k, likewise for (k = 0, col) of B.
    var ea = my_row * p.k;
    var sa = 1u;
    if (TRANS_A) { ea = my_row; sa = p.m; }
    var eb = col;
    var sb = p.n;
    if (TRANS_B) { eb = col * p.k; sb = 1u; }
    // Sums of the current K_BLOCK, added to the totals at each block's end.
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    var total_lo = vec4<f32>(0.0);
    var total_hi = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk++) {
        let av = elem_a(ea);
        let bv = elem_b(eb);
        lo += vec4<f32>(
            subgroupBroadcast(av, 0u),
            subgroupBroadcast(av, 1u),
            subgroupBroadcast(av, 2u),
            subgroupBroadcast(av, 3u),
        ) * bv;
        hi += vec4<f32>(
            subgroupBroadcast(av, 4u),
            subgroupBroadcast(av, 5u),
            subgroupBroadcast(av, 6u),
            subgroupBroadcast(av, 7u),
        ) * bv;
        ea += sa;
        eb += sb;
        if (kk % K_BLOCK == K_BLOCK - 1u || kk + 1u == p.k) {
            total_lo += lo;
            total_hi += hi;
            lo = vec4<f32>(0.0);
            hi = vec4<f32>(0.0);
        }
    }
    lo = total_lo;
    hi = total_hi;
    if (c >= p.n) { return; }
    finish(r0, c, lo.x);
    finish(r0 + 1u, c, lo.y);
    finish(r0 + 2u, c, lo.z);
    finish(r0 + 3u, c, lo.w);
    finish(r0 + 4u, c, hi.x);
    finish(r0 + 5u, c, hi.y);
    finish(r0 + 6u, c, hi.z);
    finish(r0 + 7u, c, hi.w);
}
