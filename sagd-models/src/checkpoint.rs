//! Checkpoint files: the model's weights, the optimizer's state, the EMA and the step, in one
//! self-describing file that is written to a temporary name and renamed into place, so a kill
//! never leaves a torn checkpoint.
//!
//! Layout (little-endian):
//!
//! ```text
//! b"SAGDCKPT"  u32 version  u64 header length  header (JSON)
//! f32 values of every tensor the header lists, in order
//! u64 FNV-1a hash of all preceding bytes
//! ```
//!
//! The header carries the resolved run config (TOML text), the image shape, the step, the seed
//! and the list of tensors (group, name, shape). A file that is shorter or longer than its
//! header says, whose hash does not match, or whose tensors do not fit the model is refused
//! with a message that says which.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::params::ParamInfo;

const MAGIC: &[u8; 8] = b"SAGDCKPT";
const VERSION: u32 = 1;

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

/// One stored tensor's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    /// Its group.
    pub group: Group,
    /// Parameter name and shape.
    #[serde(flatten)]
    pub info: ParamInfo,
}

/// The JSON header of a checkpoint.
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
    /// The tensors that follow.
    pub tensors: Vec<TensorEntry>,
    /// The loss of the last step, if the run has taken one.
    #[serde(default)]
    pub last_loss: Option<f64>,
    /// The losses since the last `log.csv` row that fell on a `log_every` boundary, so that a
    /// resumed run writes the rows an uninterrupted run writes.
    #[serde(default)]
    pub log_window: LogWindow,
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

/// FNV-1a, 64-bit: a dependency-free check against truncation and bit rot (not a
/// cryptographic hash).
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

struct HashingWriter<W: Write> {
    inner: W,
    hash: Fnv,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Checkpoint {
    /// Values of the tensors of `group`, in order.
    pub fn group(&self, group: Group) -> Vec<&Vec<f32>> {
        self.header
            .tensors
            .iter()
            .zip(&self.values)
            .filter(|(e, _)| e.group == group)
            .map(|(_, v)| v)
            .collect()
    }

    /// Infos of the tensors of `group`, in order.
    pub fn infos(&self, group: Group) -> Vec<&ParamInfo> {
        self.header
            .tensors
            .iter()
            .filter(|e| e.group == group)
            .map(|e| &e.info)
            .collect()
    }

    /// Writes the checkpoint to `path` atomically: into `path.tmp`, synced, then renamed.
    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        let tmp = tmp_path(path);
        let result = self.write_to(&tmp).and_then(|()| {
            fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))?;
            if let Some(dir) = path.parent() {
                // Persist the rename itself; not every platform can open a directory.
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_to(&self, tmp: &Path) -> Result<(), ModelError> {
        let io = |e: std::io::Error| ModelError::io(tmp, e);
        let header = serde_json::to_vec(&self.header)
            .map_err(|e| ModelError::checkpoint(tmp, format!("cannot encode header: {e}")))?;
        let file = File::create(tmp).map_err(io)?;
        let mut w = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hash: Fnv::new(),
        };
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&VERSION.to_le_bytes()).map_err(io)?;
        w.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        w.write_all(&header).map_err(io)?;
        let mut buf = Vec::new();
        for (entry, values) in self.header.tensors.iter().zip(&self.values) {
            if values.len() != entry.info.len() {
                return Err(ModelError::checkpoint(
                    tmp,
                    format!(
                        "tensor `{}` has {} values for shape {:?}",
                        entry.info.name,
                        values.len(),
                        entry.info.shape
                    ),
                ));
            }
            buf.clear();
            buf.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            w.write_all(&buf).map_err(io)?;
        }
        let hash = w.hash.0;
        let mut inner = w.inner;
        inner.write_all(&hash.to_le_bytes()).map_err(io)?;
        let file = inner
            .into_inner()
            .map_err(|e| ModelError::io(tmp, e.error()))?;
        file.sync_all().map_err(io)?;
        Ok(())
    }

    /// Reads and verifies a checkpoint.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bad = |m: String| ModelError::checkpoint(path, m);
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| ModelError::io(path, e))?;
        let prefix = MAGIC.len() + 4 + 8;
        if bytes.len() < prefix || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad(format!(
                "not a sagd checkpoint (expected the `SAGDCKPT` signature; the file has {} bytes)",
                bytes.len()
            )));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
        let header_end = (prefix as u64).saturating_add(header_len);
        if header_end > bytes.len() as u64 {
            return Err(bad(format!(
                "truncated: the header needs {header_end} bytes, the file has {}",
                bytes.len()
            )));
        }
        let header_end = header_end as usize;
        let header: Header = serde_json::from_slice(&bytes[prefix..header_end])
            .map_err(|e| bad(format!("unreadable header: {e}")))?;
        let payload: u64 = header.tensors.iter().map(|t| t.info.len() as u64 * 4).sum();
        let expected = header_end as u64 + payload + 8;
        if bytes.len() as u64 != expected {
            let what = if (bytes.len() as u64) < expected {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(bad(format!(
                "{what}: its header lists {} tensors needing {expected} bytes in all, the file \
                 has {}",
                header.tensors.len(),
                bytes.len()
            )));
        }
        let body_end = bytes.len() - 8;
        let mut hash = Fnv::new();
        hash.update(&bytes[..body_end]);
        let stored = u64::from_le_bytes(bytes[body_end..].try_into().unwrap_or_default());
        if hash.0 != stored {
            return Err(bad(
                "corrupted: the checksum does not match its contents".to_string()
            ));
        }
        let mut values = Vec::with_capacity(header.tensors.len());
        let mut at = header_end;
        for t in &header.tensors {
            let n = t.info.len();
            values.push(
                bytes[at..at + 4 * n]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            );
            at += 4 * n;
        }
        Ok(Self { header, values })
    }

    /// Checks that the `group` tensors match `expected` name for name and shape for shape.
    pub fn check_group(
        &self,
        path: &Path,
        group: Group,
        expected: &[ParamInfo],
    ) -> Result<(), ModelError> {
        let stored = self.infos(group);
        if stored.len() != expected.len() {
            return Err(ModelError::checkpoint(
                path,
                format!(
                    "does not fit the model: it holds {} {group:?} tensors, the model has {}",
                    stored.len(),
                    expected.len()
                ),
            ));
        }
        for (s, e) in stored.iter().zip(expected) {
            if s.name != e.name || s.shape != e.shape {
                return Err(ModelError::checkpoint(
                    path,
                    format!(
                        "does not fit the model: the checkpoint has `{}` {:?} where the model \
                         has `{}` {:?}",
                        s.name, s.shape, e.name, e.shape
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The file name of the checkpoint at `step`.
pub fn file_name(step: u64) -> String {
    format!("step-{step:08}.ckpt")
}

/// The checkpoints in `dir`, sorted by step (temporary files and other names ignored).
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ModelError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let entry = entry.map_err(|e| ModelError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.strip_suffix(".ckpt"))
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

    fn sample() -> Checkpoint {
        Checkpoint {
            header: Header {
                step: 7,
                optimizer_step: 7,
                seed: 3,
                shape: [1, 2, 2],
                config: "seed = 3".into(),
                last_loss: Some(0.1 + 0.2),
                log_window: LogWindow {
                    loss_sum: 1.0 / 3.0,
                    steps: 2,
                },
                tensors: vec![
                    TensorEntry {
                        group: Group::Model,
                        info: ParamInfo {
                            name: "w".into(),
                            shape: vec![2, 3],
                        },
                    },
                    TensorEntry {
                        group: Group::Ema,
                        info: ParamInfo {
                            name: "w".into(),
                            shape: vec![2, 3],
                        },
                    },
                ],
            },
            values: vec![
                vec![1.0, -2.0, 3.5, 0.0, f32::MIN_POSITIVE, 9.0],
                vec![0.5; 6],
            ],
        }
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let c = sample();
        c.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), c);
        assert!(!tmp_path(&path).exists());
        assert_eq!(list(dir.path()).unwrap(), vec![(7, path)]);
    }

    #[test]
    fn truncated_corrupted_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        sample().write(&path).unwrap();
        let bytes = fs::read(&path).unwrap();

        fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let e = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");

        fs::write(&path, &bytes[..30]).unwrap();
        let e = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");

        let mut flipped = bytes.clone();
        let k = flipped.len() - 12;
        flipped[k] ^= 1;
        fs::write(&path, &flipped).unwrap();
        let e = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");

        fs::write(&path, b"hello world, not a checkpoint").unwrap();
        let e = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(e.contains("not a sagd checkpoint"), "{e}");
    }

    #[test]
    fn mismatched_tensors_are_named() {
        let c = sample();
        let e = c
            .check_group(
                Path::new("x.ckpt"),
                Group::Model,
                &[ParamInfo {
                    name: "w".into(),
                    shape: vec![3, 2],
                }],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("`w` [2, 3]") && e.contains("[3, 2]"), "{e}");
    }
}
