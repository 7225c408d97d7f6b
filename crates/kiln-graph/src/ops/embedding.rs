//! Table lookups (`Embedding`) and their deterministic scatter-add gradient.

use super::check::{not_differentiable, SECOND_ORDER};
use super::{op_names, Backward, Family};
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
}

op_names!(EmbeddingOp {
    Lookup => "embedding",
    Grad => "embedding_grad",
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
            EmbeddingOp::Grad { .. } => Err(not_differentiable(self.name(), SECOND_ORDER)),
        }
    }
}
