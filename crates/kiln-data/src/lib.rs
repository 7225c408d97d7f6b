//! Data in: the host [`Tensor`], CSV reading, the bundled datasets and standardisation.

pub mod csv;
pub mod datasets;
pub mod idx;
pub mod random;
pub mod standardize;
pub mod tensor;

pub use csv::{parse_csv, read_csv, Table};
pub use datasets::Dataset;
pub use idx::{parse_idx, read_idx};
pub use standardize::Standardizer;
pub use tensor::Tensor;

/// One-hot encodes integer labels into `[rows, classes]`; errors on a label outside `0..classes`
/// or one that is not an integer.
pub fn to_categorical(labels: &Tensor, classes: usize) -> kiln_graph::Result<Tensor> {
    let n = labels.data().len();
    let mut out = vec![0.0; n * classes];
    for (i, &l) in labels.data().iter().enumerate() {
        if l.fract() != 0.0 || l < 0.0 || l as usize >= classes {
            return Err(kiln_graph::Error::Data(format!(
                "to_categorical: label {l} at row {i} is not an integer in 0..{classes}"
            )));
        }
        out[i * classes + l as usize] = 1.0;
    }
    Tensor::new([n, classes], out)
}
