//! A noise spectrum on an image grid, described the way [`spectral`](sagd_eval::spectral)
//! describes images: its power table `w(f)²`, support, rank, conditioning and radial profile
//! (the one-frequency-step bins of `sagd data stats`). The work of `sagd spectra show`; its
//! figure is drawn through `sagd-plot`, which keeps `sagd-core` free of plotting.
//!
//! ```
//! use sagd_core::{Normalization, RadiusConvention};
//! use sagd_runs::spectra::spectrum_report;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! sagd_ops::link(); // the built-in spectra
//! let spectrum = sagd_core::parse_spectrum("band-pass:a=0.2,b=0.6")?;
//! let report = spectrum_report(spectrum.as_ref(), [1, 8, 8], Normalization::Energy, RadiusConvention::Unit)?;
//! assert!(!report.full_support && report.rank < report.dim);
//! assert_eq!(report.power.len(), 8); // rows: f_y = fftfreq(8)[k]
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use sagd_core::grid::fftfreq;
use sagd_core::spectrum::config_string;
use sagd_core::{NoiseSpectrum, Normalization, RadiusConvention, SpectralCovariance};
use sagd_plot::{HeatMap, LinePlot, Series, write_heatmap_png};
use serde::Serialize;

use crate::error::RunError;

/// One bin of a spectrum's radial profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProfileBin {
    /// Bin centre, in the report's radius convention.
    pub radius: f64,
    /// Mean `w(f)²` of the frequencies in the bin.
    pub mean_power: f64,
    /// Frequencies in the bin.
    pub count: usize,
}

/// A spectrum on a grid, as `sagd spectra show --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpectrumReport {
    /// The spectrum's config string.
    pub spectrum: String,
    /// `[C, H, W]`.
    pub size: [usize; 3],
    /// The normalization's name.
    pub normalization: String,
    /// The radius convention of the radial profile.
    pub radius: String,
    /// `w(f) > 0` at every frequency.
    pub full_support: bool,
    /// The rank of `Σ_w`.
    pub rank: usize,
    /// `C·H·W`.
    pub dim: usize,
    /// `log det` of `Σ_w` on its support.
    pub log_det_support: f64,
    /// Largest over smallest eigenvalue on the support.
    pub condition_number: f64,
    /// `fftfreq(H)`: the frequency of each row of [`power`](Self::power).
    pub freq_y: Vec<f64>,
    /// `fftfreq(W)`: the frequency of each column.
    pub freq_x: Vec<f64>,
    /// The H×W table of `w(f)²` after normalization, in `fftfreq` order (row k ↔
    /// `f_y = fftfreq(H)[k]`, column l ↔ `f_x = fftfreq(W)[l]`).
    pub power: Vec<Vec<f64>>,
    /// The radial profile (DC alone in the first bin).
    pub radial_profile: Vec<ProfileBin>,
}

/// Describes `spectrum` on a `size` (`[C, H, W]`) grid under `normalization`, its radial
/// profile in the `radius` convention.
///
/// # Errors
/// [`RunError::Request`] when the spectrum cannot be laid on the grid (its message is
/// `sagd-core`'s).
///
/// See the [module docs](self) for an example.
pub fn spectrum_report(
    spectrum: &dyn NoiseSpectrum,
    size: [usize; 3],
    normalization: Normalization,
    radius: RadiusConvention,
) -> Result<SpectrumReport, RunError> {
    let cov = SpectralCovariance::new(spectrum, size, normalization)
        .map_err(|e| RunError::Request(e.to_string()))?;
    let [c, h, w] = cov.size();
    let power = cov.power();
    let grid = cov.grid();
    let profile = sagd_datasets::stats::radial_profile(&power, grid.height, grid.width, radius);
    Ok(SpectrumReport {
        spectrum: config_string(spectrum),
        size: [c, h, w],
        normalization: normalization.name().to_string(),
        radius: radius.name().to_string(),
        full_support: cov.full_support(),
        rank: cov.rank(),
        dim: cov.dim(),
        log_det_support: cov.log_det_support(),
        condition_number: cov.condition_number(),
        freq_y: (0..h).map(|k| fftfreq(h, k)).collect(),
        freq_x: (0..w).map(|l| fftfreq(w, l)).collect(),
        power: power.chunks(w.max(1)).map(<[f64]>::to_vec).collect(),
        radial_profile: profile
            .into_iter()
            .map(|b| ProfileBin {
                radius: b.radius,
                mean_power: b.power,
                count: b.count,
            })
            .collect(),
    })
}

/// Draws a report to a PNG: the power `w(f)²` as a heat map (DC centred, log colour scale,
/// colour bar) beside its radial profile.
///
/// # Errors
/// [`RunError::Plot`] when the figure cannot be drawn or written.
///
/// ```
/// use sagd_core::{Normalization, RadiusConvention};
/// use sagd_runs::spectra::{spectrum_report, write_spectrum_png};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link();
/// let spectrum = sagd_core::parse_spectrum("power-law:alpha=-1,eps=0.05")?;
/// let report = spectrum_report(spectrum.as_ref(), [1, 16, 16], Normalization::Energy, RadiusConvention::Cycles)?;
/// let dir = tempfile::tempdir()?;
/// write_spectrum_png(&dir.path().join("spectrum.png"), &report)?;
/// # Ok(())
/// # }
/// ```
pub fn write_spectrum_png(path: &Path, report: &SpectrumReport) -> Result<(), RunError> {
    let [_, h, w] = report.size;
    // fftshift: DC in the centre, frequencies increasing left to right and top to bottom.
    let (sh, sw) = (h / 2, w / 2);
    let mut shifted = vec![0.0; h * w];
    for (k, row) in report.power.iter().enumerate() {
        for (l, &p) in row.iter().enumerate() {
            shifted[((k + sh) % h) * w + (l + sw) % w] = p;
        }
    }
    let first = |n: usize| fftfreq(n, (n - n / 2) % n);
    let last = |n: usize| fftfreq(n, (n - n / 2 + n - 1) % n);
    let title = format!("w(f)^2 of {}", report.spectrum);
    let map = HeatMap {
        title: &title,
        values: &shifted,
        rows: h,
        cols: w,
        log_scale: true,
        x_label: "f_x (cycles/pixel)",
        y_label: "f_y (cycles/pixel)",
        x_range: (first(w), last(w)),
        y_range: (first(h), last(h)),
        colorbar_label: "w(f)^2",
    };
    let x_label = format!("radius ({})", report.radius);
    let line = LinePlot {
        title: "radial profile",
        x_label: &x_label,
        y_label: "mean w(f)^2",
        series: vec![Series {
            name: "mean power",
            points: report
                .radial_profile
                .iter()
                .map(|b| (b.radius, b.mean_power))
                .collect(),
            markers: true,
        }],
        log_x: false,
        log_y: true,
    };
    Ok(write_heatmap_png(path, &map, Some(&line))?)
}
