//! Recurrence kernels (recurrent.wgsl): one workgroup per sequence, every time step in a loop.

use kiln_graph::RecurrentOp;

use super::{Io, Kernel};
use crate::shaders::{RecurrentParams, Shader};

pub(super) fn kernel(op: &RecurrentOp, io: &Io) -> Kernel {
    let (n, steps, units) = op.dims(&io.shapes()).expect("the graph checked the shapes");
    let (entry, c) = match *op {
        RecurrentOp::Lstm { .. } => ("lstm", 0),
        RecurrentOp::LstmGrad { .. } => ("lstm_grad", 2),
        RecurrentOp::Gru { .. } => ("gru", 2),
        RecurrentOp::GruGrad { .. } => ("gru_grad", 2),
    };
    // Bindings a, b, c, init; an unread one is bound to operand 0.
    let init = if op.initial() { op.initial_at() } else { 0 };
    let params = RecurrentParams {
        n: n as u32,
        steps: steps as u32,
        units: units as u32,
        flags: u32::from(op.reverse()) | (u32::from(op.initial()) << 1),
    };
    Kernel::new(
        Shader::Recurrent,
        entry,
        params,
        io.with_out(&[0, 1, c, init]),
        [n as u32, 1, 1],
    )
}
