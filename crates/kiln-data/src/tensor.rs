//! A host tensor: a shape and contiguous row-major f32 data.

use rayon::prelude::*;

use crate::{Error, Result};

/// Host-side data for fit, evaluate and predict. The first axis is the sample axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data; errors when they disagree.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>) -> Result<Self> {
        let shape = shape.into();
        let n = numel(&shape)?;
        if n != data.len() {
            return Err(Error::Data(format!(
                "shape {shape:?} holds {n} values but {} were given",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// A `[rows, cols]` tensor from a slice of equally long rows.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(Error::Data(format!("row {i} has {} values, row 0 has {cols}", r.len())));
        }
        Tensor::new([rows.len(), cols], rows.concat())
    }

    /// A 1-D tensor, e.g. integer class labels.
    pub fn vector(data: Vec<f32>) -> Self {
        Tensor {
            shape: vec![data.len()],
            data,
        }
    }

    /// Dimensions, samples first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// All values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable access to the values.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Number of samples (the first dimension; 1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Values per sample.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        self.shape.get(1..).unwrap_or(&[])
    }

    /// Sample `i`'s values.
    ///
    /// # Panics
    /// When `i` is not below [`Tensor::rows`]; [`Tensor::get_row`] is the checked form.
    pub fn row(&self, i: usize) -> &[f32] {
        self.get_row(i)
            .unwrap_or_else(|| panic!("row {i} of a tensor with {} rows", self.rows()))
    }

    /// Sample `i`'s values, or `None` past the last sample.
    pub fn get_row(&self, i: usize) -> Option<&[f32]> {
        let w = self.row_len();
        (i < self.rows()).then(|| &self.data[i * w..(i + 1) * w])
    }

    /// The samples in `range`, as a new tensor.
    ///
    /// # Panics
    /// When `range` is not inside `0..rows()`; [`Tensor::try_slice_rows`] is the checked form.
    pub fn slice_rows(&self, range: std::ops::Range<usize>) -> Tensor {
        self.try_slice_rows(range).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The samples in `range`, or an error when it is not inside `0..rows()`.
    pub fn try_slice_rows(&self, range: std::ops::Range<usize>) -> Result<Tensor> {
        if range.start > range.end || range.end > self.rows() {
            return Err(Error::Data(format!(
                "rows {range:?} of a tensor with {} rows",
                self.rows()
            )));
        }
        let w = self.row_len();
        let mut shape = self.shape.clone();
        if shape.is_empty() {
            shape.push(1);
        }
        shape[0] = range.len();
        Ok(Tensor {
            shape,
            data: self.data[range.start * w..range.end * w].to_vec(),
        })
    }

    /// The samples at `indices`, in that order.
    ///
    /// # Panics
    /// When an index is not below [`Tensor::rows`]; [`Tensor::try_select_rows`] is the checked form.
    pub fn select_rows(&self, indices: &[usize]) -> Tensor {
        self.try_select_rows(indices).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The samples at `indices`, in that order, or an error naming the first index out of range.
    pub fn try_select_rows(&self, indices: &[usize]) -> Result<Tensor> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.rows()) {
            return Err(Error::Data(format!("row {bad} of a tensor with {} rows", self.rows())));
        }
        let w = self.row_len();
        let mut data = Vec::with_capacity(indices.len() * w);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        let mut shape = self.shape.clone();
        if shape.is_empty() {
            shape.push(1);
        }
        shape[0] = indices.len();
        Ok(Tensor { shape, data })
    }

    /// Index of the largest value of each sample (the predicted class of a probability row).
    pub fn argmax_rows(&self) -> Vec<usize> {
        (0..self.rows())
            .map(|i| {
                let r = self.row(i);
                (0..r.len()).fold(0, |best, j| if r[j] > r[best] { j } else { best })
            })
            .collect()
    }

    /// The same values under another shape with as many elements.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Tensor> {
        let shape = shape.into();
        Tensor::new(shape, self.data)
    }

    /// `f` applied to every value.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// 1 where a value is above `threshold`, else 0: probabilities to hard labels.
    pub fn threshold(&self, threshold: f32) -> Tensor {
        self.map(|v| f32::from(v > threshold))
    }

    /// Columns `range` of a `[rows, cols]` tensor.
    pub fn columns(&self, range: std::ops::Range<usize>) -> Result<Tensor> {
        let w = self.row_len();
        if self.shape.len() != 2 || range.start > range.end || range.end > w {
            return Err(Error::Data(format!(
                "cannot take columns {range:?} of a {:?} tensor",
                self.shape
            )));
        }
        let mut data = Vec::with_capacity(self.rows() * range.len());
        for i in 0..self.rows() {
            data.extend_from_slice(&self.row(i)[range.clone()]);
        }
        Tensor::new([self.rows(), range.len()], data)
    }

    /// The position and value of the first NaN or infinity, if any.
    pub fn first_non_finite(&self) -> Option<(usize, f32)> {
        self.first_failing(f32::is_finite).map(|i| (i, self.data[i]))
    }

    /// The position of the first value that fails `good`, if any. Whole chunks go through a
    /// branch-free `all` the compiler vectorises, spread over rayon's threads (inputs are checked
    /// before every `fit` and `predict`: megabytes), then the one chunk that failed is searched
    /// value by value: a clean tensor, the usual case, is one fast pass.
    pub fn first_failing(&self, good: impl Fn(f32) -> bool + Sync) -> Option<usize> {
        const CHUNK: usize = 1 << 14;
        let bad = self
            .data
            .par_chunks(CHUNK)
            .position_first(|c| !c.iter().fold(true, |ok, &v| ok & good(v)))?;
        let start = bad * CHUNK;
        Some(start + self.data[start..].iter().position(|&v| !good(v))?)
    }
}

/// Elements of `shape`, or an error when the product does not fit in memory's address space (a
/// corrupt file header, say).
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Data(format!("shape {shape:?} holds more values than memory can address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_value_is_found_past_many_chunks() {
        let n = 1 << 20;
        let mut data = vec![0.5f32; n];
        assert_eq!(Tensor::new([n], data.clone()).unwrap().first_non_finite(), None);
        data[n - 3] = f32::NAN;
        data[700_001] = f32::INFINITY;
        data[700_003] = f32::NAN;
        let found = Tensor::new([n], data).unwrap().first_non_finite();
        assert_eq!(found, Some((700_001, f32::INFINITY)));
    }
}
