//! NPY files (NumPy's `.npy`, format versions 1, 2 and 3): the magic `\x93NUMPY`, a version, a
//! header length, a Python-dict header (`descr`, `fortran_order`, `shape`), then the raw data.
//! Elements of type f32, f64, i32, i64 and u8 (either byte order) are read into an f32 tensor.

use crate::{Error, Result};

use crate::Tensor;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The value of `key` in the header dict: the text after `'key':` up to the next top-level comma.
fn field<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Decodes one element from its bytes; the flag says big-endian.
type Decode = fn(&[u8], bool) -> f32;

/// Element size and decoder, by the dtype's kind and size.
fn decoder(descr: &str) -> Option<(usize, Decode)> {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    Some(match code {
        "f4" => (4, |b, be| {
            let a = b.try_into().expect("4 bytes");
            if be {
                f32::from_be_bytes(a)
            } else {
                f32::from_le_bytes(a)
            }
        }),
        "f8" => (8, |b, be| {
            let a = b.try_into().expect("8 bytes");
            (if be {
                f64::from_be_bytes(a)
            } else {
                f64::from_le_bytes(a)
            }) as f32
        }),
        "i4" => (4, |b, be| {
            let a = b.try_into().expect("4 bytes");
            (if be {
                i32::from_be_bytes(a)
            } else {
                i32::from_le_bytes(a)
            }) as f32
        }),
        "i8" => (8, |b, be| {
            let a = b.try_into().expect("8 bytes");
            (if be {
                i64::from_be_bytes(a)
            } else {
                i64::from_le_bytes(a)
            }) as f32
        }),
        "u1" => (1, |b, _| f32::from(b[0])),
        _ => return None,
    })
}

/// Parses `.npy` bytes into a tensor; `source` names the file in errors.
pub fn parse_npy(source: &str, bytes: &[u8]) -> Result<Tensor> {
    let err = |m: String| Error::Data(format!("{source}: {m}"));
    if !bytes.starts_with(MAGIC) {
        return Err(err("no \\x93NUMPY magic: not an .npy file".into()));
    }
    let (len_bytes, major) = match bytes.get(6) {
        Some(1) => (2, 1),
        Some(v @ (2 | 3)) => (4, *v),
        Some(v) => return Err(err(format!("format version {v} is not supported (1, 2 and 3 are)"))),
        None => return Err(err("truncated before the version".into())),
    };
    let start = 8 + len_bytes;
    let header_len = match bytes.get(8..start) {
        Some(b) if major == 1 => u16::from_le_bytes([b[0], b[1]]) as usize,
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        None => return Err(err("truncated header".into())),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| err(format!("truncated header: {header_len} bytes announced")))?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not text".into()))?;
    let descr = field(header, "descr")
        .map(|d| d.trim_matches(['\'', '"']))
        .ok_or_else(|| err(format!("header has no 'descr': {header}")))?;
    if field(header, "fortran_order") != Some("False") {
        return Err(err(
            "Fortran-ordered arrays are not supported: save with np.ascontiguousarray".into(),
        ));
    }
    let shape_text = field(header, "shape").ok_or_else(|| err(format!("header has no 'shape': {header}")))?;
    let shape = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| err(format!("shape {shape_text} is not a tuple of sizes")))?;
    let (size, decode) = decoder(descr).ok_or_else(|| {
        err(format!(
            "dtype '{descr}' is not supported: Kiln reads float32, float64, int32, int64 and uint8"
        ))
    })?;
    let big_endian = descr.starts_with('>');
    let n = crate::tensor::numel(&shape)
        .ok()
        .and_then(|n| n.checked_mul(size).map(|_| n))
        .ok_or_else(|| err(format!("shape {shape:?} holds more values than memory can address")))?;
    let data = &bytes[start + header_len..];
    if data.len() != n * size {
        return Err(err(format!(
            "shape {shape:?} of '{descr}' needs {} data bytes but the file holds {}: truncated or corrupt",
            n * size,
            data.len()
        )));
    }
    // A 0-d array is one value.
    let dims = if shape.is_empty() { vec![1] } else { shape };
    Tensor::new(dims, data.chunks_exact(size).map(|b| decode(b, big_endian)).collect())
}

/// Reads an `.npy` file; see [`parse_npy`].
pub fn read_npy(path: impl AsRef<std::path::Path>) -> Result<Tensor> {
    let path = path.as_ref();
    parse_npy(&path.display().to_string(), &crate::read_bytes(path)?)
}
