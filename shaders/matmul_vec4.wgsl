// matmul_vec4.wgsl — C = act(op(A) · op(B) + bias) with 16-byte loads and stores, for shapes whose
// contiguous dimensions divide by 4 (the kernel table checks). Each invocation owns a 4×4 block of
// C. On software rasterisers every storage load is a per-lane gather, so a vec4 load moves four
// times the data for the same cost; no workgroup memory, since barriers cost even more there.
//
// | binding | name | shape (in vec4 elements)                                 |
// |---------|------|----------------------------------------------------------|
// | 0       | p    | Params                                                   |
// | 1       | out  | C [m, n/4]                                               |
// | 2       | a    | A [m, k/4], or [k, m/4] when TRANS_A                     |
// | 3       | b    | B [k, n/4], or [n, k/4] when TRANS_B                     |
// | 4       | bias | [n/4] when HAS_BIAS (else bound to A, unread)            |
// Needs n % 4 == 0, and k % 4 == 0 unless TRANS_A and not TRANS_B (then m % 4 == 0).
// TRANS_A together with TRANS_B is left to matmul.wgsl.
// Grid: (ceil(n / 32), ceil(m / 32)) workgroups of 8×8.

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bias: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn matmul_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r0 = gid.y * 4u;
    let cv = gid.x;
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    // Out-of-range invocations clamp to the last valid row/column and compute on valid data; only
    // the stores are guarded, so every lane runs the same loop.
    let col = min(cv, n4 - 1u);
    let rl = p.m - 1u;
    let r = vec4<u32>(min(r0, rl), min(r0 + 1u, rl), min(r0 + 2u, rl), min(r0 + 3u, rl));
    // Sums of the current K_BLOCK (acc), added to the totals at each block's end (fold4).
    var acc: array<vec4<f32>, 4>;
    var total: array<vec4<f32>, 4>;
    if (TRANS_A) {
        // A is [k, m]: one vec4 holds this block's four rows at one k; outer products.
        let m4 = p.m / 4u;
        let rv = min(r0 / 4u, m4 - 1u);
        for (var kk = 0u; kk < p.k; kk++) {
            let av = a[kk * m4 + rv];
            let bv = b[kk * n4 + col];
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
            if (kk % K_BLOCK == K_BLOCK - 1u) { fold4(&total, &acc); }
        }
    } else if (TRANS_B) {
        // B is [n, k]: dot products of A rows with B rows, four k at a time.
        let c = col * 4u;
        for (var kq = 0u; kq < k4; kq++) {
            let b0 = b[c * k4 + kq];
            let b1 = b[(c + 1u) * k4 + kq];
            let b2 = b[(c + 2u) * k4 + kq];
            let b3 = b[(c + 3u) * k4 + kq];
            let a0 = a[r.x * k4 + kq];
            let a1 = a[r.y * k4 + kq];
            let a2 = a[r.z * k4 + kq];
            let a3 = a[r.w * k4 + kq];
            acc[0] += vec4<f32>(dot(a0, b0), dot(a0, b1), dot(a0, b2), dot(a0, b3));
            acc[1] += vec4<f32>(dot(a1, b0), dot(a1, b1), dot(a1, b2), dot(a1, b3));
            acc[2] += vec4<f32>(dot(a2, b0), dot(a2, b1), dot(a2, b2), dot(a2, b3));
            acc[3] += vec4<f32>(dot(a3, b0), dot(a3, b1), dot(a3, b2), dot(a3, b3));
            if (kq % (K_BLOCK / 4u) == K_BLOCK / 4u - 1u) { fold4(&total, &acc); }
        }
    } else {
        // Both row-major: four k at a time, each A vec4 spread over four B rows.
        for (var kq = 0u; kq < k4; kq++) {
            let kk = kq * 4u;
            let b0 = b[kk * n4 + col];
            let b1 = b[(kk + 1u) * n4 + col];
            let b2 = b[(kk + 2u) * n4 + col];
            let b3 = b[(kk + 3u) * n4 + col];
            let a0 = a[r.x * k4 + kq];
            let a1 = a[r.y * k4 + kq];
            let a2 = a[r.z * k4 + kq];
            let a3 = a[r.w * k4 + kq];
            acc[0] += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
            acc[1] += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
            acc[2] += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
            acc[3] += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
            if (kq % (K_BLOCK / 4u) == K_BLOCK / 4u - 1u) { fold4(&total, &acc); }
        }
    }
    fold4(&total, &acc);
    if (cv >= n4) { return; }
    finish(r0, cv, total[0]);
    finish(r0 + 1u, cv, total[1]);
    finish(r0 + 2u, cv, total[2]);
    finish(r0 + 3u, cv, total[3]);
}
