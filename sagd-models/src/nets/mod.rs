//! The denoising networks, as burn modules, and the configuration that builds them.

pub mod activation;
pub mod circulant;
pub mod embedding;
pub mod grouping;
pub mod linear;
pub mod mlp;
pub mod unet;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use circulant::CirculantDenoiser;
pub use linear::LinearDenoiser;
pub use mlp::MlpDenoiser;
pub use unet::{UnetArch, UnetDenoiser};

use crate::error::ModelError;
use crate::init::ParamInit;

/// The noise level of each sample of a batch, as the networks see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditioning {
    /// 0-based index into the schedule's levels (used by the per-level `linear` and
    /// `circulant` maps).
    pub index: Vec<usize>,
    /// The time fed to the sinusoidal embedding: `1000·index/levels`, in `[0, 1000)` as in
    /// DDPM.
    pub time: Vec<f32>,
}

impl Conditioning {
    /// The conditioning of levels `index` of a schedule with `levels` levels.
    pub fn new(index: Vec<usize>, levels: usize) -> Self {
        let time = index
            .iter()
            .map(|&i| (1000.0 * i as f64 / levels.max(1) as f64) as f32)
            .collect();
        Self { index, time }
    }
}

/// A U-Net size preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnetPreset {
    /// [`UnetArch::tiny`].
    Tiny,
    /// [`UnetArch::paper`].
    Paper,
}

fn default_depth() -> usize {
    4
}
fn default_width() -> usize {
    512
}
fn default_embedding() -> usize {
    128
}

/// Which network, and its size: the `[model]` table of a run config.
///
/// In TOML it is one flat table, `kind` plus that kind's keys; it is read through
/// [`RawModelConfig`] so that a wrong type is reported at its own key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModelConfig", into = "RawModelConfig")]
pub enum ModelConfig {
    /// [`LinearDenoiser`]; `init_gain` is `Q` in `W = Q·I` at the start.
    Linear {
        /// Initial gain on every mode.
        init_gain: f64,
    },
    /// [`CirculantDenoiser`]; `init_gain` is every mode's initial gain.
    Circulant {
        /// Initial gain on every mode.
        init_gain: f64,
    },
    /// [`MlpDenoiser`].
    Mlp {
        /// Residual blocks.
        depth: usize,
        /// Hidden width.
        width: usize,
        /// Size of the sinusoidal time embedding.
        embedding: usize,
    },
    /// [`UnetDenoiser`]: a preset, with any of its fields overridden.
    Unet {
        /// `tiny` (the default) or `paper`.
        preset: Option<UnetPreset>,
        /// Channel widths per level.
        widths: Option<Vec<usize>>,
        /// Residual blocks per level.
        blocks: Option<usize>,
        /// Resolutions with self-attention.
        attention: Option<Vec<usize>>,
        /// GroupNorm groups.
        groups: Option<usize>,
    },
}

/// The `[model]` table as written: `kind` and every key any kind takes. Converted into
/// [`ModelConfig`], which refuses keys that do not belong to the kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelConfig {
    /// `linear`, `circulant`, `mlp` or `unet`.
    pub kind: String,
    /// linear, circulant: initial gain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_gain: Option<f64>,
    /// mlp: residual blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// mlp: hidden width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// mlp: embedding size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<usize>,
    /// unet: preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<UnetPreset>,
    /// unet: widths per level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// unet: blocks per level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// unet: attention resolutions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Vec<usize>>,
    /// unet: GroupNorm groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
}

impl TryFrom<RawModelConfig> for ModelConfig {
    type Error = String;

    fn try_from(raw: RawModelConfig) -> Result<Self, String> {
        let given: Vec<(&str, bool)> = vec![
            ("init_gain", raw.init_gain.is_some()),
            ("depth", raw.depth.is_some()),
            ("width", raw.width.is_some()),
            ("embedding", raw.embedding.is_some()),
            ("preset", raw.preset.is_some()),
            ("widths", raw.widths.is_some()),
            ("blocks", raw.blocks.is_some()),
            ("attention", raw.attention.is_some()),
            ("groups", raw.groups.is_some()),
        ];
        let allowed: &[&str] = match raw.kind.as_str() {
            "linear" | "circulant" => &["init_gain"],
            "mlp" => &["depth", "width", "embedding"],
            "unet" => &["preset", "widths", "blocks", "attention", "groups"],
            other => {
                return Err(format!(
                    "model.kind = `{other}`: expected one of linear, circulant, mlp, unet"
                ));
            }
        };
        if let Some((key, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(format!(
                "model.{key} is not a key of kind `{}` (its keys: kind, {})",
                raw.kind,
                allowed.join(", ")
            ));
        }
        Ok(match raw.kind.as_str() {
            "linear" => Self::Linear {
                init_gain: raw.init_gain.unwrap_or(0.0),
            },
            "circulant" => Self::Circulant {
                init_gain: raw.init_gain.unwrap_or(0.0),
            },
            "mlp" => Self::Mlp {
                depth: raw.depth.unwrap_or_else(default_depth),
                width: raw.width.unwrap_or_else(default_width),
                embedding: raw.embedding.unwrap_or_else(default_embedding),
            },
            _ => Self::Unet {
                preset: raw.preset,
                widths: raw.widths,
                blocks: raw.blocks,
                attention: raw.attention,
                groups: raw.groups,
            },
        })
    }
}

impl From<ModelConfig> for RawModelConfig {
    fn from(config: ModelConfig) -> Self {
        let kind = config.kind().to_string();
        match config {
            ModelConfig::Linear { init_gain } | ModelConfig::Circulant { init_gain } => Self {
                kind,
                init_gain: Some(init_gain),
                ..Self::default()
            },
            ModelConfig::Mlp {
                depth,
                width,
                embedding,
            } => Self {
                kind,
                depth: Some(depth),
                width: Some(width),
                embedding: Some(embedding),
                ..Self::default()
            },
            ModelConfig::Unet {
                preset,
                widths,
                blocks,
                attention,
                groups,
            } => Self {
                kind,
                preset,
                widths,
                blocks,
                attention,
                groups,
                ..Self::default()
            },
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::Unet {
            preset: Some(UnetPreset::Tiny),
            widths: None,
            blocks: None,
            attention: None,
            groups: None,
        }
    }
}

/// Largest number of weights the per-level `linear` model may have (1 GiB of f32): beyond it a
/// full map per level is a configuration mistake, not a model.
const LINEAR_MAX_WEIGHTS: usize = 1 << 28;

impl ModelConfig {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Linear { .. } => "linear",
            Self::Circulant { .. } => "circulant",
            Self::Mlp { .. } => "mlp",
            Self::Unet { .. } => "unet",
        }
    }

    /// The U-Net architecture this config resolves to (preset plus overrides).
    pub fn unet_arch(&self) -> Option<UnetArch> {
        match self {
            Self::Unet {
                preset,
                widths,
                blocks,
                attention,
                groups,
            } => {
                let mut arch = match preset.unwrap_or(UnetPreset::Tiny) {
                    UnetPreset::Tiny => UnetArch::tiny(),
                    UnetPreset::Paper => UnetArch::paper(),
                };
                if let Some(w) = widths {
                    arch.widths = w.clone();
                }
                if let Some(b) = blocks {
                    arch.blocks = *b;
                }
                if let Some(a) = attention {
                    arch.attention = a.clone();
                }
                if let Some(g) = groups {
                    arch.groups = *g;
                }
                Some(arch)
            }
            _ => None,
        }
    }

    /// Checks the config against images of `shape = [C, H, W]` and a schedule of `levels`
    /// levels; errors name the `model.*` key.
    pub fn validate(&self, [c, h, w]: [usize; 3], levels: usize) -> Result<(), ModelError> {
        let dim = c * h * w;
        match self {
            Self::Linear { init_gain } | Self::Circulant { init_gain } => {
                if !init_gain.is_finite() {
                    return Err(ModelError::config(
                        "model.init_gain",
                        init_gain,
                        "a finite number",
                    ));
                }
                if matches!(self, Self::Linear { .. })
                    && levels.saturating_mul(dim).saturating_mul(dim) > LINEAR_MAX_WEIGHTS
                {
                    return Err(ModelError::config(
                        "model.kind",
                        "linear",
                        format!(
                            "a model that fits in memory: {levels} levels × ({dim})² weights is \
                             over 2^28; use fewer levels (an edm schedule with few steps) or \
                             smaller images"
                        ),
                    ));
                }
            }
            Self::Mlp {
                depth,
                width,
                embedding,
            } => {
                for (key, value) in [("depth", depth), ("width", width), ("embedding", embedding)] {
                    if *value == 0 {
                        return Err(ModelError::config(
                            format!("model.{key}"),
                            value,
                            "at least 1",
                        ));
                    }
                }
                if *embedding < 2 {
                    return Err(ModelError::config(
                        "model.embedding",
                        embedding,
                        "at least 2",
                    ));
                }
            }
            Self::Unet { .. } => {
                let arch = self.unet_arch().unwrap_or_else(UnetArch::tiny);
                if arch.widths.is_empty() || arch.widths.contains(&0) {
                    return Err(ModelError::config(
                        "model.widths",
                        format!("{:?}", arch.widths),
                        "a non-empty list of positive widths",
                    ));
                }
                if arch.blocks == 0 {
                    return Err(ModelError::config("model.blocks", 0, "at least 1"));
                }
                if arch.groups == 0 || arch.widths.iter().any(|w| w % arch.groups.min(*w) != 0) {
                    return Err(ModelError::config(
                        "model.groups",
                        arch.groups,
                        format!("a number of groups dividing every width {:?}", arch.widths),
                    ));
                }
                let factor = 1usize << (arch.widths.len() - 1);
                if h != w || h % factor != 0 {
                    return Err(ModelError::config(
                        "model.widths",
                        format!("{:?}", arch.widths),
                        format!(
                            "square images whose side divides by 2^(levels-1) = {factor}; the \
                             data is {c}x{h}x{w} (pad or resize it)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Any of the four networks.
// A run holds one `Net`; the variants' size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    /// See [`LinearDenoiser`].
    Linear(LinearDenoiser),
    /// See [`CirculantDenoiser`].
    Circulant(CirculantDenoiser),
    /// See [`MlpDenoiser`].
    Mlp(MlpDenoiser),
    /// See [`UnetDenoiser`].
    Unet(UnetDenoiser),
}

impl Net {
    /// Builds the network of `config` for images of `shape` and a schedule of `levels` levels,
    /// its weights drawn from `seed`, on `device`.
    pub fn build(
        config: &ModelConfig,
        shape: [usize; 3],
        levels: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate(shape, levels)?;
        let mut init = ParamInit::new(seed, device);
        let [c, h, w] = shape;
        Ok(match config {
            ModelConfig::Linear { init_gain } => Self::Linear(LinearDenoiser::new(
                levels,
                c * h * w,
                *init_gain,
                &mut init,
            )),
            ModelConfig::Circulant { init_gain } => {
                Self::Circulant(CirculantDenoiser::new(levels, shape, *init_gain, &mut init))
            }
            ModelConfig::Mlp {
                depth,
                width,
                embedding,
            } => Self::Mlp(MlpDenoiser::new(
                c * h * w,
                *depth,
                *width,
                *embedding,
                &mut init,
            )),
            ModelConfig::Unet { .. } => {
                let arch = config.unet_arch().unwrap_or_else(UnetArch::tiny);
                Self::Unet(UnetDenoiser::new(c, h, &arch, &mut init))
            }
        })
    }

    /// The network's output for `x` (`[B, C, H, W]`) at the levels of `cond`.
    pub fn forward(&self, x: Tensor<4>, cond: &Conditioning) -> Tensor<4> {
        match self {
            Self::Linear(m) => m.forward(x, cond),
            Self::Circulant(m) => m.forward(x, cond),
            Self::Mlp(m) => m.forward(x, cond),
            Self::Unet(m) => m.forward(x, cond),
        }
    }
}
