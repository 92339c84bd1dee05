//! Frequency-resolved metrics that need no network: how a set of samples distributes its power
//! over frequencies compared with a reference set (DESIGN.md §1, Evaluation).
//!
//! Conventions, those of [`sagd_datasets::stats`]: the unitary 2-D DFT per channel, pixels as
//! the datasets read them (`v / 255` for bytes). The power of a mode is
//! `P_k = mean over images |X_k|²`, averaged over channels, **mean image included**
//! ([`second_moment_spectrum`]); its variance (mean image subtracted) is the mode variance
//! ([`mode_variances`], per channel).
//! - **radial profile**: `P_k` averaged over one-frequency-step radius bins
//!   ([`radial_profile`]);
//! - **log-spectral distance**: the root mean square over the radial bins of
//!   `ln P_samples(r) − ln P_reference(r)` (0 = the same radial spectrum; 0.1 ≈ 10 % off per
//!   bin); bins where either power is 0 are left out;
//! - **band energy**: `E[a, b) = Σ_{a ≤ r_unit(k) < b} P_k` for the ten unit-radius bands
//!   `[0, 0.1) … [0.9, 1]` (the last includes the corner `r_unit = 1`), and the **band ratio**
//!   `E_samples / E_reference` (1 = the reference's energy);
//! - **mode-variance error**: the relative error `‖v_s − v_r‖₂ / ‖v_r‖₂` of the per-mode
//!   variances, and the root mean square of `ln(v_s / v_r)` over modes where both are positive
//!   (every mode weighs the same, the high frequencies as much as the low).

use sagd_core::{FrequencyGrid, RadiusConvention};
use sagd_datasets::Dataset;
use sagd_datasets::stats::{mode_variances, radial_profile, second_moment_spectrum};
use serde::Serialize;

use crate::error::EvalError;

/// Number of unit-radius bands.
pub const BANDS: usize = 10;

/// One radial bin of both spectra.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RadialPoint {
    /// Bin centre, cycles per pixel.
    pub radius: f64,
    /// The samples' mean power in the bin.
    pub samples: f64,
    /// The reference's mean power in the bin.
    pub reference: f64,
}

/// The energy of one unit-radius band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BandEnergy {
    /// Lower edge (unit radius, included).
    pub lo: f64,
    /// Upper edge (unit radius, excluded except for the last band).
    pub hi: f64,
    /// Number of Fourier modes (per channel) in the band; small grids leave some bands empty.
    pub modes: usize,
    /// The samples' energy.
    pub samples: f64,
    /// The reference's energy.
    pub reference: f64,
    /// `samples / reference`; `None` when the reference has no energy there (or no mode).
    pub ratio: Option<f64>,
}

/// The spectral metrics of samples against a reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpectralReport {
    /// Radial profiles of both sets.
    pub radial: Vec<RadialPoint>,
    /// RMS of the log ratio of the radial profiles.
    pub log_spectral_distance: f64,
    /// Energy per unit-radius band.
    pub bands: Vec<BandEnergy>,
    /// `‖v_s − v_r‖₂ / ‖v_r‖₂` over the per-channel mode variances.
    pub mode_variance_relative_error: f64,
    /// RMS of `ln(v_s / v_r)` over modes where both variances are positive.
    pub mode_variance_log_rms: f64,
}

/// The band `i` of [`BANDS`] that a unit radius falls in (`r = 1` in the last).
pub fn band_of(unit_radius: f64) -> usize {
    ((unit_radius * BANDS as f64).floor() as usize).min(BANDS - 1)
}

/// The unit-radius band of every mode of an H×W grid, in `fftfreq` order.
fn mode_bands(height: usize, width: usize) -> Vec<usize> {
    let grid = FrequencyGrid::new(height, width);
    (0..height * width)
        .map(|i| {
            band_of(
                grid.frequency(i / width, i % width)
                    .radius(RadiusConvention::Unit),
            )
        })
        .collect()
}

/// Energy per unit-radius band of an H×W power table in `fftfreq` order.
pub fn band_energies(power: &[f64], height: usize, width: usize) -> [f64; BANDS] {
    let mut bands = [0.0; BANDS];
    for (p, b) in power.iter().zip(mode_bands(height, width)) {
        bands[b] += p;
    }
    bands
}

/// The spectral metrics of `samples` against `reference`.
///
/// # Errors
/// [`EvalError::Input`] when the image shapes differ or a set has no image.
pub fn spectral(samples: &Dataset, reference: &Dataset) -> Result<SpectralReport, EvalError> {
    if samples.shape() != reference.shape() {
        let [c, h, w] = samples.shape();
        let [rc, rh, rw] = reference.shape();
        return Err(EvalError::input(
            "spectral metrics",
            format!("samples are {c}x{h}x{w} images, the reference {rc}x{rh}x{rw}"),
        ));
    }
    for d in [samples, reference] {
        if d.is_empty() {
            return Err(EvalError::input(d.name(), "no images"));
        }
    }
    let [_, h, w] = samples.shape();
    let power_s = second_moment_spectrum(samples)?;
    let power_r = second_moment_spectrum(reference)?;
    let radial_s = radial_profile(&power_s, h, w, RadiusConvention::Cycles);
    let radial_r = radial_profile(&power_r, h, w, RadiusConvention::Cycles);
    let radial: Vec<RadialPoint> = radial_s
        .iter()
        .zip(&radial_r)
        .map(|(s, r)| RadialPoint {
            radius: s.radius,
            samples: s.power,
            reference: r.power,
        })
        .collect();
    let log_spectral_distance = log_rms(radial.iter().map(|p| (p.samples, p.reference)));

    let (energy_s, energy_r) = (band_energies(&power_s, h, w), band_energies(&power_r, h, w));
    let mut modes = [0usize; BANDS];
    for b in mode_bands(h, w) {
        modes[b] += 1;
    }
    let bands = (0..BANDS)
        .map(|i| BandEnergy {
            lo: i as f64 / BANDS as f64,
            hi: (i + 1) as f64 / BANDS as f64,
            modes: modes[i],
            samples: energy_s[i],
            reference: energy_r[i],
            ratio: (energy_r[i] > 0.0).then(|| energy_s[i] / energy_r[i]),
        })
        .collect();

    let (var_s, var_r) = (mode_variances(samples), mode_variances(reference));
    let diff: f64 = var_s.iter().zip(&var_r).map(|(s, r)| (s - r).powi(2)).sum();
    let norm: f64 = var_r.iter().map(|r| r * r).sum();
    Ok(SpectralReport {
        radial,
        log_spectral_distance,
        bands,
        mode_variance_relative_error: if norm > 0.0 {
            (diff / norm).sqrt()
        } else {
            f64::NAN
        },
        mode_variance_log_rms: log_rms(var_s.iter().copied().zip(var_r.iter().copied())),
    })
}

/// RMS of `ln(a / b)` over the pairs where both are positive (NaN when none is).
fn log_rms(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for (a, b) in pairs {
        if a > 0.0 && b > 0.0 {
            sum += (a / b).ln().powi(2);
            count += 1;
        }
    }
    if count == 0 {
        f64::NAN
    } else {
        (sum / count as f64).sqrt()
    }
}
