//! `PositionEmbedding`, as KerasHub's layer (keras_hub/src/layers/modeling/position_embedding.py):
//! a learned vector per position, the Transformer's way of telling positions apart.

use kiln_graph::{Graph, NodeId, ReduceOp};
use serde::{Deserialize, Serialize};

use super::{checked_product, plain, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::{Error, Init, Result};

/// For inputs `[steps, features]`, outputs the learned position vectors `[steps, features]` (the
/// first `steps` rows of a `[sequence_length, features]` table), the same for every sample: add
/// them to the token embeddings with [`super::Add`] — `tokens + positions`:
///
/// ```no_run
/// use kiln_nn::{Add, Call, Embedding, Input, PositionEmbedding};
/// # fn main() -> kiln_nn::Result<()> {
/// let tokens = Input::new([20]);
/// let embedded = Embedding::new(1000, 32).call(&tokens)?;
/// let positions = PositionEmbedding::new(20).call(&embedded)?;
/// let x = Add::new().call_many(&[&embedded, &positions])?;
/// # Ok(()) }
/// ```
///
/// Weight: `embeddings [sequence_length, features]`, glorot-uniform as KerasHub starts it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PositionEmbedding {
    sequence_length: usize,
    initializer: Init,
}

impl PositionEmbedding {
    /// A table for sequences of up to `sequence_length` steps.
    pub fn new(sequence_length: usize) -> Self {
        PositionEmbedding {
            sequence_length,
            initializer: Init::GlorotUniform,
        }
    }

    /// How the table starts (glorot_uniform).
    pub fn initializer(mut self, init: Init) -> Self {
        self.initializer = init;
        self
    }
}

impl Layer for PositionEmbedding {
    fn kind(&self) -> &'static str {
        "position_embedding"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::PositionEmbedding(self.clone())
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("PositionEmbedding", inputs)?;
        let &[steps, features] = input else {
            return Err(Error::invalid(
                "PositionEmbedding",
                format!("expects samples [steps, features], got {input:?}"),
            ));
        };
        if steps == 0 || features == 0 || steps > self.sequence_length {
            return Err(Error::invalid(
                "PositionEmbedding",
                format!(
                    "{steps} steps of {features} features: needs at least one of each and at most \
                     sequence_length = {} steps",
                    self.sequence_length
                ),
            ));
        }
        checked_product("PositionEmbedding", &[self.sequence_length, features])?;
        Ok(input.to_vec())
    }

    fn params(&self, inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let features = inputs.first().and_then(|s| s.last()).copied().unwrap_or(0);
        vec![ParamDecl::weight(
            "embeddings",
            vec![self.sequence_length, features],
            self.initializer,
            (self.sequence_length, features),
        )]
    }

    fn passes_mask(&self) -> bool {
        true
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        let &[n, steps, features] = g.shape(xs[0])?.dims() else {
            return Err(Error::invalid("PositionEmbedding", "expects batches of sequences"));
        };
        let mut table = params[0];
        if steps < self.sequence_length {
            table = g.slice(table, 0, 0, steps)?;
        }
        let flat = g.reshape(table, [steps * features])?;
        let each = g.push(ReduceOp::Broadcast { axis: 0, size: n }, &[flat])?;
        Ok(plain(g.reshape(each, [n, steps, features])?))
    }
}
