//! The report of `sagd demo` (the selective-omission demonstration): its plan (data,
//! corruption, models, lengths, the run configs), and from the stages' JSON outputs and the
//! runs' `log.csv` its figures, verdict, `summary.json` and `report.md`.
//!
//! The demo itself runs every stage as an ordinary `sagd` subcommand in a child process (that
//! orchestration is the CLI's); what it concludes is computed here, so that it can be tested
//! and reused without processes.
//!
//! ```
//! use sagd_eval::demo::Plan;
//!
//! let plan = Plan::new(true);
//! assert_eq!(plan.sagd_spectrum(), "two-band:a_l=0,b_l=0.3,a_h=0.4,b_h=1");
//! assert_eq!(plan.eval_band(), 3); // the unit-radius band [0.3, 0.4)
//! let config = plan.config(0, "isotropic", "isotropic");
//! assert!(config.contains("steps = 40") && config.contains("corrupt:a=0.3,b=0.4,gamma=1"));
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sagd_plot::{LinePlot, Series, write_line_plots_png};
use serde_json::{Value, json};

use crate::error::EvalError;

fn s(text: impl Into<String>) -> String {
    text.into()
}

fn report_error(message: impl Into<String>) -> EvalError {
    EvalError::Report(message.into())
}

/// The settings of a demo invocation that its report and summary record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSettings {
    /// The output folder.
    pub out: PathBuf,
    /// The seed of both runs, the samplers and the evaluation.
    pub seed: u64,
    /// The device name.
    pub device: String,
    /// The short version (`--quick`).
    pub quick: bool,
}

/// A model of the demo: its name in paths, its label in the report, its run's spectrum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// `isotropic` or `sagd`: the runs', samples' and evaluations' folder names.
    pub key: &'static str,
    /// Its label in the report.
    pub label: &'static str,
    /// Its spectrum string.
    pub spectrum: String,
}

/// One stage: a `sagd` subcommand, its wall time and what it printed as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// What it does, as the report names it.
    pub label: String,
    /// The command that reproduces the stage from scratch.
    pub command: String,
    /// Wall time in this invocation; `None` for a stage an earlier, interrupted invocation
    /// completed.
    pub seconds: Option<f64>,
    /// Its `--json` output (`Null` for stages without one).
    pub output: Value,
}

/// The demo's setting: data, corruption, models, training and sampling lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Training data (without the corruption).
    pub data: &'static str,
    /// Held-out data the samples are compared with.
    pub reference: &'static str,
    /// The corrupted band `[a, b]`, unit radius convention.
    pub band: (f64, f64),
    /// Amplitude γ of the band noise.
    pub gamma: f64,
    /// Training steps of each model.
    pub steps: u64,
    /// Steps of the linear warm-up.
    pub warmup: u64,
    /// Checkpoint interval.
    pub checkpoint_every: u64,
    /// Log interval.
    pub log_every: u64,
    /// Images per training batch.
    pub batch: usize,
    /// Samples per trained model (and reference images per comparison).
    pub samples: usize,
    /// Samples of the untrained model.
    pub untrained_samples: usize,
    /// DDIM steps.
    pub sampler_steps: usize,
    /// Samples (and clean test images) per FID/KID: the Inception network's 299×299 input
    /// makes it the slowest stage on a CPU (about 6 images/s).
    pub fid_count: usize,
}

impl Plan {
    /// The demo's plan; `quick`: the short version that checks every stage (40 steps per
    /// model, 32 samples, DDIM-20).
    pub fn new(quick: bool) -> Self {
        Self {
            data: "shapes:n=4096,size=1x16x16,seed=0",
            reference: "shapes:n=4096,size=1x16x16,seed=0,split=test",
            band: (0.3, 0.4),
            gamma: 1.0,
            steps: if quick { 40 } else { 600 },
            warmup: if quick { 10 } else { 50 },
            checkpoint_every: if quick { 20 } else { 100 },
            log_every: if quick { 5 } else { 10 },
            batch: 64,
            samples: if quick { 32 } else { 256 },
            untrained_samples: if quick { 16 } else { 64 },
            sampler_steps: if quick { 20 } else { 50 },
            fid_count: if quick { 32 } else { 100 },
        }
    }

    /// The corruption transform without its γ: `corrupt:a=…,b=…`.
    pub fn corrupt(&self) -> String {
        format!("corrupt:a={},b={}", self.band.0, self.band.1)
    }

    /// The two-band spectrum whose gap is exactly the corrupted band.
    pub fn sagd_spectrum(&self) -> String {
        format!(
            "two-band:a_l=0,b_l={},a_h={},b_h=1",
            self.band.0, self.band.1
        )
    }

    /// The index of the evaluation's unit-radius band `[i/10, (i+1)/10)` that is the corrupted
    /// band (the plan's band is one of them).
    pub fn eval_band(&self) -> usize {
        (self.band.0 * crate::spectral::BANDS as f64).round() as usize
    }

    /// The run config (TOML) of a model with `spectrum`, `what` naming it in the header.
    pub fn config(&self, seed: u64, spectrum: &str, what: &str) -> String {
        format!(
            "# sagd demo: {what}. Written by `sagd demo`; train it with\n\
             #   sagd train --config THIS_FILE --out RUN_DIR\n\
             seed = {seed}\n\
             steps = {steps}\n\
             batch = {batch}\n\
             checkpoint_every = {ckpt}\n\
             log_every = {log}\n\
             # keeps every checkpoint, the step-1 one (the untrained baseline) included\n\
             keep_checkpoints = {keep}\n\
             device = \"cpu\"\n\
             # v = √ᾱ ε^(w) − σ x0 (learns in few steps); samplers convert it to ε̂^(w)\n\
             parameterization = \"v\"\n\
             \n\
             [data]\n\
             spec = \"{data}\"\n\
             # band-limited white noise added on the fly, then `scale` to [-1, 1] (appended)\n\
             transforms = [\"{corrupt},gamma={gamma}\"]\n\
             \n\
             [noise]\n\
             spectrum = \"{spectrum}\"\n\
             normalization = \"energy\"\n\
             \n\
             [schedule]\n\
             kind = \"ddpm-linear\"\n\
             \n\
             [model]\n\
             kind = \"unet\"\n\
             widths = [16, 32, 32]\n\
             blocks = 1\n\
             attention = []\n\
             groups = 8\n\
             \n\
             [optimizer]\n\
             kind = \"adamw\"\n\
             lr = 2e-3\n\
             warmup = {warmup}\n\
             decay = \"cosine\"\n\
             min_lr = 0.0\n\
             grad_clip = 1.0\n\
             \n\
             [ema]\n\
             decay = 0.99\n",
            steps = self.steps,
            batch = self.batch,
            ckpt = self.checkpoint_every,
            log = self.log_every,
            keep = self.steps / self.checkpoint_every + 2,
            data = self.data,
            corrupt = self.corrupt(),
            gamma = self.gamma,
            warmup = self.warmup,
        )
    }
}

/// The numbers the report is made of, read from the evaluations' JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Clean held-out data's energy per band (the reference of the `*-vs-clean` runs).
    clean_bands: Vec<f64>,
    /// Corrupted held-out data's energy per band.
    corrupted_bands: Vec<f64>,
    /// Band edges and mode counts.
    band_edges: Vec<(f64, f64, usize)>,
    /// Radial profiles: (radius in cycles/pixel, power) of clean and corrupted data.
    clean_radial: Vec<(f64, f64)>,
    corrupted_radial: Vec<(f64, f64)>,
    /// The untrained model, then each model.
    rows: Vec<Row>,
}

/// One model's numbers.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    key: String,
    label: String,
    /// Energy per band of its samples.
    bands: Vec<f64>,
    radial: Vec<(f64, f64)>,
    lsd_clean: f64,
    lsd_corrupted: f64,
    mode_log_rms_clean: f64,
    fid: Option<f64>,
    kid: Option<(f64, f64)>,
}

fn number(value: &Value, path: &[&str]) -> Result<f64, EvalError> {
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

fn spectral_parts(value: &Value) -> Result<SpectralParts, EvalError> {
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
    /// [`EvalError::Report`] when an output lacks a number the report needs.
    pub fn collect(
        models: &[Model],
        untrained: (&Value, &Value),
        evaluated: &[(Value, Value, Value)],
    ) -> Result<Self, EvalError> {
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
    fn ratio(&self, bands: &[f64], i: usize) -> f64 {
        bands[i] / self.clean_bands[i]
    }

    fn row(&self, key: &str) -> &Row {
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
/// [`EvalError::Io`] when the file cannot be read.
pub fn read_log(path: &Path, batch: usize) -> Result<RunLog, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
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
/// [`EvalError::Plot`] when a figure cannot be drawn or written.
pub fn write_figures(
    dir: &Path,
    plan: &Plan,
    models: &[Model],
    results: &Results,
    logs: &[RunLog],
) -> Result<(), EvalError> {
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
/// use sagd_eval::demo::{Model, Plan, Results, summary_line, verdict};
/// use serde_json::{Value, json};
///
/// # fn main() -> Result<(), sagd_eval::EvalError> {
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

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or(s("–"), |v| format!("{v:.digits$}"))
}

/// `summary.json`: every number of the report, the verdicts, each stage's command, wall time
/// and JSON output.
#[allow(clippy::too_many_arguments)]
pub fn summary_json(
    args: &DemoSettings,
    plan: &Plan,
    models: &[Model],
    results: &Results,
    stages: &[Stage],
    total_seconds: f64,
    with_fid: bool,
) -> Value {
    let v = verdict(plan, results);
    let band = plan.eval_band();
    let rows: serde_json::Map<String, Value> = results
        .rows
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                json!({
                    "label": r.label,
                    "log_spectral_distance_clean": r.lsd_clean,
                    "log_spectral_distance_corrupted": r.lsd_corrupted,
                    "mode_variance_log_rms_clean": r.mode_log_rms_clean,
                    "band_ratio_corrupted_band": results.ratio(&r.bands, band),
                    "band_ratios": (0..r.bands.len()).map(|i| {
                        let x = results.ratio(&r.bands, i);
                        if x.is_finite() { json!(x) } else { Value::Null }
                    }).collect::<Vec<_>>(),
                    "fid_clean": r.fid,
                    "kid_clean": r.kid.map(|(m, sd)| json!({"mean": m, "std": sd})),
                }),
            )
        })
        .collect();
    json!({
        "out": args.out,
        "report": args.out.join("report.md"),
        "seed": args.seed,
        "quick": args.quick,
        "device": args.device,
        "data": plan.data,
        "reference": plan.reference,
        "corrupted_band": [plan.band.0, plan.band.1],
        "gamma": plan.gamma,
        "spectra": models.iter().map(|m| (m.key.to_string(), json!(m.spectrum))).collect::<serde_json::Map<_, _>>(),
        "steps": plan.steps,
        "samples": plan.samples,
        "sampler": format!("ddim eta=0 steps={}", plan.sampler_steps),
        "fid": with_fid,
        "models": rows,
        "corrupted_data_band_ratio": v.ratios.0,
        "learned": v.learned.iter().map(|(k, ok, _)| (k.clone(), json!(ok))).collect::<serde_json::Map<_, _>>(),
        "band_left_out": v.omitted,
        "stages": stages.iter().map(|st| json!({
            "stage": st.label, "command": st.command, "seconds": st.seconds, "output": st.output,
        })).collect::<Vec<_>>(),
        "seconds": total_seconds,
    })
}

/// The one line the demo prints: the band ratios, the verdict, FIDs, the report's path and
/// the wall time.
pub fn summary_line(plan: &Plan, results: &Results, report: &Path, seconds: f64) -> String {
    let v = verdict(plan, results);
    let fid = results
        .row("isotropic")
        .fid
        .zip(results.row("sagd").fid)
        .map_or(String::new(), |(a, b)| {
            format!("; FID to clean data {a:.2} (isotropic) vs {b:.2} (SAGD)")
        });
    format!(
        "demo: energy in the corrupted band [{}, {}) as a ratio to clean data: corrupted data \
         {:.2}, isotropic model {:.2}, SAGD model {:.2} ({}){fid}; report {} ({})",
        plan.band.0,
        plan.band.1,
        v.ratios.0,
        v.ratios.1,
        v.ratios.2,
        if v.omitted {
            "SAGD left the band out"
        } else {
            "SAGD did not leave the band out"
        },
        report.display(),
        minutes(seconds),
    )
}

fn minutes(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{}m {:02.0}s", (seconds / 60.0).floor(), seconds % 60.0)
    }
}

/// `report.md`: the setting, the figures, the metrics table, the verdict and every stage's
/// command and wall time. `sampled` holds each model's samples folder and its `sagd sample`
/// output; `weights` the FID weights when found.
#[allow(clippy::too_many_arguments)]
pub fn report_markdown(
    args: &DemoSettings,
    plan: &Plan,
    models: &[Model],
    results: &Results,
    stages: &[Stage],
    sampled: &[(PathBuf, Value)],
    logs: &[RunLog],
    total_seconds: f64,
    weights: Option<&Path>,
    report_seconds: f64,
) -> String {
    let v = verdict(plan, results);
    let band = plan.eval_band();
    let (lo, hi) = plan.band;
    let rel = |p: &Path| {
        p.strip_prefix(&args.out)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let modes = results.band_edges[band].2;
    let total_modes: usize = results.band_edges.iter().map(|b| b.2).sum();
    let mut r = String::new();
    let _ = writeln!(r, "# sagd demo: selective omission of a corrupted band\n");
    if args.quick {
        let _ = writeln!(
            r,
            "> **`--quick`**: {} training steps per model, a check that every stage runs. \
             These models have not learned the data; run `sagd demo` without `--quick` for \
             the demonstration.\n",
            plan.steps
        );
    }
    let _ = writeln!(
        r,
        "The training images are corrupted by white noise restricted to one frequency band. \
         Two identical U-Nets are trained on them, from the same initial weights, with the \
         same data order: one with **isotropic** (white) forward noise, one with the \
         **two-band SAGD** spectrum whose gap is exactly the corrupted band, so its denoiser is \
         never asked to model that band (selective omission). Both are sampled with the same \
         sampler and seed and compared, in frequency, with clean and with corrupted held-out \
         data.\n"
    );
    let _ = writeln!(r, "## Setting\n");
    let _ = writeln!(
        r,
        "- **Data**: `{}` (the built-in `shapes`: one disk, square or bar per 16×16 grey \
         image); the comparisons use its test split `{}`.",
        plan.data, plan.reference
    );
    let _ = writeln!(
        r,
        "- **Corruption**: `corrupt:a={lo},b={hi},gamma={}`: `x' = x + γ·ε_[a,b]`, white \
         noise restricted to the unit-radius band {lo} ≤ r ≤ {hi} ({modes} of the {total_modes} \
         Fourier modes; one mode variance 1 each, in the [0, 1] pixel range), drawn afresh \
         for every batch.",
        plan.gamma
    );
    let _ = writeln!(
        r,
        "- **Models**: U-Net, widths 16/32/32, one residual block per level, no attention, \
         GroupNorm(8); v-prediction (`v = √ᾱ ε^(w) − σ x_0`, converted to `ε̂^(w)` and, for \
         SAGD, projected onto the support of `Σ_w` at every sampling step, so nothing is \
         generated in the gap); DDPM-linear schedule, T = 1000; AdamW, lr 2e-3, \
         warm-up {} steps, cosine decay to 0, gradient clipping 1; batch {}; EMA 0.99; **{} \
         steps** each; seed {}. Noise: `isotropic`, and `{}`.",
        plan.warmup,
        plan.batch,
        plan.steps,
        args.seed,
        plan.sagd_spectrum()
    );
    let _ = writeln!(
        r,
        "- **Sampling**: DDIM, η = 0, {} steps, matched prior `N(0, σ_T² Σ_w)`, EMA weights, \
         seed {}; {} images per model ({} of the untrained model: the isotropic run's step-1 \
         checkpoint, one AdamW step at lr/{}).",
        plan.sampler_steps, args.seed, plan.samples, plan.untrained_samples, plan.warmup
    );
    let training: Vec<String> = models
        .iter()
        .zip(logs)
        .map(|(m, log)| format!("{} {}", m.key, minutes(log.seconds)))
        .collect();
    let rate = logs.iter().map(|l| l.images).sum::<f64>()
        / logs.iter().map(|l| l.seconds).sum::<f64>().max(1e-9);
    let _ = writeln!(
        r,
        "- **Why this size**: 16×16 grey images and this 267 k-parameter U-Net train at about \
         230 images/s on 2 CPU cores with the default build ({rate:.0} images/s in this run), \
         fast enough for both models to learn the shapes in a few minutes each (this run's \
         training: {}); the band [0.3, 0.4] is one of the evaluation's ten unit-radius bands \
         and no Fourier mode of a 16×16 grid lies on its edges, so the corruption and the gap \
         cover exactly the same modes. v- rather than ε-prediction because at this length \
         about a third of an ε-prediction model's samples (isotropic, clean data, 800 steps) \
         were still noise, and none of a v-prediction model's at 600.\n",
        training.join(", ")
    );

    let _ = writeln!(r, "## Data and samples\n");
    let _ = writeln!(r, "| clean data | corrupted data (training) |");
    let _ = writeln!(r, "| --- | --- |");
    let _ = writeln!(
        r,
        "| ![clean](figures/clean.png) | ![corrupted](figures/corrupted.png) |\n"
    );
    let _ = writeln!(r, "| untrained | isotropic | SAGD |");
    let _ = writeln!(r, "| --- | --- | --- |");
    let mut cells = vec![format!("![untrained](samples/untrained/grid.png)")];
    for (model, (dir, _)) in models.iter().zip(sampled) {
        cells.push(format!("![{}]({}/grid.png)", model.key, rel(dir)));
    }
    let _ = writeln!(r, "| {} |\n", cells.join(" | "));
    let _ = writeln!(
        r,
        "Grids show the first 64 images (pixel values clamped to [0, 1]).\n"
    );

    let _ = writeln!(r, "## Spectra\n");
    let _ = writeln!(r, "![spectra](figures/spectra.png)\n");
    let _ = writeln!(
        r,
        "Left: the radially averaged power per Fourier mode (mean image included; radius in \
         the unit convention, 1 = the corner frequency; outside the corrupted band the clean \
         and corrupted data coincide). Right: the energy per band as a ratio to the clean \
         data's, the numbers of the table below.\n"
    );
    let _ = writeln!(
        r,
        "Energy per unit-radius band as a ratio to the clean data's (the evaluation's ten \
         bands; **bold** is the corrupted band; `sagd eval`'s band energies, mean image \
         included):\n"
    );
    let mut head = s("| | ");
    let mut rule = s("| --- | ");
    for (i, (a, b, m)) in results.band_edges.iter().enumerate() {
        let cell = format!("[{a:.1}, {b:.1}) ({m} modes)");
        if i == band {
            let _ = write!(head, "**{cell}** | ");
        } else {
            let _ = write!(head, "{cell} | ");
        }
        rule.push_str("--- | ");
    }
    let _ = writeln!(r, "{}\n{}", head.trim_end(), rule.trim_end());
    let mut ratio_row = |name: &str, bands: &[f64]| {
        let cells: Vec<String> = (0..bands.len())
            .map(|i| {
                let x = results.ratio(bands, i);
                let text = if x.is_finite() {
                    format!("{x:.3}")
                } else {
                    s("–")
                };
                if i == band {
                    format!("**{text}**")
                } else {
                    text
                }
            })
            .collect();
        let _ = writeln!(r, "| {name} | {} |", cells.join(" | "));
    };
    ratio_row("corrupted data", &results.corrupted_bands);
    for row in &results.rows {
        ratio_row(&row.label, &row.bands);
    }
    let _ = writeln!(r);

    let _ = writeln!(r, "## Training\n");
    let _ = writeln!(r, "![loss](figures/loss.png)\n");
    let _ = writeln!(
        r,
        "The two losses are not comparable with each other: each model regresses the v of \
         its own noise, and the isotropic model's includes the corruption, which no network \
         can predict.\n"
    );

    let _ = writeln!(r, "## Metrics\n");
    let _ = writeln!(
        r,
        "| model | log-spectral distance to clean | to corrupted | band ratio in [{lo}, {hi}) \
         | mode-variance log-RMS to clean | FID to clean | KID to clean |"
    );
    let _ = writeln!(r, "| --- | --- | --- | --- | --- | --- | --- |");
    for row in &results.rows {
        let _ = writeln!(
            r,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            row.label,
            row.lsd_clean,
            row.lsd_corrupted,
            results.ratio(&row.bands, band),
            row.mode_log_rms_clean,
            fmt_opt(row.fid, 2),
            row.kid.map_or(s("–"), |(m, sd)| if sd > 1e-9 {
                format!("{m:.4} ± {sd:.4}")
            } else {
                // One subset (the whole set): no spread to report.
                format!("{m:.4}")
            }),
        );
    }
    let _ = writeln!(r);
    let _ = writeln!(
        r,
        "Log-spectral distance: the RMS over radial bins of the log ratio of the radial power \
         spectra (0 = the same spectrum). Mode-variance log-RMS: the RMS of the log ratio of \
         the per-mode variances over all modes."
    );
    match weights {
        Some(w) => {
            let _ = writeln!(
                r,
                "FID and KID: pool3 features of the FID Inception-v3 (`{}`), {} samples (a \
                 seeded subset) against {} clean test images (FID at this N is biased upwards: \
                 compare the two models with each other, not with published FIDs).\n",
                w.display(),
                plan.fid_count,
                plan.fid_count
            );
        }
        None => {
            let _ = writeln!(
                r,
                "FID and KID: not computed, no FID Inception weights were found. To enable \
                 them, pass `--inception FILE` or set `SAGD_MODELS_DIR` (the folder holding \
                 `fid-inception/pt_inception-2015-12-05.safetensors`) or `SAGD_INCEPTION` \
                 (that file, or pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`), and run \
                 the demo again with `--overwrite`.\n"
            );
        }
    }

    let _ = writeln!(r, "## What the numbers say\n");
    let untrained = results.row("untrained");
    for (key, ok, fraction) in &v.learned {
        let row = results.row(key);
        let (target, base) = if key == "isotropic" {
            ("corrupted", untrained.lsd_corrupted)
        } else {
            ("clean", untrained.lsd_clean)
        };
        let mine = if key == "isotropic" {
            row.lsd_corrupted
        } else {
            row.lsd_clean
        };
        let _ = writeln!(
            r,
            "- **{}**: log-spectral distance to the {target} data {mine:.3}, {:.0}% of the \
             untrained model's {base:.3}: {}.",
            row.label,
            100.0 * fraction,
            if *ok {
                format!(
                    "it learned the data's spectrum (below {:.0}% of the untrained model's)",
                    100.0 * LEARNED_FRACTION
                )
            } else {
                format!(
                    "it has **not** learned the data's spectrum (the bar is {:.0}% of the \
                     untrained model's){}",
                    100.0 * LEARNED_FRACTION,
                    if args.quick {
                        " — expected with --quick"
                    } else {
                        ""
                    }
                )
            }
        );
    }
    let (data, iso, sagd) = v.ratios;
    let _ = writeln!(
        r,
        "- **The corrupted band** [{lo}, {hi}): the corrupted data carry {data:.2}× the clean \
         data's energy there; the isotropic model's samples {iso:.2}× ({}); the SAGD model's \
         {sagd:.2}×. {}",
        if !v.learned.iter().any(|(k, ok, _)| k == "isotropic" && *ok) {
            "not yet meaningful: this model has not learned the data"
        } else if iso > 1.0 + 0.5 * (data - 1.0) {
            "it learned the corruption"
        } else if iso > 1.0 {
            "it learned part of the corruption"
        } else {
            "it did not learn the corruption"
        },
        if v.omitted {
            format!(
                "**SAGD left the corrupted band out**: its excess energy there is under a \
                 tenth of the isotropic model's.{}",
                if sagd < 0.5 {
                    " It does not restore the clean content of the band either: its sampler \
                     starts with no energy in the gap (the prior `N(0, σ_T² Σ_w)` has none \
                     there) and every step's `ε̂^(w)` lies in the support of `Σ_w`, so the \
                     band stays empty but for what the [0, 1] clamp of the samples adds back \
                     (ratio below 1): the clean data's own content in that band is left out \
                     with the corruption."
                } else {
                    ""
                }
            ) + " The gap is empty by construction of the sampler, so this holds for any \
                SAGD model, trained or not; what training adds is the rest of the spectrum \
                (the line above)."
        } else {
            s(
                "**At this scale SAGD did not leave the band out** (its excess energy there is \
               not under a tenth of the isotropic model's).",
            )
        }
    );
    let _ = writeln!(
        r,
        "- What the numbers cannot say, the grids above show: whether the samples are \
         recognisable shapes, and whether the corruption's texture is in the isotropic \
         model's samples and not in the SAGD model's.\n"
    );

    let _ = writeln!(r, "## Reproduce\n");
    let _ = writeln!(
        r,
        "Every part of this report was made by the ordinary `sagd` subcommands below, run in \
         this order from the folder the demo was started in (`sagd` is \
         `cargo run --release -p sagd-cli --`); the demo itself only drew the figures in \
         `figures/spectra.png` and `figures/loss.png` from the evaluations' `metrics.json` and \
         the runs' `log.csv`, and wrote this file. Each stage's JSON output is in \
         `summary.json`.\n"
    );
    let _ = writeln!(r, "| stage | wall time | command |");
    let _ = writeln!(r, "| --- | --- | --- |");
    for st in stages {
        let _ = writeln!(
            r,
            "| {} | {} | `{}` |",
            st.label,
            st.seconds.map_or(s("earlier invocation"), minutes),
            st.command.replace('|', "\\|")
        );
    }
    let _ = writeln!(r, "| figures and report | {} | |", minutes(report_seconds));
    let _ = writeln!(
        r,
        "\nTotal wall time {}{} (seed {}, {} steps per model{}). The same seed gives the same \
         numbers on the CPU.",
        minutes(total_seconds),
        if stages.iter().any(|st| st.seconds.is_none()) {
            " in this invocation, which continued an interrupted one (stages marked \
             \"earlier invocation\" ran before it; a resumed training stage counts only its \
             remaining steps)"
        } else {
            ""
        },
        args.seed,
        plan.steps,
        if args.quick { ", --quick" } else { "" }
    );
    r
}
