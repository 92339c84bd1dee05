//! Experiments (`sagd experiment FILE.toml`): one TOML file names the arms (ordinary run
//! configs), the seeds, and how every trained model is sampled and evaluated; the runner trains,
//! samples and evaluates every arm and seed as ordinary `sagd` subcommands and writes the
//! tables and figures. This module is everything but the processes: the file, the plan (each
//! stage's command line and where its output goes), and the results read back from the stages'
//! own outputs (`metrics.json`, `emergence.json`, `log.csv`, `summary.json`), so that a table
//! can always be rebuilt from what is on disk.
//!
//! Two kinds:
//! - `sweep`: train → `sagd sample` → `sagd eval` per arm and seed; a table of FID, KID, the
//!   log-spectral distance and (for arms with a `band`) the energy left in that band, and a
//!   figure of a metric against each arm's `x`, one line per `series`, every seed drawn.
//! - `emergence`: train (with log-spaced checkpoints) → `sagd theory emergence` per arm and
//!   seed; a table of the fitted learning-time exponents and how spread the modes' learning
//!   times are.
//!
//! Layout under the output folder: `ARM/seed-S/run` (the run), `ARM/seed-S/samples`,
//! `ARM/seed-S/eval`, `ARM/seed-S/emergence`; `reference-features.npz` (the evaluation
//! reference's Inception features, shared by every arm); `results.md`, `results.json` and
//! `figures/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EvalError;

fn invalid(message: impl Into<String>) -> EvalError {
    EvalError::Request(message.into())
}

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
    /// Metrics (`--metrics`).
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Seed of the reference subset and KID's subsets: the same for every arm, so every arm
    /// meets the same reference images.
    #[serde(default)]
    pub seed: u64,
    /// KID's subset size (`--kid-subset-size`; lowered to the counts when larger).
    pub kid_subset_size: Option<usize>,
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
    /// Its run config (`sagd train --config`), relative to the experiment file.
    pub config: PathBuf,
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

/// An experiment file read and checked, with its paths resolved.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The file's contents.
    pub file: ExperimentFile,
    /// The file itself.
    pub path: PathBuf,
    /// Each arm's config path, as the runner passes it (the experiment file's folder joined).
    pub configs: Vec<PathBuf>,
    /// The output folder.
    pub out: PathBuf,
}

/// One arm trained with one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Index into the arms.
    pub arm: usize,
    /// The seed.
    pub seed: u64,
    /// `OUT/ARM/seed-S`.
    pub dir: PathBuf,
}

/// The stages of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// `sagd train` (resumed when the run exists; a complete run returns at once).
    Train,
    /// `sagd sample`.
    Sample,
    /// `sagd eval`.
    Eval,
    /// `sagd theory emergence`.
    Emergence,
}

impl StageKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Sample => "sample",
            Self::Eval => "eval",
            Self::Emergence => "emergence",
        }
    }
}

/// One stage of a job: the `sagd` arguments that do it and whether its output is already there.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCommand {
    /// Which stage.
    pub kind: StageKind,
    /// `sagd`'s arguments (without the program).
    pub args: Vec<String>,
    /// Its output exists and was made by exactly these arguments (a finished stage is not run
    /// again; one made with other settings is redone).
    pub done: bool,
    /// Its output exists but was made with other arguments (or by an unrecorded run).
    pub stale: bool,
    /// Its output folder, which holds the record of the arguments that made it
    /// ([`MARKER`]); `None` for training (the trainer checks its own config).
    pub out: Option<PathBuf>,
    /// The arguments as [`MARKER`] records them: paths inside the experiment's output folder
    /// written relative to it (`$OUT/…`), so that the folder's record still matches when it is
    /// named another way (`./runs/x/`, an absolute path) or copied elsewhere.
    pub record: String,
}

/// The file in a stage's output folder recording the arguments that made it, one per line.
pub const MARKER: &str = ".experiment-stage";

impl StageCommand {
    fn with_output(
        kind: StageKind,
        args: Vec<String>,
        out: PathBuf,
        present: bool,
        root: &Path,
    ) -> Self {
        let record = args
            .iter()
            .map(|arg| match Path::new(arg).strip_prefix(root) {
                Ok(rel) if !root.as_os_str().is_empty() => format!("$OUT/{}", rel.display()),
                _ => arg.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let recorded = std::fs::read_to_string(out.join(MARKER)).ok();
        // Records written before paths were made relative hold the arguments verbatim.
        let same = recorded
            .as_deref()
            .is_some_and(|r| r == record || r == args.join("\n"));
        Self {
            kind,
            done: present && same,
            stale: present && !same,
            args,
            out: Some(out),
            record,
        }
    }

    /// Records that the stage finished with its arguments (atomically).
    ///
    /// # Errors
    /// [`EvalError::Output`] when the record cannot be written.
    pub fn record_done(&self) -> Result<(), EvalError> {
        match &self.out {
            Some(out) => crate::theory::write_atomic(&out.join(MARKER), self.record.as_bytes()),
            None => Ok(()),
        }
    }
}

/// Parses a dataset spec and checks that the file or folder it reads exists (relative paths
/// from the working directory), so that a typo is refused before hours of training.
fn check_data_spec(spec: &str) -> Result<(), String> {
    let parsed = spec
        .parse::<sagd_datasets::spec::DataSpec>()
        .map_err(|e| format!("`{spec}`: {e}"))?;
    match parsed.missing_path() {
        Some(path) => Err(format!(
            "`{spec}`: {} does not exist (relative paths are read from the working directory, \
             {})",
            path.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "unknown".into())
        )),
        None => Ok(()),
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

impl Experiment {
    /// Reads and checks the experiment file at `path`; `out` replaces the file's output folder.
    ///
    /// # Errors
    /// [`EvalError::Request`] naming the file and what is wrong: unreadable, not TOML, an
    /// unknown key, no arms or seeds, a repeated or unsafe arm name, a missing arm config, a
    /// section the kind needs missing (or one it does not use present), a zero count, a band
    /// that is not one of `sagd eval`'s ten.
    pub fn load(path: &Path, out: Option<&Path>) -> Result<Self, EvalError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read experiment {shown}: {e}")))?;
        let file: ExperimentFile = toml::from_str(&text)
            .map_err(|e| invalid(format!("experiment {shown}: {}", one_line(&e.to_string()))))?;
        let bad = |message: String| invalid(format!("experiment {shown}: {message}"));
        if file.arms.is_empty() {
            return Err(bad("no [[arm]]; expected at least one".into()));
        }
        if file.seeds.is_empty() {
            return Err(bad("`seeds` is empty; expected at least one seed".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &file.seeds {
            if !seen.insert(*s) {
                return Err(bad(format!("seed {s} is listed twice in `seeds`")));
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let mut names = std::collections::BTreeSet::new();
        let mut configs = Vec::new();
        for arm in &file.arms {
            let safe = !arm.name.is_empty()
                && !arm.name.starts_with('.')
                && arm
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !safe {
                return Err(bad(format!(
                    "arm name `{}`: expected letters, digits, `.`, `_` and `-` (it names a folder)",
                    arm.name
                )));
            }
            if !names.insert(arm.name.clone()) {
                return Err(bad(format!("two arms are named `{}`", arm.name)));
            }
            let config = base.join(&arm.config);
            if !config.is_file() {
                return Err(bad(format!(
                    "arm `{}`: config {} is not a file",
                    arm.name,
                    config.display()
                )));
            }
            // The trainer would refuse a bad config only when the arm's turn comes: hours in.
            let run = sagd_models::RunConfig::from_file(&config)
                .map_err(|e| bad(format!("arm `{}`: {e}", arm.name)))?;
            check_data_spec(&run.data.spec)
                .map_err(|e| bad(format!("arm `{}`: [data] spec {e}", arm.name)))?;
            if let Some(x) = arm.x
                && !x.is_finite()
            {
                return Err(bad(format!(
                    "arm `{}`: x = {x}; expected a number",
                    arm.name
                )));
            }
            if let Some(band) = arm.band {
                band_index(band)
                    .ok_or_else(|| bad(format!("arm `{}`: {}", arm.name, band_help(band))))?;
            }
            configs.push(config);
        }
        match file.kind {
            ExperimentKind::Sweep => {
                let (Some(sample), Some(eval)) = (&file.sample, &file.eval) else {
                    return Err(bad(
                        "kind = \"sweep\" needs [sample] and [eval] sections".into()
                    ));
                };
                if file.emergence.is_some() {
                    return Err(bad("[emergence] belongs to kind = \"emergence\"".into()));
                }
                if sample.count < 2 || sample.steps == 0 || sample.batch == 0 {
                    return Err(bad(
                        "[sample] count must be at least 2, steps and batch at least 1".into(),
                    ));
                }
                sample
                    .sampler
                    .parse::<sagd_samplers::Method>()
                    .map_err(|e| bad(format!("[sample] {e}")))?;
                crate::evaluate::parse_metrics(&eval.metrics)
                    .map_err(|e| bad(format!("[eval] metrics: {e}")))?;
                sagd_datasets::transform::Pipeline::parse(&eval.transforms)
                    .map_err(|e| bad(format!("[eval] transforms: {e}")))?;
                if !Path::new(&eval.reference).exists() {
                    check_data_spec(&eval.reference).map_err(|e| {
                        bad(format!(
                            "[eval] reference {e}; expected a file, a folder or a dataset spec"
                        ))
                    })?;
                }
                if let Some(count) = eval.count
                    && (count == 0 || count > sample.count)
                {
                    return Err(bad(format!(
                        "[eval] count = {count}: expected 1 ..= [sample] count ({})",
                        sample.count
                    )));
                }
            }
            ExperimentKind::Emergence => {
                let Some(settings) = &file.emergence else {
                    return Err(bad(
                        "kind = \"emergence\" needs an [emergence] section".into()
                    ));
                };
                if file.sample.is_some() || file.eval.is_some() {
                    return Err(bad("[sample] and [eval] belong to kind = \"sweep\"".into()));
                }
                settings
                    .sampler
                    .parse::<sagd_samplers::Method>()
                    .map_err(|e| bad(format!("[emergence] {e}")))?;
                if settings.samples < 2 || settings.steps == 0 {
                    return Err(bad(
                        "[emergence] samples must be at least 2 and steps at least 1".into(),
                    ));
                }
                if !(settings.exclude.is_finite() && settings.exclude >= 1.0) {
                    return Err(bad(format!(
                        "[emergence] exclude = {}; expected a factor >= 1",
                        settings.exclude
                    )));
                }
            }
        }
        let out = match (out, &file.out) {
            (Some(o), _) => o.to_path_buf(),
            (None, Some(o)) => o.clone(),
            (None, None) => {
                let stem = path
                    .file_stem()
                    .map_or("experiment".into(), |s| s.to_string_lossy().into_owned());
                Path::new("runs").join(stem)
            }
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            configs,
            out,
        })
    }

    /// Every (arm, seed), arms in order, seeds in order within an arm; `only` keeps the arms
    /// named there (all when empty).
    ///
    /// # Errors
    /// [`EvalError::Request`] for a name in `only` that is no arm.
    pub fn jobs(&self, only: &[String]) -> Result<Vec<Job>, EvalError> {
        for name in only {
            if !self.file.arms.iter().any(|a| &a.name == name) {
                let names: Vec<&str> = self.file.arms.iter().map(|a| a.name.as_str()).collect();
                return Err(invalid(format!(
                    "--only {name}: no such arm; the arms are {}",
                    names.join(", ")
                )));
            }
        }
        let mut jobs = Vec::new();
        for (i, arm) in self.file.arms.iter().enumerate() {
            if !only.is_empty() && !only.contains(&arm.name) {
                continue;
            }
            for &seed in &self.file.seeds {
                jobs.push(Job {
                    arm: i,
                    seed,
                    dir: self.out.join(&arm.name).join(format!("seed-{seed}")),
                });
            }
        }
        Ok(jobs)
    }

    /// The reference's Inception-feature cache, shared by every arm.
    pub fn feature_cache(&self) -> PathBuf {
        self.out.join("reference-features.npz")
    }

    /// The stages of `job`, in order, as `sagd` argument lists.
    pub fn stages(&self, job: &Job) -> Vec<StageCommand> {
        let run = job.dir.join("run");
        let mut train = vec![
            "train".to_string(),
            "--config".into(),
            path_arg(&self.configs[job.arm]),
            "--seed".into(),
            job.seed.to_string(),
            "--out".into(),
            path_arg(&run),
        ];
        if run.join("config.toml").is_file() {
            // Continues a run an earlier invocation began; a complete run returns at once, and a
            // config edited since is refused naming the key.
            train.push("--resume".into());
        }
        let mut stages = vec![StageCommand {
            kind: StageKind::Train,
            args: train,
            done: false,
            stale: false,
            out: None,
            record: String::new(),
        }];
        match self.file.kind {
            ExperimentKind::Sweep => {
                let (Some(sample), Some(eval)) = (&self.file.sample, &self.file.eval) else {
                    return stages;
                };
                let samples = job.dir.join("samples");
                let mut args = vec![
                    "sample".to_string(),
                    "--checkpoint".into(),
                    path_arg(&run),
                    "--sampler".into(),
                    sample.sampler.clone(),
                    "--steps".into(),
                    sample.steps.to_string(),
                    "--count".into(),
                    sample.count.to_string(),
                    "--batch".into(),
                    sample.batch.to_string(),
                    "--seed".into(),
                    job.seed.to_string(),
                    "--out".into(),
                    path_arg(&samples),
                    // Only reached when no summary is there: whatever a killed sampler left.
                    "--overwrite".into(),
                ];
                if sample.ema {
                    args.insert(3, "--ema".into());
                }
                let present =
                    samples.join("summary.json").is_file() && samples.join("samples.npy").is_file();
                stages.push(StageCommand::with_output(
                    StageKind::Sample,
                    args,
                    samples.clone(),
                    present,
                    &self.out,
                ));
                let out = job.dir.join("eval");
                let mut args = vec![
                    "eval".to_string(),
                    "--samples".into(),
                    path_arg(&samples),
                    "--reference".into(),
                    eval.reference.clone(),
                ];
                for t in &eval.transforms {
                    args.push("--transform".into());
                    args.push(t.clone());
                }
                if let Some(count) = eval.count {
                    args.push("--count".into());
                    args.push(count.to_string());
                }
                if let Some(size) = eval.kid_subset_size {
                    args.push("--kid-subset-size".into());
                    args.push(size.to_string());
                }
                args.extend([
                    "--metrics".into(),
                    eval.metrics.clone(),
                    "--seed".into(),
                    eval.seed.to_string(),
                ]);
                if eval
                    .metrics
                    .split(',')
                    .any(|m| ["fid", "kid", "pr"].contains(&m.trim()))
                {
                    args.push("--feature-cache".into());
                    args.push(path_arg(&self.feature_cache()));
                }
                args.extend(["--out".into(), path_arg(&out), "--overwrite".into()]);
                let present = out.join("metrics.json").is_file();
                stages.push(StageCommand::with_output(
                    StageKind::Eval,
                    args,
                    out,
                    present,
                    &self.out,
                ));
            }
            ExperimentKind::Emergence => {
                let Some(settings) = &self.file.emergence else {
                    return stages;
                };
                let out = job.dir.join("emergence");
                let mut args = vec![
                    "theory".to_string(),
                    "emergence".into(),
                    "--run".into(),
                    path_arg(&run),
                    "--samples".into(),
                    settings.samples.to_string(),
                    "--sampler".into(),
                    settings.sampler.clone(),
                    "--steps".into(),
                    settings.steps.to_string(),
                    "--exclude".into(),
                    settings.exclude.to_string(),
                    "--seed".into(),
                    job.seed.to_string(),
                ];
                if settings.ema {
                    args.push("--ema".into());
                }
                if let Some(images) = settings.images {
                    args.push("--images".into());
                    args.push(images.to_string());
                }
                args.extend(["--out".into(), path_arg(&out), "--overwrite".into()]);
                let present = out.join("emergence.json").is_file();
                stages.push(StageCommand::with_output(
                    StageKind::Emergence,
                    args,
                    out,
                    present,
                    &self.out,
                ));
            }
        }
        // A stage reads the one before it: after one that must run, every later one runs too.
        let mut upstream_done = true;
        for stage in stages.iter_mut().skip(1) {
            if !upstream_done && stage.done {
                stage.done = false;
                stage.stale = true;
            }
            upstream_done = stage.done;
        }
        stages
    }
}

/// `arg` quoted for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The index of `band` among `sagd eval`'s ten unit-radius bands `[0.1k, 0.1(k+1)]`, when it is
/// one of them (to 1e-9).
pub fn band_index(band: [f64; 2]) -> Option<usize> {
    let k = (band[0] * 10.0).round();
    let exact = (band[0] - k / 10.0).abs() < 1e-9 && (band[1] - (k + 1.0) / 10.0).abs() < 1e-9;
    (exact && (0.0..10.0).contains(&k)).then_some(k as usize)
}

fn band_help(band: [f64; 2]) -> String {
    format!(
        "band [{}, {}] is not one of the ten bands sagd eval measures ([0, 0.1], [0.1, 0.2], …, \
         [0.9, 1])",
        band[0], band[1]
    )
}

/// Mean and (sample, n − 1) standard deviation; `None` for no values, sd 0 for one.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, sd))
}

/// What one job produced, read from its stages' outputs (`None`: not there yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobResult {
    /// The seed.
    pub seed: u64,
    /// Training steps done and the run's length.
    pub steps: Option<(u64, u64)>,
    /// Training wall time from `log.csv` (Σ images / measured images per second), seconds.
    pub train_seconds: Option<f64>,
    /// The last logged loss.
    pub final_loss: Option<f64>,
    /// Sampling wall time, seconds.
    pub sample_seconds: Option<f64>,
    /// Evaluation wall time, seconds.
    pub eval_seconds: Option<f64>,
    /// FID.
    pub fid: Option<f64>,
    /// KID (mean over subsets).
    pub kid: Option<f64>,
    /// Samples and reference images compared.
    pub counts: Option<(usize, usize)>,
    /// Log-spectral distance.
    pub log_spectral_distance: Option<f64>,
    /// The arm's band's energy, samples over reference.
    pub band_ratio: Option<f64>,
    /// `emergence.json`, as written.
    pub emergence: Option<Value>,
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn config_batch_steps(run: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(run.join("config.toml")).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    Some((
        table.get("batch")?.as_integer()? as u64,
        table.get("steps")?.as_integer()? as u64,
    ))
}

/// Reads `log.csv` (`step,loss,lr,grad_norm,images_per_sec`): the last step, the last loss, and
/// the training time Σ (Δstep · batch / images_per_sec).
fn read_train_log(run: &Path, batch: u64) -> Option<(u64, f64, f64)> {
    let text = std::fs::read_to_string(run.join("log.csv")).ok()?;
    let (mut last_step, mut loss, mut seconds) = (0u64, f64::NAN, 0.0);
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let (Some(step), Some(l), Some(rate)) = (
            cols.first().and_then(|s| s.parse::<u64>().ok()),
            cols.get(1).and_then(|s| s.parse::<f64>().ok()),
            cols.get(4).and_then(|s| s.parse::<f64>().ok()),
        ) else {
            continue;
        };
        if step > last_step && rate > 0.0 {
            seconds += (step - last_step) as f64 * batch as f64 / rate;
        }
        last_step = last_step.max(step);
        loss = l;
    }
    Some((last_step, loss, seconds))
}

impl Experiment {
    /// Reads what `job` has produced so far.
    pub fn result(&self, job: &Job) -> JobResult {
        let arm = &self.file.arms[job.arm];
        let run = job.dir.join("run");
        let mut r = JobResult {
            seed: job.seed,
            ..JobResult::default()
        };
        if let Some((batch, steps)) = config_batch_steps(&run)
            && let Some((done, loss, seconds)) = read_train_log(&run, batch)
        {
            r.steps = Some((done, steps));
            r.final_loss = Some(loss);
            r.train_seconds = Some(seconds);
        }
        // Only outputs made with the experiment's present settings count.
        let done = |kind: StageKind| {
            self.stages(job)
                .iter()
                .any(|stage| stage.kind == kind && stage.done)
        };
        if done(StageKind::Sample)
            && let Some(summary) = read_json(&job.dir.join("samples/summary.json"))
        {
            r.sample_seconds = summary.get("seconds").and_then(Value::as_f64);
        }
        if done(StageKind::Eval)
            && let Some(m) = read_json(&job.dir.join("eval/metrics.json"))
        {
            r.eval_seconds = m.get("seconds").and_then(Value::as_f64);
            r.fid = m.get("fid").and_then(Value::as_f64);
            r.kid = m.pointer("/kid/mean").and_then(Value::as_f64);
            r.counts = m
                .get("sample_count")
                .and_then(Value::as_u64)
                .zip(m.get("reference_count").and_then(Value::as_u64))
                .map(|(a, b)| (a as usize, b as usize));
            r.log_spectral_distance = m
                .pointer("/spectral/log_spectral_distance")
                .and_then(Value::as_f64);
            if let Some(k) = arm.band.and_then(band_index) {
                r.band_ratio = m
                    .pointer(&format!("/spectral/bands/{k}/ratio"))
                    .and_then(Value::as_f64);
            }
        }
        if done(StageKind::Emergence) {
            r.emergence = read_json(&job.dir.join("emergence/emergence.json"));
        }
        r
    }
}

/// One arm's results over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResults {
    /// The arm.
    pub arm: Arm,
    /// Per seed, in the experiment's order (seeds not run are left out).
    pub seeds: Vec<JobResult>,
}

impl ArmResults {
    fn values(&self, f: impl Fn(&JobResult) -> Option<f64>) -> Vec<f64> {
        self.seeds.iter().filter_map(f).collect()
    }
}

/// Every arm's results (arms in order).
pub fn collect(experiment: &Experiment) -> Vec<ArmResults> {
    let jobs = experiment.jobs(&[]).unwrap_or_default();
    experiment
        .file
        .arms
        .iter()
        .enumerate()
        .map(|(i, arm)| ArmResults {
            arm: arm.clone(),
            seeds: jobs
                .iter()
                .filter(|j| j.arm == i && j.dir.join("run").is_dir())
                .map(|j| experiment.result(j))
                .collect(),
        })
        .collect()
}

fn fmt_mean_sd(values: &[f64], scale: f64, digits: usize) -> String {
    match mean_sd(values) {
        None => "–".into(),
        Some((m, _)) if values.len() == 1 => format!("{:.digits$}", m * scale),
        Some((m, s)) => format!("{:.digits$} ± {:.digits$}", m * scale, s * scale),
    }
}

fn fmt_list(values: &[f64], digits: usize) -> String {
    if values.is_empty() {
        "–".into()
    } else {
        values
            .iter()
            .map(|v| format!("{v:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn minutes(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

fn emergence_number(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64)
}

/// The results table (markdown) of a sweep: one row per arm, metric means ± sd over seeds
/// (sample sd, n − 1) and the per-seed FIDs.
pub fn sweep_table(experiment: &Experiment, results: &[ArmResults]) -> String {
    let bands = results.iter().any(|r| r.arm.band.is_some());
    let mut t = String::from(
        "| arm | x | seeds evaluated | N (samples, reference) | FID per seed | FID | KID × 10³ | log-spectral distance |",
    );
    if bands {
        t.push_str(" energy in the band (samples / reference) |");
    }
    t.push_str(" train steps | compute per seed |\n|---|---|---|---|---|---|---|---|");
    if bands {
        t.push_str("---|");
    }
    t.push_str("---|---|\n");
    for r in results {
        let fid = r.values(|j| j.fid);
        let kid = r.values(|j| j.kid);
        let lsd = r.values(|j| j.log_spectral_distance);
        // The least advanced seed's steps: a row is complete only when every seed is.
        let steps = r
            .seeds
            .iter()
            .filter_map(|j| j.steps)
            .min()
            .map_or_else(|| "–".into(), |(d, s)| format!("{d}/{s}"));
        let mut counts: Vec<String> = r
            .seeds
            .iter()
            .filter_map(|j| j.counts)
            .map(|(a, b)| format!("{a}, {b}"))
            .collect();
        counts.dedup();
        // Seeds with every stage done only: a partial seed would understate the cost.
        let wall = r.values(|j| Some(j.train_seconds? + j.sample_seconds? + j.eval_seconds?));
        let _ = write!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.arm.label.as_deref().unwrap_or(&r.arm.name),
            r.arm.x.map_or("–".into(), |x| format!("{x}")),
            format_args!(
                "{}/{}",
                r.seeds.iter().filter(|j| j.eval_seconds.is_some()).count(),
                experiment.file.seeds.len()
            ),
            if counts.is_empty() {
                "–".to_string()
            } else {
                // Several entries mean FIDs at different N: shown, never hidden.
                counts.join("; ")
            },
            fmt_list(&fid, 1),
            fmt_mean_sd(&fid, 1.0, 1),
            fmt_mean_sd(&kid, 1e3, 1),
            fmt_mean_sd(&lsd, 1.0, 3),
        );
        if bands {
            let ratio = r.values(|j| j.band_ratio);
            let _ = write!(
                t,
                " {} |",
                match r.arm.band {
                    Some(b) => format!("[{}, {}]: {}", b[0], b[1], fmt_mean_sd(&ratio, 1.0, 2)),
                    None => "–".into(),
                }
            );
        }
        let _ = writeln!(
            t,
            " {steps} | {} |",
            mean_sd(&wall).map_or("–".into(), |(m, _)| minutes(m))
        );
    }
    t
}

/// The results table (markdown) of an emergence experiment: one row per arm and seed.
pub fn emergence_table(results: &[ArmResults]) -> String {
    let mut t = String::from(
        "| arm | seed | fitted α (R², modes) | rising α | falling α | τ* spread p90/p10 | linear-theory α | modes crossed / measured | checkpoints |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        for j in &r.seeds {
            let Some(e) = &j.emergence else {
                let _ = writeln!(
                    t,
                    "| {} | {} | – | – | – | – | – | – | – |",
                    r.arm.label.as_deref().unwrap_or(&r.arm.name),
                    j.seed
                );
                continue;
            };
            let fit = |group: &str| -> String {
                match (
                    emergence_number(e, &format!("/fits/{group}/alpha")),
                    emergence_number(e, &format!("/fits/{group}/r2")),
                    emergence_number(e, &format!("/fits/{group}/modes")),
                ) {
                    (Some(a), Some(r2), Some(m)) => format!("{a:.2} ({r2:.2}, {m:.0})"),
                    (Some(a), _, _) => format!("{a:.2}"),
                    _ => "–".into(),
                }
            };
            let spread =
                emergence_number(e, "/spread/ratio").map_or("–".into(), |s| format!("{s:.1}×"));
            let theory = emergence_number(e, "/linear_theory/alpha")
                .map_or("–".into(), |a| format!("{a:.2}"));
            let crossed = match (
                emergence_number(e, "/modes_crossed"),
                emergence_number(e, "/modes"),
            ) {
                (Some(c), Some(m)) => format!("{c:.0} / {m:.0}"),
                _ => "–".into(),
            };
            let checkpoints = e
                .get("steps")
                .and_then(Value::as_array)
                .map_or("–".into(), |s| s.len().to_string());
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {spread} | {theory} | {crossed} | {checkpoints} |",
                r.arm.label.as_deref().unwrap_or(&r.arm.name),
                j.seed,
                fit("all"),
                fit("rising"),
                fit("falling"),
            );
        }
    }
    t
}

/// Draws the sweep's figure: FID against the arms' `x`, one line (the seed mean) per series,
/// each seed a marker; beside it, when arms have bands, the band energy ratio the same way.
///
/// # Errors
/// [`EvalError::Plot`] when the figure cannot be written.
pub fn write_sweep_figure(
    path: &Path,
    experiment: &Experiment,
    results: &[ArmResults],
) -> Result<(), EvalError> {
    use sagd_plot::{LinePlot, Series};
    let mut groups: BTreeMap<String, Vec<&ArmResults>> = BTreeMap::new();
    for r in results {
        if r.arm.x.is_some() {
            groups
                .entry(r.arm.series.clone().unwrap_or_else(|| "all arms".into()))
                .or_default()
                .push(r);
        }
    }
    // Per series: its name, the seed means and the seeds' lone points.
    type Panel = Vec<(String, Vec<(f64, f64)>, Vec<(f64, f64)>)>;
    let panel = |metric: &dyn Fn(&JobResult) -> Option<f64>| -> Panel {
        groups
            .iter()
            .map(|(name, arms)| {
                let mut arms = arms.clone();
                arms.sort_by(|a, b| {
                    a.arm
                        .x
                        .partial_cmp(&b.arm.x)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                let mut means = Vec::new();
                let mut seeds = Vec::new();
                for a in arms {
                    let x = a.arm.x.unwrap_or(f64::NAN);
                    let v = a.values(metric);
                    if let Some((m, _)) = mean_sd(&v) {
                        means.push((x, m));
                    }
                    for y in v {
                        // Lone points: NaN breaks the line between them.
                        seeds.push((x, y));
                        seeds.push((f64::NAN, f64::NAN));
                    }
                }
                (name.clone(), means, seeds)
            })
            .collect()
    };
    // FID when the evaluations have it, else the log-spectral distance.
    let has_fid = results
        .iter()
        .any(|r| r.seeds.iter().any(|j| j.fid.is_some()));
    let fid = if has_fid {
        panel(&|j| j.fid)
    } else {
        panel(&|j| j.log_spectral_distance)
    };
    let names: Vec<(String, String)> = fid
        .iter()
        .map(|(n, _, _)| (format!("{n} (seed mean)"), format!("{n} (each seed)")))
        .collect();
    let mut series = Vec::new();
    for ((_, means, seeds), (mean_name, seed_name)) in fid.iter().zip(&names) {
        series.push(Series {
            name: mean_name,
            points: means.clone(),
            markers: false,
        });
        series.push(Series {
            name: seed_name,
            points: seeds.clone(),
            markers: true,
        });
    }
    let x_label = experiment.file.plot.x_label.as_str();
    let fid_plot = LinePlot {
        title: if has_fid {
            "FID against the reference (lower is better)"
        } else {
            "log-spectral distance to the reference (lower is better)"
        },
        x_label,
        y_label: if has_fid {
            "FID"
        } else {
            "log-spectral distance"
        },
        series,
        log_x: false,
        log_y: false,
    };
    let has_bands = results.iter().any(|r| r.arm.band.is_some());
    let band = panel(&|j| j.band_ratio);
    let mut band_series = Vec::new();
    for ((_, means, seeds), (mean_name, seed_name)) in band.iter().zip(&names) {
        band_series.push(Series {
            name: mean_name,
            points: means.clone(),
            markers: false,
        });
        band_series.push(Series {
            name: seed_name,
            points: seeds.clone(),
            markers: true,
        });
    }
    let band_plot = LinePlot {
        title: "energy in the arm's band, samples / reference (1: the reference's)",
        x_label,
        y_label: "energy ratio",
        series: band_series,
        log_x: false,
        log_y: true,
    };
    let plots: Vec<&LinePlot> = if has_bands {
        vec![&fid_plot, &band_plot]
    } else {
        vec![&fid_plot]
    };
    sagd_plot::write_line_plots_png(path, &plots).map_err(EvalError::from)
}

/// Writes `results.md`, `results.json` and the figure into the experiment's output folder;
/// returns the path of `results.md`. `commands` are the stage command lines of one job (seed
/// and arm as placeholders) for the provenance section.
///
/// # Errors
/// [`EvalError::Output`] or [`EvalError::Plot`] when a file cannot be written.
pub fn write_results(
    experiment: &Experiment,
    results: &[ArmResults],
) -> Result<PathBuf, EvalError> {
    let out = &experiment.out;
    let figures = out.join("figures");
    std::fs::create_dir_all(&figures).map_err(|source| EvalError::Output {
        action: "create",
        path: figures.clone(),
        source,
    })?;
    let f = &experiment.file;
    let mut md = format!("# {}\n\n", f.title);
    if !f.description.trim().is_empty() {
        md.push_str(f.description.trim());
        md.push_str("\n\n");
    }
    let _ = writeln!(
        md,
        "Experiment file `{}`, seeds {:?}, output `{}`.\n",
        experiment.path.display(),
        f.seeds,
        out.display()
    );
    match f.kind {
        ExperimentKind::Sweep => {
            md.push_str(&sweep_table(experiment, results));
            let figure = figures.join("sweep.png");
            write_sweep_figure(&figure, experiment, results)?;
            md.push_str("\n![the sweep: each arm's metric against its x](figures/sweep.png)\n");
        }
        ExperimentKind::Emergence => {
            md.push_str(&emergence_table(results));
            md.push('\n');
            for r in results {
                for j in &r.seeds {
                    if j.emergence.is_some() {
                        let _ = writeln!(
                            md,
                            "![{} seed {}]({}/seed-{}/emergence/emergence.png)",
                            r.arm.name, j.seed, r.arm.name, j.seed
                        );
                    }
                }
            }
        }
    }
    md.push_str(
        "\n## Stages of one arm and seed\n\nThe others differ in `--config`, `--seed` and the \
         folders.\n\n",
    );
    if let Ok(jobs) = experiment.jobs(&[])
        && let Some(job) = jobs.first()
    {
        for stage in experiment.stages(job) {
            let line: Vec<String> = stage.args.iter().map(|a| shell_quote(a)).collect();
            let _ = writeln!(md, "- {}: `sagd {}`", stage.kind.name(), line.join(" "));
        }
    }
    let md_path = out.join("results.md");
    crate::theory::write_atomic(&md_path, md.as_bytes())?;
    let json = serde_json::json!({
        "title": f.title,
        "kind": f.kind,
        "experiment": experiment.path,
        "seeds": f.seeds,
        "arms": results,
    });
    crate::theory::write_json(&out.join("results.json"), &json)?;
    Ok(md_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_and_spread() {
        assert_eq!(band_index([0.1, 0.2]), Some(1));
        assert_eq!(band_index([0.0, 0.1]), Some(0));
        assert_eq!(band_index([0.9, 1.0]), Some(9));
        assert_eq!(band_index([0.15, 0.25]), None);
        assert_eq!(band_index([0.1, 0.3]), None);
        assert_eq!(band_index([1.0, 1.1]), None);
        assert_eq!(mean_sd(&[]), None);
        assert_eq!(mean_sd(&[2.0]), Some((2.0, 0.0)));
        // Sample sd of 1, 2, 3, 4: sqrt(5/3).
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn train_time_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("log.csv"),
            "step,loss,lr,grad_norm,images_per_sec\n10,1.0,1e-3,1,20\n30,0.5,1e-3,1,40\n",
        )
        .unwrap();
        // 10 steps of 8 images at 20/s, then 20 at 40/s: 4 + 4 seconds.
        let (step, loss, seconds) = read_train_log(dir.path(), 8).unwrap();
        assert_eq!((step, loss), (30, 0.5));
        assert!((seconds - 8.0).abs() < 1e-12);
    }
}
