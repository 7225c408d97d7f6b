//! `PReLU`, Keras' parametric ReLU (keras/src/layers/activations/prelu.py): a leaky ReLU whose
//! negative slope is learned, per element of the sample or shared along chosen axes.

use kiln_graph::{ActivationOp, ElementwiseOp, Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::{plain, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Error, Init, Result};

/// `max(0, x) + alpha · min(0, x)` with `alpha` learned: Keras' `PReLU(alpha_initializer="zeros",
/// shared_axes=None)`. `alpha` has the sample's shape with 1 along the shared axes (counted from 1
/// after the batch, as Keras counts them: `shared_axes([1, 2])` on images learns one slope per
/// channel), which is also how it is stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PReLU {
    shared_axes: Vec<usize>,
    alpha_initializer: Init,
}

impl Default for PReLU {
    fn default() -> Self {
        PReLU::new()
    }
}

impl PReLU {
    /// A slope per element of the sample, starting at 0 (a ReLU).
    pub fn new() -> Self {
        PReLU {
            shared_axes: Vec::new(),
            alpha_initializer: Init::Zeros,
        }
    }

    /// Axes (from 1, after the batch) along which one slope is shared.
    pub fn shared_axes(mut self, axes: impl Into<Vec<usize>>) -> Self {
        self.shared_axes = axes.into();
        self
    }

    /// How the slopes start (Keras' `alpha_initializer`; zeros by default).
    pub fn alpha_initializer(mut self, init: Init) -> Self {
        self.alpha_initializer = init;
        self
    }

    /// The shape of `alpha` for samples of `shape`: 1 along the shared axes.
    fn alpha_shape(&self, shape: &[usize]) -> Vec<usize> {
        shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if self.shared_axes.contains(&(i + 1)) { 1 } else { d })
            .collect()
    }
}

impl Layer for PReLU {
    fn config(&self) -> LayerConfig {
        LayerConfig::PReLU(self.clone())
    }

    fn kind(&self) -> &'static str {
        "p_re_lu"
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("PReLU", inputs)?;
        if let Some(&a) = self.shared_axes.iter().find(|&&a| a == 0 || a > input.len()) {
            return Err(Error::invalid(
                "PReLU",
                format!("shared axis {a} is not an axis of samples {input:?} (axes count from 1 after the batch)"),
            ));
        }
        Ok(input.to_vec())
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let shape = self.alpha_shape(inputs.first().map_or(&[][..], |s| s.as_slice()));
        let n = shape.iter().product();
        vec![ParamDecl::weight("alpha", shape, self.alpha_initializer, (n, n))]
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let x = xs[0];
        let dims = g.shape(x)?.dims().to_vec();
        // relu(x) − alpha · relu(−x).
        let positive = g.unary(ActivationOp::Relu, x)?;
        let flipped = g.scale(x, -1.0)?;
        let negative = g.unary(ActivationOp::Relu, flipped)?;
        let kept: Vec<usize> = (1..dims.len())
            .filter(|a| !self.shared_axes.contains(a))
            .map(|a| dims[a])
            .collect();
        let leak = if kept.is_empty() {
            // Every axis shared: one slope.
            let alpha = g.reshape(params[0], [1])?;
            g.push(ElementwiseOp::ScaleByScalar, &[negative, alpha])?
        } else {
            // alpha without its shared axes, each shared axis broadcast back in place (in order,
            // so axis `a` of the sample sits at `a - 1`), then the batch.
            let mut alpha = g.reshape(params[0], kept)?;
            for axis in (1..dims.len()).filter(|a| self.shared_axes.contains(a)) {
                alpha = g.push(
                    ReduceOp::Broadcast {
                        axis: axis - 1,
                        size: dims[axis],
                    },
                    &[alpha],
                )?;
            }
            let alpha = g.push(ReduceOp::Broadcast { axis: 0, size: dims[0] }, &[alpha])?;
            g.mul(alpha, negative)?
        };
        Ok(plain(g.sub(positive, leak)?))
    }
}
