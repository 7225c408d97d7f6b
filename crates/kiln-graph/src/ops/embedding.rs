//! Table lookups (`Embedding`), their deterministic scatter-add gradient, and a lookup averaged
//! over the steps (`Embedding` → `GlobalAveragePooling1D`, fused by the scheduler).

use super::check::{not_differentiable, SECOND_ORDER};
use super::{op_names, Backward, Family, ReduceOp};
use crate::error::shapes_list;
use crate::{Error, Graph, NodeId, Result, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmbeddingOp {
    /// Rows of a table picked by index: operands `(table [v, d], indices [..])` (indices as f32
    /// integers), output `[.., d]`.
    Lookup,
    /// The table gradient of `Lookup`: operands `(indices [..], dy [.., d])`, output `[vocab, d]`
    /// where row `v` sums the `dy` rows whose index is `v` (a deterministic scatter-add).
    Grad { vocab: usize },
    /// `Lookup` then the mean over the steps: operands `(table [v, d], indices [n, steps])`,
    /// output `[n, d]` — each row the in-order sum of its steps' table rows times `1 / steps`,
    /// as `ReduceOp::Mean` sums them. The scheduler puts it in place of `Mean { axis: 1 }` of a
    /// lookup that nothing else reads (a bag-of-tokens model's embedding and pooling), so the
    /// `[n, steps, d]` lookup is never written.
    LookupMean,
}

op_names!(EmbeddingOp {
    Lookup => "embedding",
    Grad => "embedding_grad",
    LookupMean => "embedding_mean",
});

impl Family for EmbeddingOp {
    fn name(&self) -> &'static str {
        self.variant_name()
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &[&Shape]) -> Result<Option<Shape>> {
        let name = self.name();
        let out = match self {
            EmbeddingOp::Lookup => {
                let (table, idx) = (s[0], s[1]);
                if table.rank() != 2 {
                    return Err(Error::shape(name, format!("table {table}"), "a [vocab, dim] table"));
                }
                idx.with_axis(idx.rank(), table.dims()[1])
            }
            EmbeddingOp::Grad { vocab } => {
                let (idx, dy) = (s[0], s[1]);
                if dy.rank() != idx.rank() + 1 || dy.without_axis(dy.rank() - 1) != *idx {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[idx, dy]),
                        "dy shaped like the indices plus one axis",
                    ));
                }
                Shape::new([*vocab, dy.last()])
            }
            EmbeddingOp::LookupMean => {
                let (table, idx) = (s[0], s[1]);
                if table.rank() != 2 || idx.rank() != 2 {
                    return Err(Error::shape(
                        name,
                        shapes_list(&[table, idx]),
                        "a [vocab, dim] table and indices [n, steps]",
                    ));
                }
                Shape::new([idx.dims()[0], table.dims()[1]])
            }
        };
        Ok(Some(out))
    }

    fn backward(&self, g: &mut Graph, at: &Backward) -> Result<Vec<Option<NodeId>>> {
        match self {
            EmbeddingOp::Lookup => {
                let vocab = g.shape(at.x[0])?.dims()[0];
                Ok(vec![
                    Some(g.push(EmbeddingOp::Grad { vocab }, &[at.x[1], at.dy])?),
                    None,
                ])
            }
            EmbeddingOp::LookupMean => {
                // The mean's gradient, dy / steps at every step, into the lookup's.
                let vocab = g.shape(at.x[0])?.dims()[0];
                let steps = g.shape(at.x[1])?.dims()[1];
                let spread = g.push(ReduceOp::Broadcast { axis: 1, size: steps }, &[at.dy])?;
                let spread = g.scale(spread, 1.0 / steps as f32)?;
                Ok(vec![
                    Some(g.push(EmbeddingOp::Grad { vocab }, &[at.x[1], spread])?),
                    None,
                ])
            }
            EmbeddingOp::Grad { .. } => Err(not_differentiable(self.name(), SECOND_ORDER)),
        }
    }
}
