// matmul_subgroup.wgsl — C = act(A · B + bias) for row-major A [m, k] and B [k, n], on adapters
// whose subgroups are exactly 8 invocations wide (lavapipe on AVX2; the kernel table checks).
//
// Why: on software rasterisers a storage load costs a loop over the subgroup's lanes, while a
// subgroup broadcast is one vector shuffle. Each subgroup computes 8 rows × 32 columns of C; lane l
// loads row l's next four A values once and broadcasts them, instead of every lane loading all
// eight rows. That cuts loads per FMA by 3.2× against matmul_vec4.wgsl.
//
// `matmul_subgroup_tn` is the same for Aᵀ · B with A stored [k, m] (a weight gradient xᵀ · dy):
// there one vec4 of A holds four rows at one k, lanes load the 8 rows × 4 k of a step between them,
// and the loads per FMA are the same as in the plain kernel.
//
// | binding | name | shape (in vec4 elements)                              |
// |---------|------|-------------------------------------------------------|
// | 0       | p    | Params                                                |
// | 1       | out  | C [m, n/4]                                            |
// | 2       | a    | A [m, k/4] (matmul_subgroup), [k, m/4] (_tn)          |
// | 3       | b    | B [k, n/4]                                            |
// | 4       | bias | [n/4] when HAS_BIAS (else bound to A, unread)         |
// Needs n % 4 == 0 and k % 4 == 0, and m % 4 == 0 for _tn. Workgroup: 64 invocations = 8 subgroups
// of 8, covering 64 rows × 32 columns. Grid: (ceil(n / 32), ceil(m / 64)).


@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bias: array<vec4<f32>>;

// Each row's A vector broadcast from the lane that loaded it, times the four B rows (rows8).
@compute @workgroup_size(64)
fn matmul_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    // Subgroup s = li / 8 owns rows r0..r0+8; its lane owns one column vec4.
    let r0 = wid.y * 64u + (li / 8u) * 8u;
    let cv = wid.x * 8u + lane;
    // Out-of-range lanes compute on clamped, valid indices; only stores are guarded, so every lane
    // takes part in every broadcast.
    let col = min(cv, n4 - 1u);
    let my_row = min(r0 + lane, p.m - 1u);
    // Sums of the current K_BLOCK (acc), added to the totals at each block's end (fold8).
    var acc: Acc8;
    var total: Acc8;
    for (var kq = 0u; kq < k4; kq++) {
        let kk = kq * 4u;
        let mine = a[my_row * k4 + kq];
        let b0 = b[kk * n4 + col];
        let b1 = b[(kk + 1u) * n4 + col];
        let b2 = b[(kk + 2u) * n4 + col];
        let b3 = b[(kk + 3u) * n4 + col];
        rows8(&acc, mine, b0, b1, b2, b3);
        if (kq % (K_BLOCK / 4u) == K_BLOCK / 4u - 1u) { fold8(&total, &acc); }
    }
    fold8(&total, &acc);
    if (cv >= n4) { return; }
    for (var i = 0u; i < 8u; i++) {
        finish(r0 + i, cv, total.r[i]);
    }
}

@compute @workgroup_size(64)
fn matmul_subgroup_tn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let m4 = p.m / 4u;
    let r0 = wid.y * 64u + (li / 8u) * 8u;
    let cv = wid.x * 8u + lane;
    let col = min(cv, n4 - 1u);
    // Lane l loads A[k0 + l / 2, rows r0 + 4·(l % 2) ..+4]; rows past m clamp to valid data.
    let my_rv = min(r0 / 4u + (lane % 2u), m4 - 1u);
    let my_k = lane / 2u;
    // Sums of the current K_BLOCK (acc), added to the totals at each block's end (fold8).
    var acc: Acc8;
    var total: Acc8;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        let mine = a[(k0 + my_k) * m4 + my_rv];
        outer8(&acc, subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), b[k0 * n4 + col]);
        outer8(&acc, subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u), b[(k0 + 1u) * n4 + col]);
        outer8(&acc, subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), b[(k0 + 2u) * n4 + col]);
        outer8(&acc, subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u), b[(k0 + 3u) * n4 + col]);
        if (k0 % K_BLOCK == K_BLOCK - 4u) { fold8(&total, &acc); }
    }
    fold8(&total, &acc);
    if (cv >= n4) { return; }
    for (var i = 0u; i < 8u; i++) {
        finish(r0 + i, cv, total.r[i]);
    }
}
