//! Writing a run's outputs: its folder, JSON summaries, and the image grids and spectra
//! figures more than one run draws. Every file is written atomically
//! ([`sagd_core::files::write_atomic`]), so an interrupted run never leaves a torn one.

use std::path::Path;

use sagd_core::files::write_atomic;
use sagd_eval::SpectralReport;
use sagd_plot::{LinePlot, Series, write_image_grid_png, write_line_plots_png};
use serde::Serialize;

use crate::error::RunError;

/// Creates the output folder `out` (and its parents).
///
/// # Errors
/// [`RunError::Io`] naming the folder.
pub fn create_dir(out: &Path) -> Result<(), RunError> {
    std::fs::create_dir_all(out).map_err(|source| RunError::Io {
        action: "create",
        path: out.to_path_buf(),
        source,
    })
}

/// Removes `marker`, the file a run writes last to say its outputs are complete
/// (`summary.json`, `metrics.json`), before the outputs beside it are replaced: a run that then
/// fails leaves no marker, so its folder reads as unfinished (and the next run finishes it)
/// instead of pairing the old marker with new files.
///
/// # Errors
/// [`RunError::Io`] when it exists and cannot be removed.
pub fn retract_marker(marker: &Path) -> Result<(), RunError> {
    match std::fs::remove_file(marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RunError::Io {
            action: "remove",
            path: marker.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes `value` as pretty JSON (through [`serde_json::Value`], so map keys are sorted).
///
/// # Errors
/// [`RunError::Json`] when it cannot be encoded, [`RunError::Write`] when it cannot be written.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), RunError> {
    let value = serde_json::to_value(value)?;
    let text = serde_json::to_string_pretty(&value)?;
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Writes text (a CSV table, a report) to `path`.
///
/// # Errors
/// [`RunError::Write`] naming the file.
pub fn write_text(path: &Path, text: &str) -> Result<(), RunError> {
    Ok(write_atomic(path, text.as_bytes())?)
}

/// Writes the first (at most) 64 of `samples` (`N × C × H × W` values, `dims` = `[C, H, W]`)
/// as a PNG grid, eight a row. Data with a fixed [0, 1] range (`unit_range`) are drawn as they
/// are; others with their mean ± 3 standard deviations mapped to black … white. Images with a
/// channel count other than 1 or 3 show their first channel.
///
/// # Errors
/// [`RunError::Plot`] when the file cannot be drawn or written.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let images: Vec<f32> = (0..4 * 16).map(|i| (i % 7) as f32 / 7.0).collect();
/// sagd_runs::output::write_sample_grid(&dir.path().join("grid.png"), &images, [1, 4, 4], true)?;
/// # Ok(())
/// # }
/// ```
pub fn write_sample_grid(
    path: &Path,
    samples: &[f32],
    dims: [usize; 3],
    unit_range: bool,
) -> Result<(), RunError> {
    let [c, h, w] = dims;
    let d = c * h * w;
    let n = (samples.len() / d.max(1)).min(64);
    let shown = &samples[..n * d];
    let (c_out, values): (usize, Vec<f32>) = if c == 1 || c == 3 {
        (c, shown.to_vec())
    } else {
        let first: Vec<f32> = shown
            .chunks(d)
            .flat_map(|img| img[..h * w].iter().copied())
            .collect();
        (1, first)
    };
    let values = if unit_range {
        values
    } else {
        mean_sd_scaled(&values)
    };
    let scale = (96 / w.max(h)).max(1);
    Ok(write_image_grid_png(
        path, &values, n, c_out, h, w, 8, scale,
    )?)
}

/// `values` with their mean ± 3 standard deviations mapped to 0 … 1.
fn mean_sd_scaled(values: &[f32]) -> Vec<f32> {
    let count = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / count;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / count;
    let sd = var.sqrt().max(1e-12);
    values
        .iter()
        .map(|&v| (0.5 + (v as f64 - mean) / (6.0 * sd)) as f32)
        .collect()
}

/// Draws a report to a PNG: the radial power spectra of samples and reference (log-log) beside
/// the band-energy ratios against the reference (linear: ratios sit near 1, where a log axis's
/// decade ticks say nothing). Non-positive and non-finite points are left out.
///
/// # Errors
/// [`RunError::Plot`] when the figure cannot be drawn or written.
///
/// ```
/// use sagd_datasets::DataSpec;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let samples = "grf:beta=2,size=1x16x16,n=64,seed=1".parse::<DataSpec>()?.load()?;
/// let reference = "grf:beta=2,size=1x16x16,n=64,seed=2".parse::<DataSpec>()?.load()?;
/// let report = sagd_eval::spectral::spectral(&samples, &reference)?;
/// let dir = tempfile::tempdir()?;
/// sagd_runs::output::write_spectral_png(&dir.path().join("spectra.png"), &report)?;
/// # Ok(())
/// # }
/// ```
pub fn write_spectral_png(path: &Path, s: &SpectralReport) -> Result<(), RunError> {
    let positive = |points: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        points
            .into_iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
            .collect()
    };
    let spectra = LinePlot {
        title: "radial power spectrum (mean image included)",
        x_label: "radius (cycles/pixel)",
        y_label: "power",
        series: vec![
            Series {
                name: "reference",
                points: positive(s.radial.iter().map(|p| (p.radius, p.reference)).collect()),
                markers: false,
            },
            Series {
                name: "samples",
                points: positive(s.radial.iter().map(|p| (p.radius, p.samples)).collect()),
                markers: false,
            },
        ],
        log_x: true,
        log_y: true,
    };
    let ratios = LinePlot {
        title: "band energy / reference's, unit-radius bands",
        x_label: "band centre (unit radius)",
        y_label: "ratio",
        series: vec![
            Series {
                name: "reference (1)",
                points: vec![(0.05, 1.0), (0.95, 1.0)],
                markers: false,
            },
            Series {
                name: "samples",
                points: positive(
                    s.bands
                        .iter()
                        .filter_map(|b| b.ratio.map(|r| ((b.lo + b.hi) / 2.0, r)))
                        .collect(),
                ),
                markers: true,
            },
        ],
        log_x: false,
        // Linear: ratios sit near 1, where a log axis's decade ticks say nothing.
        log_y: false,
    };
    Ok(write_line_plots_png(path, &[&spectra, &ratios])?)
}
