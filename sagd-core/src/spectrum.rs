//! The [`NoiseSpectrum`] trait: a shape-free amplitude `w(f) ≥ 0` that configs name by `kind`.

use std::fmt::Debug;

use crate::error::SpectrumError;
use crate::grid::{Frequency, FrequencyGrid};
use crate::registry::ParamMap;

/// A noise spectrum: the amplitude `w(f) ≥ 0` of the forward noise at each frequency, with
/// `w(f) = w(-f)`. On an image grid it defines `Σ_w = F⁻¹ diag(w²) F` (see
/// [`SpectralCovariance`](crate::covariance::SpectralCovariance)).
///
/// Implementations are serde-serializable through `typetag` (tag `kind`), so a configuration
/// can say `kind = "power-law"`, and register a [`SpectrumEntry`](crate::registry::SpectrumEntry)
/// with `inventory` so that the CLI and config loaders find them by name.
#[typetag::serde(tag = "kind")]
pub trait NoiseSpectrum: Debug + Send + Sync {
    /// The registered name (also the serde `kind`).
    fn name(&self) -> &'static str;

    /// Checks the parameters independently of any grid; the error names the parameter.
    fn validate(&self) -> Result<(), SpectrumError>;

    /// The amplitudes `w(f)` on `grid`, row-major in `fftfreq` order, before normalization.
    /// Errors when the spectrum cannot be evaluated on this grid (for example an empty band).
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError>;

    /// The parameters, with their current values, as a map (used to print the spectrum as a
    /// config string and to rebuild it through the registry).
    fn params(&self) -> ParamMap;

    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn NoiseSpectrum>;
}

impl Clone for Box<dyn NoiseSpectrum> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Evaluates a radial (or any pointwise) amplitude on every frequency of `grid`, checking that
/// each value is finite and non-negative.
pub fn pointwise_amplitudes(
    name: &str,
    grid: &FrequencyGrid,
    amplitude: impl Fn(Frequency) -> f64,
) -> Result<Vec<f64>, SpectrumError> {
    grid.frequencies()
        .map(|f| {
            let value = amplitude(f);
            if value.is_finite() && value >= 0.0 {
                Ok(value)
            } else {
                Err(SpectrumError::BadAmplitude {
                    spectrum: name.to_string(),
                    fy: f.fy,
                    fx: f.fx,
                    value,
                })
            }
        })
        .collect()
}

/// The spectrum written as a config string, `name:key=value,...`, which
/// [`parse_spectrum`](crate::registry::parse_spectrum) reads back.
pub fn config_string(spectrum: &dyn NoiseSpectrum) -> String {
    let params = spectrum.params();
    if params.is_empty() {
        return spectrum.name().to_string();
    }
    let parts: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}:{}", spectrum.name(), parts.join(","))
}
