//! `Flatten` and `Reshape`: the same values under another per-sample shape (views in the arena; the
//! scheduler gives them no step); `RepeatVector` and `Permute`, which move values.

use kiln_graph::{Graph, LayoutOp, NodeId, ReduceOp, Shape};
use serde::{Deserialize, Serialize};

use super::{checked_product, plain, single, Layer, LayerConfig, LayerOut};
use crate::{Error, Result};

/// Keras' `Flatten`: each sample to one axis.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Flatten;

impl Flatten {
    /// The flattening layer.
    pub fn new() -> Self {
        Flatten
    }
}

impl Layer for Flatten {
    fn config(&self) -> LayerConfig {
        LayerConfig::Flatten(self.clone())
    }

    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        Ok(vec![checked_product("Flatten", single("Flatten", inputs)?)?])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let dims = g.shape(xs[0])?.dims().to_vec();
        let flat = Shape::new([dims[0], dims[1..].iter().product()]);
        Ok(plain(g.push(LayoutOp::Reshape { shape: flat }, &[xs[0]])?))
    }
}

/// Keras' `Reshape(target_shape)`: each sample to `target` (same number of values).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reshape {
    target: Vec<usize>,
}

impl Reshape {
    /// Samples reshaped to `target`.
    pub fn new(target: impl Into<Vec<usize>>) -> Self {
        Reshape { target: target.into() }
    }
}

impl Layer for Reshape {
    fn config(&self) -> LayerConfig {
        LayerConfig::Reshape(self.clone())
    }

    fn kind(&self) -> &'static str {
        "reshape"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Reshape", inputs)?;
        let (from, to) = (
            checked_product("Reshape", input)?,
            checked_product("Reshape", &self.target)?,
        );
        if from != to {
            return Err(Error::invalid(
                "Reshape",
                format!(
                    "samples {input:?} hold {from} values, the target {:?} holds {to}",
                    self.target
                ),
            ));
        }
        Ok(self.target.clone())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let mut shape = vec![g.shape(xs[0])?.dims()[0]];
        shape.extend(&self.target);
        Ok(plain(g.push(
            LayoutOp::Reshape {
                shape: Shape::new(shape),
            },
            &[xs[0]],
        )?))
    }
}

/// Keras' `RepeatVector(n)`: a vector sample `[features]` repeated as a sequence `[n, features]`
/// (an encoder's summary fed to every step of a recurrent decoder). A broadcast along a new axis;
/// its gradient sums over that axis.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepeatVector {
    n: usize,
}

impl RepeatVector {
    /// Each sample repeated `n` times.
    pub fn new(n: usize) -> Self {
        RepeatVector { n }
    }
}

impl Layer for RepeatVector {
    fn config(&self) -> LayerConfig {
        LayerConfig::RepeatVector(self.clone())
    }

    fn kind(&self) -> &'static str {
        "repeat_vector"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("RepeatVector", inputs)?;
        if input.len() != 1 {
            return Err(Error::invalid(
                "RepeatVector",
                format!("expects vectors [features], got samples {input:?}"),
            ));
        }
        if self.n == 0 {
            return Err(Error::invalid("RepeatVector", "n must be at least 1"));
        }
        checked_product("RepeatVector", &[self.n, input[0]])?;
        Ok(vec![self.n, input[0]])
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(plain(g.push(ReduceOp::Broadcast { axis: 1, size: self.n }, &[xs[0]])?))
    }
}

/// Keras' `Permute(dims)`: the sample's axes reordered, `dims` naming them from 1 as Keras does
/// (`Permute((2, 1))` swaps a sequence's steps and features). Built from swaps of adjacent axes,
/// each its own adjoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Permute {
    dims: Vec<usize>,
}

impl Permute {
    /// Output axis `i` is input axis `dims[i]` (1-based; the batch axis stays first).
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Permute { dims: dims.into() }
    }
}

impl Layer for Permute {
    fn config(&self) -> LayerConfig {
        LayerConfig::Permute(self.clone())
    }

    fn kind(&self) -> &'static str {
        "permute"
    }

    fn moves_values(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Permute", inputs)?;
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        if sorted != (1..=input.len()).collect::<Vec<_>>() {
            return Err(Error::invalid(
                "Permute",
                format!(
                    "dims {:?} must order the axes 1..={} of samples {input:?}, each once",
                    self.dims,
                    input.len()
                ),
            ));
        }
        Ok(self.dims.iter().map(|&d| input[d - 1]).collect())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], _training: bool) -> Result<LayerOut> {
        // Selection sort by adjacent swaps: bring each wanted axis forward to its place. `order`
        // holds which input axis sits at each batched position.
        let mut order: Vec<usize> = (0..=self.dims.len()).collect();
        let mut x = xs[0];
        for (place, &want) in self.dims.iter().enumerate() {
            let target = place + 1;
            let mut at = order.iter().position(|&a| a == want).expect("validated permutation");
            while at > target {
                x = g.push(LayoutOp::SwapAxes { axis: at - 1 }, &[x])?;
                order.swap(at - 1, at);
                at -= 1;
            }
        }
        Ok(plain(x))
    }
}
