// matmul_texel.wgsl — C = act(op(A) · op(B) + bias) on software rasterisers (lavapipe), reading A and
// B through textures that hold a copy of their bytes.
//
// Why: llvmpipe turns a storage-buffer load into a loop over the subgroup's lanes that inserts one
// float at a time into a vector kept in memory, a store-forwarding stall per float; a texel fetch is
// one vectorised gather. The same kernel runs 9× faster on textures (measured at 512³). The
// session copies each operand into its texture (a memcpy on these drivers) right before the
// dispatch; the result is still written to the storage buffer.
//
// Texture layout: see `texel_at` in common.wgsl.
//
// The subgroup scheme is matmul_subgroup.wgsl's: a subgroup of 8 lanes owns 8 rows × 32 columns of
// C; A values are loaded once by one lane and broadcast, B values once per lane.
// - `matmul_texel`:    A [m, k], B [k, n]
// - `matmul_texel_tn`: A stored [k, m] (a weight gradient xᵀ · dy), B [k, n]
// - `matmul_texel_nt`: A [m, k], B stored [n, k] (an input gradient dy · Wᵀ)
//
// | binding | name | contents                                            |
// |---------|------|-----------------------------------------------------|
// | 0       | p    | Params                                              |
// | 1       | out  | C [m, n/4] in vec4 elements                         |
// | 2       | bias | [n/4] when HAS_BIAS (else bound to C, unread)       |
// | 3       | ta   | A's texels                                          |
// | 4       | tb   | B's texels                                          |
// Needs n % 4 == 0, and k % 4 == 0 for _nt. Rows of the stored A that do not start on a texel (k % 4
// for the plain kernel, m % 4 for _tn: a 27-wide im2col of an RGB image) are read float by float
// when A_ALIGNED is false. Workgroup: 64 invocations = 8 subgroups of 8, covering 64 rows × 32
// columns. Grid: (ceil(n / 32), ceil(m / 64)).

// Rows of the stored A start on whole texels.
override A_ALIGNED: bool = true;

@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bias: array<vec4<f32>>;
@group(0) @binding(3) var ta: texture_2d<f32>;
@group(0) @binding(4) var tb: texture_2d<f32>;

fn load_a(i: u32) -> vec4<f32> {
    return textureLoad(ta, texel_at(i), 0);
}

fn load_b(i: u32) -> vec4<f32> {
    return textureLoad(tb, texel_at(i), 0);
}

// Float e of A.
fn elem_a(e: u32) -> f32 {
    return textureLoad(ta, texel_at(e >> 2u), 0)[e & 3u];
}

// Floats base + i .. base + i + 4 of A, each index clamped to base + last.
fn quad_a(base: u32, i: u32, last: u32) -> vec4<f32> {
    return vec4<f32>(
        elem_a(base + min(i, last)),
        elem_a(base + min(i + 1u, last)),
        elem_a(base + min(i + 2u, last)),
        elem_a(base + min(i + 3u, last)),
    );
}

// Vector `col` of B's row kk, clamped to the last row: past k, A's factor is zero.
fn b_row(kk: u32, n4: u32, col: u32) -> vec4<f32> {
    return load_b(min(kk, p.k - 1u) * n4 + col);
}

fn store8(acc: ptr<function, Acc8>, r0: u32, cv: u32) {
    if (cv >= p.n / 4u) { return; }
    for (var i = 0u; i < 8u; i++) {
        finish(r0 + i, cv, (*acc).r[i]);
    }
}

@compute @workgroup_size(64)
fn matmul_texel(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let r0 = wid.y * 64u + (li / 8u) * 8u;
    let cv = wid.x * 8u + lane;
    // Out-of-range lanes compute on clamped, valid indices; only stores are guarded, so every lane
    // takes part in every broadcast.
    let col = min(cv, n4 - 1u);
    let my_row = min(r0 + lane, p.m - 1u);
    // Sums of the current K_BLOCK (acc), added to the totals at each block's end (fold8).
    var acc: Acc8;
    var total: Acc8;
    for (var kk = 0u; kk < p.k; kk += 4u) {
        var mine: vec4<f32>;
        if (A_ALIGNED) {
            mine = load_a((my_row * p.k + kk) / 4u);
        } else {
            // The k tail past the row's end counts zero.
            let live = vec4<u32>(kk, kk + 1u, kk + 2u, kk + 3u) < vec4<u32>(p.k);
            mine = select(vec4<f32>(0.0), quad_a(my_row * p.k, kk, p.k - 1u), live);
        }
        let b0 = b_row(kk, n4, col);
        let b1 = b_row(kk + 1u, n4, col);
        let b2 = b_row(kk + 2u, n4, col);
        let b3 = b_row(kk + 3u, n4, col);
        rows8(&acc, mine, b0, b1, b2, b3);
        if (kk % K_BLOCK == K_BLOCK - 4u) { fold8(&total, &acc); }
    }
    fold8(&total, &acc);
    store8(&total, r0, cv);
}

@compute @workgroup_size(64)
fn matmul_texel_tn(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let r0 = wid.y * 64u + (li / 8u) * 8u;
    let cv = wid.x * 8u + lane;
    let col = min(cv, n4 - 1u);
    // Lane l loads Aᵀ's rows r0 + 4·(l % 2) ..+4 at k0 + l / 2. Rows past m clamp to valid data
    // (their sums are never stored); k past its end counts zero.
    let my_r = r0 + 4u * (lane % 2u);
    let my_k = lane / 2u;
    // Sums of the current K_BLOCK (acc), added to the totals at each block's end (fold8).
    var acc: Acc8;
    var total: Acc8;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        let kr = min(k0 + my_k, p.k - 1u);
        var mine: vec4<f32>;
        if (A_ALIGNED) {
            mine = load_a((kr * p.m + min(my_r, p.m - 4u)) / 4u);
        } else {
            mine = quad_a(kr * p.m, my_r, p.m - 1u);
        }
        mine = select(vec4<f32>(0.0), mine, k0 + my_k < p.k);
        outer8(&acc, subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), b_row(k0, n4, col));
        outer8(&acc, subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u), b_row(k0 + 1u, n4, col));
        outer8(&acc, subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), b_row(k0 + 2u, n4, col));
        outer8(&acc, subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u), b_row(k0 + 3u, n4, col));
        if (k0 % K_BLOCK == K_BLOCK - 4u) { fold8(&total, &acc); }
    }
    fold8(&total, &acc);
    store8(&total, r0, cv);
}

// One row's A vector (four k) against the lane's four B rows (four columns of C) at those k.
fn dot_row(av: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3));
}

@compute @workgroup_size(64)
fn matmul_texel_nt(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let r0 = wid.y * 64u + (li / 8u) * 8u;
    let cv = wid.x * 8u + lane;
    // This lane's four columns of C are four rows of the stored B.
    let c = min(cv, n4 - 1u) * 4u;
    let my_row = min(r0 + lane, p.m - 1u);
    // Sums of the current K_BLOCK (acc), added to the totals at each block's end (fold8).
    var acc: Acc8;
    var total: Acc8;
    for (var kq = 0u; kq < k4; kq++) {
        let mine = load_a(my_row * k4 + kq);
        let b0 = load_b(c * k4 + kq);
        let b1 = load_b((c + 1u) * k4 + kq);
        let b2 = load_b((c + 2u) * k4 + kq);
        let b3 = load_b((c + 3u) * k4 + kq);
        acc.r[0] += dot_row(subgroupBroadcast(mine, 0u), b0, b1, b2, b3);
        acc.r[1] += dot_row(subgroupBroadcast(mine, 1u), b0, b1, b2, b3);
        acc.r[2] += dot_row(subgroupBroadcast(mine, 2u), b0, b1, b2, b3);
        acc.r[3] += dot_row(subgroupBroadcast(mine, 3u), b0, b1, b2, b3);
        acc.r[4] += dot_row(subgroupBroadcast(mine, 4u), b0, b1, b2, b3);
        acc.r[5] += dot_row(subgroupBroadcast(mine, 5u), b0, b1, b2, b3);
        acc.r[6] += dot_row(subgroupBroadcast(mine, 6u), b0, b1, b2, b3);
        acc.r[7] += dot_row(subgroupBroadcast(mine, 7u), b0, b1, b2, b3);
        if (kq % (K_BLOCK / 4u) == K_BLOCK / 4u - 1u) { fold8(&total, &acc); }
    }
    fold8(&total, &acc);
    store8(&total, r0, cv);
}
