//! Reference kernels, one module per op family, forward and backward side by side. Each computes
//! every element by its plain formula, indices spelled out; speed comes only from how the work is
//! laid out — a GEMM crate for matmul, passes split across the pool's workers (`par`), loops over
//! slices that vectorise, f32 exp/tanh as straight-line code (`crate::fastmath`) — never from a
//! different formula, so the reference stays the reference.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod embedding;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod par;
pub mod recurrent;
pub mod reduce;
pub mod schedule;
