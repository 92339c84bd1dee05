//! `sagd theory`: the analytic theory of spectral bias (how fast each Fourier mode is learned)
//! for a dataset under a noise spectrum, and the learning curves of trained runs. The runs are
//! [`sagd_runs::theory`]'s; this parses the flags, draws the progress bar and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use sagd_core::theory::{Crossing, ExponentFit};
use sagd_core::{DeviceSpec, Normalization, SpectrumSpec};
use sagd_runs::theory::emergence::{EmergenceRequest, EmergenceSummary, emergence_run};
use sagd_runs::theory::{
    Basis, ExponentSummary, PredictModel, PredictRequest, ValidateModel, ValidateRequest,
    Validation, predict_run, validate_run, write_prediction_png,
};
use serde_json::json;

use crate::progress::progress_bar;
use crate::usage;

/// `sagd theory …`.
#[derive(Debug, Subcommand)]
pub enum TheoryCommand {
    /// Per-mode curves λ̃_k(τ), learning times τ_k* and the fitted exponent of τ* ∝ λ^(-α).
    Predict(PredictArgs),
    /// Train a linear or circulant denoiser by full-batch gradient descent on grf data and
    /// compare each mode's generated variance (PF-ODE, Heun) with the theory at checkpoints.
    Validate(ValidateArgs),
    /// Per-mode learning curves of a trained run, measured from samples at its checkpoints:
    /// learning steps τ*, the fit τ* ∝ λ^(-α), their spread and the linear theory's α.
    Emergence(EmergenceArgs),
}

/// `sagd theory emergence`.
#[derive(Debug, Args)]
pub struct EmergenceArgs {
    /// The run directory (config.toml and at least two checkpoints; train with e.g.
    /// checkpoint_at = [1, 2, 5, 10, …] and keep_checkpoints high enough to keep them).
    #[arg(long)]
    run: PathBuf,
    /// Images sampled at each checkpoint (the same noise every time).
    #[arg(long, default_value_t = 256)]
    samples: usize,
    /// ddim, ddpm, euler or heun.
    #[arg(long, default_value = "ddim")]
    sampler: String,
    /// Levels the sampler visits (default: 25, at most the run's levels).
    #[arg(long)]
    steps: Option<usize>,
    /// Images per sampling batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Sample the EMA weights (default: the raw weights, whose dynamics are the learning's).
    #[arg(long)]
    ema: bool,
    /// At most this many training images (a seeded subset) give the targets λ.
    #[arg(long, default_value_t = 4096)]
    images: usize,
    /// Leave out the modes whose initial variance is within this factor of λ (1 keeps all).
    #[arg(long, default_value_t = 2.0)]
    exclude: f64,
    /// Seed of the sampling noise (the same at every checkpoint), the image subset and the
    /// random transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: cpu, or cuda (built with --features cuda).
    #[arg(long, default_value = "cpu", value_parser = crate::parse::device)]
    device: DeviceSpec,
    /// Output directory: emergence.csv, emergence.json, emergence.png.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing emergence.json in --out.
    #[arg(long)]
    overwrite: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print the summary (emergence.json) as JSON.
    #[arg(long)]
    json: bool,
}

/// `sagd theory validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The data: a grf spec (its exact covariance is the full batch), e.g. grf:size=1x8x8,beta=1.
    #[arg(long)]
    data: String,
    /// The noise spectrum.
    #[arg(long, value_parser = crate::parse::spectrum)]
    spectrum: SpectrumSpec,
    /// The spectrum's normalization: energy or none.
    #[arg(long, default_value = "energy", value_parser = crate::parse::normalization)]
    normalization: Normalization,
    /// linear or circulant (full-batch gradient descent, compared with the theory), or mlp
    /// (Adam on minibatches, sampled by Monte Carlo: the theory is a guide there).
    #[arg(long, default_value = "linear")]
    model: String,
    /// mlp: images drawn from the grf for training.
    #[arg(long, default_value_t = 8192)]
    images: usize,
    /// mlp: minibatch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// mlp: Adam's learning rate (constant).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// mlp: samples drawn at each checkpoint to measure the mode variances.
    #[arg(long, default_value_t = 2048)]
    samples: usize,
    /// mlp: seed of the initial weights, the minibatches and the sampling noise (the training
    /// images come from the grf spec's own `seed`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Noise levels of the trained ladder (EDM spacing, ρ = 7), each trained independently.
    #[arg(long, default_value_t = 48)]
    levels: usize,
    /// Smallest noise level σ_0. Gradient descent needs about (λ_max + σ_T² w_max)/λ_min
    /// steps, so the range is narrower than EDM's by default.
    #[arg(long, default_value_t = 0.02)]
    sigma_min: f64,
    /// Largest noise level σ_T.
    #[arg(long, default_value_t = 2.0)]
    sigma_max: f64,
    /// Gradient-descent step η (default: 0.5 over the fastest mode's rate at σ_T).
    #[arg(long)]
    eta: Option<f64>,
    /// Total steps (default: until every mode has passed three times its learning time).
    #[arg(long)]
    steps: Option<u64>,
    /// Checkpoints, log-spaced in steps up to the last.
    #[arg(long, default_value_t = 6)]
    checkpoints: usize,
    /// Output directory: validate.csv, validate.json, validate.png.
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `sagd theory predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The data, as for `sagd data` (grf uses its exact mode variances; other data their
    /// per-Fourier-mode variances, after the transforms).
    #[arg(long)]
    data: String,
    /// A transform applied to the data first (repeatable), as for `sagd data`.
    #[arg(long = "transform", value_name = "T")]
    transforms: Vec<String>,
    /// The noise spectrum.
    #[arg(long, value_parser = crate::parse::spectrum)]
    spectrum: SpectrumSpec,
    /// The spectrum's normalization: energy, none or per-sample-std.
    #[arg(long, default_value = "energy", value_parser = crate::parse::normalization)]
    normalization: Normalization,
    /// The modes: fourier (per-Fourier-mode variances: exact for stationary data) or pca (the
    /// eigenvalues of the data covariance; shared with Σ_w only for isotropic noise).
    #[arg(long, default_value = "fourier")]
    basis: String,
    /// Images used for the PCA basis.
    #[arg(long, default_value_t = 2000)]
    pca_images: usize,
    /// linear, circulant (rate × H·W) or two-layer (D = PPᵀ x).
    #[arg(long, default_value = "linear")]
    model: String,
    /// Learning rate η.
    #[arg(long, default_value_t = 1.0)]
    eta: f64,
    /// Initial gain Q of every mode (> 0 for two-layer).
    #[arg(long, default_value_t = 0.0)]
    q: f64,
    /// Smallest noise level σ_0.
    #[arg(long, default_value_t = 0.002)]
    sigma_min: f64,
    /// Largest noise level σ_T.
    #[arg(long, default_value_t = 80.0)]
    sigma_max: f64,
    /// The learning-time criterion: geometric or harmonic mean of the initial and target
    /// variances.
    #[arg(long, default_value = "geometric")]
    crossing: String,
    /// Leave out of the fit the modes whose initial variance is within this factor of the
    /// target (1 keeps every mode).
    #[arg(long, default_value_t = 1.0)]
    exclude: f64,
    /// Number of τ values (log-spaced over every mode's dynamics).
    #[arg(long, default_value_t = 200)]
    tau_points: usize,
    /// Print the whole prediction as JSON.
    #[arg(long)]
    json: bool,
    /// Plot the curves of a dozen modes and τ* against λ (log-log, with the fit) to this PNG.
    #[arg(long)]
    png: Option<PathBuf>,
}

/// Runs a theory command.
pub fn run(command: &TheoryCommand) -> Result<ExitCode> {
    match command {
        TheoryCommand::Predict(args) => predict_command(args),
        TheoryCommand::Validate(args) => validate_command(args),
        TheoryCommand::Emergence(args) => emergence_command(args),
    }
}

fn predict_command(args: &PredictArgs) -> Result<ExitCode> {
    let basis = match args.basis.as_str() {
        "fourier" => Basis::Fourier,
        "pca" => Basis::Pca,
        other => return Err(usage(format!("--basis `{other}`: expected fourier or pca"))),
    };
    let normalization = args.normalization;
    let model = match args.model.as_str() {
        "linear" => PredictModel::Linear,
        "circulant" => PredictModel::Circulant,
        "two-layer" => PredictModel::TwoLayer,
        other => {
            return Err(usage(format!(
                "--model `{other}`: expected linear, circulant or two-layer"
            )));
        }
    };
    let crossing = match args.crossing.as_str() {
        "geometric" => Crossing::Geometric,
        "harmonic" => Crossing::Harmonic,
        other => {
            return Err(usage(format!(
                "--crossing `{other}`: expected geometric or harmonic"
            )));
        }
    };
    let request = PredictRequest {
        data: args.data.clone(),
        transforms: args.transforms.clone(),
        spectrum: args.spectrum.clone(),
        normalization,
        basis,
        pca_images: args.pca_images,
        model,
        eta: args.eta,
        q: args.q,
        sigma_min: args.sigma_min,
        sigma_max: args.sigma_max,
        crossing,
        exclude: args.exclude,
        tau_points: args.tau_points,
    };
    let run = predict_run(&request)?;
    let prediction = &run.prediction;
    if let Some(path) = &args.png {
        write_prediction_png(path, prediction, args.spectrum.text())?;
    }
    let dims = run.shape;
    let skipped = run.skipped_zero_variance;
    if args.json {
        let fit = |f: Option<ExponentFit>| f.map(ExponentSummary::full);
        crate::print_stdout(&format!(
            "{}\n",
            json!({
                "data": args.data,
                "spectrum": args.spectrum.text(),
                "basis": args.basis,
                "model": args.model,
                "eta": args.eta,
                "q": args.q,
                "sigma_min": args.sigma_min,
                "sigma_max": args.sigma_max,
                "crossing": args.crossing,
                "exclude": args.exclude,
                "shape": dims,
                "skipped_zero_variance": skipped,
                "tau": prediction.tau,
                "modes": run.mode_summaries(),
                "exponent": fit(prediction.exponent()),
                "increasing": fit(prediction.increasing),
                "decreasing": fit(prediction.decreasing),
            })
        ))?;
    } else {
        let taus: Vec<f64> = prediction.modes.iter().filter_map(|m| m.tau_star).collect();
        let (lo, hi) = taus
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
        println!(
            "{} modes ({}x{}x{}{}), {} model, η = {}, σ in [{}, {}]",
            prediction.modes.len(),
            dims[0],
            dims[1],
            dims[2],
            if skipped > 0 {
                format!(", {skipped} with zero variance left out")
            } else {
                String::new()
            },
            args.model,
            args.eta,
            args.sigma_min,
            args.sigma_max
        );
        if !taus.is_empty() {
            println!(
                "learning times τ*: {lo:.4e} … {hi:.4e} ({} modes)",
                taus.len()
            );
        }
        for (name, fit) in [
            ("rising", prediction.increasing),
            ("falling", prediction.decreasing),
        ] {
            match fit {
                Some(f) => println!(
                    "{name} modes: τ* ∝ λ^(-α), α = {:.4}, R² = {:.4} ({} modes)",
                    f.alpha, f.r2, f.modes
                ),
                None => println!("{name} modes: too few to fit"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate_command(args: &ValidateArgs) -> Result<ExitCode> {
    let model = match args.model.as_str() {
        "linear" => ValidateModel::Linear,
        "circulant" => ValidateModel::Circulant,
        "mlp" => ValidateModel::Mlp,
        other => {
            return Err(usage(format!(
                "--model `{other}`: expected linear, circulant or mlp"
            )));
        }
    };
    let request = ValidateRequest {
        data: args.data.clone(),
        spectrum: args.spectrum.clone(),
        normalization: args.normalization,
        model,
        images: args.images,
        batch: args.batch,
        lr: args.lr,
        samples: args.samples,
        seed: args.seed,
        levels: args.levels,
        sigma_min: args.sigma_min,
        sigma_max: args.sigma_max,
        eta: args.eta,
        steps: args.steps,
        checkpoints: args.checkpoints,
        out: args.out.clone(),
    };
    let bar = progress_bar(args.json, 0, "steps");
    let result = validate_run(&request, &mut |done, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let validation = result?;
    if args.json {
        crate::print_stdout(&format!("{}\n", serde_json::to_value(&validation)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    match &validation {
        Validation::Affine(v) => println!(
            "{} ({} levels, σ in [{}, {}], η = {:.3e}): {} checkpoints up to step {}; \
             trained vs theory: largest relative error {:.3}% (step {}, mode {}) -> {}",
            args.model,
            args.levels,
            args.sigma_min,
            args.sigma_max,
            v.eta,
            v.checkpoints.len(),
            v.steps,
            100.0 * v.max_relative_error,
            v.worst.step,
            v.worst.mode,
            args.out.display()
        ),
        Validation::Mlp(v) => {
            let show = |f: Option<ExponentFit>| {
                f.map_or("no fit".to_string(), |f| {
                    format!("α = {:.3} (R² = {:.3}, {} modes)", f.alpha, f.r2, f.modes)
                })
            };
            println!(
                "mlp, Adam lr {}, {} steps: {} of {} modes crossed; τ* ∝ λ^(-α) with {} \
                 (linear theory: {}) -> {}",
                args.lr,
                v.steps,
                v.modes_learned,
                v.modes,
                show(v.fit),
                show(v.linear_theory_fit),
                args.out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn emergence_command(args: &EmergenceArgs) -> Result<ExitCode> {
    let method = args
        .sampler
        .parse()
        .map_err(|e: sagd_samplers::SamplerError| usage(format!("--sampler: {e}")))?;
    let request = EmergenceRequest {
        run: args.run.clone(),
        samples: args.samples,
        method,
        steps: args.steps,
        batch: args.batch,
        ema: args.ema,
        images: args.images,
        exclude: args.exclude,
        seed: args.seed,
        device: args.device,
        out: args.out.clone(),
        overwrite: args.overwrite,
    };
    let bar = progress_bar(args.quiet || args.json, 0, "checkpoints");
    let result = emergence_run(&request, &mut |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(format!("step {}", p.step));
    });
    bar.finish_and_clear();
    let summary = result?;
    if args.json {
        crate::print_stdout(&format!("{}\n", serde_json::to_value(&summary)?))?;
    } else {
        crate::print_stdout(&emergence_text(&summary, &args.out))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable summary of an emergence run.
fn emergence_text(s: &EmergenceSummary, out: &std::path::Path) -> String {
    let fit = |name: &str, f: Option<ExponentSummary>| match f {
        Some(f) => format!(
            "  {name:<8} α = {:.3}  R² = {:.3}  ({} modes)\n",
            f.alpha,
            f.r2,
            f.modes.unwrap_or(0)
        ),
        None => format!("  {name:<8} too few modes to fit\n"),
    };
    let [c, h, w] = s.shape;
    let mut text = format!(
        "{} ({c}x{h}x{w}, {}): {} checkpoints, steps {} … {}; {} samples each by {}{}\n",
        s.model,
        s.spectrum,
        s.checkpoints,
        s.steps.first().copied().unwrap_or(0),
        s.steps.last().copied().unwrap_or(0),
        s.samples,
        s.sampler,
        if s.ema { " (EMA weights)" } else { "" },
    );
    text.push_str(&format!(
        "{} modes: {} crossed, {} excluded by --exclude {}, {} not learned{}\n",
        s.modes,
        s.modes_crossed,
        s.modes_excluded,
        s.exclude,
        s.modes_not_learned,
        if s.modes_off_support > 0 {
            format!("; {} off the noise's support", s.modes_off_support)
        } else {
            String::new()
        }
    ));
    text.push_str("learning steps τ* ∝ λ^(-α):\n");
    text.push_str(&fit("all", s.fits.all));
    text.push_str(&fit("rising", s.fits.rising));
    text.push_str(&fit("falling", s.fits.falling));
    match s.spread {
        Some(sp) => text.push_str(&format!(
            "spread of τ*: p90/p10 = {:.3} ({:.2} decades; p10 = {:.4}, p90 = {:.4})\n",
            sp.ratio, sp.decades, sp.p10, sp.p90
        )),
        None => text.push_str("spread of τ*: too few modes crossed\n"),
    }
    match s.linear_theory {
        Some(f) => text.push_str(&format!(
            "linear theory (σ in [{:.4}, {:.4}]): α = {:.3}  R² = {:.3}\n",
            s.sigma_min, s.sigma_max, f.alpha, f.r2
        )),
        None => text.push_str("linear theory: no fit\n"),
    }
    text.push_str(&format!(
        "-> {} (emergence.csv, emergence.json, emergence.png) in {:.1} s\n",
        out.display(),
        s.seconds
    ));
    text
}
