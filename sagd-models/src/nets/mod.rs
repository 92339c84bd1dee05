//! The denoising networks, as burn modules, each in its file with its config (serde,
//! `validate`, `init`), and [`ModelConfig`], the enum of those configs that a run's `[model]`
//! table is.

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

pub use circulant::{CirculantConfig, CirculantDenoiser};
pub use linear::{LinearConfig, LinearDenoiser};
pub use mlp::{MlpConfig, MlpDenoiser};
pub use unet::{UnetArch, UnetConfig, UnetDenoiser, UnetPreset};

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

/// What every network's config provides: checks against the data and the schedule, and the
/// network itself (burn's `XxxConfig::init` convention). A network is its file (module,
/// config, this trait) plus one line in [`networks!`](crate::networks).
pub trait NetworkConfig {
    /// The network it builds.
    type Network;

    /// Checks the config against images of `shape = [C, H, W]` and a schedule of `levels`
    /// levels; errors name the `model.*` key.
    fn validate(&self, shape: [usize; 3], levels: usize) -> Result<(), ModelError>;

    /// The network, its weights drawn from `init`. Call [`validate`](Self::validate) first.
    fn init(&self, shape: [usize; 3], levels: usize, init: &mut ParamInit) -> Self::Network;
}

/// The networks there are: for each, its [`ModelConfig`] and [`Net`] variant, its config type,
/// its module and its `kind` name. Adding a network is one line here.
#[macro_export]
#[doc(hidden)]
macro_rules! networks {
    ($($variant:ident($config:ty, $net:ty) = $kind:literal,)+) => {
        /// Which network, and its size: the `[model]` table of a run config, one flat table
        /// of `kind` and that kind's keys (see each config type). Unknown keys and wrong types
        /// are errors that name the key.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind")]
        pub enum ModelConfig {
            $(
                #[doc = concat!("`kind = \"", $kind, "\"`: [`", stringify!($config), "`].")]
                #[serde(rename = $kind)]
                $variant($config),
            )+
        }

        /// Any of the networks, built from a [`ModelConfig`].
        // A run holds one `Net`; the variants' size difference costs nothing worth a box.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum Net {
            $(
                #[doc = concat!("See [`", stringify!($net), "`].")]
                $variant($net),
            )+
        }

        impl ModelConfig {
            /// The `kind` names, in the order above.
            pub const KINDS: &'static [&'static str] = &[$($kind),+];

            /// The kind's name.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $kind,)+
                }
            }

            /// The config of `kind` from the rest of its table.
            fn from_table(kind: &str, table: toml::Table) -> Result<Self, String> {
                let value = toml::Value::Table(table);
                match kind {
                    $($kind => <$config>::deserialize(value)
                        .map(Self::$variant)
                        .map_err(|e| keys_error(kind, e)),)+
                    other => Err(format!(
                        "model.kind = `{other}`: expected one of {}",
                        Self::KINDS.join(", ")
                    )),
                }
            }

            /// Checks the config against images of `shape = [C, H, W]` and a schedule of
            /// `levels` levels; errors name the `model.*` key.
            pub fn validate(&self, shape: [usize; 3], levels: usize) -> Result<(), ModelError> {
                match self {
                    $(Self::$variant(c) => c.validate(shape, levels),)+
                }
            }

            fn init(&self, shape: [usize; 3], levels: usize, init: &mut ParamInit) -> Net {
                match self {
                    $(Self::$variant(c) => Net::$variant(c.init(shape, levels, init)),)+
                }
            }
        }

        impl Net {
            /// The network's output for `x` (`[B, C, H, W]`) at the levels of `cond`.
            pub fn forward(&self, x: Tensor<4>, cond: &Conditioning) -> Tensor<4> {
                match self {
                    $(Self::$variant(m) => m.forward(x, cond),)+
                }
            }
        }
    };
}

networks! {
    Linear(LinearConfig, LinearDenoiser) = "linear",
    Circulant(CirculantConfig, CirculantDenoiser) = "circulant",
    Mlp(MlpConfig, MlpDenoiser) = "mlp",
    Unet(UnetConfig, UnetDenoiser) = "unet",
}

/// A one-line message for a `[model]` table the kind's config refuses: `model.KEY: …` when
/// the error names a key (a wrong type, `in `KEY``; an unknown key), which
/// [`RunConfig::from_toml`](crate::RunConfig::from_toml) then points at on its own line.
fn keys_error(kind: &str, error: toml::de::Error) -> String {
    // The full text names the key (`… in `depth``); the message alone would not.
    let text = error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let named = |marker: &str| {
        let start = text.find(marker)? + marker.len();
        let end = text[start..].find('`')?;
        Some(text[start..start + end].to_string())
    };
    let key = named("unknown field `").or_else(|| named(" in `"));
    let message = match text.find(" in `") {
        Some(i) => text[..i].to_string(),
        None => text.clone(),
    };
    match key {
        Some(key) => format!("model.{key}: {message} (kind = \"{kind}\")"),
        None => format!("[model] kind = \"{kind}\": {message}"),
    }
}

impl<'de> Deserialize<'de> for ModelConfig {
    /// Reads `kind`, then the rest of the table as that kind's config, so that unknown keys
    /// and wrong types are reported by the kind's own field names.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(deserializer)?;
        let kind = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "model.kind = {other}: expected a string, one of {}",
                    Self::KINDS.join(", ")
                )));
            }
            None => {
                return Err(D::Error::custom(format!(
                    "[model] needs `kind`, one of {}",
                    Self::KINDS.join(", ")
                )));
            }
        };
        Self::from_table(&kind, table).map_err(D::Error::custom)
    }
}

impl Default for ModelConfig {
    /// The `tiny` U-Net.
    fn default() -> Self {
        Self::Unet(UnetConfig::default())
    }
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
        Ok(config.init(shape, levels, &mut ParamInit::new(seed, device)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct Table {
        model: ModelConfig,
    }

    fn read(body: &str) -> Result<ModelConfig, String> {
        toml::from_str::<Table>(&format!("[model]\n{body}\n"))
            .map(|t| t.model)
            .map_err(|e| e.message().replace('\n', " "))
    }

    #[test]
    fn each_kind_reads_its_own_keys_and_writes_the_flat_table() {
        let mlp = read("kind = \"mlp\"\ndepth = 3").unwrap();
        assert_eq!(
            mlp,
            ModelConfig::Mlp(MlpConfig {
                depth: 3,
                ..MlpConfig::default()
            })
        );
        // Written as it was read: `kind` first, then the kind's keys (defaults filled in).
        let text = toml::to_string(&Table { model: mlp }).unwrap();
        assert_eq!(
            text,
            "[model]\nkind = \"mlp\"\ndepth = 3\nwidth = 512\nembedding = 128\n"
        );
        let unet = read("kind = \"unet\"\npreset = \"paper\"\ngroups = 4").unwrap();
        let text = toml::to_string(&Table { model: unet }).unwrap();
        assert_eq!(
            text,
            "[model]\nkind = \"unet\"\npreset = \"paper\"\ngroups = 4\n"
        );
        assert_eq!(read("kind = \"linear\"").unwrap().kind(), "linear");
    }

    #[test]
    fn wrong_keys_types_and_kinds_are_named() {
        for (body, parts) in [
            ("kind = \"mlp\"\ndepth = \"x\"", &["mlp", "depth"][..]),
            ("kind = \"unet\"\nwidth = [1]", &["unet", "width", "widths"]),
            ("kind = \"linear\"\ndepth = 2", &["linear", "depth"]),
            (
                "kind = \"resnet\"",
                &["resnet", "linear, circulant, mlp, unet"],
            ),
            ("kind = 3", &["model.kind", "a string"]),
            ("depth = 2", &["needs `kind`"]),
        ] {
            let e = read(body).unwrap_err();
            for part in parts {
                assert!(e.contains(part), "{body}: `{part}` missing from {e}");
            }
        }
    }
}
