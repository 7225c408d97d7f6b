//! IDX files, the MNIST format: a big-endian header (magic `0x0000_08TT` where `TT` is the element
//! type and the low byte the rank, then one u32 per dimension) followed by the data. Gzip-compressed
//! files are recognised by their magic bytes.

use std::io::Read;

use crate::{Error, Result};

use crate::Tensor;

/// Parses IDX bytes (plain or gzip) holding unsigned bytes into a tensor of their values as f32.
pub fn parse_idx(source: &str, bytes: &[u8]) -> Result<Tensor> {
    let err = |m: String| Error::Data(format!("{source}: {m}"));
    let plain;
    let data: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        plain = inflate(bytes).map_err(|e| err(format!("corrupt gzip stream: {e}")))?;
        &plain
    } else {
        bytes
    };
    if data.len() < 4 {
        return Err(err(format!("{} bytes is too short for an IDX header", data.len())));
    }
    if data[0] != 0 || data[1] != 0 {
        return Err(err(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
            data[0], data[1], data[2], data[3]
        )));
    }
    if data[2] != 0x08 {
        return Err(err(format!(
            "element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            data[2]
        )));
    }
    let rank = data[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || data.len() < header {
        return Err(err(format!(
            "truncated header: rank {rank} needs {header} bytes, the file has {}",
            data.len()
        )));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(data[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let n = crate::tensor::numel(&dims).map_err(|e| err(e.to_string()))?;
    let body = &data[header..];
    if body.len() != n {
        return Err(err(format!(
            "dimensions {dims:?} need {n} data bytes but the file holds {}: truncated or corrupt",
            body.len()
        )));
    }
    Tensor::new(dims, body.iter().map(|&b| f32::from(b)).collect())
}

/// Inflates a gzip IDX stream no further than its own header says it holds (plus one byte, so a
/// longer body still shows as corrupt): a small file cannot make it inflate without bound.
fn inflate(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = flate2::read::GzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut stream).take(4).read_to_end(&mut out)?;
    let rank = out.get(3).copied().map_or(0, usize::from);
    (&mut stream).take(4 * rank as u64).read_to_end(&mut out)?;
    let body = out[4.min(out.len())..]
        .chunks_exact(4)
        .try_fold(1u64, |n, d| {
            n.checked_mul(u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])))
        })
        .unwrap_or(u64::MAX - 1);
    stream.take(body.saturating_add(1)).read_to_end(&mut out)?;
    Ok(out)
}

/// Reads an IDX file; see [`parse_idx`].
pub fn read_idx(path: impl AsRef<std::path::Path>) -> Result<Tensor> {
    let path = path.as_ref();
    parse_idx(&path.display().to_string(), &crate::read_bytes(path)?)
}
