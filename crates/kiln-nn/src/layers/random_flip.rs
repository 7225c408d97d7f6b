//! `RandomFlip`, as Keras' preprocessing layer (keras/src/layers/preprocessing/image_preprocessing/
//! random_flip.py): while training, each image is mirrored left–right and/or upside down, each
//! with probability ½; evaluation and prediction pass images through.
//!
//! The coin of each sample is the dropout hash of `(seed, step, sample)` ([`kiln_graph::dropout_keeps`]),
//! so the CPU and the GPU flip the same images and every step draws anew. The left–right mirror
//! is a product with a constant permutation of each row's `w·c` values; the upside-down one
//! reverses the rows by slices.

use kiln_graph::{lowbias32, ElementwiseOp, Graph, NodeId, Shape};
use serde::{Deserialize, Serialize};

use super::conv2d::image;
use super::{plain, Layer, LayerConfig, LayerOut};
use crate::feeds::Feed;
use crate::Result;

/// Which mirrors a [`RandomFlip`] draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlipMode {
    Horizontal,
    Vertical,
    /// Both, independently (Keras' default).
    HorizontalAndVertical,
}

/// Mirrors each training image at random (see the module documentation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RandomFlip {
    mode: FlipMode,
    seed: u32,
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
}

impl RandomFlip {
    /// Flips in `mode` (Keras' default is [`FlipMode::HorizontalAndVertical`]).
    pub fn new(mode: FlipMode) -> Self {
        RandomFlip {
            mode,
            seed: 0,
            input_shape: None,
        }
    }

    /// Seed of the coins.
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }

    /// Keras' `input_shape=(h, w, c)` on a first layer.
    pub fn input_shape(mut self, shape: [usize; 3]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }
}

/// `x` mirrored left–right: each row's `w` pixels of `c` channels reversed.
fn mirror_columns(g: &mut Graph, x: NodeId, [n, h, w, c]: [usize; 4]) -> Result<NodeId> {
    let width = w * c;
    let mut permutation = vec![0.0f32; width * width];
    for j in 0..w {
        for ch in 0..c {
            permutation[((w - 1 - j) * c + ch) * width + j * c + ch] = 1.0;
        }
    }
    let p = g.constant(&permutation, [width, width])?;
    let rows = g.reshape(x, [n * h, width])?;
    let mirrored = g.matmul(rows, p, false, false)?;
    Ok(g.reshape(mirrored, [n, h, w, c])?)
}

/// `x` upside down: its rows in reverse order.
fn mirror_rows(g: &mut Graph, x: NodeId, h: usize) -> Result<NodeId> {
    let rows = (0..h)
        .rev()
        .map(|row| g.slice(x, 1, row, 1))
        .collect::<kiln_graph::Result<Vec<_>>>()?;
    Ok(g.concat(&rows, 1)?)
}

/// `flipped` where the sample's coin (a hash of `seed`, the step and the sample) came up, else `x`.
fn choose(g: &mut Graph, x: NodeId, flipped: NodeId, seed: u32, dims: [usize; 4]) -> Result<NodeId> {
    let [n, h, w, c] = dims;
    let ones = g.fill(1.0, Shape::new([n]));
    let draw = Feed::draw(g);
    // Dropout at rate ½ keeps with weight 2: halve it to a 0/1 coin per sample.
    let kept = g.push(ElementwiseOp::Dropout { rate: 0.5, seed }, &[ones, draw])?;
    let coin = g.scale(kept, 0.5)?;
    let coin = g.push(
        kiln_graph::ReduceOp::Broadcast {
            axis: 1,
            size: h * w * c,
        },
        &[coin],
    )?;
    let coin = g.reshape(coin, [n, h, w, c])?;
    // x·(1 - coin) + flipped·coin: exactly one of them, as the coin is 0 or 1.
    let ones = g.fill(1.0, Shape::new(dims.to_vec()));
    let stay = g.sub(ones, coin)?;
    let kept = g.mul(x, stay)?;
    let moved = g.mul(flipped, coin)?;
    Ok(g.add(kept, moved)?)
}

impl Layer for RandomFlip {
    fn kind(&self) -> &'static str {
        "random_flip"
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::RandomFlip(self.clone())
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.input_shape.clone()
    }

    fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        Ok(image("RandomFlip", inputs)?.to_vec())
    }

    fn build(&self, g: &mut Graph, xs: &[NodeId], _params: &[NodeId], training: bool) -> Result<LayerOut> {
        if !training {
            return Ok(plain(xs[0]));
        }
        let dims: [usize; 4] = g
            .shape(xs[0])?
            .dims()
            .try_into()
            .map_err(|_| crate::Error::invalid("RandomFlip", "expects NHWC images"))?;
        // Each random layer of a graph mixes its position into the seed, and each direction has
        // its own coin.
        let seed = super::dropout::graph_seed(g, self.seed, 0x5bd1_e995);
        let mut x = xs[0];
        if matches!(self.mode, FlipMode::Horizontal | FlipMode::HorizontalAndVertical) {
            let flipped = mirror_columns(g, x, dims)?;
            x = choose(g, x, flipped, seed, dims)?;
        }
        if matches!(self.mode, FlipMode::Vertical | FlipMode::HorizontalAndVertical) {
            let flipped = mirror_rows(g, x, dims[1])?;
            x = choose(g, x, flipped, lowbias32(seed ^ 0x68e3_1da4), dims)?;
        }
        Ok(plain(x))
    }
}
