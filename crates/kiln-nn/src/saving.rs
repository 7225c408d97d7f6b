//! Saving and loading. One safetensors file holds a model: its parameters named by layer path
//! (`dense_1/kernel`), the optimizer state (`dense_1/kernel/m`), and in the file's metadata the
//! architecture and compile settings as JSON with the step and epoch counts, so `fit` resumes
//! exactly where it stopped. Weights-only files hold the parameters alone, in f32 or f16.
//!
//! Every file is written atomically: a temporary file in the same directory, fsync, rename, fsync
//! of the directory. A crash mid-save leaves the previous file as it was.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::layers::LayerConfig;
use crate::mixed_precision::{DTypePolicy, LossScale};
use crate::network::{Application, Network, Source};
use crate::{Error, Result};
use crate::{Loss, Metric, Optimizer};

/// Metadata key of the file format version.
const FORMAT_KEY: &str = "kiln.format";
const FORMAT: &str = "1";
/// Metadata key of the model JSON (absent in weights-only files).
const MODEL_KEY: &str = "kiln.model";

/// Precision of a weights file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// Half precision (IEEE binary16): half the size; loading widens back to f32.
    F16,
}

/// The model JSON kept in a model file's metadata.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedModel {
    pub seed: u64,
    pub inputs: Vec<Option<Vec<usize>>>,
    pub layers: Vec<SavedLayer>,
    pub output: Option<Source>,
    pub optimizer: Optimizer,
    pub loss: Loss,
    pub metrics: Vec<Metric>,
    /// Optimizer updates applied (Adam's bias correction depends on it).
    pub step: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// The precision policy (files written before it existed computed in f32).
    #[serde(default)]
    pub policy: DTypePolicy,
    /// The loss scaling's settings (used under `mixed_float16`).
    #[serde(default)]
    pub loss_scale: LossScale,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SavedLayer {
    pub name: String,
    pub layer: LayerConfig,
    pub inputs: Vec<Source>,
    /// The earlier layer entry this one applies again (a shared layer): its name and layer are
    /// that entry's, whatever this one says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<usize>,
}

impl SavedModel {
    pub fn layers_of(network: &Network) -> Vec<SavedLayer> {
        network
            .nodes
            .iter()
            .map(|a| SavedLayer {
                name: a.name.clone(),
                layer: a.layer.config(),
                inputs: a.inputs.clone(),
                shares: a.shares,
            })
            .collect()
    }

    /// The network, with every reference checked: a layer reads model inputs or earlier layers.
    pub fn network(self, path: &Path) -> Result<Network> {
        let mut nodes = Vec::with_capacity(self.layers.len());
        let valid = |s: &Source, before: usize| match *s {
            Source::Input(i) => i < self.inputs.len(),
            Source::Node(j) | Source::State(j, _) => j < before,
        };
        let mut names = std::collections::HashSet::new();
        let mut firsts = self.layers.iter().filter(|l| l.shares.is_none());
        if let Some(l) = firsts.find(|l| !names.insert(l.name.as_str())) {
            return Err(io(
                path,
                format!("two layers are named `{}`: their weights would be ambiguous", l.name),
            ));
        }
        for (k, l) in self.layers.into_iter().enumerate() {
            if let Some(bad) = l.inputs.iter().find(|s| !valid(s, k)) {
                return Err(io(
                    path,
                    format!("layer `{}` reads {bad:?}, which does not come before it", l.name),
                ));
            }
            match l.shares {
                None => nodes.push(Application {
                    layer: l.layer.into_layer(),
                    name: l.name,
                    inputs: l.inputs,
                    shares: None,
                    preset: None,
                }),
                Some(owner) if owner < k && nodes[owner].shares.is_none() => {
                    let first: &Application = &nodes[owner];
                    nodes.push(Application {
                        layer: first.layer.clone(),
                        name: first.name.clone(),
                        inputs: l.inputs,
                        shares: Some(owner),
                        preset: None,
                    });
                }
                Some(owner) => {
                    return Err(io(
                        path,
                        format!(
                            "layer entry {k} applies entry {owner} again, which is not an earlier layer's first \
                             application"
                        ),
                    ))
                }
            }
        }
        if let Some(bad) = self.output.filter(|s| !valid(s, nodes.len())) {
            return Err(io(path, format!("the output {bad:?} is not in the model")));
        }
        Ok(Network {
            inputs: self.inputs,
            nodes,
            output: self.output,
        })
    }
}

fn io(path: &Path, message: impl Into<String>) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// A named tensor on its way to or from a file.
pub(crate) struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The safetensors bytes of `tensors` with `metadata`.
fn encode(tensors: &[Named], precision: Precision, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| match precision {
            Precision::F32 => t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Precision::F16 => t
                .values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        })
        .collect();
    let dtype = match precision {
        Precision::F32 => Dtype::F32,
        Precision::F16 => Dtype::F16,
    };
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            safetensors::tensor::TensorView::new(dtype, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::invalid("save", format!("{}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| Error::invalid("save", e.to_string()))
}

/// Writes `bytes` to `path` atomically. `interrupt_after` simulates a crash: the temporary file
/// gets that many bytes and the write stops there, as a killed process would leave it.
fn write_atomic(path: &Path, bytes: &[u8], interrupt_after: Option<usize>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io(path, "is not a file path"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let fail = |e: std::io::Error| io(&tmp, e.to_string());
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    if let Some(n) = interrupt_after {
        f.write_all(&bytes[..n.min(bytes.len())]).map_err(fail)?;
        return Err(io(path, format!("save interrupted after {n} bytes")));
    }
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io(path, e.to_string()))?;
    // The rename is durable once the directory entry is; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A file read and parsed: its tensors and metadata.
struct File {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl File {
    fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io(path, e.to_string()))?;
        Ok(File {
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn parse(&self) -> Result<(SafeTensors<'_>, HashMap<String, String>)> {
        let bad = |e: safetensors::SafeTensorError| io(&self.path, format!("not a valid safetensors file: {e}"));
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).map_err(bad)?;
        let tensors = SafeTensors::deserialize(&self.bytes).map_err(bad)?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        match metadata.get(FORMAT_KEY).map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(io(
                    &self.path,
                    format!("format version {other}; this Kiln reads {FORMAT}"),
                ))
            }
            None => {
                return Err(io(
                    &self.path,
                    "a safetensors file, but not one Kiln wrote (no kiln.format)",
                ))
            }
        }
        Ok((tensors, metadata))
    }
}

/// The f32 values of tensor `name`, checked against `shape`.
fn tensor(tensors: &SafeTensors<'_>, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = tensors
        .tensor(name)
        .map_err(|_| io(path, format!("has no tensor `{name}`, which the model needs")))?;
    if t.shape() != shape {
        return Err(io(
            path,
            format!("tensor `{name}` has shape {:?}; the model's is {shape:?}", t.shape()),
        ));
    }
    let data = t.data();
    let values: Vec<f32> = match t.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(io(
                path,
                format!("tensor `{name}` is {other:?}; Kiln reads F32 and F16"),
            ))
        }
    };
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(io(
            path,
            format!("tensor `{name}` holds {v}: weights must be finite (was the model saved mid-divergence?)"),
        ));
    }
    Ok(values)
}

/// A model file's path: `path` itself, or `path/model.safetensors` when it is a directory.
fn model_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("model.safetensors")
    } else {
        path.to_path_buf()
    }
}

/// Writes a whole model (see the module docs) to `path`.
pub(crate) fn save_model(
    saved: &SavedModel,
    tensors: &[Named],
    path: &Path,
    interrupt_after: Option<usize>,
) -> Result<()> {
    let json = serde_json::to_string(saved).map_err(|e| Error::invalid("save", e.to_string()))?;
    let metadata = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (MODEL_KEY.to_string(), json),
    ]);
    let bytes = encode(tensors, Precision::F32, metadata)?;
    write_atomic(&model_path(path), &bytes, interrupt_after)
}

/// Writes parameters alone.
pub(crate) fn save_weights(tensors: &[Named], path: &Path, precision: Precision) -> Result<()> {
    let metadata = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string())]);
    write_atomic(path, &encode(tensors, precision, metadata)?, None)
}

/// Reads the tensors `wanted` (name and shape) from a model or weights file.
pub(crate) fn load_tensors(path: &Path, wanted: &[(String, Vec<usize>)]) -> Result<Vec<Vec<f32>>> {
    let file = File::read(&model_path(path))?;
    let (tensors, _) = file.parse()?;
    wanted
        .iter()
        .map(|(name, shape)| tensor(&tensors, &file.path, name, shape))
        .collect()
}

/// A model file read whole: its tensors are fetched by name once the model it describes is built.
pub(crate) struct ModelFile {
    file: File,
}

impl ModelFile {
    /// Reads the model file at `path` (or `path/model.safetensors`) and its description.
    pub fn read(path: &Path) -> Result<(Self, SavedModel)> {
        let file = File::read(&model_path(path))?;
        let (_, metadata) = file.parse()?;
        let json = metadata.get(MODEL_KEY).ok_or_else(|| {
            io(
                &file.path,
                "holds weights only: build the model in code and call load_weights",
            )
        })?;
        let saved = serde_json::from_str(json).map_err(|e| io(&file.path, format!("model description: {e}")))?;
        Ok((ModelFile { file }, saved))
    }

    /// The file's path, for errors.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The tensors `wanted` (name and shape).
    pub fn tensors(&self, wanted: &[(String, Vec<usize>)]) -> Result<Vec<Vec<f32>>> {
        let (tensors, _) = self.file.parse()?;
        wanted
            .iter()
            .map(|(name, shape)| tensor(&tensors, &self.file.path, name, shape))
            .collect()
    }
}
