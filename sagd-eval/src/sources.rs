//! Where the images of an evaluation come from, as a user names them: a file, a directory or
//! a dataset spec.

use std::path::Path;

use sagd_datasets::Dataset;
use sagd_datasets::folder::{FolderOptions, load_image_folder};
use sagd_datasets::npy::{Layout, load_npy};
use sagd_datasets::npz::{load_npz, npz_keys};
use sagd_datasets::spec::DataSpec;
use sagd_datasets::transform::Pipeline;

use crate::error::EvalError;
use crate::evaluate::Reference;
use crate::fid::GaussianStats;

/// Loads images named by `arg`, in this order of interpretation:
/// - an existing `.npy` file: `(N, C, H, W)` or `(N, H, W)` (grey) as [`load_npy`] reads it,
///   and `(N, H, W, C)` when its last axis is 1 or 3 and its second is neither (the layout of
///   most image tools); float values as they are (samples of `sagd sample` are in `[0, 1]`),
///   `u8` as `v / 255`;
/// - an existing `.npz` file of images ([`load_npz`]), with the same layout rule;
/// - an existing directory holding `samples.npy` (the output folder of `sagd sample`);
/// - any other existing directory: a folder of PNG/JPEG images, flat or with class
///   sub-folders ([`load_image_folder`]);
/// - otherwise a dataset spec (`mnist:DIR,split=test`, `cifar10:DIR`, `shapes:…`); an argument
///   without a `KIND:` prefix is a path, and one that does not exist is an error saying so.
///
/// # Errors
/// [`EvalError::Io`] for a path that does not exist; [`EvalError::Dataset`] naming the file or
/// spec that could not be read.
pub fn load_images(arg: &str) -> Result<Dataset, EvalError> {
    let path = Path::new(arg);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if path.is_file() && extension.as_deref() == Some("npy") {
        return with_layout(|layout| load_npy(path, layout));
    }
    if path.is_file() && extension.as_deref() == Some("npz") {
        return with_layout(|layout| load_npz(path, None, layout));
    }
    if path.is_dir() {
        let samples = path.join("samples.npy");
        if samples.is_file() {
            return with_layout(|layout| load_npy(&samples, layout));
        }
        return Ok(load_image_folder(path, &FolderOptions::default())?);
    }
    if !arg.contains(':') || matches!(extension.as_deref(), Some("npy" | "npz")) && !path.exists() {
        return Err(EvalError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or folder (nor a dataset spec KIND:…)",
            ),
        });
    }
    let spec: DataSpec = arg.parse()?;
    Ok(spec.load()?)
}

/// Loads an array as (N, C, H, W), or as (N, H, W, C) when it reads as C ∉ {1, 3, 4} channels
/// of width 1 or 3: an NHWC image array.
fn with_layout(
    load: impl Fn(Layout) -> Result<Dataset, sagd_datasets::DatasetError>,
) -> Result<Dataset, EvalError> {
    let data = load(Layout::Nchw)?;
    let [c, _, w] = data.shape();
    if !matches!(c, 1 | 3 | 4) && matches!(w, 1 | 3) {
        return Ok(load(Layout::Nhwc)?);
    }
    Ok(data)
}

/// At most `count` images of `data`: all of them when `count` is not smaller, else a subset
/// drawn without replacement by a seeded shuffle ([`Dataset::sample`]), so that class-ordered
/// sources (image folders, sorted arrays) give a representative subset.
pub fn subset(data: Dataset, count: usize, seed: u64) -> Dataset {
    if count >= data.len() {
        data
    } else {
        data.sample(count, seed)
    }
}

/// Whether `path` is a statistics file: an `.npz` holding `mu` and `sigma`.
pub fn is_stats_file(path: &Path) -> bool {
    path.is_file()
        && npz_keys(path)
            .map(|keys| keys.iter().any(|k| k == "mu") && keys.iter().any(|k| k == "sigma"))
            .unwrap_or(false)
}

/// Loads the reference named by `arg`: an `.npz` with `mu` and `sigma` is a statistics
/// reference ([`GaussianStats::load_npz`]); anything else is read by [`load_images`], reduced to
/// `count` images by [`subset`] (all when `None`), then the `transforms` are applied (seeded by
/// `seed`).
///
/// # Errors
/// [`EvalError::Input`] when transforms are given for a statistics file or include `scale`
/// (evaluation compares images in `[0, 1]`); those of the loaders and transforms.
pub fn load_reference(
    arg: &str,
    transforms: &Pipeline,
    count: Option<usize>,
    seed: u64,
) -> Result<Reference, EvalError> {
    let path = Path::new(arg);
    if is_stats_file(path) {
        if !transforms.transforms.is_empty() {
            return Err(EvalError::input(
                "reference",
                "--transform applies to reference images, not to statistics (mu, sigma)",
            ));
        }
        return Ok(Reference::Stats(GaussianStats::load_npz(path)?));
    }
    if transforms.scales() {
        return Err(EvalError::input(
            "reference",
            "the `scale` transform maps images to [-1, 1]; evaluation compares images in [0, 1] \
             (leave `scale` out)",
        ));
    }
    let images = load_images(arg)?;
    let count = count.unwrap_or(images.len()).min(images.len());
    if transforms.transforms.is_empty() {
        return Ok(Reference::Images(images.take(count)));
    }
    transforms.output_shape(images.shape())?;
    Ok(Reference::Images(
        transforms.apply_to(&images, count, seed)?,
    ))
}
