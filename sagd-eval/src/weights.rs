//! Reading the FID Inception-v3 weights: a safetensors file or a PyTorch state dict
//! (`torch.save`, as pytorch-fid ships `pt_inception-2015-12-05-6726825d.pth`), both with
//! pytorch-fid's key names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`, …).

use std::path::{Path, PathBuf};

use pytorch_reader::{DType, PytorchReader};
use safetensors::tensor::Metadata;
use safetensors::{Dtype as SafeDtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::error::EvalError;

/// The container a weights file was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// A `.safetensors` file.
    Safetensors,
    /// A PyTorch file (`torch.save` of a state dict; zip or legacy container).
    Pytorch,
}

impl WeightsInfo {
    /// Whether the file is one of the two published files of the FID weights (by hash): FIDs
    /// are comparable across papers and tools only with those.
    pub fn is_published(&self) -> bool {
        self.sha256 == SAFETENSORS_SHA256 || self.sha256.starts_with(PYTORCH_FID_SHA256_PREFIX)
    }
}

impl WeightsFormat {
    /// `safetensors` or `pytorch`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Safetensors => "safetensors",
            Self::Pytorch => "pytorch",
        }
    }
}

/// SHA-256 of `pt_inception-2015-12-05.safetensors`, the weights of the shared models folder.
pub const SAFETENSORS_SHA256: &str =
    "1187e428a82651e94409755c27b92440b550fcfcd0a628d7ad802b646edce2ed";

/// The first hex digits of the SHA-256 of pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
/// (torch hub names files by them).
pub const PYTORCH_FID_SHA256_PREFIX: &str = "6726825d";

/// Where the weights came from: what `metrics.json` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsInfo {
    /// The file.
    pub path: PathBuf,
    /// The SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Its container.
    pub format: WeightsFormat,
}

enum Container {
    /// The file's bytes, where the tensor data start, and the parsed header.
    Safetensors(Vec<u8>, usize, Metadata),
    Pytorch(PytorchReader),
}

/// An open weights file: tensors are read by name, as float32.
pub struct WeightsFile {
    container: Container,
    info: WeightsInfo,
}

impl std::fmt::Debug for WeightsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightsFile")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The ImageNet-classifier tensors torchvision's Inception-v3 has and the FID network lacks.
const TORCHVISION_ONLY: &str = "AuxLogits.";

impl WeightsFile {
    /// Opens `path`, telling the container from its first bytes: a zip archive or a pickle is
    /// a PyTorch file, anything else must be a safetensors file.
    ///
    /// # Errors
    /// [`EvalError::Io`] when the file cannot be read; [`EvalError::Weights`] when it is
    /// neither container, or holds torchvision's ImageNet classifier instead of the FID
    /// network (its weights differ: its features do not give FID).
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sha256 = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let weights_err = |message: String| EvalError::Weights {
            path: path.to_path_buf(),
            message,
        };
        let pytorch = bytes.starts_with(b"PK\x03\x04") || bytes.first() == Some(&0x80);
        let (container, format) = if pytorch {
            drop(bytes);
            let reader = PytorchReader::new(path)
                .map_err(|e| weights_err(format!("not a readable PyTorch state dict: {e}")))?;
            (Container::Pytorch(reader), WeightsFormat::Pytorch)
        } else {
            let (header_len, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| {
                weights_err(format!(
                    "neither a safetensors file ({e}) nor a PyTorch file (expected \
                     pt_inception-2015-12-05.safetensors or pytorch-fid's \
                     pt_inception-2015-12-05-6726825d.pth)"
                ))
            })?;
            let data_start = 8 + header_len;
            (
                Container::Safetensors(bytes, data_start, metadata),
                WeightsFormat::Safetensors,
            )
        };
        let file = Self {
            container,
            info: WeightsInfo {
                path: path.to_path_buf(),
                sha256,
                format,
            },
        };
        file.refuse_torchvision()?;
        Ok(file)
    }

    /// Where the weights came from.
    pub fn info(&self) -> &WeightsInfo {
        &self.info
    }

    /// The keys of the file's tensors, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.container {
            Container::Safetensors(_, _, metadata) => metadata.tensors().into_keys().collect(),
            Container::Pytorch(reader) => reader.keys(),
        };
        names.sort();
        names
    }

    /// torchvision's ImageNet Inception-v3 shares the FID network's key names but not its
    /// weights: refuse it by its auxiliary classifier or its 1000-class `fc`.
    fn refuse_torchvision(&self) -> Result<(), EvalError> {
        let names = self.names();
        let fc_1000 = self
            .shape("fc.weight")
            .is_some_and(|s| s.first() == Some(&1000));
        if fc_1000 || names.iter().any(|n| n.starts_with(TORCHVISION_ONLY)) {
            return Err(EvalError::Weights {
                path: self.info.path.clone(),
                message: "these are torchvision's ImageNet Inception-v3 weights (an `AuxLogits` \
                          classifier or a 1000-class `fc`), not the FID Inception weights \
                          (pt_inception-2015-12-05); FID needs the latter"
                    .to_string(),
            });
        }
        Ok(())
    }

    /// The shape of tensor `name`, if the file has it.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match &self.container {
            Container::Safetensors(_, _, metadata) => metadata.info(name).map(|t| t.shape.clone()),
            Container::Pytorch(reader) => reader.get(name).map(|t| t.shape().to_vec()),
        }
    }

    /// Tensor `name` as float32 values (row-major), checked to have `shape`.
    ///
    /// # Errors
    /// [`EvalError::Tensor`] naming the tensor when it is missing, has another shape, or an
    /// element type other than float32, float64 or float16.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EvalError> {
        let tensor_err = |message: String| EvalError::Tensor {
            path: self.info.path.clone(),
            name: name.to_string(),
            message,
        };
        let missing = || tensor_err(format!("missing (expected a tensor of shape {shape:?})"));
        let misshapen = |found: &[usize]| {
            tensor_err(format!(
                "has shape {found:?}, expected {shape:?} (is this the FID Inception-v3?)"
            ))
        };
        let (dtype, raw) = match &self.container {
            Container::Safetensors(bytes, data_start, metadata) => {
                let info = metadata.info(name).ok_or_else(missing)?;
                if info.shape != shape {
                    return Err(misshapen(&info.shape));
                }
                let dtype = match info.dtype {
                    SafeDtype::F32 => Element::F32,
                    SafeDtype::F64 => Element::F64,
                    SafeDtype::F16 => Element::F16,
                    other => {
                        return Err(tensor_err(format!(
                            "element type {other:?}, expected a float type"
                        )));
                    }
                };
                let (start, end) = info.data_offsets;
                let raw = bytes
                    .get(data_start + start..data_start + end)
                    .ok_or_else(|| tensor_err("its data lie beyond the end of the file".into()))?;
                (dtype, raw.to_vec())
            }
            Container::Pytorch(reader) => {
                let tensor = reader.get(name).ok_or_else(missing)?;
                if tensor.shape() != shape {
                    return Err(misshapen(tensor.shape()));
                }
                let dtype = match tensor.dtype() {
                    DType::F32 => Element::F32,
                    DType::F64 => Element::F64,
                    DType::F16 => Element::F16,
                    other => {
                        return Err(tensor_err(format!(
                            "element type {other:?}, expected a float type"
                        )));
                    }
                };
                let raw = tensor
                    .read()
                    .map_err(|e| tensor_err(format!("unreadable: {e}")))?;
                (dtype, raw)
            }
        };
        let values: Vec<f32> = match dtype {
            Element::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Element::F64 => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32)
                .collect(),
            Element::F16 => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(tensor_err(format!(
                "holds the non-finite value {} at flat index {i}",
                values[i]
            )));
        }
        Ok(values)
    }
}

#[derive(Clone, Copy)]
enum Element {
    F32,
    F64,
    F16,
}

/// IEEE 754 half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let mantissa = f32::from(h & 0x3ff);
    match exponent {
        0 => sign * mantissa * 2f32.powi(-24),
        31 if mantissa == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + mantissa / 1024.0) * 2f32.powi(e - 15),
    }
}

/// The file name of the FID weights in the shared models folder.
pub const WEIGHTS_FILE: &str = "pt_inception-2015-12-05.safetensors";

/// Where pytorch-fid publishes the same weights.
pub const WEIGHTS_URL: &str = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// The FID Inception weights to use: `explicit` (a path the user gave), else
/// `$SAGD_INCEPTION`, else `$SAGD_MODELS_DIR/fid-inception/`[`WEIGHTS_FILE`] when that file is
/// there. Only the last is checked for existence: a path given is loaded (and refused) as is.
///
/// # Errors
/// [`EvalError::NoWeights`] when none is found, saying where to get them (the message names
/// `sagd eval`'s `--inception` and `--metrics spectral`).
///
/// ```
/// let given = std::path::Path::new("my-weights.safetensors");
/// assert_eq!(sagd_eval::weights::find_weights(Some(given))?, given);
/// # Ok::<(), sagd_eval::EvalError>(())
/// ```
pub fn find_weights(explicit: Option<&Path>) -> Result<PathBuf, EvalError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("SAGD_INCEPTION").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    if let Some(dir) = std::env::var_os("SAGD_MODELS_DIR").filter(|p| !p.is_empty()) {
        let path = Path::new(&dir).join("fid-inception").join(WEIGHTS_FILE);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(EvalError::NoWeights(format!(
        "no FID Inception weights: pass --inception FILE or set SAGD_INCEPTION to {WEIGHTS_FILE} \
         ($SAGD_MODELS_DIR/fid-inception/) or pytorch-fid's weights ({WEIGHTS_URL}); \
         or use --metrics spectral"
    )))
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_decodes_exactly() {
        // 0x3c00 = 1, 0xc000 = -2, 0x3555 ≈ 1/3, 0x0001 = 2^-24 (smallest subnormal).
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }
}
