//! The analytic theory of spectral bias on a dataset under a noise spectrum, and its check
//! against trained models: the runs behind `sagd theory predict` and `sagd theory validate`.
//!
//! - [`predict_run`]: per-mode curves `λ̃_k(τ)`, learning times `τ_k*` and the fitted exponent
//!   of `τ* ∝ λ^(-α)` ([`sagd_core::theory`]) from a dataset's per-mode variances;
//!   [`write_prediction_png`] draws them;
//! - [`validate_run`]: trains `linear` or `circulant` denoisers by full-batch gradient descent
//!   on a `grf`'s exact covariance (or an `mlp` by Adam on draws of it) and compares each
//!   mode's generated variance with the theory at checkpoints, writing `validate.csv`,
//!   `validate.json` and `validate.png`.
//!
//! They live here, with the other comparisons of generated and reference statistics, because
//! they train models (`sagd-models`) and sample them (`sagd-samplers`), which `sagd-core`'s
//! theory does not.
//!
//! ```
//! use sagd_eval::theory::{PredictRequest, predict_run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! sagd_ops::link(); // the built-in spectra
//! let mut request = PredictRequest::new("grf:size=1x8x8,beta=1", "power-law:alpha=-1,eps=0.05");
//! request.tau_points = 20;
//! let run = predict_run(&request)?;
//! assert_eq!(run.shape, [1, 8, 8]);
//! assert_eq!(run.prediction.modes.len(), 64);
//! let alpha = run.prediction.exponent().map(|f| f.alpha);
//! assert!(alpha.is_some());
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sagd_core::theory::{
    Crossing, ExponentFit, ModelKind, Prediction, TheoryConfig, fit_exponent, predict, tau_grid,
};
use sagd_core::{DynShape, Normalization, Schedule, SpectralCovariance, parse_spectrum};
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::stats;
use sagd_datasets::synthetic::grf::GrfConfig;
use sagd_datasets::transform::Pipeline;
use sagd_plot::{LinePlot, Series, write_line_plots_png};
use serde::Serialize;

use crate::error::EvalError;

fn invalid(message: impl Into<String>) -> EvalError {
    EvalError::Request(message.into())
}

/// Which modes a prediction uses (`--basis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Basis {
    /// The Fourier modes: per-mode variances, exact for stationary data.
    #[default]
    Fourier,
    /// The eigenvalues of the data covariance: shared with `Σ_w` only for isotropic noise.
    Pca,
}

impl Basis {
    /// The CLI's spelling: `fourier` or `pca`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fourier => "fourier",
            Self::Pca => "pca",
        }
    }
}

/// The denoiser a prediction describes (`sagd theory predict --model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PredictModel {
    /// A full linear map per level.
    #[default]
    Linear,
    /// A full-width circular convolution per level (rate × H·W).
    Circulant,
    /// The symmetric two-layer linear denoiser `D = PPᵀ x`.
    TwoLayer,
}

/// What `sagd theory predict` asks; error messages name a field by its flag (`--tau-points`
/// for [`tau_points`](Self::tau_points)).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    /// The data, a dataset spec (a `grf` uses its exact mode variances; other data their
    /// per-Fourier-mode variances, after the transforms).
    pub data: String,
    /// Transforms applied to the data first, as `sagd data` writes them.
    pub transforms: Vec<String>,
    /// The noise spectrum string.
    pub spectrum: String,
    /// The spectrum's normalization.
    pub normalization: Normalization,
    /// The modes.
    pub basis: Basis,
    /// Images used for the PCA basis.
    pub pca_images: usize,
    /// The denoiser.
    pub model: PredictModel,
    /// Learning rate η.
    pub eta: f64,
    /// Initial gain Q of every mode (> 0 for two-layer).
    pub q: f64,
    /// Smallest noise level σ_0.
    pub sigma_min: f64,
    /// Largest noise level σ_T.
    pub sigma_max: f64,
    /// The learning-time criterion.
    pub crossing: Crossing,
    /// Leave out of the fit the modes whose initial variance is within this factor of the
    /// target (1 keeps every mode).
    pub exclude: f64,
    /// Number of τ values (≥ 2, log-spaced over every mode's dynamics).
    pub tau_points: usize,
}

impl PredictRequest {
    /// `data` under `spectrum` with the CLI's defaults: energy normalization, Fourier basis,
    /// linear model, η = 1, Q = 0, σ in [0.002, 80], geometric crossing, 200 τ values.
    pub fn new(data: impl Into<String>, spectrum: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            transforms: Vec::new(),
            spectrum: spectrum.into(),
            normalization: Normalization::Energy,
            basis: Basis::Fourier,
            pca_images: 2000,
            model: PredictModel::Linear,
            eta: 1.0,
            q: 0.0,
            sigma_min: 0.002,
            sigma_max: 80.0,
            crossing: Crossing::Geometric,
            exclude: 1.0,
            tau_points: 200,
        }
    }
}

/// The outcome of [`predict_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRun {
    /// The data's `[C, H, W]` (after the transforms).
    pub shape: [usize; 3],
    /// The basis used.
    pub basis: Basis,
    /// For each predicted mode, its index among all modes (`c·H·W + k_y·W + k_x` in the
    /// Fourier basis, the component in the PCA basis): modes of zero variance are left out.
    pub kept: Vec<usize>,
    /// Modes left out because the data never excite them (λ = 0).
    pub skipped_zero_variance: usize,
    /// The prediction of the kept modes, in the order of [`kept`](Self::kept).
    pub prediction: Prediction,
}

/// Where a predicted mode sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ModePlace {
    /// A Fourier mode: channel and `fftfreq` indices.
    Fourier {
        /// Channel.
        channel: usize,
        /// Row index (`f_y = fftfreq(H)[ky]`).
        ky: usize,
        /// Column index (`f_x = fftfreq(W)[kx]`).
        kx: usize,
    },
    /// A principal component (eigenvalues in decreasing order).
    Component {
        /// The component's index.
        component: usize,
    },
}

/// One predicted mode as `sagd theory predict --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeSummary {
    /// Where it sits.
    pub mode: ModePlace,
    /// Data variance λ.
    pub lambda: f64,
    /// Noise power w.
    pub w: f64,
    /// Initial gain.
    pub q: f64,
    /// Generated variance before training.
    pub initial: f64,
    /// Generated variance after training.
    pub target: f64,
    /// Learning time, if the variance crosses the criterion.
    pub tau_star: Option<f64>,
    /// Generated variance at each τ.
    pub variance: Vec<f64>,
}

/// An exponent fit `τ* ∝ λ^(-α)` as the JSON outputs write it (the fields they leave out are
/// `None`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExponentSummary {
    /// α.
    pub alpha: f64,
    /// R² in log-log.
    pub r2: f64,
    /// Modes fitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<usize>,
    /// The intercept `c` of `ln τ* = c − α ln λ`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intercept: Option<f64>,
}

impl ExponentSummary {
    /// Every field of `fit`.
    pub fn full(fit: ExponentFit) -> Self {
        Self {
            alpha: fit.alpha,
            r2: fit.r2,
            modes: Some(fit.modes),
            intercept: Some(fit.intercept),
        }
    }

    /// α, R² and the modes fitted.
    pub fn with_modes(fit: ExponentFit) -> Self {
        Self {
            intercept: None,
            ..Self::full(fit)
        }
    }

    /// α and R² only.
    pub fn slope(fit: ExponentFit) -> Self {
        Self {
            modes: None,
            ..Self::with_modes(fit)
        }
    }
}

impl PredictRun {
    /// The kept modes with their places and predictions, as `--json` prints them.
    pub fn mode_summaries(&self) -> Vec<ModeSummary> {
        let [_, h, w] = self.shape;
        let hw = h * w;
        self.kept
            .iter()
            .zip(&self.prediction.modes)
            .map(|(&i, m)| ModeSummary {
                mode: match self.basis {
                    Basis::Pca => ModePlace::Component { component: i },
                    Basis::Fourier => ModePlace::Fourier {
                        channel: i / hw,
                        ky: (i % hw) / w,
                        kx: i % w,
                    },
                },
                lambda: m.lambda,
                w: m.w,
                q: m.q,
                initial: m.initial,
                target: m.target,
                tau_star: m.tau_star,
                variance: m.variance.clone(),
            })
            .collect()
    }
}

/// The data of `spec` with the `transforms` pipeline applied to every image.
fn load_transformed(
    spec: &DataSpec,
    transforms: &[String],
) -> Result<sagd_datasets::Dataset, EvalError> {
    let pipeline = Pipeline::parse(transforms)?;
    let data = spec.load()?;
    if pipeline.transforms.is_empty() {
        return Ok(data);
    }
    Ok(pipeline.apply_to(&data, data.len(), 0)?)
}

/// Per-mode data variances (C×H×W, `fftfreq` order per channel) and the data's `[C, H, W]`.
fn data_variances(req: &PredictRequest) -> Result<(Vec<f64>, [usize; 3]), EvalError> {
    let spec: DataSpec = req.data.parse()?;
    if let (Source::Grf(config), true) = (&spec.source, req.transforms.is_empty()) {
        config.validate()?;
        let one = config.mode_variances();
        let c = config.size[0];
        return Ok((one.repeat(c), config.size));
    }
    let data = load_transformed(&spec, &req.transforms)?;
    Ok((stats::mode_variances(&data), data.shape()))
}

/// The eigenvalues of the data covariance (PCA), after the transforms.
fn pca_variances(req: &PredictRequest) -> Result<(Vec<f64>, [usize; 3]), EvalError> {
    let spec: DataSpec = req.data.parse()?;
    let data = load_transformed(&spec, &req.transforms)?;
    let eigen = stats::pca_spectrum(&data, Some(req.pca_images))?;
    Ok((eigen, data.shape()))
}

/// The theory's prediction for every mode of `req.data` under `req.spectrum`: the data's
/// per-mode variances λ (Fourier, or PCA eigenvalues), the noise power w of each mode, the
/// curves `λ̃_k(τ)` on a τ grid, the learning times and the fits of `τ* ∝ λ^(-α)`.
///
/// # Errors
/// [`EvalError::Request`] for bad settings (a spectrum that does not parse or fit the data,
/// a PCA basis with shaped noise, fewer than 2 τ values, theory settings out of range, data
/// without variance); [`EvalError::Dataset`] when the data cannot be read or parsed.
///
/// See the [module docs](self) for an example.
pub fn predict_run(req: &PredictRequest) -> Result<PredictRun, EvalError> {
    let pca = req.basis == Basis::Pca;
    let (lambda_all, dims) = if pca {
        pca_variances(req)?
    } else {
        data_variances(req)?
    };
    let spectrum =
        parse_spectrum(&req.spectrum).map_err(|e| invalid(format!("--spectrum: {e}")))?;
    let cov = SpectralCovariance::new(spectrum.as_ref(), dims, req.normalization)
        .map_err(|e| invalid(format!("--spectrum: {e}")))?;
    let power = cov.power();
    let w_all = if pca {
        // Σ_w shares the data's eigenvectors only when it is a multiple of the identity.
        let first = power[0];
        if power
            .iter()
            .any(|p| (p - first).abs() > 1e-12 * first.abs().max(1e-300))
        {
            return Err(invalid(format!(
                "--basis pca needs isotropic noise (Σ_w ∝ I shares the data's eigenvectors); \
                 `{}` is not; use --basis fourier",
                req.spectrum
            )));
        }
        vec![first; lambda_all.len()]
    } else {
        power.repeat(dims[0])
    };
    let model = match req.model {
        PredictModel::Linear => ModelKind::Linear,
        PredictModel::Circulant => ModelKind::Circulant {
            pixels: dims[1] * dims[2],
        },
        PredictModel::TwoLayer => ModelKind::TwoLayer,
    };
    if req.tau_points < 2 {
        return Err(invalid("--tau-points must be at least 2"));
    }
    let config = TheoryConfig {
        eta: req.eta,
        q: req.q,
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
        model,
        crossing: req.crossing,
        exclude: req.exclude,
    };
    config.validate().map_err(|e| invalid(e.to_string()))?;
    // Modes the data never excite (λ = 0) have nothing to learn: they are left out and counted.
    let kept: Vec<usize> = (0..lambda_all.len())
        .filter(|&i| lambda_all[i] > 0.0)
        .collect();
    let skipped = lambda_all.len() - kept.len();
    if kept.is_empty() {
        return Err(invalid(format!(
            "{}: every mode has zero variance",
            req.data
        )));
    }
    let lambda: Vec<f64> = kept.iter().map(|&i| lambda_all[i]).collect();
    let w: Vec<f64> = kept.iter().map(|&i| w_all[i]).collect();
    let tau = tau_grid(&lambda, &w, &config, req.tau_points);
    let prediction = predict(&lambda, &w, &config, &tau).map_err(|e| invalid(e.to_string()))?;
    Ok(PredictRun {
        shape: dims,
        basis: req.basis,
        kept,
        skipped_zero_variance: skipped,
        prediction,
    })
}

/// Up to `count` mode indices spread evenly over the distinct λ of the modes `keep` accepts,
/// smallest λ first: the modes a plot draws.
pub(crate) fn spread_modes(
    lambda: &[f64],
    keep: impl Fn(usize) -> bool,
    count: usize,
) -> Vec<usize> {
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
pub(crate) fn fit_line(fit: Option<ExponentFit>, lambda: &[f64], k: f64) -> Vec<(f64, f64)> {
    let Some(f) = fit else { return Vec::new() };
    let (lo, hi) = lambda
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &l| (a.min(l), b.max(l)));
    [lo, hi]
        .iter()
        .map(|&l| (l, k * (f.intercept - f.alpha * l.ln()).exp()))
        .collect()
}

/// Draws a prediction to a PNG: left, `λ̃_k(τ)/λ̃_k(∞)` for a dozen modes spread over λ;
/// right, τ* against λ (log-log) for the rising and falling modes with their fits. `spectrum`
/// names the noise in the title.
///
/// # Errors
/// [`EvalError::Plot`] when the figure cannot be drawn or written.
///
/// ```
/// use sagd_eval::theory::{PredictRequest, predict_run, write_prediction_png};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link();
/// let mut request = PredictRequest::new("grf:size=1x4x4", "isotropic");
/// request.tau_points = 10;
/// let run = predict_run(&request)?;
/// let dir = tempfile::tempdir()?;
/// write_prediction_png(&dir.path().join("theory.png"), &run.prediction, "isotropic")?;
/// # Ok(())
/// # }
/// ```
pub fn write_prediction_png(path: &Path, p: &Prediction, spectrum: &str) -> Result<(), EvalError> {
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
    let line = |fit: Option<ExponentFit>| fit_line(fit, &lambdas, 1.0);
    let fit_name = |what: &str, fit: Option<ExponentFit>| {
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
    /// The noise spectrum string.
    pub spectrum: String,
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
    pub fn new(
        data: impl Into<String>,
        spectrum: impl Into<String>,
        out: impl Into<PathBuf>,
    ) -> Self {
        Self {
            data: data.into(),
            spectrum: spectrum.into(),
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
fn ladder(req: &ValidateRequest) -> Result<Schedule, EvalError> {
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
) -> Result<sagd_models::RunConfig, EvalError> {
    let text = format!(
        "parameterization = \"x0\"\n[data]\nspec = \"{}\"\n[noise]\nspectrum = \"{}\"\n\
         normalization = \"{}\"\n[schedule]\nkind = \"edm\"\nsigma_min = {}\nsigma_max = {}\n\
         rho = 7.0\nsteps = {}\n[model]\n{model}\n",
        req.data.replace('"', ""),
        req.spectrum.replace('"', ""),
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

fn create_out(out: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(out).map_err(|source| EvalError::Output {
        action: "create",
        path: out.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically ([`sagd_core::files::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    sagd_core::files::write_atomic(path, bytes).map_err(|e| EvalError::Output {
        action: "write",
        path: e.path,
        source: e.source,
    })
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), EvalError> {
    let value = serde_json::to_value(value).map_err(EvalError::Json)?;
    let text = serde_json::to_string_pretty(&value).map_err(EvalError::Json)?;
    write_atomic(path, text.as_bytes())
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
/// [`EvalError::Request`] for bad settings (non-grf data, images of more than 256 values for
/// the affine models, levels outside 2 ..= 512, a non-Gaussian normalization, a step η at which
/// gradient descent diverges, more than 2 000 000 steps needed); [`EvalError::Model`],
/// [`EvalError::Sampler`] and [`EvalError::Diverged`] while training or sampling; I/O and
/// figure errors writing the outputs.
///
/// ```
/// use sagd_eval::theory::{Validation, ValidateRequest, validate_run};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link();
/// let out = tempfile::tempdir()?;
/// let mut request = ValidateRequest::new("grf:size=1x4x4,beta=1,r0=0.1", "isotropic", out.path());
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
) -> Result<Validation, EvalError> {
    use sagd_core::SpectralNoise;
    use sagd_models::fullbatch::FullBatchProblem;
    use sagd_models::{ModelConfig, Net, TrainedDenoiser};
    use sagd_samplers::affine::generated_mode_variances;
    use sagd_samplers::{Method, OdeForm, SamplerConfig};

    let spec: DataSpec = req.data.parse()?;
    let Source::Grf(grf) = &spec.source else {
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
    let spectrum =
        parse_spectrum(&req.spectrum).map_err(|e| invalid(format!("--spectrum: {e}")))?;
    let noise_cov = SpectralCovariance::new(spectrum.as_ref(), dims, req.normalization)
        .map_err(|e| invalid(format!("--spectrum: {e}")))?;
    let pixels = dims[1] * dims[2];
    let (kind, model) = match req.model {
        ValidateModel::Mlp => return validate_mlp(req, grf, dims, noise_cov, progress),
        ValidateModel::Linear => (ModelKind::Linear, ModelConfig::Linear { init_gain: 0.0 }),
        ValidateModel::Circulant => (
            ModelKind::Circulant { pixels },
            ModelConfig::Circulant { init_gain: 0.0 },
        ),
    };
    let schedule = ladder(req)?;
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
        .map(|(l, w)| l + req.sigma_max.powi(2) * w)
        .fold(0.0, f64::max);
    let eta = req.eta.unwrap_or(0.5 / (2.0 * speedup * fastest));
    if !(eta.is_finite() && eta > 0.0 && 2.0 * eta * speedup * fastest < 2.0) {
        return Err(invalid(format!(
            "--eta {eta}: expected a step in (0, {}) (gradient descent diverges beyond)",
            1.0 / (speedup * fastest)
        )));
    }
    let theory = TheoryConfig {
        eta,
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
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
    let steps = req.steps.unwrap_or((3.0 * slowest).ceil().max(1.0) as u64);
    if steps > 2_000_000 {
        return Err(invalid(format!(
            "{steps} gradient-descent steps would be needed; narrow --sigma-min/--sigma-max, \
             use smoother data or spectrum, or set --steps"
        )));
    }
    // Checkpoints log-spaced from a third of the fastest learning time to the last step.
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

    let device = sagd_core::prelude::Device::flex();
    let train_device = device.clone().autodiff();
    let data_cov = SpectralCovariance::from_amplitudes(
        "grf",
        grf.mode_variances().iter().map(|v| v.sqrt()).collect(),
        dims,
        Normalization::None,
    )?;
    let problem = FullBatchProblem::from_covariance(&data_cov, &noise_cov, &train_device)?;
    let mut net = Net::build(&model, dims, req.levels, 0, &train_device)?;
    let mut state =
        sagd_models::optim::OptimizerState::new(&net, sagd_models::optim::OptimizerKind::Sgd);
    let run_config = validation_config(req, &format!("kind = \"{}\"", req.model.name()))?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let noise = SpectralNoise::from_covariance(Arc::new(noise_cov.clone()), shape)?;
    let mut heun = SamplerConfig::new(Method::Heun, req.levels);
    heun.form = OdeForm::Edm;
    // The theory's generated variance is that of x(σ_0): stop at the lowest level.
    heun.final_denoise = false;
    let sampler = heun
        .build::<DynShape>()
        .map_err(|e| invalid(e.to_string()))?;

    progress(0, steps);
    let mut results = Vec::new();
    let mut done = 0u64;
    for &mark in &marks {
        while done < mark {
            let (next, _) = problem.gd_step(net, &sigmas, eta, &mut state)?;
            net = next;
            done += 1;
            if done.is_multiple_of(64) {
                progress(done, steps);
            }
        }
        let denoiser = TrainedDenoiser::new(net.clone(), run_config.clone(), shape)?;
        let trained = generated_mode_variances(sampler.as_ref(), &denoiser, &noise, &train_device)?;
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
    write_validation(req, dims, &lambda, &w, eta, &learning_times, &results).map(Validation::Affine)
}

fn write_validation(
    req: &ValidateRequest,
    dims: [usize; 3],
    lambda: &[f64],
    w: &[f64],
    eta: f64,
    learning_times: &[Option<f64>],
    results: &[Checkpoint],
) -> Result<AffineValidation, EvalError> {
    create_out(&req.out)?;
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
    write_atomic(&csv_path, csv.as_bytes())?;
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
        spectrum: req.spectrum.clone(),
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
) -> Result<(), EvalError> {
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
) -> Result<Validation, EvalError> {
    use sagd_core::{Parameterization, SpectralNoise, noise_rng};
    use sagd_datasets::Dataset;
    use sagd_models::optim::{OptimizerConfig, OptimizerKind};
    use sagd_models::train::{BatchSource, TrainState};
    use sagd_models::{Net, TrainedDenoiser};
    use sagd_samplers::{Method, SamplerConfig};

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
    let schedule = ladder(req)?;
    let levels = schedule.levels()?;
    let shape = DynShape::new(dims[0], dims[1], dims[2]);
    let device = sagd_core::prelude::Device::flex();
    let train_device = device.clone().autodiff();
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
    let cov = Arc::new(noise_cov.clone());
    let mut source = BatchSource::new(
        data,
        Pipeline::default(),
        req.seed,
        levels,
        cov.clone(),
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
    let noise = SpectralNoise::from_covariance(cov, shape)?;
    let mut heun = SamplerConfig::new(Method::Heun, req.levels);
    heun.final_denoise = false;
    let sampler = heun
        .build::<DynShape>()
        .map_err(|e| invalid(e.to_string()))?;

    let lambda = grf.mode_variances().repeat(dims[0]);
    let w = noise_cov.power().repeat(dims[0]);
    let mut marks: Vec<u64> = vec![0];
    let count = req.checkpoints.max(2);
    for i in 0..count {
        let f = i as f64 / (count - 1) as f64;
        let m = (10f64.ln() + f * ((steps as f64).ln() - 10f64.ln()))
            .exp()
            .round() as u64;
        marks.push(m.clamp(1, steps));
    }
    marks.dedup();
    progress(0, steps);
    let mut measured: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut done = 0u64;
    for &mark in &marks {
        while done < mark {
            let batch = source.batch(done, req.batch, &train_device)?;
            state
                .step(&batch, req.lr)
                .map_err(|(what, value)| EvalError::Diverged {
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
            .sample(
                &denoiser,
                &noise,
                req.samples,
                &mut rng,
                &train_device,
                &mut |_| {},
            )?
            .to_host();
        let set = Dataset::new("generated", dims, sagd_datasets::Pixels::F32(images), None)?;
        measured.push((mark, stats::mode_variances(&set)));
    }

    // Empirical learning times against the theory's target, and the theory's own exponent.
    let linear = TheoryConfig {
        sigma_min: req.sigma_min,
        sigma_max: req.sigma_max,
        ..TheoryConfig::default()
    };
    let theory = |l: f64, wk: f64| linear.mode(l, wk);
    let steps_f: Vec<f64> = measured.iter().map(|(s, _)| *s as f64).collect();
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
        let curve: Vec<f64> = measured.iter().map(|(_, v)| v[i]).collect();
        let mean = (curve[0] * target).sqrt();
        if let Some(t) = crate::emergence::learning_step(&steps_f, &curve, mean) {
            empirical.push((lambda[i], t));
        }
        for (step, v) in &measured {
            let (c, k, l) = (i / hw, (i % hw) / dims[2], i % dims[2]);
            let _ = writeln!(
                rows,
                "{step},{c},{k},{l},{},{},{},{target}",
                lambda[i], w[i], v[i]
            );
        }
    }
    create_out(&req.out)?;
    let csv_path = req.out.join("validate.csv");
    write_atomic(&csv_path, rows.as_bytes())?;
    let fit = fit_exponent(&empirical);
    let theory_fit = fit_exponent(&theory_points);
    let modes = lambda.iter().zip(&w).filter(|(_, w)| **w > 0.0).count();
    let summary = MlpValidation {
        data: req.data.clone(),
        spectrum: req.spectrum.clone(),
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
        modes_learned: empirical.len(),
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
        &empirical,
        (fit, theory_fit),
        &theory_points,
    )?;
    Ok(Validation::Mlp(summary))
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
) -> Result<(), EvalError> {
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
