//! `train_test_split`, as scikit-learn's: a seeded shuffle, then the first part for training.

use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::Tensor;

/// One split: `(x_train, x_test, y_train, y_test)`, in scikit-learn's order.
pub type Split = (Tensor, Tensor, Tensor, Tensor);

/// Shuffles the samples of `(x, y)` with `seed` and holds out `test_fraction` of them (rounded
/// up, as scikit-learn does) as the test set. The same seed gives the same split.
pub fn train_test_split(x: &Tensor, y: &Tensor, test_fraction: f32, seed: u64) -> Result<Split> {
    let n = x.rows();
    if y.rows() != n {
        return Err(Error::Data(format!(
            "train_test_split: x has {n} samples but y has {}",
            y.rows()
        )));
    }
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::invalid(
            "train_test_split",
            format!("test_fraction {test_fraction} is not in (0, 1)"),
        ));
    }
    let n_test = (n as f64 * f64::from(test_fraction)).ceil() as usize;
    if n_test == 0 || n_test >= n {
        return Err(Error::Data(format!(
            "train_test_split: {test_fraction} of {n} samples leaves one side empty"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let (train, test) = order.split_at(n - n_test);
    Ok((
        x.select_rows(train),
        x.select_rows(test),
        y.select_rows(train),
        y.select_rows(test),
    ))
}
