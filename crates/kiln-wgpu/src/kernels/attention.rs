//! Attention kernels (attention.wgsl): the forward one invocation per query row, the backward one
//! workgroup per (sample, head).

use kiln_graph::AttentionOp;

use super::{grid_1d, grid_groups, Io, Kernel};
use crate::shaders::{AttentionParams, Shader};

pub(super) fn kernel(op: &AttentionOp, io: &Io) -> Kernel {
    let (n, tq, tk, heads, d, dv) = op.dims(&io.shapes()).expect("the graph checked the shapes");
    let at = op.attend();
    // Bindings q, k, v, keep, draw, e, f: an absent keep or draw, and the forward's e and f,
    // bound to q and never read.
    let context = op.context_len();
    let (keep, draw) = (op.keep_at().unwrap_or(0), op.draw_at().unwrap_or(0));
    let (entry, extra, grid) = match op {
        AttentionOp::Attention(_) => ("attention", [0, 0], grid_1d(n * tq * heads)),
        AttentionOp::AttentionGrad(_) => ("attention_grad", [context, context + 1], grid_groups(n * heads)),
    };
    let vec4 = d % 4 == 0 && dv % 4 == 0;
    let cached = vec4 && d.max(dv) <= 64;
    let flags = u32::from(at.causal)
        | u32::from(at.masked) << 1
        | u32::from(at.rate > 0.0) << 2
        | u32::from(vec4) << 3
        | u32::from(cached) << 4;
    let params = AttentionParams {
        n: n as u32,
        tq: tq as u32,
        tk: tk as u32,
        heads: heads as u32,
        d: d as u32,
        dv: dv as u32,
        flags,
        seed: at.seed,
        scale: at.scale,
        keep_at: kiln_graph::dropout_threshold(at.rate),
        drop_scale: 1.0 / (1.0 - at.rate),
        weights: (n * heads * tq * tk) as u32,
    };
    Kernel::new(
        Shader::Attention,
        entry,
        params,
        io.with_out(&[0, 1, 2, keep, draw, extra[0], extra[1]]),
        grid,
    )
    // The vec4s of a row each pass accumulates: the whole row up to 64 columns.
    .with("BLOCK4", d.max(dv).div_ceil(4).min(16) as f64)
}
