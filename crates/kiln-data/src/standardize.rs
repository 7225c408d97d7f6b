//! Feature standardisation fitted on training data only, so test data never leaks into it.

use crate::{Error, Result};

use crate::Tensor;

/// Per-column mean and standard deviation.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on the columns of `x` (`[rows, cols]`). A constant column gets std 1, so it maps to 0.
    pub fn fit(x: &Tensor) -> Result<Self> {
        let (n, w) = (x.rows(), x.row_len());
        if n == 0 {
            return Err(Error::Data("cannot fit a standardizer on zero rows".into()));
        }
        let mut mean = vec![0f64; w];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(x.row(i)) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; w];
        for i in 0..n {
            for ((s, &v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        Ok(Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var
                .iter()
                .map(|&s| {
                    let sd = (s / n as f64).sqrt() as f32;
                    if sd > 0.0 {
                        sd
                    } else {
                        1.0
                    }
                })
                .collect(),
        })
    }

    /// `(x - mean) / std`, column by column.
    pub fn transform(&self, x: &Tensor) -> Result<Tensor> {
        self.per_column(x, |v, mean, std| (v - mean) / std)
    }

    /// Maps standardised values back: `z · std + mean`.
    pub fn inverse(&self, x: &Tensor) -> Result<Tensor> {
        self.per_column(x, |v, mean, std| v * std + mean)
    }

    /// `f(value, mean, std)` applied column by column.
    fn per_column(&self, x: &Tensor, f: impl Fn(f32, f32, f32) -> f32) -> Result<Tensor> {
        if x.row_len() != self.mean.len() {
            return Err(Error::Data(format!(
                "standardizer fitted on {} columns, given {}",
                self.mean.len(),
                x.row_len()
            )));
        }
        let mut out = x.clone();
        for row in out.data_mut().chunks_mut(self.mean.len().max(1)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = f(*v, *m, *s);
            }
        }
        Ok(out)
    }
}
