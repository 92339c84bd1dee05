//! `sagd theory`: the analytic theory of spectral bias (how fast each Fourier mode is learned)
//! for a dataset under a noise spectrum.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use sagd_core::theory::{Crossing, ModelKind, Prediction, TheoryConfig, predict, tau_grid};
use sagd_core::{Normalization, SpectralCovariance, parse_spectrum};
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::stats;
use sagd_datasets::transform::Pipeline;
use serde_json::json;

use crate::{usage, write_atomic};
use sagd_plot::{LinePlot, Series, write_line_plots_png};

/// `sagd theory …`.
#[derive(Debug, Subcommand)]
pub enum TheoryCommand {
    /// Per-mode curves λ̃_k(τ), learning times τ_k* and the fitted exponent of τ* ∝ λ^(-α).
    Predict(PredictArgs),
    /// Train a linear or circulant denoiser by full-batch gradient descent on grf data and
    /// compare each mode's generated variance (PF-ODE, Heun) with the theory at checkpoints.
    Validate(ValidateArgs),
}

/// `sagd theory validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The data: a grf spec (its exact covariance is the full batch), e.g. grf:size=1x8x8,beta=1.
    #[arg(long)]
    data: String,
    /// The noise spectrum.
    #[arg(long)]
    spectrum: String,
    /// The spectrum's normalization: energy or none.
    #[arg(long, default_value = "energy")]
    normalization: String,
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
    #[arg(long)]
    spectrum: String,
    /// The spectrum's normalization: energy, none or per-sample-std.
    #[arg(long, default_value = "energy")]
    normalization: String,
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
    }
}

/// Per-mode data variances (C×H×W, `fftfreq` order per channel) and the data's `[C, H, W]`.
fn data_variances(args: &PredictArgs) -> Result<(Vec<f64>, [usize; 3])> {
    let spec: DataSpec = args.data.parse().map_err(crate::data::classify)?;
    if let (Source::Grf(config), true) = (&spec.source, args.transforms.is_empty()) {
        config.validate().map_err(crate::data::classify)?;
        let one = config.mode_variances();
        let c = config.size[0];
        return Ok((one.repeat(c), config.size));
    }
    let data = load_transformed(&spec, &args.transforms)?;
    Ok((stats::mode_variances(&data), data.shape()))
}

/// The data of `spec` with the `--transform` pipeline applied to every image.
fn load_transformed(spec: &DataSpec, transforms: &[String]) -> Result<sagd_datasets::Dataset> {
    let pipeline = Pipeline::parse(transforms).map_err(crate::data::classify)?;
    let data = spec.load().map_err(crate::data::classify)?;
    if pipeline.transforms.is_empty() {
        return Ok(data);
    }
    pipeline
        .apply_to(&data, data.len(), 0)
        .map_err(crate::data::classify)
}

/// The eigenvalues of the data covariance (PCA), after the transforms.
fn pca_variances(args: &PredictArgs) -> Result<(Vec<f64>, [usize; 3])> {
    let spec: DataSpec = args.data.parse().map_err(crate::data::classify)?;
    let data = load_transformed(&spec, &args.transforms)?;
    let eigen = stats::pca_spectrum(&data, Some(args.pca_images)).map_err(crate::data::classify)?;
    Ok((eigen, data.shape()))
}

fn predict_command(args: &PredictArgs) -> Result<ExitCode> {
    let pca = match args.basis.as_str() {
        "fourier" => false,
        "pca" => true,
        other => return Err(usage(format!("--basis `{other}`: expected fourier or pca"))),
    };
    let (lambda_all, dims) = if pca {
        pca_variances(args)?
    } else {
        data_variances(args)?
    };
    let spectrum = parse_spectrum(&args.spectrum).map_err(|e| usage(format!("--spectrum: {e}")))?;
    let normalization: Normalization = args
        .normalization
        .parse()
        .map_err(|e| usage(format!("--normalization: {e}")))?;
    let cov = SpectralCovariance::new(spectrum.as_ref(), dims, normalization)
        .map_err(|e| usage(format!("--spectrum: {e}")))?;
    let power = cov.power();
    let w_all = if pca {
        // Σ_w shares the data's eigenvectors only when it is a multiple of the identity.
        let first = power[0];
        if power
            .iter()
            .any(|p| (p - first).abs() > 1e-12 * first.abs().max(1e-300))
        {
            return Err(usage(format!(
                "--basis pca needs isotropic noise (Σ_w ∝ I shares the data's eigenvectors); \
                 `{}` is not; use --basis fourier",
                args.spectrum
            )));
        }
        vec![first; lambda_all.len()]
    } else {
        power.repeat(dims[0])
    };
    let model = match args.model.as_str() {
        "linear" => ModelKind::Linear,
        "circulant" => ModelKind::Circulant {
            pixels: dims[1] * dims[2],
        },
        "two-layer" => ModelKind::TwoLayer,
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
    if args.tau_points < 2 {
        return Err(usage("--tau-points must be at least 2"));
    }
    let config = TheoryConfig {
        eta: args.eta,
        q: args.q,
        sigma_min: args.sigma_min,
        sigma_max: args.sigma_max,
        model,
        crossing,
        exclude: args.exclude,
    };
    config.validate().map_err(|e| usage(e.to_string()))?;
    // Modes the data never excite (λ = 0) have nothing to learn: they are left out and counted.
    let kept: Vec<usize> = (0..lambda_all.len())
        .filter(|&i| lambda_all[i] > 0.0)
        .collect();
    let skipped = lambda_all.len() - kept.len();
    if kept.is_empty() {
        return Err(usage(format!(
            "{}: every mode has zero variance",
            args.data
        )));
    }
    let lambda: Vec<f64> = kept.iter().map(|&i| lambda_all[i]).collect();
    let w: Vec<f64> = kept.iter().map(|&i| w_all[i]).collect();
    let tau = tau_grid(&lambda, &w, &config, args.tau_points);
    let prediction = predict(&lambda, &w, &config, &tau).map_err(|e| usage(e.to_string()))?;

    if let Some(path) = &args.png {
        plot(path, &prediction, &args.spectrum)?;
    }
    let fit_json = |f: Option<sagd_core::theory::ExponentFit>| {
        f.map_or(
            serde_json::Value::Null,
            |f| json!({"alpha": f.alpha, "r2": f.r2, "modes": f.modes, "intercept": f.intercept}),
        )
    };
    if args.json {
        let hw = dims[1] * dims[2];
        let modes: Vec<serde_json::Value> = kept
            .iter()
            .zip(&prediction.modes)
            .map(|(&i, m)| {
                let (c, k, l) = (i / hw, (i % hw) / dims[2], i % dims[2]);
                let place = if pca {
                    json!({"component": i})
                } else {
                    json!({"channel": c, "ky": k, "kx": l})
                };
                json!({
                    "mode": place,
                    "lambda": m.lambda,
                    "w": m.w,
                    "q": m.q,
                    "initial": m.initial,
                    "target": m.target,
                    "tau_star": m.tau_star,
                    "variance": m.variance,
                })
            })
            .collect();
        crate::print_stdout(&format!(
            "{}\n",
            json!({
                "data": args.data,
                "spectrum": args.spectrum,
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
                "modes": modes,
                "exponent": fit_json(prediction.exponent()),
                "increasing": fit_json(prediction.increasing),
                "decreasing": fit_json(prediction.decreasing),
            })
        ))?;
    } else {
        let taus: Vec<f64> = prediction.modes.iter().filter_map(|m| m.tau_star).collect();
        let (lo, hi) = taus
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
        println!(
            "{} modes ({}x{}x{}{}), {} model, η = {}, σ in [{}, {}]",
            lambda.len(),
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

/// Up to `count` mode indices spread evenly over the distinct λ of the modes `keep` accepts,
/// smallest λ first: the modes a plot draws.
fn spread_modes(lambda: &[f64], keep: impl Fn(usize) -> bool, count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lambda.len()).filter(|&i| keep(i)).collect();
    order.sort_by(|&a, &b| lambda[a].total_cmp(&lambda[b]));
    order.dedup_by(|a, b| lambda[*a] == lambda[*b]);
    if order.len() <= count || count < 2 {
        order.truncate(count);
        return order;
    }
    (0..count)
        .map(|i| order[i * (order.len() - 1) / (count - 1)])
        .collect()
}

/// The fit `τ* = k·e^c λ^{-α}` drawn over the λ range of `lambda` (empty without a fit).
fn fit_line(
    fit: Option<sagd_core::theory::ExponentFit>,
    lambda: &[f64],
    k: f64,
) -> Vec<(f64, f64)> {
    let Some(f) = fit else { return Vec::new() };
    let (lo, hi) = lambda
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &l| (a.min(l), b.max(l)));
    [lo, hi]
        .iter()
        .map(|&l| (l, k * (f.intercept - f.alpha * l.ln()).exp()))
        .collect()
}

/// Left: `λ̃_k(τ)/λ̃_k(∞)` for a dozen modes spread over λ; right: τ* against λ with the fits.
fn plot(path: &std::path::Path, p: &Prediction, spectrum: &str) -> Result<()> {
    let lambdas: Vec<f64> = p.modes.iter().map(|m| m.lambda).collect();
    let shown = spread_modes(&lambdas, |_| true, 12);
    let names: Vec<String> = shown
        .iter()
        .map(|&i| format!("λ = {:.3e}", p.modes[i].lambda))
        .collect();
    let curves = LinePlot {
        title: "generated variance / target",
        x_label: "training time τ",
        y_label: "generated variance / target",
        series: shown
            .iter()
            .zip(&names)
            .map(|(&i, name)| Series {
                name,
                points: p
                    .tau
                    .iter()
                    .zip(&p.modes[i].variance)
                    .map(|(&t, &v)| (t, v / p.modes[i].target))
                    .collect(),
                markers: false,
            })
            .collect(),
        log_x: true,
        log_y: true,
    };
    let scatter = |rising: bool| -> Vec<(f64, f64)> {
        p.modes
            .iter()
            .filter(|m| m.tau_star.is_some() && (m.target > m.initial) == rising)
            .flat_map(|m| {
                [
                    (m.lambda, m.tau_star.unwrap_or(f64::NAN)),
                    (f64::NAN, f64::NAN),
                ]
            })
            .collect()
    };
    let line = |fit: Option<sagd_core::theory::ExponentFit>| fit_line(fit, &lambdas, 1.0);
    let fit_name = |what: &str, fit: Option<sagd_core::theory::ExponentFit>| {
        fit.map_or(format!("{what}: no fit"), |f| {
            format!("{what} fit α = {:.3}, R² = {:.3}", f.alpha, f.r2)
        })
    };
    let (rise_name, fall_name) = (
        fit_name("rising", p.increasing),
        fit_name("falling", p.decreasing),
    );
    let title = format!("learning time τ* vs λ ({spectrum})");
    let times = LinePlot {
        title: &title,
        x_label: "mode variance λ",
        y_label: "τ*",
        series: vec![
            Series {
                name: "rising modes",
                points: scatter(true),
                markers: true,
            },
            Series {
                name: "falling modes",
                points: scatter(false),
                markers: true,
            },
            Series {
                name: &rise_name,
                points: line(p.increasing),
                markers: false,
            },
            Series {
                name: &fall_name,
                points: line(p.decreasing),
                markers: false,
            },
        ],
        log_x: true,
        log_y: true,
    };
    Ok(write_line_plots_png(path, &[&curves, &times])?)
}

/// The EDM ladder (ρ = 7) of `--levels` σ over `[--sigma-min, --sigma-max]` a validation
/// trains on.
fn ladder(args: &ValidateArgs) -> Result<sagd_core::Schedule> {
    let schedule = sagd_core::Schedule::Edm {
        sigma_min: args.sigma_min,
        sigma_max: args.sigma_max,
        rho: 7.0,
        steps: args.levels,
    };
    schedule
        .validate()
        .map_err(|e| usage(format!("--sigma-min/--sigma-max/--levels: {e}")))?;
    Ok(schedule)
}

/// The run config a validation's networks are built and read with: the x0 target (the
/// theory's `D(x; σ)`), the ladder, and `model` as the `[model]` table's body.
fn validation_config(args: &ValidateArgs, model: &str) -> Result<sagd_models::RunConfig> {
    let text = format!(
        "parameterization = \"x0\"\n[data]\nspec = \"{}\"\n[noise]\nspectrum = \"{}\"\n\
         normalization = \"{}\"\n[schedule]\nkind = \"edm\"\nsigma_min = {}\nsigma_max = {}\n\
         rho = 7.0\nsteps = {}\n[model]\n{model}\n",
        args.data.replace('"', ""),
        args.spectrum.replace('"', ""),
        args.normalization,
        args.sigma_min,
        args.sigma_max,
        args.levels,
    );
    sagd_models::RunConfig::from_toml(&text, std::path::Path::new("<theory validate>"))
        .map_err(|e| usage(e.to_string()))
}

/// One checkpoint of a validation: per mode, the theory (gradient descent, exact iterates) and
/// the trained model's generated variance.
struct Checkpoint {
    step: u64,
    theory: Vec<f64>,
    flow: Vec<f64>,
    trained: Vec<f64>,
}

fn validate_command(args: &ValidateArgs) -> Result<ExitCode> {
    use sagd_core::{DynShape, SpectralNoise};
    use sagd_models::fullbatch::FullBatchProblem;
    use sagd_models::{ModelConfig, Net, TrainedDenoiser};
    use sagd_samplers::affine::generated_mode_variances;
    use sagd_samplers::{Method, OdeForm, SamplerConfig};

    let spec: DataSpec = args.data.parse().map_err(crate::data::classify)?;
    let Source::Grf(grf) = &spec.source else {
        return Err(usage(format!(
            "--data {}: validate trains on a grf's exact covariance; give a grf spec",
            args.data
        )));
    };
    grf.validate().map_err(crate::data::classify)?;
    let dims = grf.size;
    let d: usize = dims.iter().product();
    if d > 256 {
        return Err(usage(format!(
            "--data {}: {d} values per image; validate trains dense {d}x{d} maps per level, \
             at most 256 values (e.g. 1x16x16)",
            args.data
        )));
    }
    if !(2..=512).contains(&args.levels) {
        return Err(usage(format!(
            "--levels {}: expected 2 ..= 512",
            args.levels
        )));
    }
    if args.checkpoints == 0 {
        return Err(usage("--checkpoints must be at least 1"));
    }
    let normalization: Normalization = args
        .normalization
        .parse()
        .map_err(|e| usage(format!("--normalization: {e}")))?;
    if normalization == Normalization::PerSampleStd {
        return Err(usage(
            "--normalization per-sample-std is not Gaussian; the theory needs energy or none",
        ));
    }
    let spectrum = parse_spectrum(&args.spectrum).map_err(|e| usage(format!("--spectrum: {e}")))?;
    let noise_cov = SpectralCovariance::new(spectrum.as_ref(), dims, normalization)
        .map_err(|e| usage(format!("--spectrum: {e}")))?;
    let pixels = dims[1] * dims[2];
    if args.model == "mlp" {
        return validate_mlp(args, grf, dims, noise_cov);
    }
    let (kind, model) = match args.model.as_str() {
        "linear" => (ModelKind::Linear, ModelConfig::Linear { init_gain: 0.0 }),
        "circulant" => (
            ModelKind::Circulant { pixels },
            ModelConfig::Circulant { init_gain: 0.0 },
        ),
        other => {
            return Err(usage(format!(
                "--model `{other}`: expected linear, circulant or mlp"
            )));
        }
    };
    let schedule = ladder(args)?;
    let sigmas: Vec<f64> = schedule.levels()?.iter().map(|l| l.sigma).collect();

    let lambda = grf.mode_variances().repeat(dims[0]);
    let w = noise_cov.power().repeat(dims[0]);
    let speedup = match kind {
        ModelKind::Circulant { pixels } => pixels as f64,
        _ => 1.0,
    };
    let fastest = lambda
        .iter()
        .zip(&w)
        .map(|(l, w)| l + args.sigma_max.powi(2) * w)
        .fold(0.0, f64::max);
    let eta = args.eta.unwrap_or(0.5 / (2.0 * speedup * fastest));
    if !(eta.is_finite() && eta > 0.0 && 2.0 * eta * speedup * fastest < 2.0) {
        return Err(usage(format!(
            "--eta {eta}: expected a step in (0, {}) (gradient descent diverges beyond)",
            1.0 / (speedup * fastest)
        )));
    }
    let theory = TheoryConfig {
        eta,
        sigma_min: args.sigma_min,
        sigma_max: args.sigma_max,
        model: kind,
        ..TheoryConfig::default()
    };
    let theory_of = |l: f64, wk: f64| theory.mode(l, wk);
    let learning_times: Vec<Option<f64>> = lambda
        .iter()
        .zip(&w)
        .map(|(&l, &wk)| theory_of(l, wk).learning_time(Crossing::Geometric))
        .collect();
    let slowest = learning_times.iter().flatten().cloned().fold(0.0, f64::max);
    let fastest_tau = learning_times
        .iter()
        .flatten()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    let steps = args.steps.unwrap_or((3.0 * slowest).ceil().max(1.0) as u64);
    if steps > 2_000_000 {
        return Err(usage(format!(
            "{steps} gradient-descent steps would be needed; narrow --sigma-min/--sigma-max, \
             use smoother data or spectrum, or set --steps"
        )));
    }
    // Checkpoints log-spaced from a third of the fastest learning time to the last step.
    let first = (fastest_tau / 3.0).max(1.0).min(steps as f64);
    let mut marks: Vec<u64> = (0..args.checkpoints)
        .map(|i| {
            let f = if args.checkpoints == 1 {
                1.0
            } else {
                i as f64 / (args.checkpoints - 1) as f64
            };
            (first.ln() + f * ((steps as f64).ln() - first.ln()))
                .exp()
                .round() as u64
        })
        .collect();
    marks.dedup();

    let device = sagd_core::prelude::Device::flex();
    let train_device = device.clone().autodiff();
    let data_cov = SpectralCovariance::from_amplitudes(
        "grf",
        grf.mode_variances().iter().map(|v| v.sqrt()).collect(),
        dims,
        Normalization::None,
    )?;
    let problem = FullBatchProblem::from_covariance(&data_cov, &noise_cov, &train_device)
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut net =
        Net::build(&model, dims, args.levels, 0, &train_device).map_err(|e| anyhow::anyhow!(e))?;
    let mut state =
        sagd_models::optim::OptimizerState::new(&net, sagd_models::optim::OptimizerKind::Sgd);
    let run_config = validation_config(args, &format!("kind = \"{}\"", args.model))?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let noise = SpectralNoise::from_covariance(std::sync::Arc::new(noise_cov.clone()), shape)?;
    let mut heun = SamplerConfig::new(Method::Heun, args.levels);
    heun.form = OdeForm::Edm;
    // The theory's generated variance is that of x(σ_0): stop at the lowest level.
    heun.final_denoise = false;
    let sampler = heun.build::<DynShape>().map_err(|e| usage(e.to_string()))?;

    let bar = indicatif::ProgressBar::new(steps);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut results = Vec::new();
    let mut done = 0u64;
    for &mark in &marks {
        while done < mark {
            let (next, _) = problem
                .gd_step(net, &sigmas, eta, &mut state)
                .map_err(|e| anyhow::anyhow!(e))?;
            net = next;
            done += 1;
            if done.is_multiple_of(64) {
                bar.set_position(done);
            }
        }
        let denoiser = TrainedDenoiser::new(net.clone(), run_config.clone(), shape)
            .map_err(|e| anyhow::anyhow!(e))?;
        let trained = generated_mode_variances(sampler.as_ref(), &denoiser, &noise, &train_device)
            .map_err(|e| anyhow::anyhow!(e))?;
        let (theory, flow): (Vec<f64>, Vec<f64>) = lambda
            .iter()
            .zip(&w)
            .map(|(&l, &wk)| {
                let m = theory_of(l, wk);
                (
                    m.variance_gd(mark).unwrap_or(f64::NAN),
                    m.variance(mark as f64),
                )
            })
            .unzip();
        results.push(Checkpoint {
            step: mark,
            theory,
            flow,
            trained,
        });
    }
    bar.finish_and_clear();
    write_validation(args, dims, &lambda, &w, eta, &learning_times, &results)
}

#[allow(clippy::too_many_arguments)]
fn write_validation(
    args: &ValidateArgs,
    dims: [usize; 3],
    lambda: &[f64],
    w: &[f64],
    eta: f64,
    learning_times: &[Option<f64>],
    results: &[Checkpoint],
) -> Result<ExitCode> {
    use std::fmt::Write as _;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let hw = dims[1] * dims[2];
    let mut csv =
        String::from("step,channel,ky,kx,lambda,w,theory_gd,theory_flow,trained,relative_error\n");
    let mut worst = (0.0f64, 0u64, 0usize);
    let mut per_checkpoint = Vec::new();
    for r in results {
        let mut cp_worst = 0.0f64;
        for i in 0..lambda.len() {
            if w[i] == 0.0 {
                continue; // outside the support: both are zero
            }
            let rel = (r.trained[i] / r.theory[i] - 1.0).abs();
            if rel > cp_worst {
                cp_worst = rel;
            }
            if rel > worst.0 {
                worst = (rel, r.step, i);
            }
            let (c, k, l) = (i / hw, (i % hw) / dims[2], i % dims[2]);
            let _ = writeln!(
                csv,
                "{},{c},{k},{l},{},{},{},{},{},{rel}",
                r.step, lambda[i], w[i], r.theory[i], r.flow[i], r.trained[i]
            );
        }
        per_checkpoint.push(json!({"step": r.step, "max_relative_error": cp_worst}));
    }
    let csv_path = args.out.join("validate.csv");
    write_atomic(&csv_path, csv.as_bytes())?;
    let fit_points: Vec<(f64, f64)> = lambda
        .iter()
        .zip(learning_times)
        .zip(w)
        .filter(|(_, wk)| **wk > 0.0)
        .filter_map(|((&l, t), _)| t.map(|t| (l, t)))
        .collect();
    let fit = sagd_core::theory::fit_exponent(&fit_points);
    let summary = json!({
        "data": args.data,
        "spectrum": args.spectrum,
        "model": args.model,
        "levels": args.levels,
        "sigma_min": args.sigma_min,
        "sigma_max": args.sigma_max,
        "eta": eta,
        "steps": results.last().map_or(0, |r| r.step),
        "checkpoints": per_checkpoint,
        "max_relative_error": worst.0,
        "worst": {"step": worst.1, "mode": worst.2, "lambda": lambda[worst.2]},
        "exponent": fit.map(|f| json!({"alpha": f.alpha, "r2": f.r2, "modes": f.modes})),
        "csv": csv_path,
    });
    let json_path = args.out.join("validate.json");
    write_atomic(
        &json_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    validation_plot(
        &args.out.join("validate.png"),
        lambda,
        w,
        learning_times,
        results,
        fit,
    )?;
    if args.json {
        crate::print_stdout(&format!("{summary}\n"))?;
    } else {
        println!(
            "{} ({} levels, σ in [{}, {}], η = {eta:.3e}): {} checkpoints up to step {}; \
             trained vs theory: largest relative error {:.3}% (step {}, mode {}) -> {}",
            args.model,
            args.levels,
            args.sigma_min,
            args.sigma_max,
            results.len(),
            results.last().map_or(0, |r| r.step),
            100.0 * worst.0,
            worst.1,
            worst.2,
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Left: generated variance / data variance against steps for a few modes (theory lines,
/// trained markers); right: τ* against λ with the fit.
fn validation_plot(
    path: &std::path::Path,
    lambda: &[f64],
    w: &[f64],
    learning_times: &[Option<f64>],
    results: &[Checkpoint],
    fit: Option<sagd_core::theory::ExponentFit>,
) -> Result<()> {
    let shown = spread_modes(lambda, |i| w[i] > 0.0, 5);
    let names: Vec<(String, String)> = shown
        .iter()
        .map(|&i| {
            (
                format!("theory λ = {:.3}", lambda[i]),
                format!("trained λ = {:.3}", lambda[i]),
            )
        })
        .collect();
    let mut series = Vec::new();
    for (&i, (tn, mn)) in shown.iter().zip(&names) {
        series.push(Series {
            name: tn,
            points: results
                .iter()
                .map(|r| (r.step as f64, r.theory[i] / lambda[i]))
                .collect(),
            markers: false,
        });
        series.push(Series {
            name: mn,
            points: results
                .iter()
                .flat_map(|r| {
                    [
                        (r.step as f64, r.trained[i] / lambda[i]),
                        (f64::NAN, f64::NAN),
                    ]
                })
                .collect(),
            markers: true,
        });
    }
    let curves = LinePlot {
        title: "generated variance / data variance",
        x_label: "gradient-descent steps",
        y_label: "generated / data variance",
        series,
        log_x: true,
        log_y: true,
    };
    let points: Vec<(f64, f64)> = lambda
        .iter()
        .zip(learning_times)
        .zip(w)
        .filter(|(_, wk)| **wk > 0.0)
        .filter_map(|((&l, t), _)| t.map(|t| [(l, t), (f64::NAN, f64::NAN)]))
        .flatten()
        .collect();
    let fit_name = fit.map_or("no fit".to_string(), |f| {
        format!("fit α = {:.3}, R² = {:.3}", f.alpha, f.r2)
    });
    let times = LinePlot {
        title: "learning time τ* vs λ (theory)",
        x_label: "mode variance λ",
        y_label: "τ* (steps)",
        series: vec![
            Series {
                name: "modes",
                points,
                markers: true,
            },
            Series {
                name: &fit_name,
                points: fit_line(fit, lambda, 1.0),
                markers: false,
            },
        ],
        log_x: true,
        log_y: true,
    };
    Ok(write_line_plots_png(path, &[&curves, &times])?)
}

/// `--model mlp`: Adam on minibatches of `--images` grf draws (x0 target, levels uniform over
/// the ladder), checkpoints log-spaced in steps; at each, `--samples` Heun samples (stopped at
/// σ_0) give every mode's generated variance. The learning time of a mode is the first step
/// where that variance crosses the geometric mean of its value before training and the
/// theory's target (interpolated in log steps); the exponent is fitted to those, and the
/// linear theory's own exponent is reported beside it.
fn validate_mlp(
    args: &ValidateArgs,
    grf: &sagd_datasets::synthetic::grf::GrfConfig,
    dims: [usize; 3],
    noise_cov: SpectralCovariance,
) -> Result<ExitCode> {
    use sagd_core::{DynShape, Parameterization, SpectralNoise, noise_rng};
    use sagd_datasets::Dataset;
    use sagd_models::optim::{OptimizerConfig, OptimizerKind};
    use sagd_models::train::{BatchSource, TrainState};
    use sagd_models::{Net, TrainedDenoiser};
    use sagd_samplers::{Method, SamplerConfig};

    if args.images == 0 || args.batch == 0 || args.samples < 2 {
        return Err(usage(
            "--images, --batch and --samples must be positive (samples ≥ 2)",
        ));
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(usage(format!(
            "--lr {}: expected a finite number > 0",
            args.lr
        )));
    }
    let steps = args.steps.unwrap_or(4000);
    if steps == 0 {
        return Err(usage("--steps must be at least 1"));
    }
    let schedule = ladder(args)?;
    let levels = schedule.levels()?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let device = sagd_core::prelude::Device::flex();
    let train_device = device.clone().autodiff();
    let run_config = validation_config(
        args,
        "kind = \"mlp\"\ndepth = 2\nwidth = 256\nembedding = 64",
    )?;
    let net = Net::build(
        &run_config.model,
        dims,
        args.levels,
        args.seed,
        &train_device,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let data = sagd_datasets::synthetic::grf::GrfConfig {
        n: args.images,
        ..grf.clone()
    }
    .generate()
    .map_err(crate::data::classify)?;
    let cov = std::sync::Arc::new(noise_cov.clone());
    let mut source = BatchSource::new(
        data,
        Pipeline::default(),
        args.seed,
        levels,
        cov.clone(),
        Parameterization::X0,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let optimizer = OptimizerConfig {
        kind: OptimizerKind::Adamw,
        lr: args.lr,
        grad_clip: 1.0,
        warmup: 0,
        ..OptimizerConfig::default()
    };
    let mut state = TrainState::new(net, optimizer, 0.0);
    let noise = SpectralNoise::from_covariance(cov, shape)?;
    let mut heun = SamplerConfig::new(Method::Heun, args.levels);
    heun.final_denoise = false;
    let sampler = heun.build::<DynShape>().map_err(|e| usage(e.to_string()))?;

    let lambda = grf.mode_variances().repeat(dims[0]);
    let w = noise_cov.power().repeat(dims[0]);
    let mut marks: Vec<u64> = vec![0];
    let count = args.checkpoints.max(2);
    for i in 0..count {
        let f = i as f64 / (count - 1) as f64;
        let m = (10f64.ln() + f * ((steps as f64).ln() - 10f64.ln()))
            .exp()
            .round() as u64;
        marks.push(m.clamp(1, steps));
    }
    marks.dedup();
    let bar = indicatif::ProgressBar::new(steps);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut measured: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut done = 0u64;
    for &mark in &marks {
        while done < mark {
            let batch = source
                .batch(done, args.batch, &train_device)
                .map_err(|e| anyhow::anyhow!(e))?;
            state
                .step(&batch, args.lr)
                .map_err(|(what, v)| anyhow::anyhow!("training diverged: the {what} is {v}"))?;
            done += 1;
            bar.set_position(done);
        }
        let denoiser = TrainedDenoiser::new(state.net.clone(), run_config.clone(), shape)
            .map_err(|e| anyhow::anyhow!(e))?;
        // Sampling noise keyed by (seed, checkpoint), apart from the training streams.
        let mut rng = noise_rng(args.seed);
        rng.set_stream(mark);
        let images = sampler
            .sample(
                &denoiser,
                &noise,
                args.samples,
                &mut rng,
                &train_device,
                &mut |_| {},
            )
            .map_err(|e| anyhow::anyhow!(e))?
            .to_host();
        let set = Dataset::new("generated", dims, sagd_datasets::Pixels::F32(images), None)?;
        measured.push((mark, stats::mode_variances(&set)));
    }
    bar.finish_and_clear();

    // Empirical learning times against the theory's target, and the theory's own exponent.
    let linear = TheoryConfig {
        sigma_min: args.sigma_min,
        sigma_max: args.sigma_max,
        ..TheoryConfig::default()
    };
    let theory = |l: f64, wk: f64| linear.mode(l, wk);
    let mut empirical = Vec::new();
    let mut theory_points = Vec::new();
    let mut rows = String::from("step,channel,ky,kx,lambda,w,generated,theory_target\n");
    let hw = dims[1] * dims[2];
    for i in 0..lambda.len() {
        if w[i] == 0.0 {
            continue;
        }
        let m = theory(lambda[i], w[i]);
        let target = m.target_variance();
        if let Some(t) = m.learning_time(Crossing::Geometric) {
            theory_points.push((lambda[i], t));
        }
        let v0 = measured[0].1[i];
        let mean = (v0 * target).sqrt();
        let rising = target > v0;
        let mut crossing = None;
        for pair in measured.windows(2) {
            let ((s0, a), (s1, b)) = ((pair[0].0, pair[0].1[i]), (pair[1].0, pair[1].1[i]));
            let past = |v: f64| if rising { v >= mean } else { v <= mean };
            if past(b) && !past(a) {
                let (ls0, ls1) = ((s0.max(1)) as f64, s1 as f64);
                let f = ((mean.ln() - a.ln()) / (b.ln() - a.ln())).clamp(0.0, 1.0);
                crossing = Some((ls0.ln() + f * (ls1.ln() - ls0.ln())).exp());
                break;
            }
        }
        if let Some(t) = crossing {
            empirical.push((lambda[i], t));
        }
        for (step, v) in &measured {
            let (c, k, l) = (i / hw, (i % hw) / dims[2], i % dims[2]);
            use std::fmt::Write as _;
            let _ = writeln!(
                rows,
                "{step},{c},{k},{l},{},{},{},{target}",
                lambda[i], w[i], v[i]
            );
        }
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let csv_path = args.out.join("validate.csv");
    write_atomic(&csv_path, rows.as_bytes())?;
    let fit = sagd_core::theory::fit_exponent(&empirical);
    let theory_fit = sagd_core::theory::fit_exponent(&theory_points);
    let modes = lambda.iter().zip(&w).filter(|(_, w)| **w > 0.0).count();
    let summary = json!({
        "data": args.data,
        "spectrum": args.spectrum,
        "model": "mlp",
        "levels": args.levels,
        "sigma_min": args.sigma_min,
        "sigma_max": args.sigma_max,
        "optimizer": "adamw",
        "lr": args.lr,
        "seed": args.seed,
        "batch": args.batch,
        "images": args.images,
        "samples_per_checkpoint": args.samples,
        "steps": steps,
        "checkpoints": marks,
        "modes": modes,
        "modes_learned": empirical.len(),
        "exponent": fit.map(|f| json!({"alpha": f.alpha, "r2": f.r2, "modes": f.modes})),
        "linear_theory_exponent": theory_fit.map(|f| json!({"alpha": f.alpha, "r2": f.r2})),
        "csv": csv_path,
    });
    write_atomic(
        &args.out.join("validate.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    mlp_plot(
        &args.out.join("validate.png"),
        &lambda,
        &w,
        &measured,
        &empirical,
        fit,
        theory_fit,
        &theory_points,
    )?;
    if args.json {
        crate::print_stdout(&format!("{summary}\n"))?;
    } else {
        let show = |f: Option<sagd_core::theory::ExponentFit>| {
            f.map_or("no fit".to_string(), |f| {
                format!("α = {:.3} (R² = {:.3}, {} modes)", f.alpha, f.r2, f.modes)
            })
        };
        println!(
            "mlp, Adam lr {}, {steps} steps: {} of {modes} modes crossed; τ* ∝ λ^(-α) with {} \
             (linear theory: {}) -> {}",
            args.lr,
            empirical.len(),
            show(fit),
            show(theory_fit),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Left: the mlp's generated variance / data variance against Adam steps for a few modes;
/// right: its learning times against λ with the fit, and the linear theory's (rescaled to the
/// same median) for the slope.
#[allow(clippy::too_many_arguments)]
fn mlp_plot(
    path: &std::path::Path,
    lambda: &[f64],
    w: &[f64],
    measured: &[(u64, Vec<f64>)],
    empirical: &[(f64, f64)],
    fit: Option<sagd_core::theory::ExponentFit>,
    theory_fit: Option<sagd_core::theory::ExponentFit>,
    theory_points: &[(f64, f64)],
) -> Result<()> {
    let shown = spread_modes(lambda, |i| w[i] > 0.0, 6);
    let names: Vec<String> = shown
        .iter()
        .map(|&i| format!("λ = {:.3}", lambda[i]))
        .collect();
    let curves = LinePlot {
        title: "mlp: generated variance / data variance",
        x_label: "Adam steps",
        y_label: "generated / data variance",
        series: shown
            .iter()
            .zip(&names)
            .map(|(&i, name)| Series {
                name,
                points: measured
                    .iter()
                    .filter(|(s, _)| *s > 0)
                    .map(|(s, v)| (*s as f64, v[i] / lambda[i]))
                    .collect(),
                markers: true,
            })
            .collect(),
        log_x: true,
        log_y: true,
    };
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let scale = median(&mut empirical.iter().map(|p| p.1).collect())
        / median(&mut theory_points.iter().map(|p| p.1).collect());
    let line = |f: Option<sagd_core::theory::ExponentFit>, k: f64| fit_line(f, lambda, k);
    let fit_name = fit.map_or("mlp: no fit".to_string(), |f| {
        format!("mlp fit α = {:.3}, R² = {:.3}", f.alpha, f.r2)
    });
    let theory_name = theory_fit.map_or("linear theory: no fit".to_string(), |f| {
        format!("linear theory α = {:.3} (shifted)", f.alpha)
    });
    let times = LinePlot {
        title: "learning time τ* vs λ",
        x_label: "mode variance λ",
        y_label: "τ* (Adam steps)",
        series: vec![
            Series {
                name: "mlp modes",
                points: empirical
                    .iter()
                    .flat_map(|&p| [p, (f64::NAN, f64::NAN)])
                    .collect(),
                markers: true,
            },
            Series {
                name: &fit_name,
                points: line(fit, 1.0),
                markers: false,
            },
            Series {
                name: &theory_name,
                points: line(theory_fit, if scale.is_finite() { scale } else { 1.0 }),
                markers: false,
            },
        ],
        log_x: true,
        log_y: true,
    };
    Ok(write_line_plots_png(path, &[&curves, &times])?)
}
