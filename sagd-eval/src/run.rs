//! The evaluation run behind `sagd eval`: samples and a reference named as the CLI names them
//! (files, folders, dataset specs, statistics) → [`evaluate`](crate::evaluate()) → `metrics.json`,
//! `spectra.png` and optionally the reference's Inception statistics and features.
//!
//! ```
//! use sagd_eval::Metric;
//! use sagd_eval::run::{EvalRequest, eval_run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let out = tempfile::tempdir()?;
//! let mut request = EvalRequest::new(
//!     "grf:beta=2,size=1x16x16,n=64,seed=1",
//!     "grf:beta=2,size=1x16x16,n=64,seed=2",
//!     out.path(),
//! );
//! request.metrics = [Metric::Spectral].into();
//! let run = eval_run(&request, &mut |_, _, _| {})?;
//! let spectral = run.report.spectral.as_ref().ok_or("no spectral metrics")?;
//! assert!(spectral.log_spectral_distance < 1.0);
//! assert!(out.path().join("metrics.json").is_file() && out.path().join("spectra.png").is_file());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sagd_datasets::transform::Pipeline;
use sagd_models::train::device_for;
use serde::Serialize;

use crate::error::EvalError;
use crate::evaluate::{EvalOptions, EvalReport, Metric, Reference, Stage, check, evaluate};
use crate::feature_cache;
use crate::inception::{FEATURE_DIM, FidInception, INPUT_SIZE};
use crate::kid::{Kid, KidOptions};
use crate::precision_recall::PrecisionRecall;
use crate::spectral::{SpectralReport, write_spectral_png};
use crate::weights::find_weights;

fn invalid(message: impl Into<String>) -> EvalError {
    EvalError::Request(message.into())
}

/// `error` as the cause of a problem with the input `arg` names (`--samples X`, `--inception`).
fn about(arg: impl Into<String>) -> impl FnOnce(EvalError) -> EvalError {
    let arg = arg.into();
    move |source| EvalError::About {
        arg,
        source: Box::new(source),
    }
}

/// What `sagd eval` asks; error messages name a field by its flag (`--count` for
/// [`count`](Self::count)).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// The samples: a `.npy` (N, C, H, W) in [0, 1], a `sagd sample` folder, a folder of
    /// images, or a dataset spec.
    pub samples: String,
    /// The reference: a dataset spec, a `.npy`, a folder of images, or pytorch-fid statistics
    /// (`.npz` with `mu` and `sigma`; FID only).
    pub reference: String,
    /// Transforms of the reference images, in order.
    pub transforms: Vec<String>,
    /// Seed of the subsets, the random transforms and KID's subsets.
    pub seed: u64,
    /// The metrics.
    pub metrics: BTreeSet<Metric>,
    /// Images used from each side (a seeded random subset of larger sets); `None`: all the
    /// samples and as many reference images.
    pub count: Option<usize>,
    /// The FID Inception weights; `None`: found by [`find_weights`].
    pub inception: Option<PathBuf>,
    /// Save the reference's Inception statistics (pytorch-fid's `.npz`) here.
    pub save_stats: Option<PathBuf>,
    /// Keep the reference images' Inception features in this `.npz` and reuse them when they
    /// are for the same images and weights ([`feature_cache`]).
    pub feature_cache: Option<PathBuf>,
    /// Images per Inception batch.
    pub batch: usize,
    /// KID's subsets.
    pub kid_subsets: usize,
    /// KID's subset size (lowered, with a warning, to the smaller set's count).
    pub kid_subset_size: usize,
    /// The device name (`cpu`, `cuda`, …).
    pub device: String,
    /// Output folder: `metrics.json` and `spectra.png`.
    pub out: PathBuf,
    /// Replace a `metrics.json` already there (otherwise refused).
    pub overwrite: bool,
}

impl EvalRequest {
    /// `samples` against `reference` into `out` with the CLI's defaults: every metric, all
    /// images, seed 0, batches of 50, KID's 100 subsets of 1000, on the CPU.
    pub fn new(
        samples: impl Into<String>,
        reference: impl Into<String>,
        out: impl Into<PathBuf>,
    ) -> Self {
        Self {
            samples: samples.into(),
            reference: reference.into(),
            transforms: Vec::new(),
            seed: 0,
            metrics: Metric::ALL.into(),
            count: None,
            inception: None,
            save_stats: None,
            feature_cache: None,
            batch: 50,
            kid_subsets: 100,
            kid_subset_size: 1000,
            device: "cpu".to_string(),
            out: out.into(),
            overwrite: false,
        }
    }
}

/// The Inception network used (`metrics.json`'s `inception`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InceptionSummary {
    /// The weights file.
    pub weights: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its container (`safetensors` or `pytorch`).
    pub format: String,
    /// The features used.
    pub features: String,
    /// The input pipeline.
    pub input: String,
    /// Images per batch.
    pub batch: usize,
}

/// `metrics.json` (serialised through [`serde_json::Value`], keys sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSummary {
    /// The samples as named.
    pub samples: String,
    /// The reference as named.
    pub reference: String,
    /// The reference's transforms.
    pub reference_transforms: Vec<String>,
    /// Samples evaluated.
    pub sample_count: usize,
    /// Reference images (`None` for statistics).
    pub reference_count: Option<usize>,
    /// The metrics' names.
    pub metrics: Vec<String>,
    /// The count asked.
    pub count: Option<usize>,
    /// FID.
    pub fid: Option<f64>,
    /// KID.
    pub kid: Option<Kid>,
    /// Precision and recall.
    pub precision_recall: Option<PrecisionRecall>,
    /// Spectral metrics.
    pub spectral: Option<SpectralReport>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Seconds of Inception features.
    pub feature_seconds: f64,
    /// Images per second through the network.
    pub feature_images_per_s: Option<f64>,
    /// The device name.
    pub device: String,
    /// The seed.
    pub seed: u64,
    /// Wall time of the evaluation, seconds.
    pub seconds: f64,
    /// The network, when one was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inception: Option<InceptionSummary>,
    /// `spectra.png`, when drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spectra_png: Option<PathBuf>,
    /// The saved statistics, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_stats: Option<PathBuf>,
    /// The reference features' cache, when asked, and whether it was used (`true`) or
    /// written (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_cache: Option<FeatureCacheSummary>,
}

/// `metrics.json`'s `feature_cache`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureCacheSummary {
    /// The file.
    pub path: PathBuf,
    /// Whether the reference's features were read from it (otherwise extracted and written).
    pub used: bool,
}

/// The outcome of [`eval_run`].
#[derive(Debug, Clone)]
pub struct EvalRun {
    /// What `metrics.json` holds.
    pub summary: MetricsSummary,
    /// The metrics in full.
    pub report: EvalReport,
    /// `metrics.json`.
    pub metrics_path: PathBuf,
}

/// Evaluates `req.samples` against `req.reference`: checks every setting and input before any
/// work, loads the Inception network when a metric needs it, runs [`evaluate`] (`progress` sees
/// its feature extraction), and writes `metrics.json`, `spectra.png` (spectral metrics) and the
/// reference's statistics (`save_stats`) into `req.out`.
///
/// # Errors
/// [`EvalError::Request`] and [`EvalError::Input`] for what was asked wrongly (a count or batch
/// of 0, an existing `metrics.json` without `overwrite`, no weights found, inputs the metrics
/// cannot compare); [`EvalError::About`] wraps an error reading the samples, the reference, the
/// weights or writing the statistics, naming the flag; the model (device), dataset, I/O and
/// figure errors otherwise.
///
/// See the [module docs](self) for an example.
pub fn eval_run(
    req: &EvalRequest,
    progress: &mut dyn FnMut(Stage, usize, usize),
) -> Result<EvalRun, EvalError> {
    if req.count == Some(0) {
        return Err(invalid("--count must be at least 1"));
    }
    if req.batch == 0 {
        return Err(invalid("--batch must be at least 1"));
    }
    if req.out.exists() && !req.out.is_dir() {
        return Err(invalid(format!(
            "--out {} is a file; expected a folder (new or existing)",
            req.out.display()
        )));
    }
    for (flag, path) in [
        ("--save-stats", &req.save_stats),
        ("--feature-cache", &req.feature_cache),
    ] {
        let Some(path) = path else { continue };
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if path.is_dir() || !parent.is_dir() {
            return Err(invalid(format!(
                "{flag} {}: expected a file path in an existing folder",
                path.display()
            )));
        }
    }
    let metrics_path = req.out.join("metrics.json");
    if metrics_path.exists() && !req.overwrite {
        return Err(invalid(format!(
            "{} exists; pass --overwrite or choose another --out",
            metrics_path.display()
        )));
    }
    let needs_inception = req.metrics.iter().any(|m| m.needs_inception());
    let weights = if needs_inception {
        Some(find_weights(req.inception.as_deref())?)
    } else {
        None
    };
    if req.save_stats.is_some() && !needs_inception {
        return Err(invalid(
            "--save-stats saves Inception statistics; add fid to --metrics",
        ));
    }
    if req.feature_cache.is_some() && !needs_inception {
        return Err(invalid(
            "--feature-cache keeps Inception features; add fid, kid or pr to --metrics",
        ));
    }
    let device = device_for(&req.device)?;
    let pipeline = Pipeline::parse(&req.transforms)?;

    let samples =
        crate::load_images(&req.samples).map_err(about(format!("--samples {}", req.samples)))?;
    if let Some(n) = req.count
        && n > samples.len()
    {
        return Err(invalid(format!(
            "--count {n}, but the samples hold {} images",
            samples.len()
        )));
    }
    let count = req.count.unwrap_or(samples.len());
    let samples = crate::sources::subset(samples, count, req.seed);
    let reference = crate::load_reference(&req.reference, &pipeline, Some(count), req.seed)
        .map_err(about(format!("--reference {}", req.reference)))?;
    let mut options = EvalOptions {
        metrics: req.metrics.clone(),
        batch: req.batch,
        kid: KidOptions {
            subsets: req.kid_subsets,
            subset_size: req.kid_subset_size,
            seed: req.seed,
        },
        pr_k: 3,
        reference_features: None,
    };
    check(&samples, &reference, weights.is_some(), &options)?;
    if let (Some(path), Reference::Stats(_)) = (&req.feature_cache, &reference) {
        return Err(invalid(format!(
            "--feature-cache {} keeps reference images' features, but --reference {} is \
             statistics",
            path.display(),
            req.reference
        )));
    }
    let model = match &weights {
        Some(path) => Some(FidInception::load(path, &device).map_err(about("--inception"))?),
        None => None,
    };
    // The reference's features from the cache, when it holds those of these images and weights.
    let mut cache_warning = None;
    let mut cache_print = None;
    if let (Some(path), Some(model), Reference::Images(r)) =
        (&req.feature_cache, &model, &reference)
    {
        let print = feature_cache::fingerprint(r, &model.info().sha256);
        match feature_cache::load(path, &print, FEATURE_DIM) {
            Ok(features) => options.reference_features = features,
            Err(why) => {
                cache_warning = Some(format!(
                    "--feature-cache {}: {why}; the reference's features were extracted again \
                     and the file replaced",
                    path.display()
                ))
            }
        }
        cache_print = Some(print);
    }
    let cache_used = options.reference_features.is_some();

    let started = Instant::now();
    let mut report = evaluate(&samples, &reference, model.as_ref(), &options, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    report.warnings.extend(cache_warning);

    std::fs::create_dir_all(&req.out).map_err(|source| EvalError::Output {
        action: "create",
        path: req.out.clone(),
        source,
    })?;
    if let (Some(path), Some(stats)) = (&req.save_stats, &report.reference_stats) {
        stats
            .save_npz(path)
            .map_err(about(format!("--save-stats {}", path.display())))?;
    }
    if let (Some(path), Some(print), Some(features), false) = (
        &req.feature_cache,
        &cache_print,
        &report.reference_features,
        cache_used,
    ) {
        feature_cache::save(path, features, print)
            .map_err(about(format!("--feature-cache {}", path.display())))?;
    }
    let plot_path = req.out.join("spectra.png");
    if let Some(spectral) = &report.spectral {
        write_spectral_png(&plot_path, spectral)?;
    }
    let summary = MetricsSummary {
        samples: req.samples.clone(),
        reference: req.reference.clone(),
        reference_transforms: req.transforms.clone(),
        sample_count: report.sample_count,
        reference_count: report.reference_count,
        metrics: req.metrics.iter().map(|m| m.name().to_string()).collect(),
        count: req.count,
        fid: report.fid,
        kid: report.kid,
        precision_recall: report.precision_recall,
        spectral: report.spectral.clone(),
        warnings: report.warnings.clone(),
        feature_seconds: report.feature_seconds,
        feature_images_per_s: report.feature_images_per_s,
        device: req.device.clone(),
        seed: req.seed,
        seconds,
        inception: model.as_ref().map(|model| {
            let info = model.info();
            InceptionSummary {
                weights: info.path.clone(),
                sha256: info.sha256.clone(),
                format: info.format.name().to_string(),
                features: "pool3 (2048-d), pytorch-fid's FID Inception-v3".to_string(),
                input: format!(
                    "8-bit quantised (floor(255 x + 0.5)), /255, bilinear resize to \
                     {INPUT_SIZE}x{INPUT_SIZE} with half-pixel centres and no antialiasing \
                     (align_corners = false), 2x - 1; grey copied to 3 channels"
                ),
                batch: req.batch,
            }
        }),
        spectra_png: report.spectral.is_some().then(|| plot_path.clone()),
        saved_stats: req.save_stats.clone(),
        feature_cache: req.feature_cache.as_ref().map(|path| FeatureCacheSummary {
            path: path.clone(),
            used: cache_used,
        }),
    };
    crate::theory::write_json(&metrics_path, &summary)?;
    Ok(EvalRun {
        summary,
        report,
        metrics_path,
    })
}
