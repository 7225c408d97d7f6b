//! Seeded random tensors, for the programs that train on synthetic data as numpy's
//! `np.random.rand`, `np.random.randint` and `tf.random.normal` do.
//!
//! Each generator panics on an impossible request, as numpy raises; its `try_` sibling returns the
//! same problem as an `Err`.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Result, Tensor};

/// A tensor of `shape` filled by `draw`, or an error when its element count overflows.
fn fill(shape: Vec<usize>, seed: u64, mut draw: impl FnMut(&mut StdRng) -> f32) -> Result<Tensor> {
    let n = crate::tensor::numel(&shape)?;
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::new(shape, (0..n).map(|_| draw(&mut rng)).collect())
}

/// Uniform values in [0, 1), or an error when the shape's element count overflows.
pub fn try_uniform(shape: impl Into<Vec<usize>>, seed: u64) -> Result<Tensor> {
    fill(shape.into(), seed, |rng| rng.random::<f32>())
}

/// Standard normal values, or an error when the shape's element count overflows.
pub fn try_normal(shape: impl Into<Vec<usize>>, seed: u64) -> Result<Tensor> {
    fill(shape.into(), seed, |rng| StandardNormal.sample(rng))
}

/// Integers in `low..high`, as f32, or an error when the range is empty or the shape's element
/// count overflows.
pub fn try_integers(low: i32, high: i32, shape: impl Into<Vec<usize>>, seed: u64) -> Result<Tensor> {
    if low >= high {
        return Err(Error::InvalidArgument {
            context: "random::integers".into(),
            message: format!("the range {low}..{high} is empty: high must be greater than low"),
        });
    }
    fill(shape.into(), seed, |rng| rng.random_range(low..high) as f32)
}

/// Uniform values in [0, 1).
///
/// # Panics
/// When the shape's element count overflows; [`try_uniform`] returns that as an `Err`.
pub fn uniform(shape: impl Into<Vec<usize>>, seed: u64) -> Tensor {
    try_uniform(shape, seed).unwrap_or_else(|e| panic!("{e}"))
}

/// Standard normal values.
///
/// # Panics
/// When the shape's element count overflows; [`try_normal`] returns that as an `Err`.
pub fn normal(shape: impl Into<Vec<usize>>, seed: u64) -> Tensor {
    try_normal(shape, seed).unwrap_or_else(|e| panic!("{e}"))
}

/// Integers in `low..high`, as f32.
///
/// # Panics
/// When `low..high` is empty (as numpy's `randint` raises), or the shape's element count overflows;
/// [`try_integers`] returns either as an `Err`.
pub fn integers(low: i32, high: i32, shape: impl Into<Vec<usize>>, seed: u64) -> Tensor {
    try_integers(low, high, shape, seed).unwrap_or_else(|e| panic!("{e}"))
}
