//! Losses per element or per row, with fused gradients where the fused form is the stable one
//! (softmax and sigmoid cross-entropy on logits).

use super::check::{not_differentiable, not_scalar, same, SECOND_ORDER};
use super::{op_names, ActivationOp, Backward, ElementwiseOp, Family};
use crate::{Error, Graph, NodeId, Result, Shape};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossOp {
    /// Cross-entropy of `softmax(logits)` against labels, per row: operands `(logits[.., C],
    /// labels)` with labels `[..]` class indices (`sparse`) or `[.., C]` probabilities.
    SoftmaxCrossEntropy { sparse: bool },
    /// `(softmax(logits) - onehot(labels)) · g`, operands `(logits, labels, g[..])`.
    SoftmaxCrossEntropyGrad { sparse: bool },
    /// Binary cross-entropy of `sigmoid(logits)` against targets in [0, 1], elementwise.
    SigmoidBinaryCrossEntropy,
    /// `(sigmoid(logits) - t) · g`, operands `(logits, t, g)`.
    SigmoidBinaryCrossEntropyGrad,
    /// `(a - b)²` elementwise.
    SquaredError,
    /// `|a - b|` elementwise.
    AbsoluteError,
    /// Keras' Huber loss elementwise on `(prediction, target)` with `d` their difference: `½d²` where
    /// `|d| ≤ delta`, `delta·(|d| - ½delta)` beyond (keras/src/losses/losses.py, `huber`).
    Huber { delta: f32 },
    /// `log(cosh(a - b))` elementwise, computed as Keras' `log_cosh` does to stay finite:
    /// `d + softplus(-2d) - ln 2`.
    LogCosh,
}

impl LossOp {
    /// Checks logits `[.., C]` against sparse `[..]` or dense `[.., C]` labels; returns the row
    /// shape `[..]`.
    fn softmax_rows(&self, sparse: bool, logits: &Shape, labels: &Shape) -> Result<Shape> {
        let name = self.name();
        not_scalar(name, logits, "logits [.., classes]")?;
        let rows = logits.without_axis(logits.rank() - 1);
        if sparse && *labels != rows {
            return Err(Error::shape(
                name,
                format!("logits {logits}, labels {labels}"),
                format!("one integer label per row: {rows}"),
            ));
        }
        if !sparse && labels != logits {
            return Err(Error::shape(
                name,
                format!("logits {logits}, labels {labels}"),
                format!("one-hot labels of the logits' shape {logits}"),
            ));
        }
        Ok(rows)
    }
}

op_names!(LossOp {
    SoftmaxCrossEntropy => "softmax_cross_entropy",
    SoftmaxCrossEntropyGrad => "softmax_cross_entropy_grad",
    SigmoidBinaryCrossEntropy => "sigmoid_binary_cross_entropy",
    SigmoidBinaryCrossEntropyGrad => "sigmoid_binary_cross_entropy_grad",
    SquaredError => "squared_error",
    AbsoluteError => "absolute_error",
    Huber => "huber",
    LogCosh => "log_cosh",
});

impl Family for LossOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        match self {
            LossOp::SoftmaxCrossEntropy { .. }
            | LossOp::SigmoidBinaryCrossEntropy
            | LossOp::SquaredError
            | LossOp::AbsoluteError
            | LossOp::Huber { .. }
            | LossOp::LogCosh => 2,
            LossOp::SoftmaxCrossEntropyGrad { .. } | LossOp::SigmoidBinaryCrossEntropyGrad => 3,
        }
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        let out = match *self {
            LossOp::SoftmaxCrossEntropy { sparse } => self.softmax_rows(sparse, s[0], s[1])?,
            LossOp::SoftmaxCrossEntropyGrad { sparse } => {
                same(name, s[2], &self.softmax_rows(sparse, s[0], s[1])?)?;
                s[0].clone()
            }
            LossOp::Huber { delta } if !(delta.is_finite() && delta > 0.0) => {
                return Err(Error::invalid(
                    name,
                    format!("delta {delta} is not a positive finite number"),
                ))
            }
            LossOp::SigmoidBinaryCrossEntropy
            | LossOp::SquaredError
            | LossOp::AbsoluteError
            | LossOp::Huber { .. }
            | LossOp::LogCosh => {
                same(name, s[0], s[1])?;
                s[0].clone()
            }
            LossOp::SigmoidBinaryCrossEntropyGrad => {
                same(name, s[0], s[1])?;
                same(name, s[0], s[2])?;
                s[0].clone()
            }
        };
        Ok(Some(out))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        let (x, dy) = (at.x, at.dy);
        Ok(match *self {
            LossOp::SoftmaxCrossEntropy { sparse } => {
                let d = g.push(LossOp::SoftmaxCrossEntropyGrad { sparse }, &[x[0], x[1], dy])?;
                vec![Some(d), None]
            }
            LossOp::SigmoidBinaryCrossEntropy => {
                let d = g.push(LossOp::SigmoidBinaryCrossEntropyGrad, &[x[0], x[1], dy])?;
                vec![Some(d), None]
            }
            LossOp::SquaredError => {
                let diff = g.sub(x[0], x[1])?;
                let d = g.mul(diff, dy)?;
                let d = g.scale(d, 2.0)?;
                vec![Some(d), Some(g.scale(d, -1.0)?)]
            }
            LossOp::AbsoluteError => {
                let diff = g.sub(x[0], x[1])?;
                let sign = g.unary(ElementwiseOp::Sign, diff)?;
                let d = g.mul(sign, dy)?;
                vec![Some(d), Some(g.scale(d, -1.0)?)]
            }
            // d/da = clip(d, -δ, δ): d inside the band, ±δ beyond.
            LossOp::Huber { delta } => {
                let diff = g.sub(x[0], x[1])?;
                let slope = g.unary(
                    ElementwiseOp::Clip {
                        min: -delta,
                        max: delta,
                    },
                    diff,
                )?;
                let d = g.mul(slope, dy)?;
                vec![Some(d), Some(g.scale(d, -1.0)?)]
            }
            // d/da log cosh(d) = tanh(d).
            LossOp::LogCosh => {
                let diff = g.sub(x[0], x[1])?;
                let slope = g.unary(ActivationOp::Tanh, diff)?;
                let d = g.mul(slope, dy)?;
                vec![Some(d), Some(g.scale(d, -1.0)?)]
            }
            LossOp::SoftmaxCrossEntropyGrad { .. } | LossOp::SigmoidBinaryCrossEntropyGrad => {
                return Err(not_differentiable(self.name(), SECOND_ORDER))
            }
        })
    }
}
