//! What the demo's stages measured, read from their JSON outputs and the runs' `log.csv`: the
//! numbers of the report, its figures and its verdict.

use std::path::Path;

use sagd_plot::{LinePlot, Series, write_line_plots_png};
use serde_json::Value;

use crate::error::RunError;

fn s(text: impl Into<String>) -> String {
    text.into()
}

use super::plan::{Model, Plan};

fn report_error(message: impl Into<String>) -> RunError {
    RunError::Report(message.into())
}

/// The numbers the report is made of, read from the evaluations' JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Clean held-out data's energy per band (the reference of the `*-vs-clean` runs).
    pub(super) clean_bands: Vec<f64>,
    /// Corrupted held-out data's energy per band.
    pub(super) corrupted_bands: Vec<f64>,
    /// Band edges and mode counts.
    pub(super) band_edges: Vec<(f64, f64, usize)>,
    /// Radial profiles: (radius in cycles/pixel, power) of clean and corrupted data.
    pub(super) clean_radial: Vec<(f64, f64)>,
    pub(super) corrupted_radial: Vec<(f64, f64)>,
    /// The untrained model, then each model.
    pub(super) rows: Vec<Row>,
}

/// One model's numbers.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    pub(super) key: String,
    pub(super) label: String,
    /// Energy per band of its samples.
    pub(super) bands: Vec<f64>,
    pub(super) radial: Vec<(f64, f64)>,
    pub(super) lsd_clean: f64,
    pub(super) lsd_corrupted: f64,
    pub(super) mode_log_rms_clean: f64,
    pub(super) fid: Option<f64>,
    pub(super) kid: Option<(f64, f64)>,
}

fn number(value: &Value, path: &[&str]) -> Result<f64, RunError> {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_f64().ok_or_else(|| {
        report_error(format!(
            "the evaluation's JSON has no number at {}",
            path.join(".")
        ))
    })
}

/// One evaluation's spectral numbers: both sets' band energies and radial profiles.
struct SpectralParts {
    samples: Vec<f64>,
    reference: Vec<f64>,
    /// (lo, hi, modes) of each band.
    edges: Vec<(f64, f64, usize)>,
    radial_samples: Vec<(f64, f64)>,
    radial_reference: Vec<(f64, f64)>,
}

fn spectral_parts(value: &Value) -> Result<SpectralParts, RunError> {
    let bands = value["spectral"]["bands"]
        .as_array()
        .ok_or_else(|| report_error("the evaluation's JSON has no spectral.bands"))?;
    let radial = value["spectral"]["radial"]
        .as_array()
        .ok_or_else(|| report_error("the evaluation's JSON has no spectral.radial"))?;
    let mut samples = Vec::new();
    let mut reference = Vec::new();
    let mut edges = Vec::new();
    for b in bands {
        samples.push(number(b, &["samples"])?);
        reference.push(number(b, &["reference"])?);
        edges.push((
            number(b, &["lo"])?,
            number(b, &["hi"])?,
            b["modes"].as_u64().unwrap_or(0) as usize,
        ));
    }
    let mut radial_samples = Vec::new();
    let mut radial_reference = Vec::new();
    for p in radial {
        let r = number(p, &["radius"])?;
        radial_samples.push((r, number(p, &["samples"])?));
        radial_reference.push((r, number(p, &["reference"])?));
    }
    Ok(SpectralParts {
        samples,
        reference,
        edges,
        radial_samples,
        radial_reference,
    })
}

impl Results {
    /// Reads the numbers from the evaluations' JSON outputs: the untrained model's against
    /// clean and corrupted data, then per model (in `models`' order) against clean data,
    /// corrupted data and the FID/KID run (`Null` without one).
    ///
    /// # Errors
    /// [`RunError::Report`] when an output lacks a number the report needs.
    pub fn collect(
        models: &[Model],
        untrained: (&Value, &Value),
        evaluated: &[(Value, Value, Value)],
    ) -> Result<Self, RunError> {
        let u = spectral_parts(untrained.0)?;
        let corrupted_data = spectral_parts(untrained.1)?;
        let lsd = |v: &Value| number(v, &["spectral", "log_spectral_distance"]);
        let mut rows = vec![Row {
            key: s("untrained"),
            label: s("untrained (isotropic run, step 1)"),
            bands: u.samples,
            radial: u.radial_samples,
            lsd_clean: lsd(untrained.0)?,
            lsd_corrupted: lsd(untrained.1)?,
            mode_log_rms_clean: number(untrained.0, &["spectral", "mode_variance_log_rms"])?,
            fid: None,
            kid: None,
        }];
        for (model, (clean, corrupted, fid)) in models.iter().zip(evaluated) {
            let parts = spectral_parts(clean)?;
            rows.push(Row {
                key: s(model.key),
                label: s(model.label),
                bands: parts.samples,
                radial: parts.radial_samples,
                lsd_clean: lsd(clean)?,
                lsd_corrupted: lsd(corrupted)?,
                mode_log_rms_clean: number(clean, &["spectral", "mode_variance_log_rms"])?,
                fid: fid["fid"].as_f64(),
                kid: fid["kid"]["mean"].as_f64().zip(fid["kid"]["std"].as_f64()),
            });
        }
        Ok(Self {
            clean_bands: u.reference,
            corrupted_bands: corrupted_data.reference,
            band_edges: u.edges,
            clean_radial: u.radial_reference,
            corrupted_radial: corrupted_data.radial_reference,
            rows,
        })
    }

    /// Energy of `bands` in band `i` as a ratio to the clean data's.
    pub(super) fn ratio(&self, bands: &[f64], i: usize) -> f64 {
        bands[i] / self.clean_bands[i]
    }

    pub(super) fn row(&self, key: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r.key == key)
            .expect("every model has a row")
    }
}

/// What a run's `log.csv` says: the loss curve and the time its steps took.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLog {
    /// (step, mean loss over the log interval ending there).
    pub losses: Vec<(f64, f64)>,
    /// Training seconds, from each row's images/s over the steps since the previous row
    /// (so an interrupted and continued run counts each step once).
    pub seconds: f64,
    /// Images trained on.
    pub images: f64,
}

/// Reads a run's `log.csv` (`step,loss,lr,grad_norm,images_per_sec`) with `batch` images per
/// step.
///
/// # Errors
/// [`RunError::Io`] when the file cannot be read.
pub fn read_log(path: &Path, batch: usize) -> Result<RunLog, RunError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut log = RunLog {
        losses: Vec::new(),
        seconds: 0.0,
        images: 0.0,
    };
    let mut previous = 0.0;
    for line in text.lines().skip(1) {
        let fields: Vec<f64> = line
            .split(',')
            .map(|f| f.parse::<f64>().unwrap_or(f64::NAN))
            .collect();
        if let [step, loss, _, _, rate] = fields[..] {
            log.losses.push((step, loss));
            let images = (step - previous) * batch as f64;
            if rate > 0.0 && images > 0.0 {
                log.seconds += images / rate;
                log.images += images;
            }
            previous = step;
        }
    }
    Ok(log)
}

/// Draws `spectra.png` (radial power spectra and energy per band against clean data's, of the
/// data and every model) and `loss.png` (the training losses) into `dir`.
///
/// # Errors
/// [`RunError::Plot`] when a figure cannot be drawn or written.
pub fn write_figures(
    dir: &Path,
    plan: &Plan,
    models: &[Model],
    results: &Results,
    logs: &[RunLog],
) -> Result<(), RunError> {
    // Radii in the unit convention (cycles/pixel over √2/2), the bands' and the corruption's.
    let positive = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter(|p| p.0 > 0.0)
            .map(|&(r, p)| (r / std::f64::consts::FRAC_1_SQRT_2, p))
            .collect()
    };
    let mut series = vec![
        Series {
            name: "clean data",
            points: positive(&results.clean_radial),
            markers: false,
        },
        Series {
            name: "corrupted data",
            points: positive(&results.corrupted_radial),
            markers: false,
        },
    ];
    for row in &results.rows {
        series.push(Series {
            name: &row.key,
            points: positive(&row.radial),
            markers: true,
        });
    }
    let band = format!(
        "radial power spectra (corrupted band {}-{})",
        plan.band.0, plan.band.1
    );
    let spectra = LinePlot {
        title: &band,
        x_label: "radius (unit: 1 = the corner frequency)",
        y_label: "mean power per mode",
        series,
        log_x: false,
        log_y: true,
    };
    let centre = |i: usize| (results.band_edges[i].0 + results.band_edges[i].1) / 2.0;
    let ratio_points = |bands: &[f64]| -> Vec<(f64, f64)> {
        (0..bands.len())
            .filter(|&i| results.band_edges[i].2 > 0 && results.clean_bands[i] > 0.0)
            .map(|i| (centre(i), results.ratio(bands, i)))
            .collect()
    };
    // The same order as the spectra's, so each set has the same colour in both panels.
    let mut ratio_series = vec![
        Series {
            name: "clean data (= 1)",
            points: ratio_points(&results.clean_bands),
            markers: false,
        },
        Series {
            name: "corrupted data",
            points: ratio_points(&results.corrupted_bands),
            markers: false,
        },
    ];
    for row in &results.rows {
        ratio_series.push(Series {
            name: &row.key,
            points: ratio_points(&row.bands),
            markers: true,
        });
    }
    let ratios = LinePlot {
        title: "energy per band / clean data's",
        x_label: "band centre (unit radius)",
        y_label: "ratio",
        series: ratio_series,
        log_x: false,
        log_y: true,
    };
    write_line_plots_png(&dir.join("spectra.png"), &[&spectra, &ratios])?;

    let loss_series = models
        .iter()
        .zip(logs)
        .map(|(m, log)| Series {
            name: m.key,
            points: log.losses.clone(),
            markers: false,
        })
        .collect();
    let loss = LinePlot {
        title: "training loss (mean over each log interval)",
        x_label: "step",
        y_label: "loss",
        series: loss_series,
        log_x: false,
        log_y: true,
    };
    Ok(write_line_plots_png(&dir.join("loss.png"), &[&loss])?)
}

/// What the numbers say: whether the models learned the data and whether SAGD left the band
/// out. Thresholds are stated in the sentences they produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Per model: its key, whether it learned the data, its distance as a fraction of the
    /// untrained model's.
    pub learned: Vec<(String, bool, f64)>,
    /// Band ratios in the corrupted band: corrupted data, isotropic, SAGD.
    pub ratios: (f64, f64, f64),
    /// SAGD left the band out.
    pub omitted: bool,
}

/// A model "learned the data" when its log-spectral distance to the data it was trained
/// towards is below half the untrained model's.
pub const LEARNED_FRACTION: f64 = 0.5;

/// The verdict of `results`: which models learned the data, and whether SAGD left the
/// corrupted band out (its excess energy over clean data there under a tenth of the isotropic
/// model's).
///
/// ```
/// use sagd_runs::demo::{Model, Plan, Results, summary_line, verdict};
/// use serde_json::{Value, json};
///
/// # fn main() -> Result<(), sagd_runs::RunError> {
/// // An evaluation's JSON: unit energy per band but in the corrupted band [0.3, 0.4).
/// let eval = |reference: f64, samples: f64, lsd: f64| -> Value {
///     let bands: Vec<Value> = (0..10)
///         .map(|i| {
///             let (r, s) = if i == 3 { (reference, samples) } else { (1.0, 1.0) };
///             json!({"lo": i as f64 / 10.0, "hi": (i + 1) as f64 / 10.0, "modes": 4,
///                    "reference": r, "samples": s})
///         })
///         .collect();
///     let radial = json!([{"radius": 0.1, "reference": 1.0, "samples": 1.0}]);
///     json!({"spectral": {"bands": bands, "radial": radial,
///                         "log_spectral_distance": lsd, "mode_variance_log_rms": lsd}})
/// };
/// let plan = Plan::new(false);
/// let models = [
///     Model { key: "isotropic", label: "isotropic", spectrum: "isotropic".into() },
///     Model { key: "sagd", label: "SAGD", spectrum: plan.sagd_spectrum() },
/// ];
/// let results = Results::collect(
///     &models,
///     (&eval(1.0, 1.0, 1.0), &eval(37.0, 1.0, 1.0)), // untrained vs clean, corrupted data
///     &[
///         (eval(1.0, 9.5, 0.4), eval(37.0, 9.5, 0.3), Value::Null), // isotropic
///         (eval(1.0, 0.1, 0.3), eval(37.0, 0.1, 0.5), Value::Null), // SAGD
///     ],
/// )?;
/// let v = verdict(&plan, &results);
/// assert_eq!(v.ratios, (37.0, 9.5, 0.1));
/// assert!(v.omitted && v.learned.iter().all(|(_, learned, _)| *learned));
/// let line = summary_line(&plan, &results, std::path::Path::new("report.md"), 75.0);
/// assert!(line.contains("SAGD left the band out") && line.ends_with("(1m 15s)"));
/// # Ok(())
/// # }
/// ```
pub fn verdict(plan: &Plan, results: &Results) -> Verdict {
    let untrained = results.row("untrained");
    let band = plan.eval_band();
    let learned = ["isotropic", "sagd"]
        .iter()
        .map(|key| {
            let row = results.row(key);
            // The isotropic model is trained towards the corrupted data; SAGD's target is
            // the corrupted data with the band left out, nearest the clean data's spectrum.
            let (mine, base) = if *key == "isotropic" {
                (row.lsd_corrupted, untrained.lsd_corrupted)
            } else {
                (row.lsd_clean, untrained.lsd_clean)
            };
            (s(*key), mine < LEARNED_FRACTION * base, mine / base)
        })
        .collect();
    let data = results.ratio(&results.corrupted_bands, band);
    let iso = results.ratio(&results.row("isotropic").bands, band);
    let sagd = results.ratio(&results.row("sagd").bands, band);
    // Left out: SAGD's excess energy over clean data in the band is under a tenth of the
    // isotropic model's.
    let omitted = iso > 1.0 && (sagd - 1.0).max(0.0) < 0.1 * (iso - 1.0);
    Verdict {
        learned,
        ratios: (data, iso, sagd),
        omitted,
    }
}
