//! The evaluation run behind `sagd eval`: samples and a reference named as the CLI names them
//! (files, folders, dataset specs, statistics) → [`evaluate`] → `metrics.json`, `spectra.png`
//! and optionally the reference's Inception statistics and features.
//!
//! ```
//! use sagd_eval::Metric;
//! use sagd_runs::eval::{EvalRequest, eval_run};
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

use sagd_core::DeviceSpec;
use sagd_datasets::{Dataset, Pipeline};
use sagd_eval::bootstrap::{Bootstrap, Spread};
use sagd_eval::evaluate::{EvalOptions, EvalReport, Metric, Reference, Stage, check, evaluate};
use sagd_eval::inception::{FEATURE_DIM, FidInception, INPUT_SIZE};
use sagd_eval::kid::{Kid, KidOptions};
use sagd_eval::precision_recall::PrecisionRecall;
use sagd_eval::sources::{load_images, load_reference, subset};
use sagd_eval::spectral::SpectralReport;
use sagd_eval::weights::find_weights;
use sagd_eval::{EvalError, feature_cache};
use serde::Serialize;

use crate::error::RunError;
use crate::output::{create_dir, retract_marker, write_json, write_spectral_png};

fn invalid(message: impl Into<String>) -> RunError {
    RunError::Request(message.into())
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
    /// Transforms of the samples, in order, after the `count` subset (e.g. `pad:2` for data
    /// compared as samples, `notch:a=…,b=…` to filter a band out afterwards).
    pub sample_transforms: Vec<String>,
    /// Seed of the subsets, the random transforms and KID's subsets.
    pub seed: u64,
    /// The metrics.
    pub metrics: BTreeSet<Metric>,
    /// Images used from each side (a seeded random subset of larger sets); `None`: all the
    /// samples and as many reference images.
    pub count: Option<usize>,
    /// Reference images used, when not as many as the samples (e.g. the whole test split
    /// against 1024 samples, the field's practice).
    pub reference_count: Option<ReferenceCount>,
    /// The FID Inception weights; `None`: found by [`find_weights`].
    pub inception: Option<PathBuf>,
    /// Save the reference's Inception statistics (pytorch-fid's `.npz`) here.
    pub save_stats: Option<PathBuf>,
    /// Keep the reference images' Inception features in this `.npz` and reuse them when they
    /// are for the same images and weights ([`sagd_eval::feature_cache`]).
    pub feature_cache: Option<PathBuf>,
    /// Images per Inception batch.
    pub batch: usize,
    /// KID's subsets.
    pub kid_subsets: usize,
    /// KID's subset size (lowered, with a warning, to the smaller set's count).
    pub kid_subset_size: usize,
    /// Resamples of the samples' features for FID's and KID's sampling noise
    /// ([`sagd_eval::bootstrap`]); 0: none.
    pub bootstrap: usize,
    /// The device of the Inception network.
    pub device: DeviceSpec,
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
            sample_transforms: Vec::new(),
            seed: 0,
            metrics: Metric::ALL.into(),
            count: None,
            reference_count: None,
            inception: None,
            save_stats: None,
            feature_cache: None,
            batch: 50,
            kid_subsets: 100,
            kid_subset_size: 1000,
            bootstrap: 0,
            device: DeviceSpec::Cpu,
            out: out.into(),
            overwrite: false,
        }
    }
}

/// How many reference images an evaluation uses when not as many as the samples
/// (`--reference-count all|N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceCount {
    /// Every reference image.
    All,
    /// The first `N` (after the transforms), at least 2.
    Images(usize),
}

impl std::str::FromStr for ReferenceCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "all" {
            return Ok(Self::All);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 2 => Ok(Self::Images(n)),
            _ => Err(format!("`{s}`: expected `all` or a number of images >= 2")),
        }
    }
}

impl std::fmt::Display for ReferenceCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Images(n) => write!(f, "{n}"),
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
    /// The samples' transforms (`--sample-transform`), when any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample_transforms: Vec<String>,
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
    /// FID over resamples of the samples (`--bootstrap`): its sd is FID's sampling noise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid_bootstrap: Option<Spread>,
    /// KID (full-set unbiased MMD²) over resamples of the samples (`--bootstrap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid_bootstrap: Option<Spread>,
    /// Precision and recall.
    pub precision_recall: Option<PrecisionRecall>,
    /// Spectral metrics.
    pub spectral: Option<SpectralReport>,
    /// Spectral metrics of the samples before their clamp to [0, 1], when `samples` is a
    /// `sagd sample` folder holding `samples-raw.npy` (the same subset): what the model made,
    /// without what the clamp adds back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spectral_raw: Option<SpectralReport>,
    /// The share of sampled values the clamp changed, from that folder's `summary.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamped_fraction: Option<f64>,
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
/// [`RunError::Request`] and [`EvalError::Input`] for what was asked wrongly (a count or batch
/// of 0, an existing `metrics.json` without `overwrite`, no weights found, inputs the metrics
/// cannot compare); [`RunError::About`] wraps an error reading the samples, the reference, the
/// weights or writing the statistics, naming the flag; the device, dataset, I/O and figure
/// errors otherwise.
///
/// See the [module docs](self) for an example.
pub fn eval_run(
    req: &EvalRequest,
    progress: &mut dyn FnMut(Stage, usize, usize),
) -> Result<EvalRun, RunError> {
    check_request(req)?;
    let metrics_path = req.out.join("metrics.json");
    let needs_inception = req.metrics.iter().any(|m| m.needs_inception());
    let weights = if needs_inception {
        Some(find_weights(req.inception.as_deref())?)
    } else {
        None
    };
    check_inception_outputs(req, needs_inception)?;
    let device = req.device.open()?;
    let pipeline = Pipeline::parse(&req.transforms)?;
    let (samples, reference) = load_inputs(req, &pipeline)?;
    let mut options = options(req);
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
        Some(path) => Some(
            FidInception::load(path, &device)
                .map_err(|e| RunError::from(e).about("--inception"))?,
        ),
        None => None,
    };
    retract_marker(&metrics_path)?;
    let cache = CachedReference::open(req, model.as_ref(), &reference, &mut options);
    let started = Instant::now();
    let mut report = evaluate(&samples, &reference, model.as_ref(), &options, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    report.warnings.extend(cache.warning.clone());
    create_dir(&req.out)?;
    let spectra_png = write_outputs(req, &report, &cache)?;
    let mut summary = summary(req, &report, model.as_ref(), seconds, spectra_png, &cache);
    if req.metrics.contains(&Metric::Spectral)
        && let Reference::Images(reference) = &reference
    {
        (summary.spectral_raw, summary.clamped_fraction) =
            raw_spectral(req, samples.len(), reference)?;
    }
    write_json(&metrics_path, &summary)?;
    Ok(EvalRun {
        summary,
        report,
        metrics_path,
    })
}

/// `req.sample_transforms` applied to (every one of) `samples`; errors name the flag.
fn transform_samples(req: &EvalRequest, samples: Dataset) -> Result<Dataset, RunError> {
    if req.sample_transforms.is_empty() {
        return Ok(samples);
    }
    let about = |e: sagd_datasets::DatasetError| RunError::from(e).about("--sample-transform");
    let pipeline = Pipeline::parse(&req.sample_transforms).map_err(about)?;
    if pipeline.scales() {
        return Err(invalid(
            "--sample-transform scale maps images to [-1, 1]; evaluation compares images in \
             [0, 1] (leave `scale` out)",
        ));
    }
    let n = samples.len();
    pipeline.apply_to(&samples, n, req.seed).map_err(about)
}

/// The spectral metrics of a `sagd sample` folder's unclamped samples (`samples-raw.npy`, the
/// same seeded subset of `count` as the clamped ones) and its clamped share; `None`s for
/// other samples.
fn raw_spectral(
    req: &EvalRequest,
    count: usize,
    reference: &Dataset,
) -> Result<(Option<SpectralReport>, Option<f64>), RunError> {
    let folder = Path::new(&req.samples);
    let raw_path = folder.join("samples-raw.npy");
    if !folder.is_dir() || !raw_path.is_file() {
        return Ok((None, None));
    }
    let shown = raw_path.display().to_string();
    let raw = load_images(&shown).map_err(|e| RunError::from(e).about(shown.clone()))?;
    let raw = transform_samples(req, subset(raw, count, req.seed))?;
    let report = sagd_eval::spectral::spectral(&raw, reference)
        .map_err(|e| RunError::from(e).about(shown))?;
    let clamped = std::fs::read_to_string(folder.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.get("clipped_fraction")
                .and_then(serde_json::Value::as_f64)
        });
    Ok((Some(report), clamped))
}

/// Refuses, before any work, a count or batch of 0, an `--out` that is a file, a
/// `--save-stats`/`--feature-cache` path outside an existing folder, and an existing
/// `metrics.json` without `overwrite`.
fn check_request(req: &EvalRequest) -> Result<(), RunError> {
    if req.count == Some(0) {
        return Err(invalid("--count must be at least 1"));
    }
    if req.batch == 0 {
        return Err(invalid("--batch must be at least 1"));
    }
    if req.bootstrap == 1 {
        return Err(invalid(
            "--bootstrap 1: a spread needs at least 2 resamples (0 turns it off)",
        ));
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
    Ok(())
}

/// `--save-stats` and `--feature-cache` keep Inception outputs: they need a metric that uses
/// the network.
fn check_inception_outputs(req: &EvalRequest, needs_inception: bool) -> Result<(), RunError> {
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
    Ok(())
}

/// The samples (a seeded subset of `count`) and the reference (its first `count` images after
/// the transforms, or statistics).
fn load_inputs(req: &EvalRequest, pipeline: &Pipeline) -> Result<(Dataset, Reference), RunError> {
    let about = |arg: String| move |e: EvalError| RunError::from(e).about(arg);
    let samples = load_images(&req.samples).map_err(about(format!("--samples {}", req.samples)))?;
    if let Some(n) = req.count
        && n > samples.len()
    {
        return Err(invalid(format!(
            "--count {n}, but the samples hold {} images",
            samples.len()
        )));
    }
    let count = req.count.unwrap_or(samples.len());
    let samples = transform_samples(req, subset(samples, count, req.seed))?;
    let reference_count = match req.reference_count {
        None => Some(count),
        Some(ReferenceCount::All) => None,
        Some(ReferenceCount::Images(n)) => Some(n),
    };
    let reference = load_reference(&req.reference, pipeline, reference_count, req.seed)
        .map_err(about(format!("--reference {}", req.reference)))?;
    Ok((samples, reference))
}

/// The evaluation's options from the request.
fn options(req: &EvalRequest) -> EvalOptions {
    EvalOptions {
        metrics: req.metrics.clone(),
        batch: req.batch,
        kid: KidOptions {
            subsets: req.kid_subsets,
            subset_size: req.kid_subset_size,
            seed: req.seed,
        },
        pr_k: 3,
        reference_features: None,
        bootstrap: (req.bootstrap > 0).then_some(Bootstrap {
            resamples: req.bootstrap,
            seed: req.seed,
        }),
    }
}

/// The reference features' cache of an evaluation (`--feature-cache`): whether it held the
/// features of these images and weights, its fingerprint, and why it was not used.
struct CachedReference {
    print: Option<[u8; 32]>,
    used: bool,
    warning: Option<String>,
}

impl CachedReference {
    /// Reads the cache into `options.reference_features` when it holds these images' features
    /// under these weights.
    fn open(
        req: &EvalRequest,
        model: Option<&FidInception>,
        reference: &Reference,
        options: &mut EvalOptions,
    ) -> Self {
        let mut cache = Self {
            print: None,
            used: false,
            warning: None,
        };
        let (Some(path), Some(model), Reference::Images(r)) =
            (&req.feature_cache, model, reference)
        else {
            return cache;
        };
        let print = feature_cache::fingerprint(r, &model.info().sha256);
        match feature_cache::load(path, &print, FEATURE_DIM) {
            Ok(features) => options.reference_features = features,
            Err(why) => {
                cache.warning = Some(format!(
                    "--feature-cache {}: {why}; the reference's features were extracted again \
                     and the file replaced",
                    path.display()
                ))
            }
        }
        cache.used = options.reference_features.is_some();
        cache.print = Some(print);
        cache
    }
}

/// Writes the reference's statistics, the feature cache and `spectra.png` as asked; returns the
/// figure's path when drawn.
fn write_outputs(
    req: &EvalRequest,
    report: &EvalReport,
    cache: &CachedReference,
) -> Result<Option<PathBuf>, RunError> {
    let about = |arg: String| move |e: EvalError| RunError::from(e).about(arg);
    if let (Some(path), Some(stats)) = (&req.save_stats, &report.reference_stats) {
        stats
            .save_npz(path)
            .map_err(about(format!("--save-stats {}", path.display())))?;
    }
    if let (Some(path), Some(print), Some(features), false) = (
        &req.feature_cache,
        &cache.print,
        &report.reference_features,
        cache.used,
    ) {
        feature_cache::save(path, features, print)
            .map_err(about(format!("--feature-cache {}", path.display())))?;
    }
    let Some(spectral) = &report.spectral else {
        return Ok(None);
    };
    let plot_path = req.out.join("spectra.png");
    write_spectral_png(&plot_path, spectral)?;
    Ok(Some(plot_path))
}

/// `metrics.json`.
fn summary(
    req: &EvalRequest,
    report: &EvalReport,
    model: Option<&FidInception>,
    seconds: f64,
    spectra_png: Option<PathBuf>,
    cache: &CachedReference,
) -> MetricsSummary {
    MetricsSummary {
        samples: req.samples.clone(),
        reference: req.reference.clone(),
        reference_transforms: req.transforms.clone(),
        sample_transforms: req.sample_transforms.clone(),
        sample_count: report.sample_count,
        reference_count: report.reference_count,
        metrics: req.metrics.iter().map(|m| m.name().to_string()).collect(),
        count: req.count,
        fid: report.fid,
        kid: report.kid,
        fid_bootstrap: report.fid_bootstrap,
        kid_bootstrap: report.kid_bootstrap,
        precision_recall: report.precision_recall,
        spectral: report.spectral.clone(),
        spectral_raw: None,
        clamped_fraction: None,
        warnings: report.warnings.clone(),
        feature_seconds: report.feature_seconds,
        feature_images_per_s: report.feature_images_per_s,
        device: req.device.to_string(),
        seed: req.seed,
        seconds,
        inception: model.map(|model| InceptionSummary::of(model, req.batch)),
        spectra_png,
        saved_stats: req.save_stats.clone(),
        feature_cache: req.feature_cache.as_ref().map(|path| FeatureCacheSummary {
            path: path.clone(),
            used: cache.used,
        }),
    }
}

impl InceptionSummary {
    fn of(model: &FidInception, batch: usize) -> Self {
        let info = model.info();
        Self {
            weights: info.path.clone(),
            sha256: info.sha256.clone(),
            format: info.format.name().to_string(),
            features: "pool3 (2048-d), pytorch-fid's FID Inception-v3".to_string(),
            input: format!(
                "8-bit quantised (floor(255 x + 0.5)), /255, bilinear resize to \
                 {INPUT_SIZE}x{INPUT_SIZE} with half-pixel centres and no antialiasing \
                 (align_corners = false), 2x - 1; grey copied to 3 channels"
            ),
            batch,
        }
    }
}
