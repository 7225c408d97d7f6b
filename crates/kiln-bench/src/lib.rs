//! Kiln's benchmark harness: the standard workloads (`mlp`, `cnn`, `embed`, `matmul`) on every
//! backend of the machine, reported as a table or JSON. The binary `kiln-bench` drives it; the
//! steady-state tests reuse its workloads.

pub mod measure;
pub mod report;
pub mod workloads;
