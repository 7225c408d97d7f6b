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
// Channels go four at a time (a texel per fetch when CHANNELS4, channels % 4 == 0; else float by
// float). Max-pool ties go to the first maximum in row-major window order; padding never wins.
// Operands are read through `load_a` / `load_b` (operands_storage.wgsl, or operands_texel.wgsl on
// software rasterisers, where bindings 2 and 3 are texel copies instead).

// Channels divide by 4: four channels are one texel (one vec4 of the storage buffer).
override CHANNELS4: bool = false;

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

// Channels 4q..4q+4 of the pixel whose channel 0 is float `base` of A; channels past the end
// read 0.
fn chans_a(base: u32, q: u32) -> vec4<f32> {
    if (CHANNELS4) {
        return load_a4(base / 4u + q);
    }
    let c = 4u * q;
    let last = p.channels - 1u;
    return vec4<f32>(
        select(0.0, load_a(base + min(c, last)), c < p.channels),
        select(0.0, load_a(base + min(c + 1u, last)), c + 1u < p.channels),
        select(0.0, load_a(base + min(c + 2u, last)), c + 2u < p.channels),
        select(0.0, load_a(base + min(c + 3u, last)), c + 3u < p.channels),
    );
}

fn chans_b(base: u32, q: u32) -> vec4<f32> {
    if (CHANNELS4) {
        return load_b4(base / 4u + q);
    }
    let c = 4u * q;
    let last = p.channels - 1u;
    return vec4<f32>(
        select(0.0, load_b(base + min(c, last)), c < p.channels),
        select(0.0, load_b(base + min(c + 1u, last)), c + 1u < p.channels),
        select(0.0, load_b(base + min(c + 2u, last)), c + 2u < p.channels),
        select(0.0, load_b(base + min(c + 3u, last)), c + 3u < p.channels),
    );
}

// Stores channels 4q..4q+4 of the output pixel whose channel 0 is float `at`, those that exist.
fn store_chans(at: u32, q: u32, v: vec4<f32>) {
    let c = 4u * q;
    if (CHANNELS4 || c + 3u < p.channels) {
        out[at + c] = v.x;
        out[at + c + 1u] = v.y;
        out[at + c + 2u] = v.z;
        out[at + c + 3u] = v.w;
        return;
    }
    if (c < p.channels) { out[at + c] = v.x; }
    if (c + 1u < p.channels) { out[at + c + 1u] = v.y; }
    if (c + 2u < p.channels) { out[at + c + 2u] = v.z; }
}

fn channel_groups() -> u32 {
    return (p.channels + 3u) / 4u;
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
            let pad = s.x >= p.in_h;
            // Padding reads a valid pixel and stores zeros.
            let base = pixel(n, min(s.x, p.in_h - 1u), s.y, 0u);
            if (CHANNELS4) {
                for (var q = 0u; q < p.channels / 4u; q++) {
                    store_chans(at, q, select(chans_a(base, q), vec4<f32>(0.0), pad));
                }
            } else {
                // Few channels (an RGB input): float by float, no channel group half empty.
                for (var c = 0u; c < p.channels; c++) {
                    out[at + c] = select(load_a(base + c), 0.0, pad);
                }
            }
            at += p.channels;
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
    for (var q = 0u; q < channel_groups(); q++) {
        var s = vec4<f32>(0.0);
        for (var oy = wy.x; oy < wy.y; oy++) {
            let ky = ty - oy * p.sh;
            for (var ox = wx.x; ox < wx.y; ox++) {
                let kx = tx - ox * p.sw;
                let row = (n * p.out_h + oy) * p.out_w + ox;
                s += chans_a(row * width + (ky * p.kw + kx) * p.channels, q);
            }
        }
        store_chans(t * p.channels, q, s);
    }
}

// Maximum of window (n, oy, ox) in channels 4q..4q+4, and per channel the window position
// ky·kw + kx of its first maximum; 0 at position kh·kw when the window is all padding.
struct WindowMax {
    v: vec4<f32>,
    at: vec4<u32>,
}

fn window_max(n: u32, oy: u32, ox: u32, q: u32) -> WindowMax {
    var best = WindowMax(vec4<f32>(0.0), vec4<u32>(p.kh * p.kw));
    var found = false;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let s = source(oy, ox, ky, kx);
            if (s.x >= p.in_h) { continue; }
            let v = chans_a(pixel(n, s.x, s.y, 0u), q);
            let take = select(v > best.v, vec4<bool>(true), !found);
            best.v = select(best.v, v, take);
            best.at = select(best.at, vec4<u32>(ky * p.kw + kx), take);
            found = true;
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
    for (var q = 0u; q < channel_groups(); q++) {
        store_chans(t * p.channels, q, window_max(n, oy, ox, q).v);
    }
}

// First maximum of window (n, oy, ox) in channel c (for overlapping windows), as (y, x); (in_h, 0) if the window is all padding.
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
    for (var q = 0u; q < channel_groups(); q++) {
        let m = window_max(n, oy, ox, q);
        let g = chans_b(t * p.channels, q);
        for (var y = y0; y < y1; y++) {
            let ky = y + p.pad_top - oy * p.sh;
            for (var x = x0; x < x1; x++) {
                let kx = x + p.pad_left - ox * p.sw;
                // Pixels of the block outside the window get a position no maximum has.
                let here = select(p.kh * p.kw + 1u, ky * p.kw + kx, ky < p.kh && kx < p.kw);
                store_chans(pixel(n, y, x, 0u), q, select(vec4<f32>(0.0), g, m.at == vec4<u32>(here)));
            }
        }
    }
}

// First input row (or column) of window o's stride block: o·s in padded coordinates.
fn block_start(o: u32, s: u32, pad: u32) -> u32 {
    return max(o * s, pad) - pad;
}
