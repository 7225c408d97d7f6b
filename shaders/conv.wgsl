// conv.wgsl — image ops on NHWC tensors: im2col (convolution is im2col then the tiled matmul), its
// adjoint col2im, and max-pooling forward and backward. Every entry is one invocation per output
// element, and the two gradients gather (each pixel loops over the windows that contain it), so no
// atomics are needed and sums run in a fixed order.
//
// | binding | name | im2col               | col2im               | max_pool2d      | max_pool2d_grad |
// |---------|------|----------------------|----------------------|-----------------|-----------------|
// | 0       | p    | Params               | Params               | Params          | Params          |
// | 1       | out  | [n·oh·ow, kh·kw·c]   | [n, h, w, c]         | [n, oh, ow, c]  | [n, h, w, c]    |
// | 2       | a    | x [n, h, w, c]       | cols                 | x               | x               |
// | 3       | b    | (a, unread)          | (a, unread)          | (a, unread)     | dy [n, oh, ow, c] |
// Max-pool ties go to the first maximum in row-major window order; padding never wins.

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
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

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

@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    let width = p.kh * p.kw * p.channels;
    if (t >= p.n * p.out_h * p.out_w * width) { return; }
    let row = t / width;
    let col = t % width;
    let c = col % p.channels;
    let kx = (col / p.channels) % p.kw;
    let ky = col / (p.channels * p.kw);
    let ox = row % p.out_w;
    let oy = (row / p.out_w) % p.out_h;
    let n = row / (p.out_w * p.out_h);
    let s = source(oy, ox, ky, kx);
    out[t] = select(a[pixel(n, s.x, s.y, c)], 0.0, s.x >= p.in_h);
}

@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.n * p.in_h * p.in_w * p.channels) { return; }
    let c = t % p.channels;
    let x = (t / p.channels) % p.in_w;
    let y = (t / (p.channels * p.in_w)) % p.in_h;
    let n = t / (p.channels * p.in_w * p.in_h);
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            // The window row oy with oy·sh + ky = y + pad_top, if one exists.
            let ty = y + p.pad_top;
            let tx = x + p.pad_left;
            if (ty < ky || tx < kx) { continue; }
            if ((ty - ky) % p.sh != 0u || (tx - kx) % p.sw != 0u) { continue; }
            let oy = (ty - ky) / p.sh;
            let ox = (tx - kx) / p.sw;
            if (oy >= p.out_h || ox >= p.out_w) { continue; }
            let row = (n * p.out_h + oy) * p.out_w + ox;
            s += a[row * p.kh * p.kw * p.channels + (ky * p.kw + kx) * p.channels + c];
        }
    }
    out[t] = s;
}

// First maximum of window (n, oy, ox) in channel c, as (y, x); (in_h, 0) if the window is all padding.
fn window_argmax(n: u32, oy: u32, ox: u32, c: u32) -> vec2<u32> {
    var best = vec2<u32>(p.in_h, 0u);
    var best_v = LOWEST;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let s = source(oy, ox, ky, kx);
            if (s.x >= p.in_h) { continue; }
            let v = a[pixel(n, s.x, s.y, c)];
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
    if (t >= p.n * p.out_h * p.out_w * p.channels) { return; }
    let c = t % p.channels;
    let ox = (t / p.channels) % p.out_w;
    let oy = (t / (p.channels * p.out_w)) % p.out_h;
    let n = t / (p.channels * p.out_w * p.out_h);
    let m = window_argmax(n, oy, ox, c);
    out[t] = select(a[pixel(n, m.x, m.y, c)], 0.0, m.x >= p.in_h);
}

@compute @workgroup_size(256)
fn max_pool2d_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= p.n * p.in_h * p.in_w * p.channels) { return; }
    let c = t % p.channels;
    let x = (t / p.channels) % p.in_w;
    let y = (t / (p.channels * p.in_w)) % p.in_h;
    let n = t / (p.channels * p.in_w * p.in_h);
    var s = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let ty = y + p.pad_top;
            let tx = x + p.pad_left;
            if (ty < ky || tx < kx) { continue; }
            if ((ty - ky) % p.sh != 0u || (tx - kx) % p.sw != 0u) { continue; }
            let oy = (ty - ky) / p.sh;
            let ox = (tx - kx) / p.sw;
            if (oy >= p.out_h || ox >= p.out_w) { continue; }
            let m = window_argmax(n, oy, ox, c);
            if (m.x == y && m.y == x) {
                s += b[((n * p.out_h + oy) * p.out_w + ox) * p.channels + c];
            }
        }
    }
    out[t] = s;
}
