// matmul_tiled.wgsl — C = act(op(A) · op(B) + bias) for hardware GPUs: each workgroup of 16×16
// invocations computes a 64×64 tile of C, each invocation a 4×4 block of it in registers. A and B
// pass through workgroup memory in slabs 16 deep in k, so every float read from global memory
// feeds 64 multiply-adds (the untiled kernels get 4), and the slabs are filled with coalesced loads
// whichever way the operands are stored. Any shape, either transposition, batched; loads outside
// the matrices read 0 and stores outside them are dropped, so no shape needs padding. Barriers
// are cheap on GPUs and costly on software rasterisers, which keep the untiled kernels.
//
// | binding | name | shape                                          |
// |---------|------|------------------------------------------------|
// | 0       | p    | Params                                         |
// | 1       | out  | C [batch, m, n]                                |
// | 2       | a    | A [batch, m, k], or [batch, k, m] when TRANS_A |
// | 3       | b    | B [batch, k, n], or [batch, n, k] when TRANS_B |
// | 4       | bias | [n] when HAS_BIAS (else bound to A, unread)    |
// Grid: (ceil(n / 64), ceil(m / 64), batch) workgroups of 16×16: the third axis picks the matrix.

override TRANS_A: bool = false;
override TRANS_B: bool = false;

// Tile edge in C, and slab depth in k (TILE / 4 = 16 vec4 per slab row: one per invocation of a
// workgroup row).
const TILE: u32 = 64u;
const DEPTH: u32 = 16u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> bias: array<f32>;

// slab_a[kk][q]: rows 4q..4q+3 of the tile at depth kk; slab_b[kk][q]: columns 4q..4q+3.
var<workgroup> slab_a: array<array<vec4<f32>, 16>, 16>;
var<workgroup> slab_b: array<array<vec4<f32>, 16>, 16>;

// A's element (r, kk) of this matrix (`base` its first element), 0 outside it.
fn load_a(base: u32, r: u32, kk: u32) -> f32 {
    if (r >= p.m || kk >= p.k) { return 0.0; }
    if (TRANS_A) { return a[base + kk * p.m + r]; }
    return a[base + r * p.k + kk];
}

// B's element (kk, c), 0 outside it.
fn load_b(base: u32, kk: u32, c: u32) -> f32 {
    if (kk >= p.k || c >= p.n) { return 0.0; }
    if (TRANS_B) { return b[base + c * p.k + kk]; }
    return b[base + kk * p.n + c];
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let base_a = wid.z * p.m * p.k;
    let base_b = wid.z * p.k * p.n;
    let base_c = wid.z * p.m * p.n;
    let t = lid.y * 16u + lid.x;
    // Which slab vec4 this invocation fills: neighbouring invocations take neighbouring addresses
    // of the stored operand (along k for a row-major A, along m for a transposed one; likewise B).
    var a_k = t % 16u;
    var a_q = t / 16u;
    if (TRANS_A) {
        a_k = t / 16u;
        a_q = t % 16u;
    }
    var b_k = t / 16u;
    var b_q = t % 16u;
    if (TRANS_B) {
        b_k = t % 16u;
        b_q = t / 16u;
    }
    var acc: array<vec4<f32>, 4>;
    var block: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += DEPTH) {
        let r = row0 + 4u * a_q;
        let ka = k0 + a_k;
        slab_a[a_k][a_q] = vec4<f32>(
            load_a(base_a, r, ka),
            load_a(base_a, r + 1u, ka),
            load_a(base_a, r + 2u, ka),
            load_a(base_a, r + 3u, ka),
        );
        let c = col0 + 4u * b_q;
        let kb = k0 + b_k;
        slab_b[b_k][b_q] = vec4<f32>(
            load_b(base_b, kb, c),
            load_b(base_b, kb, c + 1u),
            load_b(base_b, kb, c + 2u),
            load_b(base_b, kb, c + 3u),
        );
        workgroupBarrier();
        // A slab's 16 products summed apart, added to the block's sums, which join the running
        // sums every K_BLOCK: rounding error grows with 16 + K_BLOCK/16 + k/K_BLOCK terms
        // instead of k, as the untiled kernels' and the CPU's blocked GEMM.
        var part: array<vec4<f32>, 4>;
        for (var kk = 0u; kk < DEPTH; kk++) {
            let av = slab_a[kk][lid.y];
            let bv = slab_b[kk][lid.x];
            part[0] += av.x * bv;
            part[1] += av.y * bv;
            part[2] += av.z * bv;
            part[3] += av.w * bv;
        }
        for (var i = 0u; i < 4u; i++) {
            block[i] += part[i];
        }
        if ((k0 + DEPTH) % K_BLOCK == 0u || k0 + DEPTH >= p.k) {
            for (var i = 0u; i < 4u; i++) {
                acc[i] += block[i];
                block[i] = vec4<f32>(0.0);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + 4u * lid.y + i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + 4u * lid.x + j;
            if (r < p.m && c < p.n) {
                var z = acc[i][j];
                if (HAS_BIAS) { z += bias[c]; }
                out[base_c + r * p.n + c] = epilogue1(z);
            }
        }
    }
}
