//! `sagd sample`: draws images from a trained checkpoint or from the exact oracle of a
//! synthetic dataset, with any sampler, into `samples.npy`, `grid.png` and `summary.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sagd_core::{
    DynShape, ImageShape, Normalization, Schedule, SpectralCovariance, SpectralNoise, noise_rng,
    parse_spectrum,
};
use sagd_datasets::npy::NpyWriter;
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::transform::Pipeline;
use sagd_datasets::{Dataset, Pixels, stats};
use sagd_models::checkpoint;
use sagd_models::train::device_for;
use sagd_models::{Denoiser, ModelError, TrainedDenoiser};
use sagd_samplers::{
    Method, OdeForm, OracleData, OracleDenoiser, Prior, SamplerConfig, SamplerError, Spacing,
};
use serde_json::{Value, json};

use crate::{usage, write_atomic};

/// Arguments of `sagd sample`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["checkpoint", "oracle"]))]
pub struct SampleArgs {
    /// A run directory (its newest checkpoint is used) or a checkpoint file.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Use the checkpoint's EMA weights.
    #[arg(long, requires = "checkpoint")]
    ema: bool,
    /// Sample from the exact posterior-mean oracle of this dataset (grf or gmm), e.g.
    /// `grf:beta=2,size=1x16x16`.
    #[arg(long, requires = "spectrum")]
    oracle: Option<String>,
    /// The noise spectrum of the oracle's process, e.g. `power-law:alpha=-0.5,eps=0.05`.
    #[arg(long, conflicts_with = "checkpoint")]
    spectrum: Option<String>,
    /// The oracle's spectrum normalization: energy, none or per-sample-std.
    #[arg(long, default_value = "energy", conflicts_with = "checkpoint")]
    normalization: String,
    /// The oracle's schedule: ddpm-linear, cosine or edm.
    #[arg(long, default_value = "ddpm-linear", conflicts_with = "checkpoint")]
    schedule: String,
    /// The number of levels of the oracle's schedule.
    #[arg(long, default_value_t = 1000, conflicts_with = "checkpoint")]
    levels: usize,
    /// ddim, ddpm, euler or heun.
    #[arg(long, default_value = "ddim")]
    sampler: String,
    /// Levels visited (default: 50; for ddpm the whole schedule).
    #[arg(long)]
    steps: Option<usize>,
    /// DDIM's η in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    eta: f64,
    /// The ODE's variables for euler and heun: edm (default) or vp.
    #[arg(long)]
    form: Option<String>,
    /// uniform, quadratic, karras or karras:rho=R.
    #[arg(long, default_value = "uniform")]
    spacing: String,
    /// matched (N(0, σ_T² Σ_w)) or white (ablation).
    #[arg(long, default_value = "matched")]
    prior: String,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Seed: the same seed and batch give the same images on CPU.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// The image shape CxHxW asked for; a checkpoint or oracle of another shape is refused.
    #[arg(long)]
    shape: Option<String>,
    /// Output directory: samples.npy, grid.png, summary.json.
    #[arg(long)]
    out: PathBuf,
    /// Replace samples already in --out.
    #[arg(long)]
    overwrite: bool,
    /// Device: cpu, or cuda (built with --features cuda; the GPU is checked before any
    /// work); ndarray and libtorch are other CPU backends in builds with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn sampler_error(e: SamplerError) -> anyhow::Error {
    match e {
        SamplerError::Model(m) => model_error(m),
        SamplerError::Data(d) => crate::data::classify(d),
        e if e.is_usage() => usage(e.to_string()),
        e => anyhow::Error::new(e),
    }
}

fn model_error(e: ModelError) -> anyhow::Error {
    match e {
        ModelError::Data(d) => crate::data::classify(d),
        e if e.is_usage() => usage(e.to_string()),
        e => anyhow::Error::new(e),
    }
}

/// The longest oracle schedule accepted.
const MAX_LEVELS: usize = 100_000;

/// The most values (`count · C·H·W`) one run keeps in memory.
const MAX_VALUES: usize = 1 << 31;

/// How the samples relate to the data's own range.
struct Range {
    /// Undo the `scale` transform: `x ↦ (x + 1)/2`.
    unscale: bool,
    /// The data are 8-bit images in [0, 1]: clamp to it.
    unit: bool,
}

/// What is sampled: a denoiser, the noise operator it was trained with, and where it came from.
struct Sampled {
    denoiser: Box<dyn Denoiser<DynShape>>,
    noise: SpectralNoise<DynShape>,
    range: Range,
    describe: Value,
    oracle: Option<OracleData>,
}

/// Whether the run's data were 8-bit images (stored as bytes, read as [0, 1]); training then
/// appends `scale` when the transforms lack it. Image sources always are; a `.npy`/`.npz`
/// source is when its array is `u8`, which needs a look at the file.
fn eight_bit(spec: &DataSpec) -> bool {
    match &spec.source {
        Source::Mnist(_)
        | Source::FashionMnist(_)
        | Source::Cifar10(_)
        | Source::Folder { .. }
        | Source::Shapes(_) => true,
        Source::Npy { .. } | Source::Npz { .. } => spec.load().is_ok_and(|d| d.is_u8()),
        Source::Grf(_) | Source::Gmm(_) => false,
    }
}

/// The newest checkpoint of a run directory, or the file itself.
fn checkpoint_file(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(usage(format!(
            "{}: no such checkpoint file or run directory",
            path.display()
        )));
    }
    let dir = if path.join("checkpoints").is_dir() {
        path.join("checkpoints")
    } else {
        path.to_path_buf()
    };
    let list = checkpoint::list(&dir).map_err(model_error)?;
    list.last().map(|(_, p)| p.clone()).ok_or_else(|| {
        usage(format!(
            "{}: no checkpoints (expected step-NNNNNNNN.safetensors files)",
            dir.display()
        ))
    })
}

fn from_checkpoint(path: &Path, ema: bool, device: &sagd_core::prelude::Device) -> Result<Sampled> {
    let file = checkpoint_file(path)?;
    let denoiser = TrainedDenoiser::load_any(&file, ema, device).map_err(model_error)?;
    let noise =
        SpectralNoise::from_covariance(Arc::new(denoiser.covariance().clone()), denoiser.shape())?;
    let spec: Result<DataSpec, _> = denoiser.config.data.spec.parse();
    let unit = spec.map(|s| eight_bit(&s)).unwrap_or(false);
    let unscale = unit
        || Pipeline::parse(&denoiser.config.data.transforms)
            .map(|p| p.scales())
            .unwrap_or(false);
    let describe = json!({
        "checkpoint": file,
        "ema": ema,
        "data": denoiser.config.data.spec,
        "spectrum": denoiser.config.noise.spectrum,
        "model": denoiser.config.model.kind(),
    });
    Ok(Sampled {
        denoiser: Box::new(denoiser),
        noise,
        range: Range { unscale, unit },
        describe,
        oracle: None,
    })
}

fn from_oracle(args: &SampleArgs, spectrum: &str) -> Result<Sampled> {
    let text = args.oracle.as_deref().unwrap_or_default();
    let spec: DataSpec = text.parse().map_err(crate::data::classify)?;
    let dims = match &spec.source {
        Source::Grf(c) => c.size,
        Source::Gmm(c) => c.size,
        _ => [0, 0, 0],
    };
    let data = OracleData::from_source(&spec.source).map_err(sampler_error)?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let parsed = parse_spectrum(spectrum).map_err(|e| usage(format!("--spectrum: {e}")))?;
    let normalization: Normalization = args
        .normalization
        .parse()
        .map_err(|e| usage(format!("--normalization: {e}")))?;
    let covariance = Arc::new(
        SpectralCovariance::new(parsed.as_ref(), dims, normalization)
            .map_err(|e| usage(format!("--spectrum: {e}")))?,
    );
    if !(2..=MAX_LEVELS).contains(&args.levels) {
        return Err(usage(format!(
            "--levels {}: expected 2 ..= {MAX_LEVELS}",
            args.levels
        )));
    }
    if normalization == Normalization::PerSampleStd {
        return Err(usage(
            "--normalization per-sample-std: its noise is not Gaussian, so the oracle would not \
             be exact; use energy or none",
        ));
    }
    let schedule = match args.schedule.as_str() {
        // DDPM's β range is for T = 1000; other lengths scale it by 1000/T (as improved DDPM
        // does), so the schedule still ends near ᾱ_T ≈ 4e-5.
        "ddpm-linear" => Schedule::DdpmLinear {
            beta_start: 1e-4 * 1000.0 / args.levels as f64,
            beta_end: (0.02 * 1000.0 / args.levels as f64).min(0.999),
            steps: args.levels,
        },
        "cosine" => match Schedule::cosine() {
            Schedule::Cosine {
                offset, max_beta, ..
            } => Schedule::Cosine {
                steps: args.levels,
                offset,
                max_beta,
            },
            other => other,
        },
        "edm" => Schedule::edm(args.levels),
        other => {
            return Err(usage(format!(
                "--schedule `{other}`: expected ddpm-linear, cosine or edm"
            )));
        }
    };
    schedule
        .validate()
        .map_err(|e| usage(format!("--schedule/--levels: {e}")))?;
    let noise = SpectralNoise::from_covariance(covariance.clone(), shape)?;
    let oracle =
        OracleDenoiser::new(data.clone(), shape, covariance, &schedule).map_err(sampler_error)?;
    Ok(Sampled {
        denoiser: Box::new(oracle),
        noise,
        range: Range {
            unscale: false,
            unit: false,
        },
        describe: json!({
            "oracle": text,
            "spectrum": spectrum,
            "normalization": args.normalization,
            "schedule": args.schedule,
            "levels": args.levels,
        }),
        oracle: Some(data),
    })
}

fn sampler_config(args: &SampleArgs, levels: usize) -> Result<SamplerConfig> {
    let method: Method = args.sampler.parse().map_err(sampler_error)?;
    let default_steps = if method == Method::Ddpm {
        levels
    } else {
        50.min(levels)
    };
    let config = SamplerConfig {
        method,
        steps: args.steps.unwrap_or(default_steps),
        eta: args.eta,
        form: args
            .form
            .as_deref()
            .unwrap_or("edm")
            .parse::<OdeForm>()
            .map_err(sampler_error)?,
        spacing: args.spacing.parse::<Spacing>().map_err(sampler_error)?,
        prior: args.prior.parse::<Prior>().map_err(sampler_error)?,
        final_denoise: true,
    };
    if args.eta != 0.0 && method != Method::Ddim {
        return Err(usage(format!(
            "--eta {} applies to --sampler ddim only",
            args.eta
        )));
    }
    if let (Some(form), Method::Ddim | Method::Ddpm) = (&args.form, method) {
        return Err(usage(format!(
            "--form {form} applies to --sampler euler and heun only"
        )));
    }
    config.validate().map_err(sampler_error)?;
    Ok(config)
}

/// Runs `sagd sample`.
pub fn run(args: &SampleArgs) -> Result<ExitCode> {
    if args.count == 0 {
        return Err(usage("--count must be at least 1"));
    }
    if args.batch == 0 {
        return Err(usage("--batch must be at least 1"));
    }
    let device = device_for(&args.device).map_err(model_error)?;
    let source = match (&args.checkpoint, &args.spectrum) {
        (Some(path), _) => from_checkpoint(path, args.ema, &device)?,
        (None, Some(spectrum)) => from_oracle(args, spectrum)?,
        (None, None) => return Err(usage("--oracle needs --spectrum")),
    };
    let shape = source.denoiser.shape();
    let dims = shape.dims();
    if let Some(asked) = &args.shape {
        let asked: DynShape = asked.parse().map_err(|e| usage(format!("--shape: {e}")))?;
        if asked.dims() != dims {
            return Err(usage(format!(
                "--shape {}x{}x{} does not match the {} ({}x{}x{} images)",
                asked.dims()[0],
                asked.dims()[1],
                asked.dims()[2],
                if args.checkpoint.is_some() {
                    "checkpoint, which was trained on"
                } else {
                    "oracle's data"
                },
                dims[0],
                dims[1],
                dims[2]
            )));
        }
    }
    let config = sampler_config(args, source.denoiser.levels().len())?;
    config
        .check_levels(source.denoiser.levels())
        .map_err(sampler_error)?;
    let sampler = config.build::<DynShape>().map_err(sampler_error)?;
    // The oracle knows its data's law: check that the start level drowns every mode.
    let terminal = match &source.oracle {
        Some(data) => {
            let path = sagd_samplers::timesteps::select(
                source.denoiser.levels(),
                config.steps,
                config.spacing,
            )
            .map_err(sampler_error)?;
            let top = source.denoiser.levels()[path[0]];
            oracle_terminal_snr(data, source.denoiser.covariance(), top, dims)?
        }
        None => None,
    };
    if let Some(report) = &terminal
        && report.affected > 0
    {
        eprintln!(
            "warning: the prior does not match the process in every mode: {}",
            report.summary()
        );
    }
    if args
        .count
        .checked_mul(shape.numel())
        .is_none_or(|n| n > MAX_VALUES)
    {
        return Err(usage(format!(
            "--count {}: {} images of {} values exceed one run's limit of {MAX_VALUES} values; \
             split the run",
            args.count,
            args.count,
            shape.numel()
        )));
    }

    let samples_path = args.out.join("samples.npy");
    if samples_path.exists() && !args.overwrite {
        return Err(usage(format!(
            "{} exists; pass --overwrite or choose another --out",
            samples_path.display()
        )));
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let batches = args.count.div_ceil(args.batch);
    let total_steps = (batches * sampler.steps()) as u64;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total_steps)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut writer = NpyWriter::create(&samples_path, &[args.count, dims[0], dims[1], dims[2]])?;
    let started = Instant::now();
    let mut all = Vec::with_capacity(args.count * shape.numel());
    let mut clipped = 0usize;
    for b in 0..batches {
        let n = args.batch.min(args.count - b * args.batch);
        // One ChaCha8 stream per batch: a full batch b of a seed is the same whatever
        // --count (a shorter last batch draws its fresh noise differently).
        let mut rng = noise_rng(args.seed);
        rng.set_stream(b as u64);
        let done = (b * sampler.steps()) as u64;
        let images = sampler
            .sample(
                source.denoiser.as_ref(),
                &source.noise,
                n,
                &mut rng,
                &device,
                &mut |p| {
                    bar.set_position(done + p.step as u64);
                    bar.set_message(format!("batch {}/{batches}  σ {:.3}", b + 1, p.sigma));
                },
            )
            .map_err(sampler_error)?;
        let mut values = images.to_host();
        for v in values.iter_mut() {
            if source.range.unscale {
                *v = (*v + 1.0) / 2.0;
            }
            if source.range.unit && !(0.0..=1.0).contains(v) {
                clipped += 1;
                *v = v.clamp(0.0, 1.0);
            }
        }
        writer.write(&values)?;
        all.extend_from_slice(&values);
    }
    bar.finish_and_clear();
    writer.finish()?;
    let seconds = started.elapsed().as_secs_f64();

    let grid_path = args.out.join("grid.png");
    write_grid(
        &grid_path,
        &all,
        dims,
        source.range.unit || source.range.unscale,
    )?;
    let mut summary = json!({
        "source": source.describe,
        "sampler": sampler.name(),
        "steps": sampler.steps(),
        "evaluations_per_batch": sampler.evaluations(),
        "count": args.count,
        "batch": args.batch,
        "seed": args.seed,
        "shape": dims,
        "device": args.device,
        "seconds": seconds,
        "images_per_s": args.count as f64 / seconds.max(1e-9),
        "clipped_fraction": clipped as f64 / all.len() as f64,
        "samples": samples_path,
        "grid": grid_path,
    });
    if let Some(report) = &terminal {
        summary["terminal_snr"] = json!({
            "affected": report.affected,
            "dominated": report.dominated,
            "outside_support": report.outside_support,
            "worst_snr": report.worst_snr,
        });
    }
    if let Some(data) = &source.oracle {
        summary["data_check"] =
            data_check(data, &source.noise.covariance_arc().power(), &all, dims)?;
    }
    let summary_path = args.out.join("summary.json");
    write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{} images ({}x{}x{}) by {} in {:.1} s ({:.1} images/s) -> {}",
            args.count,
            dims[0],
            dims[1],
            dims[2],
            sampler.name(),
            seconds,
            args.count as f64 / seconds.max(1e-9),
            args.out.display()
        );
        if let Some(check) = summary.get("data_check") {
            println!("data check: {check}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first (at most) 64 samples as a PNG grid. Data with a fixed [0, 1] range are drawn as
/// they are; others with their mean ± 3 standard deviations mapped to black … white. Images
/// with a channel count other than 1 or 3 show their first channel.
fn write_grid(path: &Path, all: &[f32], dims: [usize; 3], unit_range: bool) -> Result<()> {
    let [c, h, w] = dims;
    let d = c * h * w;
    let n = (all.len() / d).min(64);
    let shown = &all[..n * d];
    let (c_out, values): (usize, Vec<f32>) = if c == 1 || c == 3 {
        (c, shown.to_vec())
    } else {
        (
            1,
            shown
                .chunks(d)
                .flat_map(|img| img[..h * w].iter().copied())
                .collect(),
        )
    };
    let values = if unit_range {
        values
    } else {
        let count = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / count;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / count;
        let sd = var.sqrt().max(1e-12);
        values
            .iter()
            .map(|&v| (0.5 + (v as f64 - mean) / (6.0 * sd)) as f32)
            .collect()
    };
    let scale = (96 / w.max(h)).max(1);
    Ok(sagd_plot::write_image_grid_png(
        path, &values, n, c_out, h, w, 8, scale,
    )?)
}

/// The terminal-SNR check (`sagd_core::terminal`) of an oracle's stationary law at the
/// sampler's start level `top`: per mode, the data's second moment (mode variance plus the
/// equally weighted means' power) against the noise `σ_T² w²`.
fn oracle_terminal_snr(
    data: &OracleData,
    cov: &SpectralCovariance,
    top: sagd_core::NoiseLevel,
    dims: [usize; 3],
) -> Result<Option<sagd_core::terminal::TerminalSnr>> {
    let OracleData::Stationary { means, power, .. } = data else {
        return Ok(None);
    };
    let flat: Vec<f32> = means.iter().flatten().map(|&v| v as f32).collect();
    let set = Dataset::new("oracle means", dims, Pixels::F32(flat), None)?;
    let mean_power = stats::second_moment_spectrum(&set)?;
    let signal: Vec<f64> = power.iter().zip(&mean_power).map(|(l, m)| l + m).collect();
    Ok(Some(sagd_core::terminal::terminal_snr(cov, &signal, top)?))
}

/// How the oracle's samples compare with the data law: per-mode variances for a `grf`,
/// component shares for a `gmm`.
fn data_check(
    data: &OracleData,
    noise_power: &[f64],
    samples: &[f32],
    dims: [usize; 3],
) -> Result<Value> {
    let OracleData::Stationary { means, power, .. } = data else {
        return Ok(Value::Null);
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
        return Ok(json!({
            "kind": "mode variances (samples vs data)",
            "median_relative_error": median,
            "max_relative_error": max,
            "modes": rel.len(),
            "modes_off_support": off_support,
            // The sampling error alone: |F x|² of a complex Gaussian mode is exponential, so
            // its mean over N images has relative sd 1/√N (√(2/N) for the real DC and Nyquist
            // modes).
            "sampling_sd_per_mode": 1.0 / ((samples.len() / d * dims[0]) as f64).sqrt(),
        }));
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
    Ok(json!({
        "kind": "component shares (nearest mean) vs weights",
        "shares": counts.iter().map(|&c| c as f64 / n).collect::<Vec<_>>(),
        "weights": data.mixture_weights(),
    }))
}
