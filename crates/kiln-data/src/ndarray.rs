//! Conversions between [`Tensor`] and `ndarray` arrays (feature `ndarray`). Arrays of any layout
//! and of any numeric element type come in (`Tensor::try_from(&array)`), read in logical
//! (row-major) order and converted to f32; tensors go out as `ArrayD<f32>`.

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};
use num_traits::AsPrimitive;

use crate::Tensor;

impl<A, S, D> TryFrom<&ArrayBase<S, D>> for Tensor
where
    A: AsPrimitive<f32>,
    S: Data<Elem = A>,
    D: Dimension,
{
    type Error = crate::Error;

    /// Errors only where a tensor cannot hold the array's shape.
    fn try_from(a: &ArrayBase<S, D>) -> crate::Result<Self> {
        let data: Vec<f32> = a.iter().map(|v| v.as_()).collect();
        Tensor::new(a.shape().to_vec(), data)
    }
}

impl From<&Tensor> for ArrayD<f32> {
    fn from(t: &Tensor) -> Self {
        ArrayD::from_shape_vec(IxDyn(t.shape()), t.data().to_vec()).expect("a tensor's shape matches its data")
    }
}

impl Tensor {
    /// The tensor as an `ndarray` array of its shape.
    pub fn to_ndarray(&self) -> ArrayD<f32> {
        self.into()
    }
}
