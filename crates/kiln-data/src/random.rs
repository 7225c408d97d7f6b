//! Seeded random tensors, for the programs that train on synthetic data as numpy's
//! `np.random.rand`, `np.random.randint` and `tf.random.normal` do.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::Tensor;

/// Uniform values in [0, 1).
pub fn uniform(shape: impl Into<Vec<usize>>, seed: u64) -> Tensor {
    let shape = shape.into();
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.random::<f32>()).collect()).expect("shape and data agree")
}

/// Standard normal values.
pub fn normal(shape: impl Into<Vec<usize>>, seed: u64) -> Tensor {
    let shape = shape.into();
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()).expect("shape and data agree")
}

/// Integers in `low..high`, as f32.
///
/// # Panics
/// When `low..high` is empty (as numpy's `randint` raises), or the shape's element count overflows.
pub fn integers(low: i32, high: i32, shape: impl Into<Vec<usize>>, seed: u64) -> Tensor {
    assert!(low < high, "random::integers: the range {low}..{high} is empty");
    let shape = shape.into();
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.random_range(low..high) as f32).collect()).expect("shape and data agree")
}
