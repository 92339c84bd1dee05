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

use crate::UsageError;
use crate::plot::{LinePlot, Series, write_line_plots_png};

/// `sagd theory …`.
#[derive(Debug, Subcommand)]
pub enum TheoryCommand {
    /// Per-mode curves λ̃_k(τ), learning times τ_k* and the fitted exponent of τ* ∝ λ^(-α).
    Predict(PredictArgs),
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

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Runs a theory command.
pub fn run(command: &TheoryCommand) -> Result<ExitCode> {
    match command {
        TheoryCommand::Predict(args) => predict_command(args),
    }
}

/// Per-mode data variances (C×H×W, `fftfreq` order per channel) and the data's `[C, H, W]`.
fn data_variances(args: &PredictArgs) -> Result<(Vec<f64>, [usize; 3])> {
    let spec: DataSpec = args.data.parse().map_err(crate::data::classify)?;
    let pipeline = Pipeline::parse(&args.transforms).map_err(crate::data::classify)?;
    if let (Source::Grf(config), true) = (&spec.source, args.transforms.is_empty()) {
        config.validate().map_err(crate::data::classify)?;
        let one = config.mode_variances();
        let c = config.size[0];
        return Ok((one.repeat(c), config.size));
    }
    let data = spec.load().map_err(crate::data::classify)?;
    let data = if pipeline.transforms.is_empty() {
        data
    } else {
        pipeline
            .apply_to(&data, data.len(), 0)
            .map_err(crate::data::classify)?
    };
    Ok((stats::mode_variances(&data), data.shape()))
}

fn predict_command(args: &PredictArgs) -> Result<ExitCode> {
    let (lambda_all, dims) = data_variances(args)?;
    let spectrum = parse_spectrum(&args.spectrum).map_err(|e| usage(format!("--spectrum: {e}")))?;
    let normalization: Normalization = args
        .normalization
        .parse()
        .map_err(|e| usage(format!("--normalization: {e}")))?;
    let cov = SpectralCovariance::new(spectrum.as_ref(), dims, normalization)
        .map_err(|e| usage(format!("--spectrum: {e}")))?;
    let w_all = cov.power().repeat(dims[0]);
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
                json!({
                    "channel": c,
                    "ky": k,
                    "kx": l,
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

/// Left: `λ̃_k(τ)/λ̃_k(∞)` for a dozen modes spread over λ; right: τ* against λ with the fits.
fn plot(path: &std::path::Path, p: &Prediction, spectrum: &str) -> Result<()> {
    let mut order: Vec<usize> = (0..p.modes.len()).collect();
    order.sort_by(|&a, &b| p.modes[a].lambda.total_cmp(&p.modes[b].lambda));
    order.dedup_by(|a, b| p.modes[*a].lambda == p.modes[*b].lambda);
    let shown: Vec<usize> = if order.len() <= 12 {
        order.clone()
    } else {
        (0..12).map(|i| order[i * (order.len() - 1) / 11]).collect()
    };
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
    let line = |fit: Option<sagd_core::theory::ExponentFit>| -> Vec<(f64, f64)> {
        let Some(f) = fit else { return Vec::new() };
        let (lo, hi) = p.modes.iter().fold((f64::INFINITY, 0.0f64), |(a, b), m| {
            (a.min(m.lambda), b.max(m.lambda))
        });
        [lo, hi]
            .iter()
            .map(|&l| (l, (f.intercept - f.alpha * l.ln()).exp()))
            .collect()
    };
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
    write_line_plots_png(path, &[&curves, &times])
}
