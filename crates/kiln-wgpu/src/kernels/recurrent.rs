//! Recurrence kernels (recurrent.wgsl): one workgroup per sequence, every time step in a loop.

use kiln_graph::RecurrentOp;

use super::{Io, Kernel};
use crate::shaders::{RecurrentParams, Shader};

pub(super) fn kernel(op: &RecurrentOp, io: &Io) -> Kernel {
    let (n, steps, units) = op.dims(&io.shapes()).expect("the graph checked the shapes");
    let (entry, operands, reverse): (_, &[usize], _) = match *op {
        RecurrentOp::Lstm { reverse } => ("lstm", &[0, 1, 0], reverse),
        RecurrentOp::LstmGrad { reverse } => ("lstm_grad", &[0, 1, 2], reverse),
        RecurrentOp::Gru { reverse } => ("gru", &[0, 1, 2], reverse),
        RecurrentOp::GruGrad { reverse } => ("gru_grad", &[0, 1, 2], reverse),
    };
    let params = RecurrentParams {
        n: n as u32,
        steps: steps as u32,
        units: units as u32,
        reverse: u32::from(reverse),
    };
    Kernel::new(
        Shader::Recurrent,
        entry,
        params,
        io.with_out(operands),
        [n as u32, 1, 1],
    )
}
