//! Embedding kernels (embedding.wgsl): the lookup, and the lookup averaged over the steps, one
//! invocation per output element; the gradient a deterministic scatter-add where each invocation
//! owns `DIMS` columns of one table row.

use kiln_graph::EmbeddingOp;

use super::{grid_1d, Io, Kernel};
use crate::shaders::{EmbeddingParams, Shader};

/// Table columns one `embedding_grad` invocation owns: it scans the indices once for all of them,
/// so fewer, wider invocations read the indices fewer times.
const EMBEDDING_GRAD_DIMS: usize = 64;

pub(super) fn kernel(op: &EmbeddingOp, io: &Io) -> Kernel {
    let params = |positions: usize, dim: usize, vocab: usize| EmbeddingParams {
        positions: positions as u32,
        dim: dim as u32,
        vocab: vocab as u32,
        steps: 1,
    };
    match *op {
        EmbeddingOp::Lookup => {
            let (vocab, dim) = (io.ins[0].shape.dims()[0], io.ins[0].shape.dims()[1]);
            let p = params(io.ins[1].len(), dim, vocab);
            Kernel::new(Shader::Embedding, "embedding", p, io.with_out(&[0, 1]), grid_1d(io.n()))
        }
        EmbeddingOp::LookupMean => {
            let (vocab, dim) = (io.ins[0].shape.dims()[0], io.ins[0].shape.dims()[1]);
            let p = EmbeddingParams {
                steps: io.ins[1].shape.dims()[1] as u32,
                ..params(io.ins[1].len(), dim, vocab)
            };
            Kernel::new(
                Shader::Embedding,
                "embedding_mean",
                p,
                io.with_out(&[0, 1]),
                grid_1d(io.n()),
            )
        }
        EmbeddingOp::Grad { vocab } => {
            let dim = io.ins[1].shape.last();
            let p = params(io.ins[0].len(), dim, vocab);
            let grid = grid_1d(vocab * dim.div_ceil(EMBEDDING_GRAD_DIMS));
            Kernel::new(Shader::Embedding, "embedding_grad", p, io.with_out(&[0, 1]), grid)
                .with("DIMS", EMBEDDING_GRAD_DIMS as f64)
        }
    }
}
