//! `sagd theory predict`: the analytic theory of spectral bias on a dataset under a noise
//! spectrum: per-mode curves `λ̃_k(τ)`, learning times `τ_k*` and the fitted exponent of
//! `τ* ∝ λ^(-α)`, and their figure.

use std::path::Path;

use sagd_core::theory::{
    Crossing, ExponentFit, ModelKind, Prediction, TheoryConfig, predict, tau_grid,
};
use sagd_core::{Normalization, SpectralCovariance, SpectrumSpec};
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::stats;
use sagd_datasets::transform::Pipeline;
use sagd_plot::{LinePlot, Series, write_line_plots_png};
use serde::Serialize;

use super::{fit_line, spread_modes};
use crate::error::RunError;

fn invalid(message: impl Into<String>) -> RunError {
    RunError::Request(message.into())
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
    /// The noise spectrum.
    pub spectrum: SpectrumSpec,
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
    pub fn new(data: impl Into<String>, spectrum: SpectrumSpec) -> Self {
        Self {
            data: data.into(),
            transforms: Vec::new(),
            spectrum,
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
) -> Result<sagd_datasets::Dataset, RunError> {
    let pipeline = Pipeline::parse(transforms)?;
    let data = spec.load()?;
    if pipeline.transforms.is_empty() {
        return Ok(data);
    }
    Ok(pipeline.apply_to(&data, data.len(), 0)?)
}

/// Per-mode data variances (C×H×W, `fftfreq` order per channel) and the data's `[C, H, W]`.
fn data_variances(req: &PredictRequest) -> Result<(Vec<f64>, [usize; 3]), RunError> {
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
fn pca_variances(req: &PredictRequest) -> Result<(Vec<f64>, [usize; 3]), RunError> {
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
/// [`RunError::Request`] for bad settings (a spectrum that does not parse or fit the data,
/// a PCA basis with shaped noise, fewer than 2 τ values, theory settings out of range, data
/// without variance); [`RunError::Dataset`] when the data cannot be read or parsed.
///
/// See the [module docs](self) for an example.
pub fn predict_run(req: &PredictRequest) -> Result<PredictRun, RunError> {
    let pca = req.basis == Basis::Pca;
    let (lambda_all, dims) = if pca {
        pca_variances(req)?
    } else {
        data_variances(req)?
    };
    let spectrum = req.spectrum.spectrum();
    let cov = SpectralCovariance::new(spectrum, dims, req.normalization)
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

/// Draws a prediction to a PNG: left, `λ̃_k(τ)/λ̃_k(∞)` for a dozen modes spread over λ;
/// right, τ* against λ (log-log) for the rising and falling modes with their fits. `spectrum`
/// names the noise in the title.
///
/// # Errors
/// [`RunError::Plot`] when the figure cannot be drawn or written.
///
/// ```
/// use sagd_runs::theory::{PredictRequest, predict_run, write_prediction_png};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link();
/// let mut request = PredictRequest::new("grf:size=1x4x4", "isotropic".parse()?);
/// request.tau_points = 10;
/// let run = predict_run(&request)?;
/// let dir = tempfile::tempdir()?;
/// write_prediction_png(&dir.path().join("theory.png"), &run.prediction, "isotropic")?;
/// # Ok(())
/// # }
/// ```
pub fn write_prediction_png(path: &Path, p: &Prediction, spectrum: &str) -> Result<(), RunError> {
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
