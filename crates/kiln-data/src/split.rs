//! `train_test_split`, as scikit-learn's: a seeded shuffle, then the first part for training.

use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::Tensor;

/// The samples process `rank` of `ranks` trains on in data-parallel training across processes:
/// every `ranks`-th sample from sample `rank` on, each rank getting the same count (`n / ranks`;
/// the last `n % ranks` samples are left out, as a distributed sampler without padding does), so
/// every process runs the same number of steps. Shuffle first when the order carries structure.
pub fn rank_shard(t: &Tensor, rank: usize, ranks: usize) -> Result<Tensor> {
    if ranks == 0 || rank >= ranks {
        return Err(Error::invalid(
            "rank_shard",
            format!("rank {rank} is not one of {ranks}"),
        ));
    }
    let per = t.rows() / ranks;
    if per == 0 {
        return Err(Error::Data(format!(
            "rank_shard: {} samples cannot give each of {ranks} ranks one",
            t.rows()
        )));
    }
    let rows: Vec<usize> = (0..per).map(|i| i * ranks + rank).collect();
    Ok(t.select_rows(&rows))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_shards_are_disjoint_equal_and_refuse_a_bad_rank() {
        let t = Tensor::new([7, 1], (0..7).map(|i| i as f32).collect()).unwrap();
        assert_eq!(rank_shard(&t, 0, 2).unwrap().data(), &[0.0, 2.0, 4.0]);
        assert_eq!(rank_shard(&t, 1, 2).unwrap().data(), &[1.0, 3.0, 5.0]);
        assert!(rank_shard(&t, 2, 2).is_err());
        assert!(rank_shard(&t, 0, 8).is_err());
    }
}
