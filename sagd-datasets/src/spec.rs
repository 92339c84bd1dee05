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

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use sagd_core::spec::{SpecError, SpecReader, SpecText};
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

/// The dataset kinds a spec may name.
const KINDS: [&str; 9] = [
    "mnist",
    "fashion-mnist",
    "cifar10",
    "folder",
    "npy",
    "npz",
    "grf",
    "gmm",
    "shapes",
];

/// The keys each kind takes (`split` besides).
fn keys_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "folder" => &["split", "channels", "resize"],
        "npy" => &["split", "layout"],
        "npz" => &["split", "key", "layout"],
        "grf" => &["split", "beta", "r0", "size", "n", "seed", "scale"],
        "gmm" => &[
            "split",
            "components",
            "size",
            "n",
            "seed",
            "spread",
            "within",
        ],
        "shapes" => &["split", "n", "size", "seed"],
        _ => &["split"],
    }
}

fn path(r: &mut SpecReader<'_>) -> Result<PathBuf, SpecError> {
    let kind = r.spec().name();
    r.required_argument(&format!("a path: {kind}:PATH"))
        .map(PathBuf::from)
}

fn size(r: &mut SpecReader<'_>) -> Result<Option<[usize; 3]>, SpecError> {
    match r.take("size") {
        None => Ok(None),
        Some(v) => v
            .parse::<DynShape>()
            .map(|s| Some(s.dims()))
            .map_err(|_| r.spec().invalid("size", v, "CxHxW, e.g. 1x32x32")),
    }
}

fn layout(r: &mut SpecReader<'_>) -> Result<Layout, SpecError> {
    match r.take("layout") {
        None | Some("nchw") => Ok(Layout::Nchw),
        Some("nhwc") => Ok(Layout::Nhwc),
        Some(other) => Err(r.spec().invalid("layout", other, "nchw or nhwc")),
    }
}

fn folder(r: &mut SpecReader<'_>) -> Result<Source, SpecError> {
    let dir = path(r)?;
    let channels = r.parse::<usize>("channels", "1 or 3")?;
    if let Some(c) = channels
        && c != 1
        && c != 3
    {
        return Err(r.spec().invalid("channels", c, "1 or 3"));
    }
    let resize = match r.take("resize") {
        None => None,
        Some(v) => {
            let sides = v.split_once(['x', 'X']).and_then(|(h, w)| {
                let side = |t: &str| t.parse::<usize>().ok().filter(|n| *n > 0);
                Some((side(h)?, side(w)?))
            });
            Some(sides.ok_or_else(|| r.spec().invalid("resize", v, "HxW with positive sides"))?)
        }
    };
    Ok(Source::Folder {
        dir,
        channels,
        resize,
    })
}

fn grf(r: &mut SpecReader<'_>) -> Result<Source, SpecError> {
    let mut c = GrfConfig::default();
    set(&mut c.beta, r.parse("beta", "a number >= 0")?);
    set(&mut c.r0, r.parse("r0", "a number > 0")?);
    set(&mut c.size, size(r)?);
    set(&mut c.n, r.parse("n", "a positive integer")?);
    set(&mut c.seed, r.parse("seed", "an integer")?);
    set(&mut c.scale, r.parse("scale", "a number > 0")?);
    Ok(Source::Grf(c))
}

fn gmm(r: &mut SpecReader<'_>) -> Result<Source, SpecError> {
    let mut c = GmmConfig::default();
    set(
        &mut c.components,
        r.parse("components", "a positive integer")?,
    );
    set(&mut c.size, size(r)?);
    set(&mut c.n, r.parse("n", "a positive integer")?);
    set(&mut c.seed, r.parse("seed", "an integer")?);
    set(&mut c.spread, r.parse("spread", "a number > 0")?);
    set(&mut c.within, r.parse("within", "a number > 0")?);
    Ok(Source::Gmm(c))
}

fn shapes(r: &mut SpecReader<'_>) -> Result<Source, SpecError> {
    let mut c = ShapesConfig::default();
    set(&mut c.n, r.parse("n", "a positive integer")?);
    set(&mut c.size, size(r)?);
    set(&mut c.seed, r.parse("seed", "an integer")?);
    Ok(Source::Shapes(c))
}

/// Overrides a default with a value the spec gives.
fn set<T>(field: &mut T, given: Option<T>) {
    if let Some(value) = given {
        *field = value;
    }
}

/// The source a spec names, its keys read from `r`.
fn source(r: &mut SpecReader<'_>) -> Result<Source, SpecError> {
    Ok(match r.spec().name() {
        "mnist" => Source::Mnist(path(r)?),
        "fashion-mnist" => Source::FashionMnist(path(r)?),
        "cifar10" => Source::Cifar10(path(r)?),
        "folder" => folder(r)?,
        "npy" => Source::Npy {
            path: path(r)?,
            layout: layout(r)?,
        },
        "npz" => Source::Npz {
            path: path(r)?,
            key: r.take("key").map(str::to_string),
            layout: layout(r)?,
        },
        "grf" => grf(r)?,
        "gmm" => gmm(r)?,
        "shapes" => shapes(r)?,
        other => {
            return Err(SpecError::unknown_name(
                r.spec().input(),
                "kind",
                other,
                &KINDS,
            ));
        }
    })
}

impl FromStr for DataSpec {
    type Err = DatasetError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = SpecText::parse(input).map_err(DatasetError::Spec)?;
        let mut reader = text.reader(keys_of(text.name()));
        let split = match reader.take("split") {
            None => Split::Train,
            Some(v) => v
                .parse()
                .map_err(|_| text.invalid("split", v, "train or test"))
                .map_err(DatasetError::Spec)?,
        };
        let source = source(&mut reader).map_err(DatasetError::Spec)?;
        reader.finish().map_err(DatasetError::Spec)?;
        Ok(DataSpec {
            source,
            split,
            text: text.input().to_string(),
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
