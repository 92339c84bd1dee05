//! The sampling run behind `sagd sample`: a checkpoint or the exact oracle of a synthetic
//! dataset → `count` images, mapped back to the data's range, written as `samples.npy`,
//! `grid.png` and `summary.json`, with the oracle's terminal-SNR and data checks.
//!
//! [`sample_run`] takes a typed [`SampleRequest`] and reports its progress through a callback
//! ([`SampleEvent`]), so a Rust pipeline calls it exactly as the CLI does (which draws the
//! progress bar and prints the [`SampleSummary`]).
//!
//! ```
//! use sagd_runs::sample::{SampleRequest, SampleSource, sample_run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! sagd_ops::link(); // the built-in spectra
//! let out = tempfile::tempdir()?;
//! let mut request = SampleRequest::new(
//!     SampleSource::oracle("grf:size=1x8x8".parse()?, "power-law:alpha=-0.5,eps=0.05".parse()?),
//!     out.path(),
//! );
//! request.count = 8;
//! request.steps = Some(10);
//! let run = sample_run(&request, &mut |_| {})?;
//! assert_eq!(run.samples.len(), 8 * 64);
//! assert_eq!(run.summary.shape, [1, 8, 8]);
//! assert!(out.path().join("samples.npy").is_file() && out.path().join("grid.png").is_file());
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use sagd_core::terminal::TerminalSnr;
use sagd_core::{
    DeviceSpec, DynShape, ImageShape, NoiseLevel, Normalization, Schedule, SpectralCovariance,
    SpectralNoise, SpectrumSpec, noise_rng,
};
use sagd_datasets::npy::NpyWriter;
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::{Dataset, Pixels, stats};
use sagd_models::{Denoiser, OutputRange, TrainedDenoiser, checkpoint};
use sagd_samplers::{
    Method, OdeForm, OracleData, OracleDenoiser, Prior, Sampler, SamplerConfig, Spacing,
};
use serde::Serialize;

use crate::error::RunError;
use crate::output::{create_dir, retract_marker, write_json, write_sample_grid};

/// The longest oracle schedule accepted.
pub const MAX_LEVELS: usize = 100_000;

/// The most values (`count · C·H·W`) one run keeps in memory.
pub const MAX_VALUES: usize = 1 << 31;

/// The schedule an oracle's process runs on (`--schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OracleSchedule {
    /// DDPM's linear β; its range (1e-4 … 0.02 for T = 1000) is scaled by 1000/T for other
    /// lengths, as improved DDPM does, so the schedule still ends near `ᾱ_T ≈ 4e-5`.
    #[default]
    DdpmLinear,
    /// The cosine schedule (its default offset and largest β) over the given levels.
    Cosine,
    /// EDM's σ ladder (ρ = 7) over the given levels.
    Edm,
}

impl OracleSchedule {
    /// The CLI's spelling: `ddpm-linear`, `cosine` or `edm`.
    pub fn name(self) -> &'static str {
        match self {
            Self::DdpmLinear => "ddpm-linear",
            Self::Cosine => "cosine",
            Self::Edm => "edm",
        }
    }

    /// The schedule of `levels` levels.
    pub fn schedule(self, levels: usize) -> Schedule {
        match self {
            Self::DdpmLinear => Schedule::DdpmLinear {
                beta_start: 1e-4 * 1000.0 / levels as f64,
                beta_end: (0.02 * 1000.0 / levels as f64).min(0.999),
                steps: levels,
            },
            Self::Cosine => match Schedule::cosine() {
                Schedule::Cosine {
                    offset, max_beta, ..
                } => Schedule::Cosine {
                    steps: levels,
                    offset,
                    max_beta,
                },
                other => other,
            },
            Self::Edm => Schedule::edm(levels),
        }
    }
}

/// What is sampled.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleSource {
    /// A trained model: a run directory (its newest checkpoint) or a checkpoint file.
    Checkpoint {
        /// The run directory or `.safetensors` checkpoint file.
        path: PathBuf,
        /// Use the EMA weights.
        ema: bool,
    },
    /// The exact posterior-mean oracle of a `grf` or `gmm` law under a spectrum.
    Oracle {
        /// The data law, a dataset spec (`grf:…` or `gmm:…`).
        data: DataSpec,
        /// The noise spectrum.
        spectrum: SpectrumSpec,
        /// The spectrum's normalization (`energy` or `none`: `per-sample-std` is not Gaussian
        /// and is refused).
        normalization: Normalization,
        /// The process's schedule.
        schedule: OracleSchedule,
        /// The schedule's number of levels, 2 ..= [`MAX_LEVELS`].
        levels: usize,
    },
}

impl SampleSource {
    /// The oracle of `data` under `spectrum` with the CLI's defaults: energy normalization,
    /// DDPM-linear over 1000 levels.
    pub fn oracle(data: DataSpec, spectrum: SpectrumSpec) -> Self {
        Self::Oracle {
            data,
            spectrum,
            normalization: Normalization::Energy,
            schedule: OracleSchedule::DdpmLinear,
            levels: 1000,
        }
    }
}

/// Everything a sampling run is asked: the fields are those of `sagd sample`'s flags, and
/// error messages name a field by its flag (`--count` for [`count`](Self::count)).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRequest {
    /// The model or oracle.
    pub source: SampleSource,
    /// The sampler.
    pub method: Method,
    /// Levels visited; `None`: 50 (the whole schedule for DDPM), at most the source's levels.
    pub steps: Option<usize>,
    /// DDIM's η in [0, 1].
    pub eta: f64,
    /// The ODE's variables (Euler and Heun).
    pub form: OdeForm,
    /// Which levels are visited.
    pub spacing: Spacing,
    /// Where sampling starts.
    pub prior: Prior,
    /// Number of images (≥ 1; `count · C·H·W` at most [`MAX_VALUES`]).
    pub count: usize,
    /// Seed: batch `b` draws from ChaCha8 stream `b` of it, so the same seed and batch give
    /// the same images on CPU.
    pub seed: u64,
    /// Images per batch (≥ 1).
    pub batch: usize,
    /// The image shape `[C, H, W]` expected of the source, if any: another is refused.
    pub shape: Option<[usize; 3]>,
    /// The output folder (created): `samples.npy`, `grid.png`, `summary.json`.
    pub out: PathBuf,
    /// Replace a `samples.npy` already in `out` (otherwise refused).
    pub overwrite: bool,
    /// The device.
    pub device: DeviceSpec,
}

impl SampleRequest {
    /// `source` into `out` with the CLI's defaults: DDIM (η = 0, default steps), EDM form,
    /// uniform spacing, matched prior, 64 images, seed 0, batches of 256, on the CPU.
    pub fn new(source: SampleSource, out: impl Into<PathBuf>) -> Self {
        Self {
            source,
            method: Method::Ddim,
            steps: None,
            eta: 0.0,
            form: OdeForm::Edm,
            spacing: Spacing::Uniform,
            prior: Prior::Matched,
            count: 64,
            seed: 0,
            batch: 256,
            shape: None,
            out: out.into(),
            overwrite: false,
            device: DeviceSpec::Cpu,
        }
    }
}

/// What a running [`sample_run`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleEvent<'a> {
    /// The oracle's terminal-SNR check, before any sampling: when some mode is affected
    /// (`affected > 0`) the prior does not match the process there.
    TerminalSnr(&'a TerminalSnr),
    /// Sampling starts: `total_steps` sampler steps over all batches.
    Started {
        /// Sampler steps in all (batches × steps).
        total_steps: u64,
    },
    /// A sampler step is done.
    Step {
        /// Sampler steps done in all batches.
        done: u64,
        /// The batch (1-based).
        batch: usize,
        /// Batches in all.
        batches: usize,
        /// The noise level `σ` the step started from.
        sigma: f64,
    },
    /// The samples look like a diverged model's (see [`divergence_warning`]).
    Warning(&'a str),
    /// The output folder holds `samples.npy` but no `summary.json` (written last): an earlier
    /// run stopped before it finished (a full disk, a kill), and its outputs are replaced.
    Unfinished(&'a Path),
}

/// Where the samples came from, as `summary.json`'s `source` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SourceSummary {
    /// A checkpoint.
    Checkpoint {
        /// The checkpoint file used.
        checkpoint: PathBuf,
        /// EMA weights.
        ema: bool,
        /// The run's dataset spec.
        data: String,
        /// The run's spectrum string.
        spectrum: String,
        /// The model kind (`unet`, `mlp`, …).
        model: String,
    },
    /// An oracle.
    Oracle {
        /// The dataset spec of its law.
        oracle: String,
        /// The spectrum string.
        spectrum: String,
        /// The normalization's name.
        normalization: String,
        /// The schedule's name.
        schedule: String,
        /// The schedule's levels.
        levels: usize,
    },
}

/// The counts of the oracle's terminal-SNR check (`summary.json`'s `terminal_snr`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TerminalSnrSummary {
    /// Modes on the support with SNR above [`sagd_core::terminal::AFFECTED_SNR`].
    pub affected: usize,
    /// Modes on the support where the signal dominates (SNR > 1).
    pub dominated: usize,
    /// Modes off the support.
    pub outside_support: usize,
    /// The largest SNR on the support.
    pub worst_snr: f64,
}

/// How an oracle's samples compare with its data law (`summary.json`'s `data_check`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DataCheck {
    /// A `grf` (one Gaussian): per Fourier mode, the samples' second moment against the
    /// data's variance.
    ModeVariances {
        /// `"mode variances (samples vs data)"`.
        kind: String,
        /// Median over the compared modes of `|observed/λ − 1|`.
        median_relative_error: f64,
        /// Largest `|observed/λ − 1|`.
        max_relative_error: f64,
        /// Modes compared (on the support, with λ > 0).
        modes: usize,
        /// Modes off the spectrum's support (left at zero by design, not compared).
        modes_off_support: usize,
        /// The relative sampling sd of one complex mode's mean power, `1/√(N·C)`.
        sampling_sd_per_mode: f64,
    },
    /// A `gmm`: each sample assigned to its nearest component mean.
    ComponentShares {
        /// `"component shares (nearest mean) vs weights"`.
        kind: String,
        /// Share of the samples per component.
        shares: Vec<f64>,
        /// The mixture's weights.
        weights: Vec<f64>,
    },
    /// No check for this law (written as `null`).
    NotApplicable,
}

/// `summary.json` of a sampling run (serialised through [`serde_json::Value`], keys sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleSummary {
    /// The model or oracle.
    pub source: SourceSummary,
    /// The sampler's description, e.g. `ddim(eta=0, steps=50, spacing=uniform, prior=matched)`.
    pub sampler: String,
    /// Levels visited.
    pub steps: usize,
    /// Denoiser evaluations per batch.
    pub evaluations_per_batch: usize,
    /// Images drawn.
    pub count: usize,
    /// Images per batch.
    pub batch: usize,
    /// The seed.
    pub seed: u64,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// The device name.
    pub device: String,
    /// Wall time of the sampling, in seconds.
    pub seconds: f64,
    /// Images per second.
    pub images_per_s: f64,
    /// The share of values clamped to [0, 1] (8-bit data only; 0 otherwise).
    pub clipped_fraction: f64,
    /// `samples.npy`.
    pub samples: PathBuf,
    /// `samples-raw.npy`: the same images before the clamp to [0, 1] (8-bit data only, whose
    /// samples are clamped), for metrics that must not see what the clamp adds back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_samples: Option<PathBuf>,
    /// `grid.png`.
    pub grid: PathBuf,
    /// The oracle's terminal-SNR check (oracle only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_snr: Option<TerminalSnrSummary>,
    /// The oracle's data check (oracle only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_check: Option<DataCheck>,
}

/// The outcome of [`sample_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRun {
    /// What `summary.json` holds.
    pub summary: SampleSummary,
    /// The images as written to `samples.npy`: `count × C × H × W` values, row-major in
    /// (N, C, H, W) order, in the data's range.
    pub samples: Vec<f32>,
    /// The terminal-SNR check in full (oracle only).
    pub terminal_snr: Option<TerminalSnr>,
    /// `summary.json`.
    pub summary_path: PathBuf,
}

/// What is sampled: a denoiser (which carries the noise operator it was trained with), how
/// its outputs map back to the data's range, and where it came from.
struct Sampled {
    denoiser: Box<dyn Denoiser<DynShape>>,
    range: OutputRange,
    describe: SourceSummary,
    oracle: Option<OracleData>,
}

fn invalid(message: impl Into<String>) -> RunError {
    RunError::Request(message.into())
}

/// The newest checkpoint of a run directory (in its `checkpoints/`, or in it), or the file
/// itself.
///
/// # Errors
/// [`RunError::Request`] when `path` is neither a file nor a directory, or the directory
/// holds no `step-NNNNNNNN.safetensors`; [`RunError::Model`] when it cannot be listed.
pub fn checkpoint_file(path: &Path) -> Result<PathBuf, RunError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(invalid(format!(
            "{}: no such checkpoint file or run directory",
            path.display()
        )));
    }
    let dir = if path.join("checkpoints").is_dir() {
        path.join("checkpoints")
    } else {
        path.to_path_buf()
    };
    let list = checkpoint::list(&dir)?;
    list.last().map(|(_, p)| p.clone()).ok_or_else(|| {
        invalid(format!(
            "{}: no checkpoints (expected step-NNNNNNNN.safetensors files)",
            dir.display()
        ))
    })
}

fn from_checkpoint(path: &Path, ema: bool, device: &Device) -> Result<Sampled, RunError> {
    let file = checkpoint_file(path)?;
    let denoiser = TrainedDenoiser::load_any(&file, ema, device)?;
    let describe = SourceSummary::Checkpoint {
        checkpoint: file,
        ema,
        data: denoiser.config.data.spec.clone(),
        spectrum: denoiser.config.noise.spectrum.to_string(),
        model: denoiser.config.model.kind().to_string(),
    };
    Ok(Sampled {
        range: denoiser.output_range(),
        denoiser: Box::new(denoiser),
        describe,
        oracle: None,
    })
}

fn from_oracle(
    spec: &DataSpec,
    spectrum: &SpectrumSpec,
    normalization: Normalization,
    schedule_kind: OracleSchedule,
    levels: usize,
) -> Result<Sampled, RunError> {
    let dims = match &spec.source {
        Source::Grf(c) => c.size,
        Source::Gmm(c) => c.size,
        _ => [0, 0, 0],
    };
    let data = OracleData::from_source(&spec.source)?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let noise = SpectralNoise::new(spectrum.spectrum(), shape, normalization)
        .map_err(|e| invalid(format!("--spectrum: {e}")))?;
    if !(2..=MAX_LEVELS).contains(&levels) {
        return Err(invalid(format!(
            "--levels {levels}: expected 2 ..= {MAX_LEVELS}"
        )));
    }
    if normalization == Normalization::PerSampleStd {
        return Err(invalid(
            "--normalization per-sample-std: its noise is not Gaussian, so the oracle would not \
             be exact; use energy or none",
        ));
    }
    let schedule = schedule_kind.schedule(levels);
    schedule
        .validate()
        .map_err(|e| invalid(format!("--schedule/--levels: {e}")))?;
    let oracle = OracleDenoiser::new(data.clone(), noise, &schedule)?;
    Ok(Sampled {
        denoiser: Box::new(oracle),
        range: OutputRange::Data,
        describe: SourceSummary::Oracle {
            oracle: spec.to_string(),
            spectrum: spectrum.to_string(),
            normalization: normalization.name().to_string(),
            schedule: schedule_kind.name().to_string(),
            levels,
        },
        oracle: Some(data),
    })
}

/// The model or oracle a request names, on `device`.
fn open_source(source: &SampleSource, device: &Device) -> Result<Sampled, RunError> {
    match source {
        SampleSource::Checkpoint { path, ema } => from_checkpoint(path, *ema, device),
        SampleSource::Oracle {
            data,
            spectrum,
            normalization,
            schedule,
            levels,
        } => from_oracle(data, spectrum, *normalization, *schedule, *levels),
    }
}

/// Refuses a `--shape` other than the source's.
fn check_shape(asked: Option<[usize; 3]>, source: &Sampled) -> Result<(), RunError> {
    let dims = source.denoiser.shape().dims();
    match asked {
        Some(asked) if asked != dims => Err(invalid(format!(
            "--shape {}x{}x{} does not match the {} ({}x{}x{} images)",
            asked[0],
            asked[1],
            asked[2],
            if source.oracle.is_none() {
                "checkpoint, which was trained on"
            } else {
                "oracle's data"
            },
            dims[0],
            dims[1],
            dims[2]
        ))),
        _ => Ok(()),
    }
}

/// The sampler a request asks for, checked against the source's levels (default steps:
/// [`Method::default_steps`]).
fn sampler_config(args: &SampleRequest, source: &Sampled) -> Result<SamplerConfig, RunError> {
    let levels = source.denoiser.levels().len();
    let config = SamplerConfig {
        method: args.method,
        steps: args
            .steps
            .unwrap_or_else(|| args.method.default_steps(levels)),
        eta: args.eta,
        form: args.form,
        spacing: args.spacing,
        prior: args.prior,
        final_denoise: true,
    };
    config.validate()?;
    config.check_levels(source.denoiser.levels())?;
    Ok(config)
}

/// The oracle's terminal-SNR check at the sampler's start level (`None` for a checkpoint).
fn start_terminal_snr(
    source: &Sampled,
    config: &SamplerConfig,
) -> Result<Option<TerminalSnr>, RunError> {
    let Some(data) = &source.oracle else {
        return Ok(None);
    };
    let levels = source.denoiser.levels();
    let path = sagd_samplers::timesteps::select(levels, config.steps, config.spacing)?;
    let dims = source.denoiser.shape().dims();
    oracle_terminal_snr(data, source.denoiser.covariance(), levels[path[0]], dims)
}

/// Refuses a count of 0, a batch of 0 and more values than one run keeps in memory.
fn check_counts(args: &SampleRequest, numel: usize) -> Result<(), RunError> {
    if args.count == 0 {
        return Err(invalid("--count must be at least 1"));
    }
    if args.batch == 0 {
        return Err(invalid("--batch must be at least 1"));
    }
    if args.count.checked_mul(numel).is_none_or(|n| n > MAX_VALUES) {
        return Err(invalid(format!(
            "--count {}: {} images of {numel} values exceed one run's limit of {MAX_VALUES} \
             values; split the run",
            args.count, args.count
        )));
    }
    Ok(())
}

/// Draws `request.count` images from a checkpoint or an oracle into `request.out`:
/// `samples.npy` (float32, (N, C, H, W), in the data's range: a run trained with `scale` is
/// mapped back to [0, 1] and 8-bit data are clamped to it, as its checkpoint's
/// [`OutputRange`] says), `grid.png` (the first 64) and `summary.json`. `progress` sees the
/// oracle's terminal-SNR check, the start and every sampler step.
///
/// # Errors
/// [`RunError::Request`] (and the other errors whose [`RunError::is_usage`] holds) for what
/// was asked wrongly: a count or batch of 0, a missing checkpoint, a shape other than the
/// source's, bad oracle settings, existing samples without `overwrite`; the dataset, model,
/// sampler, I/O and figure errors of the run otherwise.
///
/// See the [module docs](self) for an example.
pub fn sample_run(
    args: &SampleRequest,
    progress: &mut dyn FnMut(SampleEvent<'_>),
) -> Result<SampleRun, RunError> {
    if args.count == 0 || args.batch == 0 {
        check_counts(args, 1)?;
    }
    let device = args.device.open()?;
    let source = open_source(&args.source, &device)?;
    check_shape(args.shape, &source)?;
    let config = sampler_config(args, &source)?;
    let sampler = config.build::<DynShape>()?;
    // The oracle knows its data's law: check that the start level drowns every mode.
    let terminal = start_terminal_snr(&source, &config)?;
    if let Some(report) = &terminal {
        progress(SampleEvent::TerminalSnr(report));
    }
    check_counts(args, source.denoiser.shape().numel())?;
    let samples_path = args.out.join("samples.npy");
    let summary_path = args.out.join("summary.json");
    // summary.json is written last: without it the samples are what a run that stopped early
    // (a full disk, a kill) left, and this run finishes the job.
    if samples_path.exists() && !args.overwrite {
        if summary_path.exists() {
            return Err(invalid(format!(
                "{} exists; pass --overwrite or choose another --out",
                samples_path.display()
            )));
        }
        progress(SampleEvent::Unfinished(&args.out));
    }
    retract_marker(&summary_path)?;
    create_dir(&args.out)?;
    let started = Instant::now();
    let Drawn {
        values: all,
        clipped,
        far,
        largest,
        raw_samples,
    } = draw(args, &source, sampler.as_ref(), &device, progress)?;
    let clipped_fraction = clipped as f64 / all.len() as f64;
    let far_fraction = far as f64 / all.len() as f64;
    if let Some(warning) = divergence_warning(clipped_fraction, far_fraction, largest) {
        progress(SampleEvent::Warning(&warning));
    }
    let seconds = started.elapsed().as_secs_f64();
    let dims = source.denoiser.shape().dims();
    let grid_path = args.out.join("grid.png");
    write_sample_grid(&grid_path, &all, dims, source.range.unit_interval())?;
    let data_check = match &source.oracle {
        Some(data) => Some(data_check(
            data,
            &source.denoiser.covariance().power(),
            &all,
            dims,
        )?),
        None => None,
    };
    let summary = SampleSummary {
        source: source.describe,
        sampler: sampler.name(),
        steps: sampler.steps(),
        evaluations_per_batch: sampler.evaluations(),
        count: args.count,
        batch: args.batch,
        seed: args.seed,
        shape: dims,
        device: args.device.to_string(),
        seconds,
        images_per_s: args.count as f64 / seconds.max(1e-9),
        clipped_fraction,
        samples: samples_path,
        raw_samples,
        grid: grid_path,
        terminal_snr: terminal.as_ref().map(TerminalSnrSummary::of),
        data_check,
    };
    write_json(&summary_path, &summary)?;
    Ok(SampleRun {
        summary,
        samples: all,
        terminal_snr: terminal,
        summary_path,
    })
}

impl TerminalSnrSummary {
    fn of(report: &TerminalSnr) -> Self {
        Self {
            affected: report.affected,
            dominated: report.dominated,
            outside_support: report.outside_support,
            worst_snr: report.worst_snr,
        }
    }
}

/// Values beyond this `|x|` before the mapping lie more than the range's width (2) outside
/// the models' range [-1, 1]: far, where a clamped background pixel lies just outside.
pub const FAR_OUTSIDE: f32 = 3.0;

/// A warning when the samples look like a diverged model's: most values clamped to the
/// output range with a tenth or more of them far outside it (`far_fraction`: |x| >
/// [`FAR_OUTSIDE`] before the mapping; a healthy MNIST model has about half its values, the
/// background's, clamped from just outside), or values far beyond any data scale (|x| > 1e4
/// before the mapping: training data are about unit scale, see sagd-models' data-scale
/// warning).
pub fn divergence_warning(
    clipped_fraction: f64,
    far_fraction: f64,
    largest: f32,
) -> Option<String> {
    let reading = "the model has likely diverged (its training log shows where) or does not \
                   fit this data";
    if clipped_fraction > 0.5 && far_fraction > 0.1 {
        Some(format!(
            "{:.0}% of the sampled values fell outside the data's range and were clamped, \
             {:.0}% of them more than the range's width outside (largest |x| = \
             {largest:.3e}): {reading}",
            100.0 * clipped_fraction,
            100.0 * far_fraction
        ))
    } else if largest > 1e4 {
        Some(format!(
            "the samples reach |x| = {largest:.3e}, far beyond the data's scale: {reading}"
        ))
    } else {
        None
    }
}

/// What [`draw`] saw of the raw values, before the output range clamped them.
struct Drawn {
    /// Every image, mapped back to the data's range.
    values: Vec<f32>,
    /// Values the range clamped.
    clipped: usize,
    /// Values beyond [`FAR_OUTSIDE`] before the mapping.
    far: usize,
    /// The largest `|x|` before the mapping (the network's scale).
    largest: f32,
    /// `samples-raw.npy`, when the range clamps.
    raw_samples: Option<PathBuf>,
}

/// Draws the images batch by batch into `samples.npy`, mapped back to the data's range.
fn draw(
    args: &SampleRequest,
    source: &Sampled,
    sampler: &dyn Sampler<DynShape>,
    device: &Device,
    progress: &mut dyn FnMut(SampleEvent<'_>),
) -> Result<Drawn, RunError> {
    let dims = source.denoiser.shape().dims();
    let batches = args.count.div_ceil(args.batch);
    progress(SampleEvent::Started {
        total_steps: (batches * sampler.steps()) as u64,
    });
    let samples_path = args.out.join("samples.npy");
    let shape = [args.count, dims[0], dims[1], dims[2]];
    let mut writer = NpyWriter::create(&samples_path, &shape)?;
    // The values before the clamp, where there is one: the sampler's own output.
    let raw_path = args.out.join("samples-raw.npy");
    let mut raw_writer = match source.range {
        OutputRange::EightBit => Some(NpyWriter::create(&raw_path, &shape)?),
        _ => None,
    };
    let mut all = Vec::with_capacity(args.count * source.denoiser.shape().numel());
    let mut clipped = 0usize;
    let mut far = 0usize;
    let mut largest = 0f32;
    for b in 0..batches {
        let n = args.batch.min(args.count - b * args.batch);
        // One ChaCha8 stream per batch: a full batch b of a seed is the same whatever
        // count (a shorter last batch draws its fresh noise differently).
        let mut rng = noise_rng(args.seed);
        rng.set_stream(b as u64);
        let done = (b * sampler.steps()) as u64;
        let images = sampler.sample(source.denoiser.as_ref(), n, &mut rng, device, &mut |p| {
            progress(SampleEvent::Step {
                done: done + p.step as u64,
                batch: b + 1,
                batches,
                sigma: p.sigma,
            })
        })?;
        let mut values = images.to_host();
        largest = values.iter().fold(largest, |m, v| m.max(v.abs()));
        far += values.iter().filter(|v| v.abs() > FAR_OUTSIDE).count();
        if let Some(raw) = raw_writer.as_mut() {
            let unclamped: Vec<f32> = values.iter().map(|&v| source.range.unclamped(v)).collect();
            raw.write(&unclamped)?;
        }
        clipped += values
            .iter_mut()
            .filter_map(|v| source.range.map(v).then_some(()))
            .count();
        writer.write(&values)?;
        all.extend_from_slice(&values);
    }
    writer.finish()?;
    let raw_samples = match raw_writer {
        Some(raw) => {
            raw.finish()?;
            Some(raw_path)
        }
        None => None,
    };
    Ok(Drawn {
        values: all,
        clipped,
        far,
        largest,
        raw_samples,
    })
}

/// The terminal-SNR check (`sagd_core::terminal`) of an oracle's stationary law at the
/// sampler's start level `top`: per mode, the data's second moment (mode variance plus the
/// equally weighted means' power) against the noise `σ_T² w²`.
fn oracle_terminal_snr(
    data: &OracleData,
    cov: &SpectralCovariance,
    top: NoiseLevel,
    dims: [usize; 3],
) -> Result<Option<TerminalSnr>, RunError> {
    let OracleData::Stationary { means, power, .. } = data else {
        return Ok(None);
    };
    let flat: Vec<f32> = means.iter().flatten().map(|&v| v as f32).collect();
    let set = Dataset::new("oracle means", dims, Pixels::F32(flat), None)?;
    let mean_power = stats::second_moment_spectrum(&set)?;
    let signal: Vec<f64> = power.iter().zip(&mean_power).map(|(l, m)| l + m).collect();
    Ok(Some(sagd_core::terminal::terminal_snr(cov, &signal, top)?))
}

/// How an oracle's `samples` compare with its law: per-mode variances for a `grf`, component
/// shares for a `gmm`.
fn data_check(
    data: &OracleData,
    noise_power: &[f64],
    samples: &[f32],
    dims: [usize; 3],
) -> Result<DataCheck, RunError> {
    let OracleData::Stationary { means, power, .. } = data else {
        return Ok(DataCheck::NotApplicable);
    };
    let d: usize = dims.iter().product();
    if means.len() == 1 {
        let set = Dataset::new("samples", dims, Pixels::F32(samples.to_vec()), None)?;
        let observed = stats::second_moment_spectrum(&set)?;
        // Modes outside the spectrum's support stay at the prior's zero by design: they are
        // counted apart, not compared.
        let mut rel: Vec<f64> = observed
            .iter()
            .zip(power)
            .zip(noise_power)
            .filter(|((_, l), w)| **l > 0.0 && **w > 0.0)
            .map(|((o, l), _)| (o / l - 1.0).abs())
            .collect();
        let off_support = noise_power.iter().filter(|w| **w == 0.0).count();
        rel.sort_by(f64::total_cmp);
        let median = rel.get(rel.len() / 2).copied().unwrap_or(f64::NAN);
        let max = rel.last().copied().unwrap_or(f64::NAN);
        return Ok(DataCheck::ModeVariances {
            kind: "mode variances (samples vs data)".to_string(),
            median_relative_error: median,
            max_relative_error: max,
            modes: rel.len(),
            modes_off_support: off_support,
            // The sampling error alone: |F x|² of a complex Gaussian mode is exponential, so
            // its mean over N images has relative sd 1/√N (√(2/N) for the real DC and Nyquist
            // modes).
            sampling_sd_per_mode: 1.0 / ((samples.len() / d * dims[0]) as f64).sqrt(),
        });
    }
    let mut counts = vec![0usize; means.len()];
    for image in samples.chunks(d) {
        let nearest = means
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let dist: f64 = image
                    .iter()
                    .zip(m)
                    .map(|(&x, &mu)| (x as f64 - mu).powi(2))
                    .sum();
                (k, dist)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(k, _)| k);
        counts[nearest] += 1;
    }
    let n = (samples.len() / d) as f64;
    Ok(DataCheck::ComponentShares {
        kind: "component shares (nearest mean) vs weights".to_string(),
        shares: counts.iter().map(|&c| c as f64 / n).collect(),
        weights: data.mixture_weights(),
    })
}
