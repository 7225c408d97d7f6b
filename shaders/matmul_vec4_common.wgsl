// matmul_vec4_common.wgsl — prepended, after matmul_common.wgsl, to the vec4 matmul families
// (matmul_vec4, matmul_subgroup, matmul_texel): the bias + activation + store of one vec4 of C, and
// the helpers of the 8-row subgroup kernels. Each family declares its own `out` and `bias`
// (array<vec4<f32>>) at the bindings its table gives.

// Bias, activation and store of C's row r, column vector cv; rows past m are dropped.
fn finish(r: u32, cv: u32, v: vec4<f32>) {
    if (r >= p.m) { return; }
    var z = v;
    if (HAS_BIAS) { z += bias[cv]; }
    if (ACT == 1u) {
        z = max(z, vec4<f32>(0.0));
    } else if (ACT != 0u) {
        z = vec4<f32>(epilogue1(z.x), epilogue1(z.y), epilogue1(z.z), epilogue1(z.w));
    }
    out[r * (p.n / 4u) + cv] = z;
}

// One row's A vector (four k) times the four B rows at those k.
fn fma_row(av: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return av.x * b0 + av.y * b1 + av.z * b2 + av.w * b3;
}

// A subgroup's 8 rows of C, one vec4 of columns per lane.
struct Acc8 {
    r: array<vec4<f32>, 8>,
}

// Row i of the subgroup's 8 rows (lane i's A vector, four k, broadcast) times the four B rows
// at those k, for every row.
fn rows8(acc: ptr<function, Acc8>, mine: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) {
    (*acc).r[0] += fma_row(subgroupBroadcast(mine, 0u), b0, b1, b2, b3);
    (*acc).r[1] += fma_row(subgroupBroadcast(mine, 1u), b0, b1, b2, b3);
    (*acc).r[2] += fma_row(subgroupBroadcast(mine, 2u), b0, b1, b2, b3);
    (*acc).r[3] += fma_row(subgroupBroadcast(mine, 3u), b0, b1, b2, b3);
    (*acc).r[4] += fma_row(subgroupBroadcast(mine, 4u), b0, b1, b2, b3);
    (*acc).r[5] += fma_row(subgroupBroadcast(mine, 5u), b0, b1, b2, b3);
    (*acc).r[6] += fma_row(subgroupBroadcast(mine, 6u), b0, b1, b2, b3);
    (*acc).r[7] += fma_row(subgroupBroadcast(mine, 7u), b0, b1, b2, b3);
}

// Adds a block's sums into the running ones and starts the next block from zero (K_BLOCK).
fn fold4(total: ptr<function, array<vec4<f32>, 4>>, part: ptr<function, array<vec4<f32>, 4>>) {
    for (var i = 0u; i < 4u; i++) {
        (*total)[i] += (*part)[i];
        (*part)[i] = vec4<f32>(0.0);
    }
}

// Adds a block's sums into the running ones and starts the next block from zero (K_BLOCK).
fn fold8(total: ptr<function, Acc8>, part: ptr<function, Acc8>) {
    for (var i = 0u; i < 8u; i++) {
        (*total).r[i] += (*part).r[i];
        (*part).r[i] = vec4<f32>(0.0);
    }
}

// Rows r0..r0+4 (lo) and r0+4..r0+8 (hi) of Aᵀ at one k, times that k's B vector.
fn outer8(acc: ptr<function, Acc8>, lo: vec4<f32>, hi: vec4<f32>, bk: vec4<f32>) {
    (*acc).r[0] += lo.x * bk;
    (*acc).r[1] += lo.y * bk;
    (*acc).r[2] += lo.z * bk;
    (*acc).r[3] += lo.w * bk;
    (*acc).r[4] += hi.x * bk;
    (*acc).r[5] += hi.y * bk;
    (*acc).r[6] += hi.z * bk;
    (*acc).r[7] += hi.w * bk;
}
