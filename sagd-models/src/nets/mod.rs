//! The denoising networks, as burn modules, and the configuration that builds them.

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelConfig {
    /// [`LinearDenoiser`]; `init_gain` is `Q` in `W = Q·I` at the start.
    Linear {
        /// Initial gain on every mode.
        #[serde(default)]
        init_gain: f64,
    },
    /// [`CirculantDenoiser`]; `init_gain` is every mode's initial gain.
    Circulant {
        /// Initial gain on every mode.
        #[serde(default)]
        init_gain: f64,
    },
    /// [`MlpDenoiser`].
    Mlp {
        /// Residual blocks.
        #[serde(default = "default_depth")]
        depth: usize,
        /// Hidden width.
        #[serde(default = "default_width")]
        width: usize,
        /// Size of the sinusoidal time embedding.
        #[serde(default = "default_embedding")]
        embedding: usize,
    },
    /// [`UnetDenoiser`]: a preset, with any of its fields overridden.
    Unet {
        /// `tiny` (the default) or `paper`.
        #[serde(default)]
        preset: Option<UnetPreset>,
        /// Channel widths per level.
        #[serde(default)]
        widths: Option<Vec<usize>>,
        /// Residual blocks per level.
        #[serde(default)]
        blocks: Option<usize>,
        /// Resolutions with self-attention.
        #[serde(default)]
        attention: Option<Vec<usize>>,
        /// GroupNorm groups.
        #[serde(default)]
        groups: Option<usize>,
    },
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
