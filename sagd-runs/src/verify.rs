//! The run behind `sagd verify SPEC --data DATASPEC`: the terminal-SNR check of a spectrum
//! against training data (without `--data`, `sagd verify` is the property suite,
//! [`sagd_core::verify`]).

use sagd_core::terminal::{AFFECTED_SNR, TerminalSnr, terminal_snr};
use sagd_core::{Normalization, Schedule, SpectralCovariance, SpectrumSpec};
use sagd_datasets::stats::second_moment_spectrum;
use sagd_models::training_pipeline;
use serde::Serialize;

use crate::data::DataRequest;
use crate::error::RunError;

/// The terminal-SNR check of a spectrum against training data (`sagd verify SPEC --data`), as
/// its `--json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerminalCheck {
    /// The spectrum's config string.
    pub spectrum: String,
    /// The data's name.
    pub data: String,
    /// `ᾱ_T` of the terminal level.
    #[serde(rename = "alpha_bar_T")]
    pub alpha_bar_t: f64,
    /// `σ_T`.
    #[serde(rename = "sigma_T")]
    pub sigma_t: f64,
    /// Modes checked (H×W).
    pub modes: usize,
    /// Modes on the support with SNR above [`AFFECTED_SNR`].
    pub affected: usize,
    /// [`AFFECTED_SNR`].
    pub affected_threshold: f64,
    /// Radius range (unit convention) of the affected modes.
    pub affected_band_unit: Option<[f64; 2]>,
    /// Modes on the support where the signal dominates (SNR > 1).
    pub dominated: usize,
    /// Modes off the support.
    pub outside_support: usize,
    /// The largest SNR on the support.
    pub worst_snr: f64,
    /// No mode's signal dominates.
    pub passed: bool,
    /// The check in full.
    #[serde(skip)]
    pub report: TerminalSnr,
}

/// Compares per Fourier mode the noise left at the last level of `schedule`, `σ_T² w_k²`,
/// with the data's remaining signal `ᾱ_T S_k` (`S_k` the mode's second moment, mean
/// included), the data taken in the models' range as training sees them (8-bit sources get
/// `scale` appended).
///
/// # Errors
/// [`RunError::Request`] for a spectrum that does not fit the data; those of
/// [`DataRequest::load`] and the transforms; [`RunError::Core`] computing the check.
///
/// ```
/// use sagd_core::{Normalization, Schedule};
/// use sagd_runs::data::DataRequest;
/// use sagd_runs::verify::terminal_check;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link();
/// let data = DataRequest::new("shapes:n=16,size=1x16x16");
/// let spectrum = "isotropic".parse()?;
/// let check = terminal_check(&spectrum, &data, &Schedule::ddpm_linear(), Normalization::Energy)?;
/// assert!(check.passed);
/// # Ok(())
/// # }
/// ```
pub fn terminal_check(
    spectrum: &SpectrumSpec,
    data: &DataRequest,
    schedule: &Schedule,
    normalization: Normalization,
) -> Result<TerminalCheck, RunError> {
    let parsed = spectrum.spectrum();
    let levels = schedule.levels()?;
    let Some(&terminal) = levels.last() else {
        return Err(RunError::request("the schedule has no levels"));
    };
    let (dataset, pipeline) = DataRequest {
        seed: 0,
        ..data.clone()
    }
    .load()?;
    let pipeline = training_pipeline(&dataset, pipeline);
    let data = pipeline.apply_to(&dataset, dataset.len(), 0)?;
    let cov = SpectralCovariance::new(parsed, data.shape(), normalization)
        .map_err(|e| RunError::request(e.to_string()))?;
    let signal = second_moment_spectrum(&data)?;
    let report = terminal_snr(&cov, &signal, terminal)?;
    Ok(TerminalCheck {
        spectrum: sagd_core::spectrum::config_string(parsed),
        data: data.name().to_string(),
        alpha_bar_t: terminal.alpha_bar,
        sigma_t: terminal.sigma,
        modes: report.snr.len(),
        affected: report.affected,
        affected_threshold: AFFECTED_SNR,
        affected_band_unit: report.affected_band.map(|(a, b)| [a, b]),
        dominated: report.dominated,
        outside_support: report.outside_support,
        worst_snr: report.worst_snr,
        passed: !report.signal_dominates(),
        report,
    })
}
