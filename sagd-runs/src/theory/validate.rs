//! `sagd theory validate`: the theory checked against trained denoisers on a `grf`'s law,
//! mode by mode, at checkpoints: `validate.csv`, `validate.json`, `validate.png`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use sagd_core::theory::{Crossing, ExponentFit, ModelKind, TheoryConfig, fit_exponent};
use sagd_core::{
    DynShape, Normalization, Parameterization, Schedule, SpectralCovariance, SpectrumSpec,
    noise_rng,
};
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::synthetic::grf::GrfConfig;
use sagd_datasets::{Dataset, Pipeline, Pixels, stats};
use sagd_models::fullbatch::FullBatchProblem;
use sagd_models::nets::{CirculantConfig, LinearConfig};
use sagd_models::optim::{OptimizerConfig, OptimizerKind, OptimizerState};
use sagd_models::{BatchSource, ModelConfig, Net, TrainState, TrainedDenoiser};
use sagd_plot::{LinePlot, Series, write_line_plots_png};
use sagd_samplers::affine::generated_mode_variances;
use sagd_samplers::{Method, OdeForm, SamplerConfig};
use serde::Serialize;

use super::emergence::learning_step;
use super::{ExponentSummary, fit_line, spread_modes};
use crate::error::RunError;
use crate::output::{create_dir, write_json, write_text};

fn invalid(message: impl Into<String>) -> RunError {
    RunError::Request(message.into())
}

/// The model a validation trains (`sagd theory validate --model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidateModel {
    /// A full linear map per level, by full-batch gradient descent (compared with the theory).
    #[default]
    Linear,
    /// A full-width circular convolution per level, by full-batch gradient descent.
    Circulant,
    /// A small MLP by Adam on minibatches, sampled by Monte Carlo: the theory is a guide there.
    Mlp,
}

impl ValidateModel {
    /// The CLI's and the config's spelling: `linear`, `circulant` or `mlp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Circulant => "circulant",
            Self::Mlp => "mlp",
        }
    }
}

/// What `sagd theory validate` asks; error messages name a field by its flag (`--levels`
/// for [`levels`](Self::levels)).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateRequest {
    /// The data: a `grf` spec (its exact covariance is the full batch).
    pub data: String,
    /// The noise spectrum.
    pub spectrum: SpectrumSpec,
    /// The spectrum's normalization: energy or none.
    pub normalization: Normalization,
    /// The model trained.
    pub model: ValidateModel,
    /// mlp: images drawn from the grf for training.
    pub images: usize,
    /// mlp: minibatch size.
    pub batch: usize,
    /// mlp: Adam's (constant) learning rate.
    pub lr: f64,
    /// mlp: samples drawn at each checkpoint to measure the mode variances (≥ 2).
    pub samples: usize,
    /// mlp: seed of the initial weights, the minibatches and the sampling noise (the training
    /// images come from the grf spec's own `seed`).
    pub seed: u64,
    /// Noise levels of the trained ladder (EDM spacing, ρ = 7), each trained independently.
    pub levels: usize,
    /// Smallest noise level σ_0.
    pub sigma_min: f64,
    /// Largest noise level σ_T.
    pub sigma_max: f64,
    /// Gradient-descent step η (`None`: 0.5 over the fastest mode's rate at σ_T).
    pub eta: Option<f64>,
    /// Total steps (`None`: until every mode has passed three times its learning time; 4000
    /// for the mlp).
    pub steps: Option<u64>,
    /// Checkpoints, log-spaced in steps up to the last.
    pub checkpoints: usize,
    /// Output folder (created): `validate.csv`, `validate.json`, `validate.png`.
    pub out: PathBuf,
}

impl ValidateRequest {
    /// A linear validation of `data` under `spectrum` into `out` with the CLI's defaults: 48
    /// levels over σ in [0.02, 2], 6 checkpoints (mlp: 8192 images, batches of 256, lr 1e-3,
    /// 2048 samples, seed 0).
    pub fn new(data: impl Into<String>, spectrum: SpectrumSpec, out: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            spectrum,
            normalization: Normalization::Energy,
            model: ValidateModel::Linear,
            images: 8192,
            batch: 256,
            lr: 1e-3,
            samples: 2048,
            seed: 0,
            levels: 48,
            sigma_min: 0.02,
            sigma_max: 2.0,
            eta: None,
            steps: None,
            checkpoints: 6,
            out: out.into(),
        }
    }
}

/// One checkpoint's largest relative error (`validate.json`'s `checkpoints`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CheckpointError {
    /// Gradient-descent steps.
    pub step: u64,
    /// Largest `|trained/theory − 1|` over the modes on the support.
    pub max_relative_error: f64,
}

/// The mode with the largest relative error over all checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WorstMode {
    /// Its checkpoint.
    pub step: u64,
    /// Its index (`c·H·W + k_y·W + k_x`).
    pub mode: usize,
    /// Its data variance.
    pub lambda: f64,
}

/// `validate.json` of a linear or circulant validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AffineValidation {
    /// The data spec.
    pub data: String,
    /// The spectrum string.
    pub spectrum: String,
    /// `linear` or `circulant`.
    pub model: String,
    /// Levels of the ladder.
    pub levels: usize,
    /// σ_0.
    pub sigma_min: f64,
    /// σ_T.
    pub sigma_max: f64,
    /// The gradient-descent step used.
    pub eta: f64,
    /// The last checkpoint's step.
    pub steps: u64,
    /// Each checkpoint's largest relative error.
    pub checkpoints: Vec<CheckpointError>,
    /// The largest relative error of all.
    pub max_relative_error: f64,
    /// Where it occurred.
    pub worst: WorstMode,
    /// The theory's fit of `τ* ∝ λ^(-α)` over the modes on the support.
    pub exponent: Option<ExponentSummary>,
    /// `validate.csv`.
    pub csv: PathBuf,
}

/// `validate.json` of an mlp validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlpValidation {
    /// The data spec.
    pub data: String,
    /// The spectrum string.
    pub spectrum: String,
    /// `mlp`.
    pub model: String,
    /// Levels of the ladder.
    pub levels: usize,
    /// σ_0.
    pub sigma_min: f64,
    /// σ_T.
    pub sigma_max: f64,
    /// `adamw`.
    pub optimizer: String,
    /// Adam's learning rate.
    pub lr: f64,
    /// The seed.
    pub seed: u64,
    /// Minibatch size.
    pub batch: usize,
    /// Training images.
    pub images: usize,
    /// Samples drawn per checkpoint.
    pub samples_per_checkpoint: usize,
    /// Adam steps.
    pub steps: u64,
    /// The checkpoints' steps (0 first: before training).
    pub checkpoints: Vec<u64>,
    /// Modes on the support.
    pub modes: usize,
    /// Modes whose generated variance crossed the criterion.
    pub modes_learned: usize,
    /// The fit of the mlp's learning times.
    pub exponent: Option<ExponentSummary>,
    /// The linear theory's exponent on the same ladder.
    pub linear_theory_exponent: Option<ExponentSummary>,
    /// `validate.csv`.
    pub csv: PathBuf,
    /// The fit of the mlp's learning times in full (not written).
    #[serde(skip)]
    pub fit: Option<ExponentFit>,
    /// The linear theory's fit in full (not written: `validate.json` has α and R²).
    #[serde(skip)]
    pub linear_theory_fit: Option<ExponentFit>,
}

/// The outcome of [`validate_run`]: what `validate.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Validation {
    /// A linear or circulant model against the theory.
    Affine(AffineValidation),
    /// An mlp against the theory's learning times.
    Mlp(MlpValidation),
}

/// The EDM ladder (ρ = 7) of `levels` σ over `[sigma_min, sigma_max]` a validation trains on.
fn ladder(req: &ValidateRequest) -> Result<Schedule, RunError> {
    let schedule = Schedule::Edm {
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
        rho: 7.0,
        steps: req.levels,
    };
    schedule
        .validate()
        .map_err(|e| invalid(format!("--sigma-min/--sigma-max/--levels: {e}")))?;
    Ok(schedule)
}

/// The run config a validation's networks are built and read with: the x0 target (the
/// theory's `D(x; σ)`), the ladder, and `model` as the `[model]` table's body.
fn validation_config(
    req: &ValidateRequest,
    model: &str,
) -> Result<sagd_models::RunConfig, RunError> {
    let text = format!(
        "parameterization = \"x0\"\n[data]\nspec = \"{}\"\n[noise]\nspectrum = \"{}\"\n\
         normalization = \"{}\"\n[schedule]\nkind = \"edm\"\nsigma_min = {}\nsigma_max = {}\n\
         rho = 7.0\nsteps = {}\n[model]\n{model}\n",
        req.data.replace('"', ""),
        req.spectrum.text().replace('"', ""),
        req.normalization.name(),
        req.sigma_min,
        req.sigma_max,
        req.levels,
    );
    sagd_models::RunConfig::from_toml(&text, Path::new("<theory validate>"))
        .map_err(|e| invalid(e.to_string()))
}

/// One checkpoint of a validation: per mode, the theory (gradient descent, exact iterates) and
/// the trained model's generated variance.
struct Checkpoint {
    step: u64,
    theory: Vec<f64>,
    flow: Vec<f64>,
    trained: Vec<f64>,
}

/// Trains denoisers on a `grf`'s law and compares their generated variance per Fourier mode
/// with the theory, writing `validate.csv` (per checkpoint and mode), `validate.json` (the
/// returned [`Validation`]) and `validate.png` into `req.out`.
///
/// `linear` and `circulant` are trained by full-batch gradient descent on the exact
/// covariance, independently per level of the EDM ladder, and their generated variance (Heun,
/// stopped at σ_0) is computed exactly and compared with the theory's gradient-descent
/// iterates at checkpoints log-spaced from a third of the fastest learning time. `mlp` is
/// trained by Adam on minibatches of `images` draws (x0 target), and at each checkpoint
/// `samples` Heun samples give every mode's generated variance; a mode's learning time is the
/// first step where it crosses the geometric mean of its value before training and the
/// theory's target (interpolated in log steps), and the exponent is fitted to those, the
/// linear theory's own beside it.
///
/// `progress(done, total)` follows the training steps.
///
/// # Errors
/// [`RunError::Request`] for bad settings (non-grf data, images of more than 256 values for
/// the affine models, levels outside 2 ..= 512, a non-Gaussian normalization, a step η at which
/// gradient descent diverges, more than 2 000 000 steps needed); [`RunError::Model`],
/// [`RunError::Sampler`] and [`RunError::Diverged`] while training or sampling; I/O and
/// figure errors writing the outputs.
///
/// ```
/// use sagd_runs::theory::{Validation, ValidateRequest, validate_run};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link();
/// let out = tempfile::tempdir()?;
/// let mut request = ValidateRequest::new("grf:size=1x4x4,beta=1,r0=0.1", "isotropic".parse()?, out.path());
/// request.sigma_max = 1.0;
/// request.checkpoints = 3;
/// let Validation::Affine(v) = validate_run(&request, &mut |_, _| {})? else { unreachable!() };
/// // The residual is Heun's discretization of the theory's σ integral over 48 levels.
/// assert!(v.max_relative_error < 0.03, "{}", v.max_relative_error);
/// assert!(out.path().join("validate.png").is_file());
/// # Ok(())
/// # }
/// ```
pub fn validate_run(
    req: &ValidateRequest,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Validation, RunError> {
    let (grf, dims) = checked_grf(req)?;
    let noise_cov = SpectralCovariance::new(req.spectrum.spectrum(), dims, req.normalization)
        .map_err(|e| invalid(format!("--spectrum: {e}")))?;
    let pixels = dims[1] * dims[2];
    let (kind, model) = match req.model {
        ValidateModel::Mlp => return validate_mlp(req, &grf, dims, noise_cov, progress),
        ValidateModel::Linear => (
            ModelKind::Linear,
            ModelConfig::Linear(LinearConfig::default()),
        ),
        ValidateModel::Circulant => (
            ModelKind::Circulant { pixels },
            ModelConfig::Circulant(CirculantConfig::default()),
        ),
    };
    let sigmas: Vec<f64> = ladder(req)?.levels()?.iter().map(|l| l.sigma).collect();
    let lambda = grf.mode_variances().repeat(dims[0]);
    let w = noise_cov.power().repeat(dims[0]);
    let speedup = match kind {
        ModelKind::Circulant { pixels } => pixels as f64,
        _ => 1.0,
    };
    let eta = gd_step_size(req, &lambda, &w, speedup)?;
    let theory = TheoryConfig {
        eta,
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
        model: kind,
        ..TheoryConfig::default()
    };
    let learning_times: Vec<Option<f64>> = lambda
        .iter()
        .zip(&w)
        .map(|(&l, &wk)| theory.mode(l, wk).learning_time(Crossing::Geometric))
        .collect();
    let (steps, marks) = gd_checkpoints(req, &learning_times)?;
    let gd = GradientDescent {
        req,
        dims,
        data_cov: SpectralCovariance::from_amplitudes(
            "grf",
            grf.mode_variances().iter().map(|v| v.sqrt()).collect(),
            dims,
            Normalization::None,
        )?,
        noise_cov,
        model,
        sigmas,
        eta,
    };
    let trained = gd.train(steps, &marks, progress)?;
    let results: Vec<Checkpoint> = marks
        .iter()
        .zip(trained)
        .map(|(&mark, trained)| {
            let (theory, flow) = lambda
                .iter()
                .zip(&w)
                .map(|(&l, &wk)| {
                    let m = theory.mode(l, wk);
                    (
                        m.variance_gd(mark).unwrap_or(f64::NAN),
                        m.variance(mark as f64),
                    )
                })
                .unzip();
            Checkpoint {
                step: mark,
                theory,
                flow,
                trained,
            }
        })
        .collect();
    write_validation(req, dims, &lambda, &w, eta, &learning_times, &results).map(Validation::Affine)
}

/// The request's grf and its `[C, H, W]`, after the checks of every setting the training
/// needs (a grf small enough for dense maps, 2 ..= 512 levels, a checkpoint, Gaussian noise).
fn checked_grf(req: &ValidateRequest) -> Result<(GrfConfig, [usize; 3]), RunError> {
    let spec: DataSpec = req.data.parse()?;
    let Source::Grf(grf) = spec.source else {
        return Err(invalid(format!(
            "--data {}: validate trains on a grf's exact covariance; give a grf spec",
            req.data
        )));
    };
    grf.validate()?;
    let dims = grf.size;
    let d: usize = dims.iter().product();
    if d > 256 {
        return Err(invalid(format!(
            "--data {}: {d} values per image; validate trains dense {d}x{d} maps per level, \
             at most 256 values (e.g. 1x16x16)",
            req.data
        )));
    }
    if !(2..=512).contains(&req.levels) {
        return Err(invalid(format!(
            "--levels {}: expected 2 ..= 512",
            req.levels
        )));
    }
    if req.checkpoints == 0 {
        return Err(invalid("--checkpoints must be at least 1"));
    }
    if req.normalization == Normalization::PerSampleStd {
        return Err(invalid(
            "--normalization per-sample-std is not Gaussian; the theory needs energy or none",
        ));
    }
    Ok((grf, dims))
}

/// The gradient-descent step: `--eta`, or half the largest stable step for the fastest mode
/// (rate `2η·speedup·(λ + σ_T² w)`); refused when it diverges.
fn gd_step_size(
    req: &ValidateRequest,
    lambda: &[f64],
    w: &[f64],
    speedup: f64,
) -> Result<f64, RunError> {
    let fastest = lambda
        .iter()
        .zip(w)
        .map(|(l, w)| l + req.sigma_max.powi(2) * w)
        .fold(0.0, f64::max);
    let eta = req.eta.unwrap_or(0.5 / (2.0 * speedup * fastest));
    if !(eta.is_finite() && eta > 0.0 && 2.0 * eta * speedup * fastest < 2.0) {
        return Err(invalid(format!(
            "--eta {eta}: expected a step in (0, {}) (gradient descent diverges beyond)",
            1.0 / (speedup * fastest)
        )));
    }
    Ok(eta)
}

/// The steps to train (`--steps`, or three times the slowest mode's learning time) and the
/// checkpoints, log-spaced from a third of the fastest learning time to the last step.
fn gd_checkpoints(
    req: &ValidateRequest,
    learning_times: &[Option<f64>],
) -> Result<(u64, Vec<u64>), RunError> {
    let slowest = learning_times.iter().flatten().cloned().fold(0.0, f64::max);
    let fastest_tau = learning_times
        .iter()
        .flatten()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    let steps = req.steps.unwrap_or((3.0 * slowest).ceil().max(1.0) as u64);
    if steps > 2_000_000 {
        return Err(invalid(format!(
            "{steps} gradient-descent steps would be needed; narrow --sigma-min/--sigma-max, \
             use smoother data or spectrum, or set --steps"
        )));
    }
    let first = (fastest_tau / 3.0).max(1.0).min(steps as f64);
    let mut marks: Vec<u64> = (0..req.checkpoints)
        .map(|i| {
            let f = if req.checkpoints == 1 {
                1.0
            } else {
                i as f64 / (req.checkpoints - 1) as f64
            };
            (first.ln() + f * ((steps as f64).ln() - first.ln()))
                .exp()
                .round() as u64
        })
        .collect();
    marks.dedup();
    Ok((steps, marks))
}

/// Full-batch gradient descent of a `linear` or `circulant` denoiser on a grf's exact
/// covariance, each level of the ladder independently.
struct GradientDescent<'a> {
    req: &'a ValidateRequest,
    dims: [usize; 3],
    data_cov: SpectralCovariance,
    noise_cov: SpectralCovariance,
    model: ModelConfig,
    /// The ladder's noise levels.
    sigmas: Vec<f64>,
    eta: f64,
}

impl GradientDescent<'_> {
    /// Trains for `steps` and returns, at each of `marks`, the generated variance of every
    /// Fourier mode (PF-ODE by Heun to the lowest level, the exact affine map).
    fn train(
        &self,
        steps: u64,
        marks: &[u64],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<Vec<f64>>, RunError> {
        let req = self.req;
        let train_device = Device::flex().autodiff();
        let problem =
            FullBatchProblem::from_covariance(&self.data_cov, &self.noise_cov, &train_device)?;
        let mut net = Net::build(&self.model, self.dims, req.levels, 0, &train_device)?;
        let mut state = OptimizerState::new(&net, OptimizerKind::Sgd);
        let run_config = validation_config(req, &format!("kind = \"{}\"", req.model.name()))?;
        let shape = DynShape::new(self.dims[0], self.dims[1], self.dims[2]);
        let mut heun = SamplerConfig::new(Method::Heun, req.levels);
        heun.form = OdeForm::Edm;
        // The theory's generated variance is that of x(σ_0): stop at the lowest level.
        heun.final_denoise = false;
        let sampler = heun
            .build::<DynShape>()
            .map_err(|e| invalid(e.to_string()))?;
        progress(0, steps);
        let mut trained = Vec::new();
        let mut done = 0u64;
        for &mark in marks {
            while done < mark {
                let (next, _) = problem.gd_step(net, &self.sigmas, self.eta, &mut state)?;
                net = next;
                done += 1;
                if done.is_multiple_of(64) {
                    progress(done, steps);
                }
            }
            let denoiser = TrainedDenoiser::new(net.clone(), run_config.clone(), shape)?;
            trained.push(generated_mode_variances(
                sampler.as_ref(),
                &denoiser,
                &train_device,
            )?);
        }
        Ok(trained)
    }
}

fn write_validation(
    req: &ValidateRequest,
    dims: [usize; 3],
    lambda: &[f64],
    w: &[f64],
    eta: f64,
    learning_times: &[Option<f64>],
    results: &[Checkpoint],
) -> Result<AffineValidation, RunError> {
    create_dir(&req.out)?;
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
        per_checkpoint.push(CheckpointError {
            step: r.step,
            max_relative_error: cp_worst,
        });
    }
    let csv_path = req.out.join("validate.csv");
    write_text(&csv_path, &csv)?;
    let fit_points: Vec<(f64, f64)> = lambda
        .iter()
        .zip(learning_times)
        .zip(w)
        .filter(|(_, wk)| **wk > 0.0)
        .filter_map(|((&l, t), _)| t.map(|t| (l, t)))
        .collect();
    let fit = fit_exponent(&fit_points);
    let summary = AffineValidation {
        data: req.data.clone(),
        spectrum: req.spectrum.to_string(),
        model: req.model.name().to_string(),
        levels: req.levels,
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
        eta,
        steps: results.last().map_or(0, |r| r.step),
        checkpoints: per_checkpoint,
        max_relative_error: worst.0,
        worst: WorstMode {
            step: worst.1,
            mode: worst.2,
            lambda: lambda[worst.2],
        },
        exponent: fit.map(ExponentSummary::with_modes),
        csv: csv_path,
    };
    write_json(&req.out.join("validate.json"), &summary)?;
    validation_plot(
        &req.out.join("validate.png"),
        lambda,
        w,
        learning_times,
        results,
        fit,
    )?;
    Ok(summary)
}

/// Left: generated variance / data variance against steps for a few modes (theory lines,
/// trained markers); right: τ* against λ with the fit.
fn validation_plot(
    path: &Path,
    lambda: &[f64],
    w: &[f64],
    learning_times: &[Option<f64>],
    results: &[Checkpoint],
    fit: Option<ExponentFit>,
) -> Result<(), RunError> {
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

/// The mlp validation (see [`validate_run`]).
fn validate_mlp(
    req: &ValidateRequest,
    grf: &GrfConfig,
    dims: [usize; 3],
    noise_cov: SpectralCovariance,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Validation, RunError> {
    let steps = check_mlp(req)?;
    let marks = mlp_checkpoints(req.checkpoints, steps);
    let lambda = grf.mode_variances().repeat(dims[0]);
    let w = noise_cov.power().repeat(dims[0]);
    let measured = train_mlp(req, grf, dims, noise_cov, steps, &marks, progress)?;
    let curves = MlpCurves::of(req, dims, &lambda, &w, &measured);
    create_dir(&req.out)?;
    let csv_path = req.out.join("validate.csv");
    write_text(&csv_path, &curves.rows)?;
    let fit = fit_exponent(&curves.empirical);
    let theory_fit = fit_exponent(&curves.theory_points);
    let modes = lambda.iter().zip(&w).filter(|(_, w)| **w > 0.0).count();
    let summary = MlpValidation {
        data: req.data.clone(),
        spectrum: req.spectrum.to_string(),
        model: "mlp".to_string(),
        levels: req.levels,
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
        optimizer: "adamw".to_string(),
        lr: req.lr,
        seed: req.seed,
        batch: req.batch,
        images: req.images,
        samples_per_checkpoint: req.samples,
        steps,
        checkpoints: marks,
        modes,
        modes_learned: curves.empirical.len(),
        exponent: fit.map(ExponentSummary::with_modes),
        linear_theory_exponent: theory_fit.map(ExponentSummary::slope),
        csv: csv_path,
        fit,
        linear_theory_fit: theory_fit,
    };
    write_json(&req.out.join("validate.json"), &summary)?;
    mlp_plot(
        &req.out.join("validate.png"),
        &lambda,
        &w,
        &measured,
        &curves.empirical,
        (fit, theory_fit),
        &curves.theory_points,
    )?;
    Ok(Validation::Mlp(summary))
}

/// Checks the mlp's settings; returns its steps (`--steps`, default 4000).
fn check_mlp(req: &ValidateRequest) -> Result<u64, RunError> {
    if req.images == 0 || req.batch == 0 || req.samples < 2 {
        return Err(invalid(
            "--images, --batch and --samples must be positive (samples ≥ 2)",
        ));
    }
    if !(req.lr.is_finite() && req.lr > 0.0) {
        return Err(invalid(format!(
            "--lr {}: expected a finite number > 0",
            req.lr
        )));
    }
    let steps = req.steps.unwrap_or(4000);
    if steps == 0 {
        return Err(invalid("--steps must be at least 1"));
    }
    Ok(steps)
}

/// Step 0 and `checkpoints` (at least 2) log-spaced steps from 10 to `steps`.
fn mlp_checkpoints(checkpoints: usize, steps: u64) -> Vec<u64> {
    let mut marks: Vec<u64> = vec![0];
    let count = checkpoints.max(2);
    for i in 0..count {
        let f = i as f64 / (count - 1) as f64;
        let m = (10f64.ln() + f * ((steps as f64).ln() - 10f64.ln()))
            .exp()
            .round() as u64;
        marks.push(m.clamp(1, steps));
    }
    marks.dedup();
    marks
}

/// Trains the mlp by Adam on draws of the grf and measures, at each of `marks`, the variance
/// of every Fourier mode of `req.samples` images (Heun to the lowest level).
fn train_mlp(
    req: &ValidateRequest,
    grf: &GrfConfig,
    dims: [usize; 3],
    noise_cov: SpectralCovariance,
    steps: u64,
    marks: &[u64],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<(u64, Vec<f64>)>, RunError> {
    let levels = ladder(req)?.levels()?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let train_device = Device::flex().autodiff();
    let run_config = validation_config(
        req,
        "kind = \"mlp\"\ndepth = 2\nwidth = 256\nembedding = 64",
    )?;
    let net = Net::build(&run_config.model, dims, req.levels, req.seed, &train_device)?;
    let data = GrfConfig {
        n: req.images,
        ..grf.clone()
    }
    .generate()?;
    let mut source = BatchSource::new(
        data,
        Pipeline::default(),
        req.seed,
        levels,
        Arc::new(noise_cov),
        Parameterization::X0,
    )?;
    let optimizer = OptimizerConfig {
        kind: OptimizerKind::Adamw,
        lr: req.lr,
        grad_clip: 1.0,
        warmup: 0,
        ..OptimizerConfig::default()
    };
    let mut state = TrainState::new(net, optimizer, 0.0);
    let mut heun = SamplerConfig::new(Method::Heun, req.levels);
    heun.final_denoise = false;
    let sampler = heun
        .build::<DynShape>()
        .map_err(|e| invalid(e.to_string()))?;
    progress(0, steps);
    let mut measured: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut done = 0u64;
    for &mark in marks {
        while done < mark {
            let batch = source.batch(done, req.batch, &train_device)?;
            state
                .step(&batch, req.lr)
                .map_err(|(what, value)| RunError::Diverged {
                    what: what.to_string(),
                    value,
                })?;
            done += 1;
            progress(done, steps);
        }
        let denoiser = TrainedDenoiser::new(state.net.clone(), run_config.clone(), shape)?;
        // Sampling noise keyed by (seed, checkpoint), apart from the training streams.
        let mut rng = noise_rng(req.seed);
        rng.set_stream(mark);
        let images = sampler
            .sample(&denoiser, req.samples, &mut rng, &train_device, &mut |_| {})?
            .to_host();
        let set = Dataset::new("generated", dims, Pixels::F32(images), None)?;
        measured.push((mark, stats::mode_variances(&set)));
    }
    Ok(measured)
}

/// The mlp's empirical learning times, the linear theory's, and `validate.csv`'s rows.
struct MlpCurves {
    empirical: Vec<(f64, f64)>,
    theory_points: Vec<(f64, f64)>,
    rows: String,
}

impl MlpCurves {
    /// Empirical learning times against the theory's target, and the theory's own.
    fn of(
        req: &ValidateRequest,
        dims: [usize; 3],
        lambda: &[f64],
        w: &[f64],
        measured: &[(u64, Vec<f64>)],
    ) -> Self {
        let linear = TheoryConfig {
            sigma_min: req.sigma_min,
            sigma_max: req.sigma_max,
            ..TheoryConfig::default()
        };
        let steps_f: Vec<f64> = measured.iter().map(|(s, _)| *s as f64).collect();
        let mut curves = Self {
            empirical: Vec::new(),
            theory_points: Vec::new(),
            rows: String::from("step,channel,ky,kx,lambda,w,generated,theory_target\n"),
        };
        let hw = dims[1] * dims[2];
        for i in (0..lambda.len()).filter(|&i| w[i] != 0.0) {
            let m = linear.mode(lambda[i], w[i]);
            let target = m.target_variance();
            if let Some(t) = m.learning_time(Crossing::Geometric) {
                curves.theory_points.push((lambda[i], t));
            }
            let curve: Vec<f64> = measured.iter().map(|(_, v)| v[i]).collect();
            let mean = (curve[0] * target).sqrt();
            if let Some(t) = learning_step(&steps_f, &curve, mean) {
                curves.empirical.push((lambda[i], t));
            }
            for (step, v) in measured {
                let (c, k, l) = (i / hw, (i % hw) / dims[2], i % dims[2]);
                let _ = writeln!(
                    curves.rows,
                    "{step},{c},{k},{l},{},{},{},{target}",
                    lambda[i], w[i], v[i]
                );
            }
        }
        curves
    }
}

/// Left: the mlp's generated variance / data variance against Adam steps for a few modes;
/// right: its learning times against λ with the fit, and the linear theory's (rescaled to the
/// same median) for the slope.
fn mlp_plot(
    path: &Path,
    lambda: &[f64],
    w: &[f64],
    measured: &[(u64, Vec<f64>)],
    empirical: &[(f64, f64)],
    (fit, theory_fit): (Option<ExponentFit>, Option<ExponentFit>),
    theory_points: &[(f64, f64)],
) -> Result<(), RunError> {
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
    let line = |f: Option<ExponentFit>, k: f64| fit_line(f, lambda, k);
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
