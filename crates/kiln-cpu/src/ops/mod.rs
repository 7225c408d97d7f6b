//! Reference kernels, one module per op family, forward and backward side by side. Each is the
//! naive, obviously right version: indices spelled out, no tricks beyond a GEMM crate for matmul.

pub mod activation;
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
