//! `Embedding`: integer tokens to learned vectors.

use kiln_data::Tensor;
use kiln_graph::{EmbeddingOp, Graph, NodeId};
use serde::{Deserialize, Serialize};

use super::{plain, single, Layer, LayerConfig, LayerOut, ParamDecl};
use crate::Init;
use crate::{Error, Result};

/// Keras' `Embedding(input_dim, output_dim)`: each integer in `0..input_dim` selects a learned
/// vector of `output_dim`; samples of `[length]` tokens become `[length, output_dim]`. With
/// `mask_zero`, token 0 is padding: the output carries a mask of the real tokens, which the layers
/// that read masks (LSTM, GRU, Bidirectional, MultiHeadAttention, GlobalAveragePooling1D) honour
/// and the step-keeping ones (Dense, Dropout, LayerNormalization, merges) pass on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Embedding {
    input_dim: usize,
    output_dim: usize,
    input_length: Option<usize>,
    #[serde(default)]
    mask_zero: bool,
}

impl Embedding {
    /// A table of `input_dim` vectors of `output_dim`, initialised uniform in ±0.05 as Keras does.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            input_dim,
            output_dim,
            input_length: None,
            mask_zero: false,
        }
    }

    /// Keras' `mask_zero`: token 0 is padding, masked for the layers after (see the type's
    /// documentation); real tokens then start at 1.
    pub fn mask_zero(mut self, on: bool) -> Self {
        self.mask_zero = on;
        self
    }

    /// Keras' `input_length`: the sequence length, as the input shape of a first layer.
    pub fn input_length(mut self, length: usize) -> Self {
        self.input_length = Some(length);
        self
    }
}

impl Layer for Embedding {
    fn autocasts(&self) -> bool {
        false
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Embedding(self.clone())
    }

    fn kind(&self) -> &'static str {
        "embedding"
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_length.map(|l| vec![l])
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let input = single("Embedding", inputs)?;
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(Error::invalid(
                "Embedding",
                "input_dim and output_dim must be at least 1",
            ));
        }
        let mut out = input.to_vec();
        out.push(self.output_dim);
        Ok(out)
    }

    fn params(&self, _inputs: &[Vec<usize>]) -> Vec<ParamDecl> {
        let init = Init::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
        };
        vec![ParamDecl::weight(
            "embeddings",
            vec![self.input_dim, self.output_dim],
            init,
            (self.input_dim, self.output_dim),
        )]
    }

    fn reads_indices(&self) -> bool {
        true
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        // A token is good when it is in range and survives a round trip through an integer (NaN
        // fails the range test): straight-line arithmetic, so the scan vectorises.
        let dim = self.input_dim as f32;
        let bad = x.first_failing(|v| v >= 0.0 && v < dim && (v as u32) as f32 == v);
        match bad {
            None => Ok(()),
            Some(i) => Err(Error::Data(format!(
                "Embedding: token {} at sample {}, position {} is not an integer in 0..{} (input_dim); \
                 the vocabulary is too small or the data is not token indices",
                x.data()[i],
                i / x.row_len().max(1),
                i % x.row_len().max(1),
                self.input_dim
            ))),
        }
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], params: &[NodeId], _training: bool) -> Result<LayerOut> {
        Ok(plain(g.push(EmbeddingOp::Lookup, &[params[0], xs[0]])?))
    }

    /// 1 where the token is not 0: `check_input` has made every token a whole number ≥ 0, so
    /// clipping to [0, 1] is that test.
    fn output_mask(&self, g: &mut Graph, xs: &[NodeId], _masks: &[Option<NodeId>]) -> Result<Option<NodeId>> {
        if !self.mask_zero {
            return Ok(None);
        }
        Ok(Some(g.clip(xs[0], 0.0, 1.0)?))
    }
}
