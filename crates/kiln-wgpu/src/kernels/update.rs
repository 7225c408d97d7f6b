//! Update kernels (optim.wgsl, optim_texel.wgsl): in place on persistent tensors, so the bindings
//! are the operands themselves, written ones first.

use kiln_graph::UpdateOp;

use super::{grid_1d, Caps, Io, Kernel};
use crate::shaders::{OptimParams, Shader};

pub(super) fn kernel(op: &UpdateOp, io: &Io, caps: Caps) -> Kernel {
    let ins = io.ins;
    let n = ins[0].len();
    let optim = |entry, params, grid| Kernel::new(Shader::Optim, entry, params, ins.to_vec(), grid);
    let base = OptimParams {
        n: n as u32,
        ..Default::default()
    };
    // The two-moment rules without a texel variant (Nadam, Adamax) share their parameters.
    let moments = |entry, beta1, beta2, epsilon, weight_decay| {
        let params = OptimParams {
            beta1,
            beta2,
            epsilon,
            weight_decay,
            ..base
        };
        optim(entry, params, grid_1d(n))
    };
    match *op {
        UpdateOp::Adam {
            beta1,
            beta2,
            epsilon,
            weight_decay,
            amsgrad,
        } => {
            let params = OptimParams {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..base
            };
            if amsgrad {
                return optim("adam_amsgrad_update", params, grid_1d(n));
            }
            if !caps.texels_fit(&ins[..4]) {
                return optim("adam_update", params, grid_1d(n));
            }
            // Parameter, moments and gradient through texel copies, a texel per invocation.
            let bindings = vec![
                ins[0].clone(),
                ins[1].clone(),
                ins[2].clone(),
                ins[4].clone(),
                ins[5].clone(),
                ins[6].clone(),
            ];
            let mut k = Kernel::new(
                Shader::OptimTexel,
                "adam_update_texel",
                params,
                bindings,
                grid_1d(n.div_ceil(4)),
            );
            k.texels = ins[..4].to_vec();
            k
        }
        UpdateOp::Nadam {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } => moments("nadam_update", beta1, beta2, epsilon, weight_decay),
        UpdateOp::Adamax {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } => moments("adamax_update", beta1, beta2, epsilon, weight_decay),
        UpdateOp::Sgd {
            momentum,
            nesterov,
            weight_decay,
        } => {
            let params = OptimParams {
                nesterov: u32::from(nesterov),
                momentum,
                weight_decay,
                ..base
            };
            optim("sgd_update", params, grid_1d(n))
        }
        UpdateOp::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
            weight_decay,
        } => {
            let entry = match (momentum > 0.0, centered) {
                (false, false) => "rmsprop_update",
                (true, false) => "rmsprop_momentum_update",
                (false, true) => "rmsprop_centered_update",
                (true, true) => "rmsprop_centered_momentum_update",
            };
            let params = OptimParams {
                rho,
                momentum,
                epsilon,
                weight_decay,
                ..base
            };
            optim(entry, params, grid_1d(n))
        }
        UpdateOp::Adagrad { epsilon, weight_decay } => {
            let params = OptimParams {
                epsilon,
                weight_decay,
                ..base
            };
            optim("adagrad_update", params, grid_1d(n))
        }
        UpdateOp::Lion {
            beta1,
            beta2,
            weight_decay,
        } => {
            let params = OptimParams {
                beta1,
                beta2,
                weight_decay,
                ..base
            };
            optim("lion_update", params, grid_1d(n))
        }
        // A scalar accumulator sums everything in one invocation; a row accumulator one per column.
        UpdateOp::AccumulateSum if n == 1 => {
            let params = OptimParams {
                n: ins[1].len() as u32,
                ..Default::default()
            };
            optim("accumulate_sum", params, [1, 1, 1])
        }
        UpdateOp::AccumulateSum => {
            let params = OptimParams {
                n: ins[1].len() as u32,
                width: n as u32,
                ..Default::default()
            };
            optim("accumulate_rows", params, grid_1d(n))
        }
        UpdateOp::MovingAverage { momentum } => {
            let params = OptimParams { momentum, ..base };
            optim("moving_average", params, grid_1d(n))
        }
    }
}
