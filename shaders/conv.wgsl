// conv.wgsl — image ops on NHWC tensors: im2col (convolution is im2col then the tiled matmul), its
// adjoint col2im, and max-pooling forward and backward. Every entry is one invocation per pixel
// (an im2col row, an output or an input pixel) looping over the channels: the index arithmetic,
// integer divisions that no vector unit has, is paid once per pixel instead of once per float. The
// two gradients gather (each pixel loops over the windows that contain it), so no atomics are
// needed and sums run in a fixed order.
//
// | binding | name | im2col               | col2im               | max_pool2d      | max_pool2d_grad |
// |---------|------|----------------------|----------------------|-----------------|-----------------|
// | 0       | p    | Params               | Params               | Params          | Params          |
// | 1       | out  | [n·oh·ow, kh·kw·c]   | [n, h, w, c]         | [n, oh, ow, c]  | [n, h, w, c]    |
// | grid    |      | n·oh·ow              | n·h·w                | n·oh·ow         | n·h·w           |
// | 2       | a    | x [n, h, w, c]       | cols                 | x               | x               |
// | 3       | b    | (a, unread)          | (a, unread)          | (a, unread)     | dy [n, oh, ow, c] |
// Max-pool ties go to the first maximum in row-major window order; padding never wins.
// Operands are read through `load_a` / `load_b` (operands_storage.wgsl, or operands_texel.wgsl on
// software rasterisers, where bindings 2 and 3 are texel copies instead).

struct Params {
    n: u32,
    in_h: u32,
    in_w: u32,
    channels: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    pad_top: u32,
    pad_left: u32,
    out_h: u32,
    out_w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

// Input pixel read by window (oy, ox) at kernel position (ky, kx), or (in_h, 0) when in padding.
fn source(oy: u32, ox: u32, ky: u32, kx: u32) -> vec2<u32> {
    let y = oy * p.sh + ky;
    let x = ox * p.sw + kx;
    if (y < p.pad_top || x < p.pad_left || y - p.pad_top >= p.in_h || x - p.pad_left >= p.in_w) {
        return vec2<u32>(p.in_h, 0u);
    }
    return vec2<u32>(y - p.pad_top, x - p.pad_left);
}

fn pixel(n: u32, y: u32, x: u32, c: u32) -> u32 {
    return ((n * p.in_h + y) * p.in_w + x) * p.channels + c;
}

// Window rows (or columns) [lo, hi) whose k-wide span at stride s contains padded coordinate t.
fn windows_containing(t: u32, k: u32, s: u32, out_len: u32) -> vec2<u32> {
    var lo = 0u;
    if (t + 1u > k) {
        lo = (t + 1u - k + s - 1u) / s;
    }
    return vec2<u32>(lo, min(t / s + 1u, out_len));
}

@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg);
    if (row >= p.n * p.out_h * p.out_w) { return; }
    let ox = row % p.out_w;
    let oy = (row / p.out_w) % p.out_h;
    let n = row / (p.out_w * p.out_h);
    var at = row * p.kh * p.kw * p.channels;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let s = source(oy, ox, ky, kx);
            let base = pixel(n, s.x, s.y, 0u);
            for (var c = 0u; c < p.channels; c++) {
                out[at] = select(load_a(base + c), 0.0, s.x >= p.in_h);
                at++;
            }
        }
    }
}

@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.n * p.in_h * p.in_w) { return; }
    let x = t % p.in_w;
    let y = (t / p.in_w) % p.in_h;
    let n = t / (p.in_w * p.in_h);
    let ty = y + p.pad_top;
    let tx = x + p.pad_left;
    let wy = windows_containing(ty, p.kh, p.sh, p.out_h);
    let wx = windows_containing(tx, p.kw, p.sw, p.out_w);
    let width = p.kh * p.kw * p.channels;
    for (var c = 0u; c < p.channels; c++) {
        var s = 0.0;
        for (var oy = wy.x; oy < wy.y; oy++) {
            let ky = ty - oy * p.sh;
            for (var ox = wx.x; ox < wx.y; ox++) {
                let kx = tx - ox * p.sw;
                let row = (n * p.out_h + oy) * p.out_w + ox;
                s += load_a(row * width + (ky * p.kw + kx) * p.channels + c);
            }
        }
        out[t * p.channels + c] = s;
    }
}

// First maximum of window (n, oy, ox) in channel c, as (y, x); (in_h, 0) if the window is all padding.
fn window_argmax(n: u32, oy: u32, ox: u32, c: u32) -> vec2<u32> {
    var best = vec2<u32>(p.in_h, 0u);
    var best_v = LOWEST;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let s = source(oy, ox, ky, kx);
            if (s.x >= p.in_h) { continue; }
            let v = load_a(pixel(n, s.x, s.y, c));
            if (best.x >= p.in_h || v > best_v) {
                best = s;
                best_v = v;
            }
        }
    }
    return best;
}

@compute @workgroup_size(256)
fn max_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.n * p.out_h * p.out_w) { return; }
    let ox = t % p.out_w;
    let oy = (t / p.out_w) % p.out_h;
    let n = t / (p.out_w * p.out_h);
    for (var c = 0u; c < p.channels; c++) {
        let m = window_argmax(n, oy, ox, c);
        out[t * p.channels + c] = select(load_a(pixel(n, m.x, m.y, c)), 0.0, m.x >= p.in_h);
    }
}

@compute @workgroup_size(256)
fn max_pool2d_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.n * p.in_h * p.in_w) { return; }
    let x = t % p.in_w;
    let y = (t / p.in_w) % p.in_h;
    let n = t / (p.in_w * p.in_h);
    let wy = windows_containing(y + p.pad_top, p.kh, p.sh, p.out_h);
    let wx = windows_containing(x + p.pad_left, p.kw, p.sw, p.out_w);
    for (var c = 0u; c < p.channels; c++) {
        var s = 0.0;
        for (var oy = wy.x; oy < wy.y; oy++) {
            for (var ox = wx.x; ox < wx.y; ox++) {
                let m = window_argmax(n, oy, ox, c);
                if (m.x == y && m.y == x) {
                    s += load_b(((n * p.out_h + oy) * p.out_w + ox) * p.channels + c);
                }
            }
        }
        out[t * p.channels + c] = s;
    }
}

// Max-pool gradient for windows that do not overlap (stride ≥ window, the usual pooling): one
// invocation per window writes its whole stride block of the input gradient, dy at the window's
// maximum and 0 elsewhere, so each maximum is found once instead of once per pixel of its window.
// The last window of a row or column also owns the pixels past it that no window covers.
@compute @workgroup_size(256)
fn max_pool2d_grad_disjoint(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.n * p.out_h * p.out_w) { return; }
    let ox = t % p.out_w;
    let oy = (t / p.out_w) % p.out_h;
    let n = t / (p.out_w * p.out_h);
    let y0 = block_start(oy, p.sh, p.pad_top);
    let x0 = block_start(ox, p.sw, p.pad_left);
    var y1 = p.in_h;
    if (oy + 1u < p.out_h) { y1 = min(block_start(oy + 1u, p.sh, p.pad_top), p.in_h); }
    var x1 = p.in_w;
    if (ox + 1u < p.out_w) { x1 = min(block_start(ox + 1u, p.sw, p.pad_left), p.in_w); }
    for (var c = 0u; c < p.channels; c++) {
        let m = window_argmax(n, oy, ox, c);
        let g = load_b(t * p.channels + c);
        for (var y = y0; y < y1; y++) {
            for (var x = x0; x < x1; x++) {
                out[pixel(n, y, x, c)] = select(0.0, g, m.x == y && m.y == x);
            }
        }
    }
}

// First input row (or column) of window o's stride block: o·s in padded coordinates.
fn block_start(o: u32, s: u32, pad: u32) -> u32 {
    return max(o * s, pad) - pad;
}
