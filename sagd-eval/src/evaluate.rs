//! The whole evaluation of a set of samples against a reference: the pipeline behind
//! `sagd eval`, callable from Rust.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use sagd_datasets::stats::mean_pixel;
use sagd_datasets::{Dataset, Pixels};
use serde::Serialize;

use crate::bootstrap::{Bootstrap, Spread, fid_spread, kid_spread};
use crate::error::EvalError;
use crate::features::{Features, extract, unit_range_violations};
use crate::fid::{GaussianStats, frechet_distance};
use crate::inception::{FEATURE_DIM, FidInception};
use crate::kid::{Kid, KidOptions, kid};
use crate::precision_recall::{PrecisionRecall, precision_recall};
use crate::spectral::{SpectralReport, spectral};

/// A metric `sagd eval` can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Fréchet Inception Distance ([`mod@crate::fid`]).
    Fid,
    /// Kernel Inception Distance ([`mod@crate::kid`]).
    Kid,
    /// Improved precision and recall ([`mod@crate::precision_recall`]).
    PrecisionRecall,
    /// The frequency metrics ([`crate::spectral`]); no network.
    Spectral,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 4] = [Self::Fid, Self::Kid, Self::PrecisionRecall, Self::Spectral];

    /// The name on the command line: `fid`, `kid`, `pr`, `spectral`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fid => "fid",
            Self::Kid => "kid",
            Self::PrecisionRecall => "pr",
            Self::Spectral => "spectral",
        }
    }

    /// Whether it needs Inception features.
    pub fn needs_inception(self) -> bool {
        self != Self::Spectral
    }

    /// Whether it needs the reference's images (not only its statistics).
    pub fn needs_reference_images(self) -> bool {
        self != Self::Fid
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.into_iter().map(Metric::name).collect();
                EvalError::input(
                    "metrics",
                    format!("unknown metric `{s}`; expected one of {}", names.join(", ")),
                )
            })
    }
}

/// Parses a comma-separated metric list (`fid,kid,pr,spectral`), without duplicates.
///
/// # Errors
/// [`EvalError::Input`] for an unknown name or an empty list.
pub fn parse_metrics(list: &str) -> Result<BTreeSet<Metric>, EvalError> {
    let metrics = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<BTreeSet<Metric>, _>>()?;
    if metrics.is_empty() {
        let names: Vec<&str> = Metric::ALL.into_iter().map(Metric::name).collect();
        return Err(EvalError::input(
            "metrics",
            format!("an empty list; expected some of {}", names.join(", ")),
        ));
    }
    Ok(metrics)
}

/// What the samples are compared with.
#[derive(Debug, Clone)]
pub enum Reference {
    /// Reference images.
    Images(Dataset),
    /// Precomputed Inception statistics (pytorch-fid's `.npz`): FID only.
    Stats(GaussianStats),
}

/// The settings of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The metrics to compute.
    pub metrics: BTreeSet<Metric>,
    /// Images per Inception batch.
    pub batch: usize,
    /// KID's subsets (their size is lowered to the smaller set's count when larger).
    pub kid: KidOptions,
    /// The neighbour of precision and recall's radii.
    pub pr_k: usize,
    /// The reference images' Inception features, already extracted (one row per reference
    /// image, in order; see [`feature_cache`](crate::feature_cache)): used instead of
    /// extracting them again. Ignored for a statistics reference.
    pub reference_features: Option<Features>,
    /// Resample the samples' features to measure FID's and KID's sampling noise
    /// ([`crate::bootstrap`]); `None`: no resampling.
    pub bootstrap: Option<Bootstrap>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            metrics: Metric::ALL.into_iter().collect(),
            batch: 50,
            kid: KidOptions::default(),
            pr_k: 3,
            reference_features: None,
            bootstrap: None,
        }
    }
}

/// A stage of [`evaluate`], for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Inception features of the samples.
    SampleFeatures,
    /// Inception features of the reference images.
    ReferenceFeatures,
}

/// Everything [`evaluate`] found.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Number of samples evaluated.
    pub sample_count: usize,
    /// Number of reference images (None for a statistics reference).
    pub reference_count: Option<usize>,
    /// FID.
    pub fid: Option<f64>,
    /// KID.
    pub kid: Option<Kid>,
    /// Precision and recall.
    pub precision_recall: Option<PrecisionRecall>,
    /// Spectral metrics.
    pub spectral: Option<SpectralReport>,
    /// FID over resamples of the samples (`options.bootstrap`).
    pub fid_bootstrap: Option<Spread>,
    /// KID (full-set unbiased MMD²) over resamples of the samples (`options.bootstrap`).
    pub kid_bootstrap: Option<Spread>,
    /// Wall time of the Inception feature extraction (both sets), seconds.
    pub feature_seconds: f64,
    /// Images through the network per second (both sets together).
    pub feature_images_per_s: Option<f64>,
    /// Warnings a user should read (N below the feature dimension, a lowered KID subset).
    pub warnings: Vec<String>,
    /// The reference's Inception statistics, when they were computed or given (for
    /// `--save-stats`).
    #[serde(skip)]
    pub reference_stats: Option<GaussianStats>,
    /// The reference images' Inception features, when they were extracted or given.
    #[serde(skip)]
    pub reference_features: Option<Features>,
}

/// Checks `samples` against `reference` and `options` before any work (`has_inception`: whether
/// a network will be there): the error a user would otherwise meet after minutes of feature
/// extraction.
///
/// # Errors
/// [`EvalError::Input`] for fewer than 2 images in a set, differing image shapes, channels other
/// than 1 or 3 for Inception metrics, float values outside `[0, 1]` (beyond half an 8-bit step)
/// for Inception metrics, a metric that needs reference images against statistics, a statistics
/// file of another dimension, or no network when one is needed.
pub fn check(
    samples: &Dataset,
    reference: &Reference,
    has_inception: bool,
    options: &EvalOptions,
) -> Result<(), EvalError> {
    let needs_inception = options.metrics.iter().any(|m| m.needs_inception());
    if needs_inception && !has_inception {
        return Err(EvalError::input(
            "metrics",
            "fid, kid and pr need the Inception network; none was loaded",
        ));
    }
    let count_check = |d: &Dataset, what: &str| {
        if d.len() < 2 {
            Err(EvalError::input(
                what,
                format!("{} image(s); a metric needs at least 2", d.len()),
            ))
        } else {
            Ok(())
        }
    };
    count_check(samples, "samples")?;
    let [c, h, w] = samples.shape();
    match reference {
        Reference::Images(r) => {
            count_check(r, "reference")?;
            let [rc, rh, rw] = r.shape();
            if [c, h, w] != [rc, rh, rw] {
                return Err(EvalError::input(
                    "reference",
                    format!(
                        "{rc}x{rh}x{rw} images, but the samples are {c}x{h}x{w} (channels x \
                         height x width); add --transform to the reference (e.g. pad:2 or \
                         resize:{h}x{w}, channels:{c}) so that they match"
                    ),
                ));
            }
        }
        Reference::Stats(stats) => {
            if let Some(m) = options.metrics.iter().find(|m| m.needs_reference_images()) {
                return Err(EvalError::input(
                    "reference",
                    format!("statistics (mu, sigma) give FID only; `{m}` needs reference images"),
                ));
            }
            if stats.dim() != FEATURE_DIM {
                return Err(EvalError::input(
                    "reference",
                    format!(
                        "statistics of dimension {}; the Inception pool3 features have {FEATURE_DIM}",
                        stats.dim()
                    ),
                ));
            }
        }
    }
    if needs_inception {
        if c != 1 && c != 3 {
            return Err(EvalError::input(
                "samples",
                format!("{c} channels; the Inception network takes 1 (grey) or 3 (RGB)"),
            ));
        }
        let mut sets = vec![("samples", samples)];
        if let Reference::Images(r) = reference {
            sets.push(("reference", r));
        }
        for (what, d) in sets {
            let (outside, lo, hi) = unit_range_violations(d);
            if outside > 0 {
                return Err(EvalError::input(
                    what,
                    format!(
                        "values in [{lo}, {hi}] ({outside} outside [0, 1]); Inception metrics \
                         take images in [0, 1], as `sagd sample` writes them (map [-1, 1] data \
                         with (x + 1) / 2; after a filter such as `notch`, add the transform \
                         `clamp`)"
                    ),
                ));
            }
        }
    }
    if options.batch == 0 {
        return Err(EvalError::input(
            "batch",
            "0 images per batch; expected >= 1",
        ));
    }
    if let Reference::Images(r) = reference {
        let smallest = samples.len().min(r.len());
        if options.metrics.contains(&Metric::Kid) {
            if options.kid.subsets == 0 {
                return Err(EvalError::input("KID", "0 subsets; expected at least 1"));
            }
            if options.kid.subset_size < 2 {
                return Err(EvalError::input(
                    "KID",
                    format!(
                        "subsets of {}; the unbiased MMD² needs at least 2",
                        options.kid.subset_size
                    ),
                ));
            }
        }
        if options.metrics.contains(&Metric::PrecisionRecall)
            && (options.pr_k == 0 || smallest <= options.pr_k)
        {
            return Err(EvalError::input(
                "precision/recall",
                format!(
                    "k = {} needs k >= 1 and more than k images per set (the smaller has \
                     {smallest}); leave pr out of --metrics",
                    options.pr_k
                ),
            ));
        }
    }
    Ok(())
}

/// Evaluates `samples` against `reference` (see [`check`] for what is refused). Inception
/// features are extracted once per set with `inception` (needed for FID, KID and precision/
/// recall); `progress(stage, done, total)` is called after each batch.
///
/// # Errors
/// Those of [`check`], and of the metrics.
pub fn evaluate(
    samples: &Dataset,
    reference: &Reference,
    inception: Option<&FidInception>,
    options: &EvalOptions,
    progress: &mut dyn FnMut(Stage, usize, usize),
) -> Result<EvalReport, EvalError> {
    check(samples, reference, inception.is_some(), options)?;
    let metrics = &options.metrics;
    let mut warnings = Vec::new();
    let mut report = EvalReport {
        sample_count: samples.len(),
        reference_count: match reference {
            Reference::Images(r) => Some(r.len()),
            Reference::Stats(_) => None,
        },
        fid: None,
        kid: None,
        precision_recall: None,
        spectral: None,
        fid_bootstrap: None,
        kid_bootstrap: None,
        feature_seconds: 0.0,
        feature_images_per_s: None,
        warnings: Vec::new(),
        reference_stats: None,
        reference_features: None,
    };
    warnings.extend(input_warnings(samples, reference, inception, metrics));
    if let Some(model) = inception.filter(|_| metrics.iter().any(|m| m.needs_inception())) {
        let started = Instant::now();
        let sample_features = extract(model, samples, options.batch, &mut |done, total| {
            progress(Stage::SampleFeatures, done, total)
        })?;
        let given = options
            .reference_features
            .as_ref()
            .filter(|f| matches!(reference, Reference::Images(r) if r.len() == f.count));
        let reference_features: Option<Features> = match (reference, given) {
            (Reference::Images(_), Some(f)) => Some(f.clone()),
            (Reference::Images(r), None) => {
                Some(extract(model, r, options.batch, &mut |done, total| {
                    progress(Stage::ReferenceFeatures, done, total)
                })?)
            }
            (Reference::Stats(_), _) => None,
        };
        report.feature_seconds = started.elapsed().as_secs_f64();
        let extracted = if given.is_some() {
            0
        } else {
            reference_features.as_ref().map_or(0, |f| f.count)
        };
        let images = sample_features.count + extracted;
        report.feature_images_per_s = Some(images as f64 / report.feature_seconds.max(1e-9));
        let sample_stats = GaussianStats::from_features(&sample_features)?;
        let reference_stats = match (reference, &reference_features) {
            (Reference::Stats(s), _) => s.clone(),
            (_, Some(f)) => GaussianStats::from_features(f)?,
            (Reference::Images(_), None) => unreachable!("features of reference images"),
        };
        let smallest = sample_stats
            .count
            .into_iter()
            .chain(reference_stats.count)
            .min()
            .unwrap_or(0);
        if metrics.contains(&Metric::Fid) {
            if smallest < FEATURE_DIM {
                warnings.push(format!(
                    "N = {smallest} < {FEATURE_DIM} (the feature dimension): the covariance is \
                     singular and FID is biased upwards; compare FIDs only at equal N, and use \
                     N >= 2048 (the field reports 10k or 50k) for numbers to publish"
                ));
            }
            report.fid = Some(frechet_distance(&sample_stats, &reference_stats)?);
            if let Some(b) = options.bootstrap {
                report.fid_bootstrap = Some(fid_spread(&sample_features, &reference_stats, b)?);
            }
        }
        if let Some(reference_features) = &reference_features {
            let device = model.device();
            if metrics.contains(&Metric::Kid) {
                let mut kid_options = options.kid;
                let most = sample_features.count.min(reference_features.count);
                if kid_options.subset_size > most {
                    warnings.push(format!(
                        "KID subsets of {most} instead of {}: a set has only {most} images",
                        kid_options.subset_size
                    ));
                    kid_options.subset_size = most;
                }
                report.kid = Some(kid(
                    &sample_features,
                    reference_features,
                    kid_options,
                    device,
                )?);
                if let Some(b) = options.bootstrap {
                    report.kid_bootstrap =
                        Some(kid_spread(&sample_features, reference_features, b)?);
                }
            }
            if metrics.contains(&Metric::PrecisionRecall) {
                report.precision_recall = Some(precision_recall(
                    &sample_features,
                    reference_features,
                    options.pr_k,
                    device,
                )?);
            }
        }
        report.reference_stats = Some(reference_stats);
        report.reference_features = reference_features;
    }
    if metrics.contains(&Metric::Spectral)
        && let Reference::Images(r) = reference
    {
        report.spectral = Some(spectral(samples, r)?);
    }
    warnings.extend(degenerate_value_notes(samples, &report));
    report.warnings = warnings;
    Ok(report)
}

/// Warnings about the inputs, before any metric: sets of different pixel ranges, weights that
/// are not the published ones, FID at unequal counts.
fn input_warnings(
    samples: &Dataset,
    reference: &Reference,
    inception: Option<&FidInception>,
    metrics: &BTreeSet<Metric>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Reference::Images(r) = reference {
        // Both sets should hold images of the same range; the spectral metrics take any values
        // and cannot tell [-1, 1] from [0, 1] data.
        let (ms, mr) = (mean_pixel(samples), mean_pixel(r));
        if (ms - mr).abs() > 0.25 {
            warnings.push(format!(
                "the mean pixel of the samples ({ms:.3}) and of the reference ({mr:.3}) differ \
                 by more than 0.25: are both in the same range ([0, 1]; map [-1, 1] data with \
                 (x + 1) / 2)?"
            ));
        }
    }
    if let Some(model) = inception
        && !model.info().is_published()
    {
        warnings.push(format!(
            "the weights' SHA-256 ({}…) is neither pt_inception-2015-12-05.safetensors's nor \
             pytorch-fid's pt_inception-2015-12-05-6726825d.pth's: FIDs compare only with the \
             same weights",
            &model.info().sha256[..16]
        ));
    }
    if let Reference::Images(r) = reference
        && r.len() != samples.len()
        && metrics.contains(&Metric::Fid)
    {
        warnings.push(format!(
            "{} samples against {} reference images: FID depends on N, compare FIDs only at \
             equal counts",
            samples.len(),
            r.len()
        ));
    }

    warnings
}

/// Explanations of values that look wrong but follow from the inputs: samples that are all one
/// image (a collapsed model or sampler), a NaN log-RMS mode-variance error, a negative KID.
fn degenerate_value_notes(samples: &Dataset, report: &EvalReport) -> Vec<String> {
    let mut notes = Vec::new();
    if samples.len() > 1 && all_the_same_image(samples) {
        notes.push(format!(
            "all {} samples are the same image (a collapsed model or sampler?): they have no \
             spread, so recall, KID and the mode variances compare nothing but that one image",
            samples.len()
        ));
    }
    if let Some(s) = &report.spectral {
        let undefined = [
            (
                s.log_spectral_distance,
                "the log-spectral distance is NaN: some radial band holds no energy in the \
                 samples or the reference (all-zero images?), so its log ratio is undefined",
            ),
            (
                s.mode_variance_relative_error,
                "the relative mode-variance error is NaN: the reference does not vary in any \
                 mode, so there is nothing to be relative to",
            ),
            (
                s.mode_variance_log_rms,
                "the log-RMS mode-variance error is NaN: no mode has a positive variance in both \
                 sets (the samples or the reference do not vary), so the log ratio is undefined",
            ),
        ];
        notes.extend(
            undefined
                .into_iter()
                .filter(|(value, _)| value.is_nan())
                .map(|(_, note)| note.to_string()),
        );
    }
    if let Some(kid) = &report.kid
        && kid.mean < 0.0
    {
        notes.push(format!(
            "KID is negative ({:.6}): the unbiased estimator (MMD² without the diagonal terms) \
             scatters around 0 when both sets come from one distribution; read it as 0 within \
             its spread",
            kid.mean
        ));
    }
    notes
}

/// Whether every image of `set` equals the first, value for value.
fn all_the_same_image(set: &Dataset) -> bool {
    let n = set.image_len().max(1);
    fn same<T: PartialEq>(values: &[T], n: usize) -> bool {
        let first = &values[..n.min(values.len())];
        values.chunks(n).all(|image| image == first)
    }
    match set.pixels() {
        Pixels::U8(v) => same(v, n),
        Pixels::F32(v) => same(v, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(values: Vec<f32>) -> Dataset {
        Dataset::new("t", [1, 4, 4], Pixels::F32(values), None).unwrap()
    }

    fn spectral_only() -> EvalOptions {
        EvalOptions {
            metrics: [Metric::Spectral].into_iter().collect(),
            ..EvalOptions::default()
        }
    }

    /// The spectral metrics of `samples` against `reference`, and the warnings as one text.
    fn spectral_eval(samples: &Dataset, reference: &Dataset) -> (SpectralReport, String) {
        let reference = Reference::Images(reference.clone());
        let report = evaluate(
            samples,
            &reference,
            None,
            &spectral_only(),
            &mut |_, _, _| {},
        )
        .unwrap();
        (report.spectral.unwrap(), report.warnings.join("\n"))
    }

    #[test]
    fn collapsed_samples_and_their_nan_are_explained() {
        let same = images(vec![0.5; 8 * 16]);
        let zeros = images(vec![0.0; 8 * 16]);
        let varied = images(
            (0..8 * 16)
                .map(|i| ((i * 37) % 101) as f32 / 101.0)
                .collect(),
        );
        let (spectral, notes) = spectral_eval(&same, &varied);
        assert!(spectral.mode_variance_log_rms.is_nan());
        assert!(
            notes.contains("all 8 samples are the same image"),
            "{notes}"
        );
        assert!(
            notes.contains("log-RMS mode-variance error is NaN"),
            "{notes}"
        );
        // All-zero samples: the log-spectral distance is undefined too, and said so.
        let (spectral, notes) = spectral_eval(&zeros, &varied);
        assert!(spectral.log_spectral_distance.is_nan());
        assert!(
            notes.contains("the log-spectral distance is NaN"),
            "{notes}"
        );
        // An all-zero reference: the relative error has nothing to be relative to.
        let (spectral, notes) = spectral_eval(&varied, &zeros);
        assert!(spectral.mode_variance_relative_error.is_nan());
        assert!(
            notes.contains("the relative mode-variance error is NaN"),
            "{notes}"
        );
        // Varied samples draw no note.
        let (_, notes) = spectral_eval(&varied, &varied);
        assert!(notes.is_empty(), "{notes}");
    }

    #[test]
    fn a_negative_kid_is_explained() {
        let varied = images((0..8 * 16).map(|i| (i % 7) as f32 / 7.0).collect());
        let mut report = evaluate(
            &varied,
            &Reference::Images(varied.clone()),
            None,
            &spectral_only(),
            &mut |_, _, _| {},
        )
        .unwrap();
        let kid = |mean| Kid {
            mean,
            std: 0.01,
            subsets: 100,
            subset_size: 8,
        };
        report.kid = Some(kid(-0.056));
        let notes = degenerate_value_notes(&varied, &report).join("\n");
        assert!(notes.contains("KID is negative (-0.056000)"), "{notes}");
        report.kid = Some(kid(0.01));
        assert!(degenerate_value_notes(&varied, &report).is_empty());
    }
}
