//! Dataset specs, the syntax the CLI and configs use:
//!
//! | spec | data |
//! | --- | --- |
//! | `mnist:DIR`, `fashion-mnist:DIR` | IDX files (gzip or raw) in DIR |
//! | `cifar10:DIR` | CIFAR-10 binary batches in DIR |
//! | `folder:DIR[,channels=1\|3][,resize=HxW]` | class sub-folders of PNG/JPEG images |
//! | `npy:FILE[,layout=nchw\|nhwc]` | a u8 or f32 array |
//! | `npz:FILE[,key=NAME][,layout=…]` | an array (and labels `y`/`labels`) in a .npz |
//! | `grf:beta=2,size=1x32x32,n=10000,seed=0[,r0=…]` | Gaussian random fields, power ∝ 1/(r+r0)^β |
//! | `gmm:components=2,size=1x8x8,n=1000,seed=0[,spread=…][,within=…]` | Gaussian mixtures |
//! | `shapes:n=10000,size=3x32x32,seed=0` | anti-aliased disks, squares and bars |
//!
//! Every spec takes `split=train|test` (default train). Synthetic test splits are drawn with a
//! seed derived from the train seed, so the two never share images.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use sagd_core::{DynShape, ImageShape};
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::DatasetError;
use crate::folder::{FolderOptions, load_image_folder};
use crate::npy::{Layout, load_npy};
use crate::npz::load_npz;
use crate::split::Split;
use crate::synthetic::gmm::GmmConfig;
use crate::synthetic::grf::GrfConfig;
use crate::synthetic::shapes::ShapesConfig;
use crate::transform::Pipeline;
use crate::{cifar, idx};

/// Where the images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// MNIST IDX files.
    Mnist(PathBuf),
    /// Fashion-MNIST IDX files.
    FashionMnist(PathBuf),
    /// CIFAR-10 binary batches.
    Cifar10(PathBuf),
    /// An image folder.
    Folder {
        /// The root.
        dir: PathBuf,
        /// Channels to convert to.
        channels: Option<usize>,
        /// Size to resize to.
        resize: Option<(usize, usize)>,
    },
    /// A .npy array.
    Npy {
        /// The file.
        path: PathBuf,
        /// Axis order.
        layout: Layout,
    },
    /// A .npz archive.
    Npz {
        /// The file.
        path: PathBuf,
        /// The array name.
        key: Option<String>,
        /// Axis order.
        layout: Layout,
    },
    /// Gaussian random fields.
    Grf(GrfConfig),
    /// Gaussian mixtures.
    Gmm(GmmConfig),
    /// Shapes.
    Shapes(ShapesConfig),
}

/// A parsed dataset spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// The source.
    pub source: Source,
    /// Which split.
    pub split: Split,
    text: String,
}

/// Seed offset of synthetic test splits.
const TEST_SEED_OFFSET: u64 = 0x5EED_7E57;

impl DataSpec {
    /// The file or folder a file-backed source reads, when it does not exist (`None` for
    /// generated sources and for paths that exist). A cheap check before long work: the
    /// loader still reports missing or damaged files inside a folder.
    pub fn missing_path(&self) -> Option<&std::path::Path> {
        let path = match &self.source {
            Source::Mnist(dir) | Source::FashionMnist(dir) | Source::Cifar10(dir) => dir,
            Source::Folder { dir, .. } => dir,
            Source::Npy { path, .. } | Source::Npz { path, .. } => path,
            Source::Grf(_) | Source::Gmm(_) | Source::Shapes(_) => return None,
        };
        (!path.exists()).then_some(path.as_path())
    }

    /// Loads (or generates) the data.
    pub fn load(&self) -> Result<Dataset, DatasetError> {
        let test = self.split == Split::Test;
        let seed = |s: u64| {
            if test {
                s.wrapping_add(TEST_SEED_OFFSET)
            } else {
                s
            }
        };
        match &self.source {
            Source::Mnist(dir) => idx::load_mnist_dir(dir, self.split),
            Source::FashionMnist(dir) => idx::load_fashion_mnist_dir(dir, self.split),
            Source::Cifar10(dir) => cifar::load_cifar10_dir(dir, self.split),
            Source::Folder {
                dir,
                channels,
                resize,
            } => load_image_folder(
                dir,
                &FolderOptions {
                    channels: *channels,
                    resize: *resize,
                    split: Some(self.split),
                },
            ),
            Source::Npy { path, layout } => load_npy(path, *layout),
            Source::Npz { path, key, layout } => load_npz(path, key.as_deref(), *layout),
            Source::Grf(c) => GrfConfig {
                seed: seed(c.seed),
                ..c.clone()
            }
            .generate(),
            Source::Gmm(c) => GmmConfig {
                seed: seed(c.seed),
                ..c.clone()
            }
            .generate(),
            Source::Shapes(c) => ShapesConfig {
                seed: seed(c.seed),
                ..c.clone()
            }
            .generate(),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

struct Parts<'a> {
    input: &'a str,
    kind: &'a str,
    positional: Option<&'a str>,
    keys: BTreeMap<&'a str, &'a str>,
}

impl<'a> Parts<'a> {
    fn err(&self, reason: impl Into<String>) -> DatasetError {
        DatasetError::Spec {
            input: self.input.to_string(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        self.keys.remove(key)
    }

    fn number<T: FromStr>(&mut self, key: &str, expected: &str) -> Result<Option<T>, DatasetError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| DatasetError::param(self.kind, key, v, expected)),
        }
    }

    fn size(&mut self) -> Result<Option<[usize; 3]>, DatasetError> {
        match self.take("size") {
            None => Ok(None),
            Some(v) => v
                .parse::<DynShape>()
                .map(|s| Some(s.dims()))
                .map_err(|_| DatasetError::param(self.kind, "size", v, "CxHxW, e.g. 1x32x32")),
        }
    }

    fn path(&mut self) -> Result<PathBuf, DatasetError> {
        self.positional
            .map(PathBuf::from)
            .ok_or_else(|| self.err(format!("`{}` needs a path: {}:PATH", self.kind, self.kind)))
    }

    fn layout(&mut self) -> Result<Layout, DatasetError> {
        match self.take("layout") {
            None | Some("nchw") => Ok(Layout::Nchw),
            Some("nhwc") => Ok(Layout::Nhwc),
            Some(other) => Err(DatasetError::param(
                self.kind,
                "layout",
                other,
                "nchw or nhwc",
            )),
        }
    }

    fn finish(self) -> Result<(), DatasetError> {
        if let Some(key) = self.keys.keys().next() {
            return Err(self.err(format!("unknown key `{key}` for `{}`", self.kind)));
        }
        Ok(())
    }
}

impl FromStr for DataSpec {
    type Err = DatasetError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim();
        let spec_err = |reason: String| DatasetError::Spec {
            input: text.to_string(),
            reason,
        };
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| spec_err("expected KIND:…, e.g. mnist:DIR or shapes:n=1000 (kinds: mnist, fashion-mnist, cifar10, folder, npy, npz, grf, gmm, shapes)".into()))?;
        let mut positional = None;
        let mut keys = BTreeMap::new();
        for (i, part) in rest.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((k, v)) => {
                    if keys.insert(k.trim(), v.trim()).is_some() {
                        return Err(spec_err(format!("`{}` given twice", k.trim())));
                    }
                }
                None if i == 0 => positional = Some(part),
                None => return Err(spec_err(format!("`{part}` is not key=value"))),
            }
        }
        let mut p = Parts {
            input: text,
            kind: kind.trim(),
            positional,
            keys,
        };
        let split = match p.take("split") {
            None => Split::Train,
            Some(v) => v
                .parse()
                .map_err(|_| DatasetError::param(p.kind, "split", v, "train or test"))?,
        };
        let source = match p.kind {
            "mnist" => Source::Mnist(p.path()?),
            "fashion-mnist" => Source::FashionMnist(p.path()?),
            "cifar10" => Source::Cifar10(p.path()?),
            "folder" => {
                let dir = p.path()?;
                let channels = p.number::<usize>("channels", "1 or 3")?;
                if let Some(c) = channels
                    && c != 1
                    && c != 3
                {
                    return Err(DatasetError::param("folder", "channels", c, "1 or 3"));
                }
                let resize = match p.take("resize") {
                    None => None,
                    Some(v) => {
                        let (h, w) = v
                            .split_once(['x', 'X'])
                            .ok_or_else(|| DatasetError::param("folder", "resize", v, "HxW"))?;
                        let parse = |t: &str| t.parse::<usize>().ok().filter(|n| *n > 0);
                        match (parse(h), parse(w)) {
                            (Some(h), Some(w)) => Some((h, w)),
                            _ => {
                                return Err(DatasetError::param(
                                    "folder",
                                    "resize",
                                    v,
                                    "HxW with positive sides",
                                ));
                            }
                        }
                    }
                };
                Source::Folder {
                    dir,
                    channels,
                    resize,
                }
            }
            "npy" => Source::Npy {
                path: p.path()?,
                layout: p.layout()?,
            },
            "npz" => Source::Npz {
                path: p.path()?,
                key: p.take("key").map(str::to_string),
                layout: p.layout()?,
            },
            "grf" => {
                let mut c = GrfConfig::default();
                if let Some(v) = p.number("beta", "a number >= 0")? {
                    c.beta = v;
                }
                if let Some(v) = p.number("r0", "a number > 0")? {
                    c.r0 = v;
                }
                if let Some(v) = p.size()? {
                    c.size = v;
                }
                if let Some(v) = p.number("n", "a positive integer")? {
                    c.n = v;
                }
                if let Some(v) = p.number("seed", "an integer")? {
                    c.seed = v;
                }
                if let Some(v) = p.number("scale", "a number > 0")? {
                    c.scale = v;
                }
                Source::Grf(c)
            }
            "gmm" => {
                let mut c = GmmConfig::default();
                if let Some(v) = p.number("components", "a positive integer")? {
                    c.components = v;
                }
                if let Some(v) = p.size()? {
                    c.size = v;
                }
                if let Some(v) = p.number("n", "a positive integer")? {
                    c.n = v;
                }
                if let Some(v) = p.number("seed", "an integer")? {
                    c.seed = v;
                }
                if let Some(v) = p.number("spread", "a number > 0")? {
                    c.spread = v;
                }
                if let Some(v) = p.number("within", "a number > 0")? {
                    c.within = v;
                }
                Source::Gmm(c)
            }
            "shapes" => {
                let mut c = ShapesConfig::default();
                if let Some(v) = p.number("n", "a positive integer")? {
                    c.n = v;
                }
                if let Some(v) = p.size()? {
                    c.size = v;
                }
                if let Some(v) = p.number("seed", "an integer")? {
                    c.seed = v;
                }
                Source::Shapes(c)
            }
            other => {
                return Err(spec_err(format!(
                    "unknown kind `{other}` (kinds: mnist, fashion-mnist, cifar10, folder, npy, npz, grf, gmm, shapes)"
                )));
            }
        };
        if p.positional.is_some()
            && matches!(source, Source::Grf(_) | Source::Gmm(_) | Source::Shapes(_))
        {
            return Err(p.err(format!("`{}` takes only key=value parameters", p.kind)));
        }
        p.finish()?;
        Ok(DataSpec {
            source,
            split,
            text: text.to_string(),
        })
    }
}

/// The data section of a configuration file:
///
/// ```toml
/// spec = "mnist:/data/mnist"
/// transforms = ["pad:2", "hflip:0.5", "scale"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A dataset spec (see the module docs).
    pub spec: String,
    /// Transforms applied in order.
    #[serde(default)]
    pub transforms: Vec<String>,
}

impl DataConfig {
    /// Parses the spec and the transforms, loads the data, and checks that the transforms fit
    /// its shape.
    pub fn load(&self) -> Result<(Dataset, Pipeline), DatasetError> {
        let spec: DataSpec = self.spec.parse()?;
        let pipeline = Pipeline::parse(&self.transforms)?;
        let dataset = spec.load()?;
        pipeline.output_shape(dataset.shape())?;
        Ok((dataset, pipeline))
    }
}
