//! The analytic theory of spectral bias on a dataset under a noise spectrum, and its checks
//! against trained models: the runs behind `sagd theory predict`, `validate` and `emergence`.
//!
//! - [`predict`]: per-mode curves `λ̃_k(τ)`, learning times `τ_k*` and the fitted exponent
//!   of `τ* ∝ λ^(-α)` ([`sagd_core::theory`]) from a dataset's per-mode variances, and their
//!   figure;
//! - [`validate`]: trains `linear` or `circulant` denoisers by full-batch gradient descent on
//!   a `grf`'s exact covariance (or an `mlp` by Adam on draws of it) and compares each mode's
//!   generated variance with the theory at checkpoints, writing `validate.csv`,
//!   `validate.json` and `validate.png`;
//! - [`emergence`]: per-mode learning curves of a trained run from samples at its
//!   checkpoints, learning steps and their exponent.
//!
//! ```
//! use sagd_runs::theory::{PredictRequest, predict_run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! sagd_ops::link(); // the built-in spectra
//! let mut request = PredictRequest::new("grf:size=1x8x8,beta=1", "power-law:alpha=-1,eps=0.05".parse()?);
//! request.tau_points = 20;
//! let run = predict_run(&request)?;
//! assert_eq!(run.shape, [1, 8, 8]);
//! assert_eq!(run.prediction.modes.len(), 64);
//! let alpha = run.prediction.exponent().map(|f| f.alpha);
//! assert!(alpha.is_some());
//! # Ok(())
//! # }
//! ```

pub mod emergence;
pub mod predict;
pub mod validate;

use sagd_core::theory::ExponentFit;
use serde::Serialize;

pub use predict::{
    Basis, ModePlace, ModeSummary, PredictModel, PredictRequest, PredictRun, predict_run,
    write_prediction_png,
};
pub use validate::{
    AffineValidation, CheckpointError, MlpValidation, ValidateModel, ValidateRequest, Validation,
    WorstMode, validate_run,
};

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
