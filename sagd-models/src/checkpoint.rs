//! Checkpoint files in the safetensors format (<https://github.com/huggingface/safetensors>):
//! one `step-NNNNNNNN.safetensors` per checkpoint, readable by PyTorch
//! (`safetensors.torch.load_file`), diffusers, burn and any other safetensors reader.
//!
//! Tensors (all `F32`, row-major, the shapes of burn's parameters):
//!
//! | key                              | what                                      |
//! |----------------------------------|-------------------------------------------|
//! | `<module path>`                  | the network's weights, e.g. `down.0.res.conv1.weight` |
//! | `ema.<module path>`              | the EMA of the weights                    |
//! | `optim.exp_avg.<module path>`    | Adam's first moments (PyTorch's name)     |
//! | `optim.exp_avg_sq.<module path>` | Adam's second moments                     |
//!
//! The header's `__metadata__` (string → string) holds `format` = `sagd-checkpoint`,
//! `format_version` = `2`, `step`, `optimizer_step`, `seed`, `image_shape` (`[C, H, W]`, JSON),
//! `config` (the resolved run config, TOML), `last_loss` and `log_window` (JSON, exact),
//! `output_range` (how samples map back to the data's range: `eight-bit`, `scaled` or `data`;
//! absent in checkpoints written before it was recorded) and `checksum` = `fnv1a64:<16 hex digits>`: FNV-1a of the whole file, read with these 16 digits
//! as `0`s, so that a change anywhere (metadata, tensor table, tensor bytes) is caught. Files are written to a temporary name, synced and renamed into place, so a kill never
//! leaves a torn checkpoint. A file that is not safetensors, is truncated or extended, whose
//! header lists a key twice (a tensor, a metadata key, a key inside either), whose
//! checksum does not match, that lacks sagd's metadata, or whose tensors do not fit the model
//! is refused with a message that names the file and the first tensor or key at fault.
//!
//! Version 1 (the `SAGDCKPT` container of `.ckpt` files) has no reader.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::params::ParamInfo;
use crate::range::OutputRange;

/// The `format` metadata value that marks a sagd checkpoint.
pub const FORMAT: &str = "sagd-checkpoint";
/// The `format_version` this build writes and reads.
pub const VERSION: u32 = 2;
/// The file extension of checkpoints.
pub const EXTENSION: &str = "safetensors";

/// Which state a stored tensor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// The model's weights.
    Model,
    /// Adam's first moments.
    AdamM,
    /// Adam's second moments.
    AdamV,
    /// The EMA of the weights.
    Ema,
}

impl Group {
    /// The key prefix of the group's tensors (empty for the network's own weights).
    pub fn prefix(self) -> &'static str {
        match self {
            Group::Model => "",
            Group::Ema => "ema.",
            Group::AdamM => "optim.exp_avg.",
            Group::AdamV => "optim.exp_avg_sq.",
        }
    }

    /// The safetensors key of parameter `name` in this group.
    pub fn key(self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// Splits a safetensors key into its group and parameter name; `None` for an `optim.` key
    /// of no known moment.
    pub fn split(key: &str) -> Option<(Group, &str)> {
        if let Some(name) = key.strip_prefix(Group::Ema.prefix()) {
            return Some((Group::Ema, name));
        }
        if let Some(name) = key.strip_prefix(Group::AdamM.prefix()) {
            return Some((Group::AdamM, name));
        }
        if let Some(name) = key.strip_prefix(Group::AdamV.prefix()) {
            return Some((Group::AdamV, name));
        }
        if key.starts_with("optim.") {
            return None;
        }
        Some((Group::Model, key))
    }
}

/// One stored tensor's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    /// Its group.
    pub group: Group,
    /// Parameter name and shape.
    #[serde(flatten)]
    pub info: ParamInfo,
}

/// What a checkpoint records besides its tensors (the safetensors metadata, typed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Training steps completed.
    pub step: u64,
    /// Optimizer updates applied (equal to `step` for a run trained from scratch).
    pub optimizer_step: u64,
    /// The run's seed: with the step it fixes every random draw of the rest of the run (data
    /// order, levels and noise are drawn from ChaCha8 streams keyed by seed and step).
    pub seed: u64,
    /// Image shape `[C, H, W]`.
    pub shape: [usize; 3],
    /// The resolved run config, as TOML.
    pub config: String,
    /// The stored tensors, in the order of [`Checkpoint::values`] (for a checkpoint read from a
    /// file: the file's order, which safetensors sorts by key).
    pub tensors: Vec<TensorEntry>,
    /// The loss of the last step, if the run has taken one.
    #[serde(default)]
    pub last_loss: Option<f64>,
    /// The losses since the last `log.csv` row that fell on a `log_every` boundary, so that a
    /// resumed run writes the rows an uninterrupted run writes.
    #[serde(default)]
    pub log_window: LogWindow,
    /// How the model's outputs map back to its data's range (`None` in checkpoints written
    /// before it was recorded: [`OutputRange::from_config`] works it out from the config).
    #[serde(default)]
    pub output_range: Option<OutputRange>,
}

/// Losses accumulated towards the next `log.csv` row: their sum and how many steps it holds.
/// A row's loss is the mean over the steps since the previous row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LogWindow {
    /// Sum of the step losses (f64; stored exactly, serde_json round-trips floats).
    pub loss_sum: f64,
    /// Number of steps in the sum.
    pub steps: u64,
}

impl LogWindow {
    /// Adds one step's loss.
    pub fn push(&mut self, loss: f64) {
        self.loss_sum += loss;
        self.steps += 1;
    }

    /// The mean loss of the window (NaN when empty).
    pub fn mean(&self) -> f64 {
        self.loss_sum / self.steps as f64
    }
}

/// A checkpoint in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its header.
    pub header: Header,
    /// One host array per header tensor.
    pub values: Vec<Vec<f32>>,
}

/// FNV-1a, 64-bit, over the data section: a check against truncation and bit rot that needs no
/// dependency (not a cryptographic hash).
fn fnv1a64<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for &b in chunk {
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

fn checksum_text(hash: u64) -> String {
    format!("{CHECKSUM_PREFIX}{hash:016x}")
}

impl Checkpoint {
    /// Values of the tensors of `group`, in stored order.
    pub fn group(&self, group: Group) -> Vec<&Vec<f32>> {
        self.header
            .tensors
            .iter()
            .zip(&self.values)
            .filter(|(e, _)| e.group == group)
            .map(|(_, v)| v)
            .collect()
    }

    /// Infos of the tensors of `group`, in stored order.
    pub fn infos(&self, group: Group) -> Vec<&ParamInfo> {
        self.header
            .tensors
            .iter()
            .filter(|e| e.group == group)
            .map(|e| &e.info)
            .collect()
    }

    /// The values of the `group` tensors named by `expected`, in `expected`'s order, after
    /// checking that the checkpoint holds exactly these tensors with these shapes. The error
    /// (naming `path`) names the first expected tensor that is missing or differs in shape,
    /// or else the first stored tensor the model does not have.
    pub fn values_for(
        &self,
        path: &Path,
        group: Group,
        expected: &[ParamInfo],
    ) -> Result<Vec<&[f32]>, ModelError> {
        let stored: HashMap<&str, (&ParamInfo, &Vec<f32>)> = self
            .header
            .tensors
            .iter()
            .zip(&self.values)
            .filter(|(e, _)| e.group == group)
            .map(|(e, v)| (e.info.name.as_str(), (&e.info, v)))
            .collect();
        let mut out = Vec::with_capacity(expected.len());
        for e in expected {
            let key = group.key(&e.name);
            match stored.get(e.name.as_str()) {
                None => {
                    return Err(ModelError::checkpoint(
                        path,
                        format!(
                            "does not fit the model: it has no tensor `{key}` (the model's \
                             `{}` {:?}); it holds {} {group:?} tensors, the model has {}",
                            e.name,
                            e.shape,
                            stored.len(),
                            expected.len()
                        ),
                    ));
                }
                Some((info, _)) if info.shape != e.shape => {
                    return Err(ModelError::checkpoint(
                        path,
                        format!(
                            "does not fit the model: the checkpoint has `{key}` {:?} where the \
                             model has `{}` {:?}",
                            info.shape, e.name, e.shape
                        ),
                    ));
                }
                Some((_, values)) => out.push(values.as_slice()),
            }
        }
        if stored.len() != expected.len() {
            let extra = self
                .infos(group)
                .into_iter()
                .find(|s| !expected.iter().any(|e| e.name == s.name));
            if let Some(s) = extra {
                return Err(ModelError::checkpoint(
                    path,
                    format!(
                        "does not fit the model: the checkpoint has `{}` {:?}, which the model \
                         does not have",
                        group.key(&s.name),
                        s.shape
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// Checks that the `group` tensors match `expected` name for name and shape for shape
    /// (see [`Checkpoint::values_for`]).
    pub fn check_group(
        &self,
        path: &Path,
        group: Group,
        expected: &[ParamInfo],
    ) -> Result<(), ModelError> {
        self.values_for(path, group, expected).map(|_| ())
    }

    /// The safetensors metadata of this checkpoint, without the checksum.
    fn metadata(&self, path: &Path) -> Result<HashMap<String, String>, ModelError> {
        let h = &self.header;
        let json = |what: &str, r: serde_json::Result<String>| {
            r.map_err(|e| ModelError::checkpoint(path, format!("cannot encode {what}: {e}")))
        };
        Ok(HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), VERSION.to_string()),
            ("step".to_string(), h.step.to_string()),
            ("optimizer_step".to_string(), h.optimizer_step.to_string()),
            ("seed".to_string(), h.seed.to_string()),
            (
                "image_shape".to_string(),
                json("image_shape", serde_json::to_string(&h.shape))?,
            ),
            ("config".to_string(), h.config.clone()),
            (
                "last_loss".to_string(),
                json("last_loss", serde_json::to_string(&h.last_loss))?,
            ),
            (
                "log_window".to_string(),
                json("log_window", serde_json::to_string(&h.log_window))?,
            ),
        ])
        .into_iter()
        .chain(
            h.output_range
                .map(|r| ("output_range".to_string(), r.name().to_string())),
        )
        .collect())
    }

    /// The safetensors bytes of this checkpoint.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, ModelError> {
        let bad = |m: String| ModelError::checkpoint(path, m);
        if self.values.len() != self.header.tensors.len() {
            return Err(bad(format!(
                "{} value arrays for {} tensors",
                self.values.len(),
                self.header.tensors.len()
            )));
        }
        let mut entries: Vec<(String, &TensorEntry, &Vec<f32>)> =
            Vec::with_capacity(self.values.len());
        for (entry, values) in self.header.tensors.iter().zip(&self.values) {
            if values.len() != entry.info.len() {
                return Err(bad(format!(
                    "tensor `{}` has {} values for shape {:?}",
                    entry.info.name,
                    values.len(),
                    entry.info.shape
                )));
            }
            let key = entry.group.key(&entry.info.name);
            if Group::split(&key) != Some((entry.group, entry.info.name.as_str())) {
                return Err(bad(format!(
                    "the parameter name `{}` would be read back as another group's tensor \
                     (network parameters may not start with `ema.` or `optim.`)",
                    entry.info.name
                )));
            }
            entries.push((key, entry, values));
        }
        // safetensors lays tensors out sorted by key (all are F32); the checksum covers the
        // data section in that same order, so a reader hashes the bytes as they lie.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(bad(format!("tensor `{}` appears twice", w[0].0)));
        }
        let bytes: Vec<Vec<u8>> = entries
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let mut metadata = self.metadata(path)?;
        // A placeholder of the checksum's length: the hash covers the whole file with these
        // 16 digits read as zeros, then they are replaced by its value.
        metadata.insert("checksum".to_string(), checksum_text(0));
        let views = entries
            .iter()
            .zip(&bytes)
            .map(|((key, entry, _), b)| {
                TensorView::new(Dtype::F32, entry.info.shape.clone(), b)
                    .map(|v| (key.clone(), v))
                    .map_err(|e| bad(format!("tensor `{key}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| bad(format!("cannot encode: {e}")))?;
        let mut bytes = canonical_header(bytes).map_err(bad)?;
        let digits = checksum_digits(&bytes).map_err(bad)?;
        let hash = checksum_text(fnv1a64([&bytes[..]]));
        bytes[digits].copy_from_slice(&hash.as_bytes()[CHECKSUM_PREFIX.len()..]);
        Ok(bytes)
    }

    /// Writes the checkpoint to `path` atomically (a [`sagd_core::files::write_atomic`]: a
    /// temporary file beside it, synced, then renamed; removed on failure or a signal).
    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes(path)?;
        sagd_core::files::write_atomic(path, &bytes).map_err(|e| ModelError::io(&e.path, e.source))
    }

    /// Reads and verifies a checkpoint.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses and verifies the bytes of a checkpoint file (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let bad = |m: String| ModelError::checkpoint(path, m);
        let header = check_container(bytes).map_err(bad)?;
        let format = header
            .get("__metadata__")
            .and_then(|m| m.get("format"))
            .and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            let names = header.keys().filter(|k| k.as_str() != "__metadata__");
            return Err(bad(format!(
                "not a sagd checkpoint: a safetensors file whose metadata has no `format` = \
                 `{FORMAT}` ({} tensors{})",
                names.clone().count(),
                names
                    .min()
                    .map(|n| format!(", e.g. `{n}`"))
                    .unwrap_or_default()
            )));
        }
        verify_checksum(bytes, &header).map_err(bad)?;
        check_tensor_infos(&header).map_err(bad)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let key = |k: &str| {
            metadata.get(k).ok_or_else(|| {
                bad(format!(
                    "the metadata lacks `{k}` (a sagd checkpoint records format_version, step, \
                     optimizer_step, seed, image_shape, config, last_loss, log_window, checksum)"
                ))
            })
        };
        let parse = |k: &str| -> Result<u64, ModelError> {
            let v = key(k)?;
            v.parse()
                .map_err(|_| bad(format!("metadata `{k}` = {v:?} is not a whole number")))
        };
        let version = parse("format_version")?;
        if version != VERSION as u64 {
            return Err(bad(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        let json = |k: &str| -> Result<serde_json::Value, ModelError> {
            let v = key(k)?;
            if let Some(path) = first_duplicate_key(v.as_bytes()) {
                return Err(bad(format!(
                    "metadata `{k}` = {v:?} {}",
                    duplicate_text(&path)
                )));
            }
            serde_json::from_str(v).map_err(|e| bad(format!("metadata `{k}` = {v:?}: {e}")))
        };
        let shape: [usize; 3] = serde_json::from_value(json("image_shape")?)
            .map_err(|e| bad(format!("metadata `image_shape`: expected [C, H, W]: {e}")))?;
        let last_loss: Option<f64> = serde_json::from_value(json("last_loss")?).map_err(|e| {
            bad(format!(
                "metadata `last_loss`: expected a number or null: {e}"
            ))
        })?;
        let log_window: LogWindow = serde_json::from_value(json("log_window")?)
            .map_err(|e| bad(format!("metadata `log_window`: {e}")))?;
        let output_range = metadata
            .get("output_range")
            .map(|v| v.parse::<OutputRange>())
            .transpose()
            .map_err(|e| bad(format!("metadata `output_range` = {e}")))?;

        let mut tensors = Vec::with_capacity(st.len());
        let mut values = Vec::with_capacity(st.len());
        for name in meta.offset_keys() {
            let view = st
                .tensor(&name)
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}; sagd checkpoints hold F32 tensors",
                    view.dtype()
                )));
            }
            let Some((group, param)) = Group::split(&name) else {
                return Err(bad(format!(
                    "tensor `{name}`: an `optim.` key of no known moment (expected \
                     `optim.exp_avg.*` or `optim.exp_avg_sq.*`)"
                )));
            };
            tensors.push(TensorEntry {
                group,
                info: ParamInfo {
                    name: param.to_string(),
                    shape: view.shape().to_vec(),
                },
            });
            values.push(
                view.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            );
        }
        Ok(Self {
            header: Header {
                step: parse("step")?,
                optimizer_step: parse("optimizer_step")?,
                seed: parse("seed")?,
                shape,
                config: key("config")?.clone(),
                tensors,
                last_loss,
                log_window,
                output_range,
            },
            values,
        })
    }
}

/// Rewrites the JSON header of safetensors `bytes` with its keys sorted. The library writes the
/// metadata in a `HashMap`'s order, which differs from process to process; sorted keys make a
/// checkpoint's bytes a function of its contents, so runs can be compared file for file.
fn canonical_header(mut bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    use std::collections::BTreeMap;
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) as usize;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n])
        .map_err(|e| format!("cannot re-read the encoded header: {e}"))?;
    let mut sorted: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (key, value) in header {
        // Nested objects are rebuilt from BTreeMaps: sorted whatever serde_json's features.
        let value = match value {
            serde_json::Value::Object(map) => {
                let map: BTreeMap<String, serde_json::Value> = map.into_iter().collect();
                serde_json::to_value(map).map_err(|e| e.to_string())?
            }
            other => other,
        };
        sorted.insert(key, value);
    }
    let text = serde_json::to_vec(&sorted).map_err(|e| e.to_string())?;
    // The same entries re-encoded take the same bytes; pad like the library (spaces).
    if text.len() > n {
        return Err(format!(
            "the sorted header takes {} bytes, the library's {n}",
            text.len()
        ));
    }
    bytes[8..8 + text.len()].copy_from_slice(&text);
    bytes[8 + text.len()..8 + n].fill(b' ');
    Ok(bytes)
}

const CHECKSUM_PREFIX: &str = "fnv1a64:";

/// Where the 16 hex digits of the checksum lie in `bytes`: after the one occurrence of
/// `"checksum":"fnv1a64:` in the JSON header (quotes inside JSON strings are escaped, so the
/// pattern cannot come from a string value).
fn checksum_digits(bytes: &[u8]) -> Result<std::ops::Range<usize>, String> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) as usize;
    let header = &bytes[8..8 + n];
    let pattern = format!("\"checksum\":\"{CHECKSUM_PREFIX}");
    let pattern = pattern.as_bytes();
    let mut found = header
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern)
        .map(|(i, _)| 8 + i + pattern.len());
    match (found.next(), found.next()) {
        (Some(start), None) if start + 16 <= 8 + n => Ok(start..start + 16),
        _ => Err(format!(
            "corrupted: the header does not hold exactly one `checksum` = `{CHECKSUM_PREFIX}…` \
             entry"
        )),
    }
}

/// Checks the `checksum` metadata against FNV-1a of the whole file read with the checksum's
/// own 16 digits as zeros: any changed byte, in the header's metadata and tensor table as in
/// the tensor data, is refused.
fn verify_checksum(
    bytes: &[u8],
    header: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let Some(stored) = header
        .get("__metadata__")
        .and_then(|m| m.get("checksum"))
        .and_then(|c| c.as_str())
    else {
        return Err("the metadata lacks `checksum`".to_string());
    };
    let digits = checksum_digits(bytes)?;
    let computed = checksum_text(fnv1a64([
        &bytes[..digits.start],
        &b"0000000000000000"[..],
        &bytes[digits.end..],
    ]));
    if computed != stored {
        return Err(format!(
            "corrupted: the checksum of its contents is {computed}, the file records {stored}"
        ));
    }
    Ok(())
}

/// Checks every tensor of the header table (F32, contiguous offsets, a byte length that fits
/// its shape) and names the first that does not; the library's own message names none.
fn check_tensor_infos(header: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    let mut entries: Vec<(&String, &serde_json::Value, u64, u64)> = Vec::new();
    for (name, info) in header.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let offsets = info.get("data_offsets").and_then(|o| o.as_array());
        let (Some(start), Some(end)) = (
            offsets.and_then(|o| o.first()).and_then(|v| v.as_u64()),
            offsets.and_then(|o| o.get(1)).and_then(|v| v.as_u64()),
        ) else {
            return Err(format!("tensor `{name}`: no [start, end] `data_offsets`"));
        };
        entries.push((name, info, start, end));
    }
    entries.sort_by_key(|e| (e.2, e.3));
    let mut at = 0;
    for (name, info, start, end) in entries {
        let dtype = info
            .get("dtype")
            .and_then(|d| d.as_str())
            .unwrap_or("(none)");
        if dtype != "F32" {
            return Err(format!(
                "tensor `{name}` is {dtype}; sagd checkpoints hold F32 tensors"
            ));
        }
        let shape: Option<Vec<u64>> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let Some(shape) = shape else {
            return Err(format!(
                "tensor `{name}`: its `shape` is not a list of sizes"
            ));
        };
        let needed = shape
            .iter()
            .try_fold(4u64, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX);
        if start != at || end < start || end - start != needed {
            return Err(format!(
                "tensor `{name}`: shape {shape:?} needs {needed} bytes from byte {at} of the \
                 data, its data_offsets are [{start}, {end}]"
            ));
        }
        at = end;
    }
    Ok(())
}

/// Checks the safetensors container's framing before parsing it, so that a short, long or
/// foreign file gets a message that says which (the parser's own errors are terse). Returns
/// the header's JSON.
fn check_container(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if bytes.starts_with(b"SAGDCKPT") {
        return Err(
            "a checkpoint in sagd's format version 1 (`SAGDCKPT`), which this build no \
                    longer reads: checkpoints are safetensors files since format version 2; \
                    retrain the run"
                .to_string(),
        );
    }
    let Some(len) = bytes.get(..8) else {
        return Err(format!(
            "not a safetensors file: {} bytes, shorter than its 8-byte header length",
            bytes.len()
        ));
    };
    let header_len = u64::from_le_bytes(len.try_into().unwrap_or_default());
    // safetensors caps the header at 100 MB; anything larger is not a header length.
    if header_len > 100_000_000
        || bytes.get(8) != Some(&b'{') && header_len + 8 <= bytes.len() as u64
    {
        return Err(format!(
            "not a safetensors file (its first 8 bytes give a header length of {header_len} and \
             no JSON header follows)"
        ));
    }
    let header_end = 8 + header_len;
    if header_end > bytes.len() as u64 {
        return Err(format!(
            "truncated: the header needs {header_end} bytes, the file has {}",
            bytes.len()
        ));
    }
    let text = &bytes[8..header_end as usize];
    // Before anything reads the header into a map, which would keep one of two equal keys.
    if let Some(path) = first_duplicate_key(text) {
        return Err(format!("its header {}", duplicate_text(&path)));
    }
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(text).map_err(|e| format!("unreadable safetensors header: {e}"))?;
    let data_end = header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let expected = header_end.saturating_add(data_end);
    let actual = bytes.len() as u64;
    if actual != expected {
        let what = if actual < expected {
            "truncated"
        } else {
            "has trailing bytes"
        };
        return Err(format!(
            "{what}: its header lists {} tensors needing {expected} bytes in all, the file has \
             {actual}",
            header
                .len()
                .saturating_sub(usize::from(header.contains_key("__metadata__")))
        ));
    }
    Ok(header)
}

/// The first key that an object of the JSON document `text` lists twice, after the keys of
/// the objects that hold it (outermost first); `None` when every object's keys are distinct,
/// or when `text` is not JSON (the parser then says what is wrong). A JSON map keeps one of
/// two entries of a key silently (safetensors#401), so each is found here first.
fn first_duplicate_key(text: &[u8]) -> Option<Vec<String>> {
    serde_json::from_slice::<DuplicateKey>(text).ok()?.0
}

/// "lists `KEY` twice", with the objects that hold the key (innermost first).
fn duplicate_text(path: &[String]) -> String {
    let Some((key, outer)) = path.split_last() else {
        return String::new();
    };
    let inside: String = outer
        .iter()
        .rev()
        .map(|k| format!(" inside `{k}`"))
        .collect();
    format!(
        "lists `{key}` twice{inside}: each tensor and metadata key may appear once (a reader \
         keeps one of the two entries, so which one counts is undefined)"
    )
}

/// What [`first_duplicate_key`] finds in one JSON value.
struct DuplicateKey(Option<Vec<String>>);

impl<'de> Deserialize<'de> for DuplicateKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DuplicateKeyVisitor)
    }
}

/// Visits every value of a JSON document, keeping the first repeated key of an object.
struct DuplicateKeyVisitor;

impl<'de> serde::de::Visitor<'de> for DuplicateKeyVisitor {
    type Value = DuplicateKey;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<DuplicateKey, E> {
        Ok(DuplicateKey(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<DuplicateKey, E> {
        Ok(DuplicateKey(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<DuplicateKey, E> {
        Ok(DuplicateKey(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<DuplicateKey, E> {
        Ok(DuplicateKey(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<DuplicateKey, E> {
        Ok(DuplicateKey(None))
    }
    fn visit_unit<E>(self) -> Result<DuplicateKey, E> {
        Ok(DuplicateKey(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DuplicateKey, A::Error> {
        let mut first = None;
        while let Some(DuplicateKey(found)) = seq.next_element()? {
            first = first.or(found);
        }
        Ok(DuplicateKey(first))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<DuplicateKey, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut first = None;
        while let Some(key) = map.next_key::<String>()? {
            let DuplicateKey(inner) = map.next_value()?;
            if first.is_some() {
                continue;
            }
            if seen.contains(&key) {
                first = Some(vec![key]);
                continue;
            }
            if let Some(mut path) = inner {
                path.insert(0, key.clone());
                first = Some(path);
            }
            seen.insert(key);
        }
        Ok(DuplicateKey(first))
    }
}

/// The file name of the checkpoint at `step`: `step-NNNNNNNN.safetensors`.
pub fn file_name(step: u64) -> String {
    format!("step-{step:08}.{EXTENSION}")
}

/// The checkpoints in `dir`, sorted by step (temporary files and other names ignored).
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ModelError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let suffix = format!(".{EXTENSION}");
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let entry = entry.map_err(|e| ModelError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.strip_suffix(suffix.as_str()))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, shape: &[usize]) -> ParamInfo {
        ParamInfo {
            name: name.into(),
            shape: shape.to_vec(),
        }
    }

    /// Two parameters in the model's (not the file's) order, every group present.
    fn sample() -> Checkpoint {
        let infos = [info("w", &[2, 3]), info("b", &[3])];
        let mut tensors = Vec::new();
        let mut values = Vec::new();
        for (g, group) in [Group::Model, Group::AdamM, Group::AdamV, Group::Ema]
            .into_iter()
            .enumerate()
        {
            for i in &infos {
                tensors.push(TensorEntry {
                    group,
                    info: i.clone(),
                });
                values.push(
                    (0..i.len())
                        .map(|k| match k {
                            // Values whose bits a careless encoding would change.
                            0 => f32::MIN_POSITIVE,
                            1 => -0.0,
                            2 => f32::from_bits(0x7fc0_0001),
                            _ => g as f32 + 0.1 * k as f32,
                        })
                        .collect(),
                );
            }
        }
        Checkpoint {
            header: Header {
                step: 7,
                optimizer_step: 5,
                seed: u64::MAX,
                shape: [1, 2, 2],
                config: "seed = 3\n[model]\nkind = \"mlp\"\n".into(),
                last_loss: Some(0.1 + 0.2),
                log_window: LogWindow {
                    loss_sum: 1.0 / 3.0,
                    steps: 2,
                },
                output_range: Some(OutputRange::Scaled),
                tensors,
            },
            values,
        }
    }

    /// `bytes` with the first `from` replaced by `to` (of the same length).
    fn replaced(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap_or_else(|| panic!("{from} not in the file"));
        let mut out = bytes.to_vec();
        out[at..at + to.len()].copy_from_slice(to.as_bytes());
        out
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let c = sample();
        c.write(&path).unwrap();
        let r = Checkpoint::read(&path).unwrap();
        let (h, rh) = (&c.header, &r.header);
        assert_eq!(
            (rh.step, rh.optimizer_step, rh.seed, rh.shape, &rh.config),
            (h.step, h.optimizer_step, h.seed, h.shape, &h.config)
        );
        assert_eq!(
            rh.last_loss.map(f64::to_bits),
            h.last_loss.map(f64::to_bits)
        );
        assert_eq!(
            rh.log_window.loss_sum.to_bits(),
            h.log_window.loss_sum.to_bits()
        );
        assert_eq!(rh.log_window.steps, h.log_window.steps);
        let infos = [info("w", &[2, 3]), info("b", &[3])];
        for group in [Group::Model, Group::AdamM, Group::AdamV, Group::Ema] {
            let want = c.values_for(&path, group, &infos).unwrap();
            let got = r.values_for(&path, group, &infos).unwrap();
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(bits(w), bits(g), "{group:?}");
            }
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary left"
        );
        assert_eq!(list(dir.path()).unwrap(), vec![(7, path.clone())]);
        // Writing what was read gives the same bytes: the encoding is canonical.
        let again = dir.path().join("again.safetensors");
        r.write(&again).unwrap();
        assert_eq!(fs::read(&again).unwrap(), fs::read(&path).unwrap());
    }

    #[test]
    fn the_file_is_plain_safetensors_with_the_documented_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        sample().write(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(
            names,
            [
                "b",
                "ema.b",
                "ema.w",
                "optim.exp_avg.b",
                "optim.exp_avg.w",
                "optim.exp_avg_sq.b",
                "optim.exp_avg_sq.w",
                "w"
            ]
        );
        let w = st.tensor("optim.exp_avg.w").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[2usize, 3][..]));
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = meta.metadata().clone().unwrap();
        assert_eq!(m["format"], FORMAT);
        assert_eq!(m["format_version"], "2");
        assert_eq!(m["step"], "7");
        assert_eq!(m["image_shape"], "[1,2,2]");
        assert!(m["checksum"].starts_with("fnv1a64:") && m["checksum"].len() == 24);
        // The checksum is FNV-1a of the file with its own 16 digits read as zeros.
        let text = m["checksum"].clone();
        let zeroed = replaced(&bytes, &text, &checksum_text(0));
        assert_eq!(text, checksum_text(fnv1a64([&zeroed[..]])));
    }

    #[test]
    fn truncated_corrupted_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        sample().write(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        let read_err = |b: &[u8]| {
            fs::write(&path, b).unwrap();
            let e = Checkpoint::read(&path).unwrap_err().to_string();
            assert!(e.contains("c.safetensors"), "{e}");
            e
        };

        let e = read_err(&bytes[..bytes.len() - 5]);
        assert!(e.contains("truncated"), "{e}");
        let e = read_err(&bytes[..30]);
        assert!(e.contains("truncated"), "{e}");
        let e = read_err(&bytes[..5]);
        assert!(e.contains("not a safetensors file"), "{e}");
        let mut longer = bytes.clone();
        longer.extend([0u8; 4]);
        let e = read_err(&longer);
        assert!(e.contains("trailing bytes"), "{e}");

        // Every byte of the data section is covered by the checksum.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for k in [8 + n, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[k] ^= 1;
            let e = read_err(&flipped);
            assert!(e.contains("checksum"), "{e}");
        }
        // A damaged header is refused, never a panic; so is an edited metadata value that
        // keeps the JSON valid (the step, the optimizer step).
        for k in (8..8 + n).step_by(7) {
            let mut flipped = bytes.clone();
            flipped[k] ^= 0x20;
            fs::write(&path, &flipped).unwrap();
            assert!(Checkpoint::read(&path).is_err(), "byte {k}");
        }
        for (from, to) in [
            ("\"step\":\"7\"", "\"step\":\"4\""),
            ("\"optimizer_step\":\"5\"", "\"optimizer_step\":\"6\""),
            ("\"shape\":[2,3]", "\"shape\":[3,2]"),
        ] {
            let e = read_err(&replaced(&bytes, from, to));
            assert!(e.contains("corrupted") && e.contains("checksum"), "{e}");
        }

        let e = read_err(b"hello world, not a checkpoint");
        assert!(e.contains("not a safetensors file"), "{e}");
        let e = read_err(b"SAGDCKPT\x01\x00\x00\x00 the old container");
        assert!(e.contains("format version 1"), "{e}");

        // A safetensors file from elsewhere: no sagd metadata.
        let data = [0u8; 8];
        let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
        let foreign = safetensors::serialize([("conv.weight", view)], None).unwrap();
        let e = read_err(&foreign);
        assert!(
            e.contains("not a sagd checkpoint") && e.contains("conv.weight"),
            "{e}"
        );
    }

    #[test]
    fn the_first_mismatched_tensor_is_named() {
        let c = sample();
        let path = Path::new("x.safetensors");
        let e = c
            .values_for(path, Group::Ema, &[info("w", &[3, 2]), info("b", &[3])])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`ema.w` [2, 3]") && e.contains("[3, 2]") && e.contains("x.safetensors"),
            "{e}"
        );
        let e = c
            .values_for(path, Group::Model, &[info("w", &[2, 3]), info("c", &[3])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tensor `c`"), "{e}");
        let e = c
            .values_for(path, Group::AdamV, &[info("w", &[2, 3])])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`optim.exp_avg_sq.b`") && e.contains("does not have"),
            "{e}"
        );
    }

    #[test]
    fn parameter_names_that_would_change_group_are_refused() {
        let mut c = sample();
        c.header.tensors[0].info.name = "ema.w".into();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let e = c.write(&path).unwrap_err().to_string();
        assert!(e.contains("`ema.w`"), "{e}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a file left"
        );
    }

    #[test]
    fn a_bad_tensor_table_names_the_tensor() {
        let table = |b: &str| -> serde_json::Map<String, serde_json::Value> {
            serde_json::from_str(&format!(
                r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}},"b":{b}}}"#
            ))
            .unwrap()
        };
        let ok = table(r#"{"dtype":"F32","shape":[2],"data_offsets":[8,16]}"#);
        assert!(check_tensor_infos(&ok).is_ok());
        let e = check_tensor_infos(&table(
            r#"{"dtype":"F16","shape":[2],"data_offsets":[8,12]}"#,
        ))
        .unwrap_err();
        assert!(e.contains("`b` is F16"), "{e}");
        let e = check_tensor_infos(&table(
            r#"{"dtype":"F32","shape":[3],"data_offsets":[8,16]}"#,
        ))
        .unwrap_err();
        assert!(e.contains("`b`") && e.contains("needs 12 bytes"), "{e}");
    }

    /// The JSON header of safetensors `bytes`, without its padding.
    fn header_text(bytes: &[u8]) -> String {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        String::from_utf8(bytes[8..8 + n].to_vec())
            .unwrap()
            .trim_end()
            .to_string()
    }

    /// `bytes` with `header` in place of its JSON header and the checksum sealed again, so
    /// that the edit is all that is wrong with the file.
    fn with_header(bytes: &[u8], header: &str) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut text = header.as_bytes().to_vec();
        text.resize(text.len().next_multiple_of(8), b' ');
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(&text);
        out.extend(&bytes[8 + n..]);
        let digits = checksum_digits(&out).unwrap();
        out[digits.clone()].copy_from_slice(b"0000000000000000");
        let hash = checksum_text(fnv1a64([&out[..]]));
        out[digits].copy_from_slice(&hash.as_bytes()[CHECKSUM_PREFIX.len()..]);
        out
    }

    /// A key listed twice (safetensors#401) is refused by name before any other check, whether
    /// its two entries agree or not, among the tensors, in `__metadata__`, inside a tensor's
    /// entry and inside a JSON metadata value.
    #[test]
    fn duplicated_header_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        sample().write(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        let header = header_text(&bytes);
        let read = |header: &str| Checkpoint::from_bytes(&with_header(&bytes, header), &path);
        // The helper re-seals faithfully: the untouched header reads.
        assert!(read(&header).is_ok());

        let start = header.find("\"w\":{").unwrap();
        let entry = &header[start..=start + header[start..].find('}').unwrap()];
        let equal = header.replacen(entry, &format!("{entry},{entry}"), 1);
        let other = entry.replace("\"shape\":[2,3]", "\"shape\":[3,2]");
        assert_ne!(other, entry);
        let differing = header.replacen(entry, &format!("{entry},{other}"), 1);
        for tampered in [&equal, &differing] {
            let e = read(tampered).unwrap_err().to_string();
            assert!(e.contains("its header lists `w` twice:"), "{e}");
            assert!(!e.contains("data_offsets") && !e.contains("`b`"), "{e}");
        }

        let step = header.replacen("\"step\":\"7\"", "\"step\":\"7\",\"step\":\"7\"", 1);
        let e = read(&step).unwrap_err().to_string();
        assert!(
            e.contains("lists `step` twice inside `__metadata__`"),
            "{e}"
        );
        let dtype = header.replacen(
            entry,
            &entry.replace("\"dtype\"", "\"dtype\":\"F32\",\"dtype\""),
            1,
        );
        let e = read(&dtype).unwrap_err().to_string();
        assert!(e.contains("lists `dtype` twice inside `w`"), "{e}");
        let window = header.replacen("\\\"steps\\\":2", "\\\"steps\\\":2,\\\"steps\\\":2", 1);
        assert_ne!(window, header);
        let e = read(&window).unwrap_err().to_string();
        assert!(
            e.contains("metadata `log_window`") && e.contains("lists `steps` twice"),
            "{e}"
        );
    }

    #[test]
    fn keys_split_back_into_their_groups() {
        for group in [Group::Model, Group::AdamM, Group::AdamV, Group::Ema] {
            let key = group.key("down.0.conv.weight");
            assert_eq!(Group::split(&key), Some((group, "down.0.conv.weight")));
        }
        assert_eq!(Group::split("optim.step"), None);
    }
}
