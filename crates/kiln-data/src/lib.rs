//! Data in: the host [`Tensor`], CSV reading, the bundled datasets and standardisation.

pub mod augment;
pub mod csv;
pub mod datasets;
mod error;
pub mod idx;
#[cfg(feature = "ndarray")]
pub mod ndarray;
pub mod npy;
pub mod random;
pub mod split;
pub mod standardize;
pub mod tensor;

pub use augment::shifted_copies;
pub use csv::{parse_csv, read_csv, Table};
pub use datasets::Dataset;
pub use error::{Error, Result};
pub use idx::{parse_idx, read_idx};
pub use npy::{parse_npy, read_npy};
pub use split::{rank_shard, train_test_split};
pub use standardize::Standardizer;
pub use tensor::Tensor;

/// The bytes of the file at `path`, or an I/O error naming it.
pub(crate) fn read_bytes(path: &std::path::Path) -> crate::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| crate::Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// One-hot encodes integer labels into `[rows, classes]`; errors on a label outside `0..classes`
/// or one that is not an integer.
pub fn to_categorical(labels: &Tensor, classes: usize) -> crate::Result<Tensor> {
    let n = labels.data().len();
    let len = n
        .checked_mul(classes)
        .ok_or_else(|| crate::Error::Data(format!("to_categorical: {n} labels × {classes} classes overflows")))?;
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| {
        crate::Error::Data(format!(
            "to_categorical: {n} labels × {classes} classes ({len} values) do not fit in memory"
        ))
    })?;
    out.resize(len, 0.0);
    for (i, &l) in labels.data().iter().enumerate() {
        if l.fract() != 0.0 || l < 0.0 || l as usize >= classes {
            return Err(crate::Error::Data(format!(
                "to_categorical: label {l} at row {i} is not an integer in 0..{classes}"
            )));
        }
        out[i * classes + l as usize] = 1.0;
    }
    Tensor::new([n, classes], out)
}
