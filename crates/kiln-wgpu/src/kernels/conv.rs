//! Window kernels (conv.wgsl): one invocation per output pixel (an im2col row), looping over its
//! floats; the disjoint max-pool gradient one per window.

use kiln_graph::{ConvOp, Window2d};

use super::{grid_1d, Io, Kernel};
use crate::shaders::{ConvParams, Shader};

pub(super) fn kernel(op: &ConvOp, io: &Io) -> Kernel {
    let w = op.window();
    let images = io.ins[0].shape.dims()[0];
    let (entry, images, operands, invocations): (_, _, &[usize], _) = match op {
        ConvOp::Im2Col { .. } => ("im2col", images, &[0, 0], io.n() / w.patch()),
        ConvOp::Col2Im { .. } => (
            "col2im",
            io.n() / (w.in_h * w.in_w * w.channels),
            &[0, 0],
            io.n() / w.channels,
        ),
        ConvOp::MaxPool2d { .. } => ("max_pool2d", images, &[0, 0], io.n() / w.channels),
        // One invocation per window (output pixel of the forward pass), not per input pixel.
        ConvOp::MaxPool2dGrad { .. } if w.disjoint() => (
            "max_pool2d_grad_disjoint",
            images,
            &[0, 1],
            io.ins[1].len() / w.channels,
        ),
        ConvOp::MaxPool2dGrad { .. } => ("max_pool2d_grad", images, &[0, 1], io.n() / w.channels),
    };
    Kernel::new(
        Shader::Conv,
        entry,
        params(w, images),
        io.with_out(operands),
        grid_1d(invocations),
    )
    .with("CHANNELS4", f64::from(u8::from(w.channels.is_multiple_of(4))))
}

fn params(w: &Window2d, images: usize) -> ConvParams {
    ConvParams {
        n: images as u32,
        in_h: w.in_h as u32,
        in_w: w.in_w as u32,
        channels: w.channels as u32,
        kh: w.kh as u32,
        kw: w.kw as u32,
        sh: w.sh as u32,
        sw: w.sw as u32,
        pad_top: w.pad_top as u32,
        pad_left: w.pad_left as u32,
        out_h: w.out_h as u32,
        out_w: w.out_w as u32,
    }
}
