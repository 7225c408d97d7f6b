//! CSV reading: one header line, numeric cells, one column chosen as the label or target.

use crate::{Error, Result};

use crate::Tensor;

/// Features and labels read from a CSV file.
#[derive(Clone, Debug)]
pub struct Table {
    /// Feature column names, in order.
    pub columns: Vec<String>,
    /// `[rows, features]`.
    pub x: Tensor,
    /// `[rows]`: the label column.
    pub y: Tensor,
}

/// Parses CSV text whose column `label` (by name) is the target and every other column a feature.
/// Errors name the line and column of a bad cell.
pub fn parse_csv(source: &str, text: &str, label: &str) -> Result<Table> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| Error::Data(format!("{source}: empty file")))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let label_col = names.iter().position(|n| *n == label).ok_or_else(|| {
        Error::Data(format!(
            "{source}: no column named `{label}` (columns: {})",
            names.join(", ")
        ))
    })?;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != names.len() {
            return Err(Error::Data(format!(
                "{source}:{}: {} cells, the header has {}",
                i + 1,
                cells.len(),
                names.len()
            )));
        }
        for (c, cell) in cells.iter().enumerate() {
            let v: f32 = cell.trim().parse().map_err(|_| {
                Error::Data(format!(
                    "{source}:{}: column {} (`{}`): `{cell}` is not a number",
                    i + 1,
                    c + 1,
                    names[c]
                ))
            })?;
            if c == label_col {
                y.push(v);
            } else {
                x.push(v);
            }
        }
    }
    let rows = y.len();
    Ok(Table {
        columns: names
            .iter()
            .enumerate()
            .filter(|(c, _)| *c != label_col)
            .map(|(_, n)| n.to_string())
            .collect(),
        x: Tensor::new([rows, names.len() - 1], x)?,
        y: Tensor::vector(y),
    })
}

/// Reads a CSV file; see [`parse_csv`].
pub fn read_csv(path: impl AsRef<std::path::Path>, label: &str) -> Result<Table> {
    let path = path.as_ref();
    let text = String::from_utf8(crate::read_bytes(path)?)
        .map_err(|e| Error::Data(format!("{}: not UTF-8 text: {e}", path.display())))?;
    parse_csv(&path.display().to_string(), &text, label)
}
