//! The experiment file: its kind, arms, seeds and the `[sample]`, `[eval]`, `[emergence]`
//! and `[plot]` sections, as written.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What an experiment measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExperimentKind {
    /// Train, sample and evaluate (FID, KID, spectral metrics) every arm.
    Sweep,
    /// Train with many checkpoints and measure per-mode learning curves (`sagd theory
    /// emergence`).
    Emergence,
}

/// `[sample]`: how a `sweep` samples each trained model (`sagd sample`'s flags).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSettings {
    /// Sampler (`ddim`, `ddpm`, `euler`, `heun`).
    #[serde(default = "default_sampler")]
    pub sampler: String,
    /// Sampler steps.
    #[serde(default = "default_sampler_steps")]
    pub steps: usize,
    /// Images per model.
    pub count: usize,
    /// Images per sampler batch (the numbers depend on it: keep it fixed).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Sample the EMA weights (the usual choice) rather than the raw ones.
    #[serde(default = "yes")]
    pub ema: bool,
}

/// `[eval]`: what a `sweep`'s samples are compared with (`sagd eval`'s flags).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSettings {
    /// The reference: a dataset spec (relative paths from the working directory).
    pub reference: String,
    /// Its transforms (e.g. `pad:2`).
    #[serde(default)]
    pub transforms: Vec<String>,
    /// Images of each side (`--count`); all samples when absent.
    pub count: Option<usize>,
    /// Reference images, when not as many as the samples (`--reference-count`): `"all"` or
    /// a number, as a string.
    pub reference_count: Option<String>,
    /// Metrics (`--metrics`).
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Seed of the reference subset and KID's subsets: the same for every arm, so every arm
    /// meets the same reference images.
    #[serde(default)]
    pub seed: u64,
    /// KID's subset size (`--kid-subset-size`; lowered to the counts when larger).
    pub kid_subset_size: Option<usize>,
    /// Resamples of each model's samples for FID's and KID's sampling noise (`--bootstrap`;
    /// 0 or absent: none).
    #[serde(default)]
    pub bootstrap: usize,
}

/// `[emergence]`: how an `emergence` experiment measures learning curves (`sagd theory
/// emergence`'s flags).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmergenceSettings {
    /// Samples per checkpoint.
    #[serde(default = "default_emergence_samples")]
    pub samples: usize,
    /// Sampler.
    #[serde(default = "default_sampler")]
    pub sampler: String,
    /// Sampler steps.
    #[serde(default = "default_sampler_steps")]
    pub steps: usize,
    /// Sample the EMA weights instead of the raw ones.
    #[serde(default)]
    pub ema: bool,
    /// Leave out modes that start within this factor of their target.
    #[serde(default = "default_exclude")]
    pub exclude: f64,
    /// Training images used for the modes' target variances.
    pub images: Option<usize>,
}

/// `[plot]`: the sweep's figure.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSettings {
    /// Label of the x axis (the arms' `x`).
    #[serde(default = "default_x_label")]
    pub x_label: String,
}

impl Default for PlotSettings {
    fn default() -> Self {
        Self {
            x_label: default_x_label(),
        }
    }
}

/// `[[arm]]`: one trained configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Its name: the folder of its runs (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// Its run config (`sagd train --config`), relative to the experiment file; left out for
    /// an arm that evaluates another arm's samples (`samples_of`).
    pub config: Option<PathBuf>,
    /// Evaluate the samples of this other arm (same seed) instead of training a model: with
    /// `sample_transforms`, e.g. a model's samples with a band filtered out afterwards.
    pub samples_of: Option<String>,
    /// Sample this other arm's run (same seed) instead of training one: with `step`, an
    /// earlier checkpoint of it (e.g. half-way, to see whether a contrast holds as training
    /// goes on).
    pub run_of: Option<String>,
    /// The checkpoint step to sample (default: the run's last); the run must keep it
    /// (`checkpoint_every`, `checkpoint_at` and `keep_checkpoints` of its config).
    pub step: Option<u64>,
    /// Transforms of this arm's samples before evaluation (`sagd eval --sample-transform`).
    #[serde(default)]
    pub sample_transforms: Vec<String>,
    /// Its place on the sweep figure's x axis.
    pub x: Option<f64>,
    /// The line it belongs to on the figure (default: one line for all arms).
    pub series: Option<String>,
    /// A unit-radius band `[a, b]` whose energy (samples over reference) the table reports;
    /// it must be one of the ten bands `sagd eval` measures (`[0.1k, 0.1(k+1)]`).
    pub band: Option<[f64; 2]>,
    /// A short description for the tables (default: the name).
    pub label: Option<String>,
}

/// A sweep's metric that a contrast compares, as written (`fid`, `kid`,
/// `log-spectral-distance`, `band-ratio`, and the last two of the samples before their clamp,
/// `raw-log-spectral-distance`, `raw-band-ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContrastMetric {
    /// FID.
    Fid,
    /// KID (mean over subsets).
    Kid,
    /// The log-spectral distance.
    LogSpectralDistance,
    /// The energy in the arm's `band`, samples over reference (both arms need the same band).
    BandRatio,
    /// The log-spectral distance of the samples before the clamp to [0, 1].
    RawLogSpectralDistance,
    /// `band-ratio` of the samples before the clamp.
    RawBandRatio,
}

impl ContrastMetric {
    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fid => "fid",
            Self::Kid => "kid",
            Self::LogSpectralDistance => "log-spectral-distance",
            Self::BandRatio => "band-ratio",
            Self::RawLogSpectralDistance => "raw-log-spectral-distance",
            Self::RawBandRatio => "raw-band-ratio",
        }
    }
}

/// Which way a contrast's metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    /// Lower is better (FID, KID, distances).
    Lower,
    /// Higher is better.
    Higher,
}

/// `[[contrast]]`: a paired comparison of two arms on one metric, seed by seed (the arms
/// share each seed's initial weights, data order and noise).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contrast {
    /// The arm under test (its name).
    pub arm: String,
    /// The arm it is compared with.
    pub baseline: String,
    /// The metric.
    pub metric: ContrastMetric,
    /// Which way the metric improves.
    pub better: Better,
    /// A short description for the tables (default: `arm − baseline`).
    pub label: Option<String>,
}

impl Arm {
    /// An arm named `name` with nothing else set (a table row for data that no arm made).
    pub fn default_named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            config: None,
            samples_of: None,
            run_of: None,
            step: None,
            sample_transforms: Vec::new(),
            x: None,
            series: None,
            band: None,
            label: None,
        }
    }
}

/// `[[floor]]`: data evaluated as if they were samples (`sagd eval --samples SPEC`), against
/// the same reference at the same counts: the value a perfect model would get at this N (the
/// train split against the test split), or what a transform of the data costs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    /// Its name: the folder `floors/NAME` (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// The images: a dataset spec (relative paths from the working directory).
    pub samples: String,
    /// Their transforms (`--sample-transform`, e.g. `pad:2`).
    #[serde(default)]
    pub transforms: Vec<String>,
    /// A short description for the tables (default: the name).
    pub label: Option<String>,
}

/// The experiment file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Title of the results.
    pub title: String,
    /// What it measures.
    pub kind: ExperimentKind,
    /// A paragraph for the results (markdown).
    #[serde(default)]
    pub description: String,
    /// Output folder (relative to the working directory); default `runs/<file stem>`.
    pub out: Option<PathBuf>,
    /// Seeds: each arm is trained, sampled and evaluated once per seed (`sagd train --seed`).
    pub seeds: Vec<u64>,
    /// Sampling (sweep).
    pub sample: Option<SampleSettings>,
    /// Evaluation (sweep).
    pub eval: Option<EvalSettings>,
    /// Learning curves (emergence).
    pub emergence: Option<EmergenceSettings>,
    /// The figure (sweep).
    #[serde(default)]
    pub plot: PlotSettings,
    /// The arms, in table order.
    #[serde(rename = "arm")]
    pub arms: Vec<Arm>,
    /// The data against the reference (sweep), evaluated before any arm.
    #[serde(rename = "floor", default)]
    pub floors: Vec<Floor>,
    /// The paired comparisons (sweep), in table order; their p-values are Holm-adjusted
    /// together.
    #[serde(rename = "contrast", default)]
    pub contrasts: Vec<Contrast>,
}

fn default_sampler() -> String {
    "ddim".into()
}
fn default_sampler_steps() -> usize {
    25
}
fn default_batch() -> usize {
    64
}
fn yes() -> bool {
    true
}
fn default_metrics() -> String {
    "fid,kid,spectral".into()
}
fn default_emergence_samples() -> usize {
    256
}
fn default_exclude() -> f64 {
    2.0
}
fn default_x_label() -> String {
    "x".into()
}
