//! An experiment's results, read back from its stages' own outputs (`metrics.json`,
//! `emergence.json`, `log.csv`, `summary.json`), and its tables and figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::RunError;

use super::file::{Arm, ExperimentKind, Floor};
use super::plan::{Experiment, Job, StageKind, band_index};
use crate::stages::shell_quote;

/// Mean and (sample, n − 1) standard deviation; `None` for no values, sd 0 for one.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, sd))
}

/// What one job produced, read from its stages' outputs (`None`: not there yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobResult {
    /// The seed.
    pub seed: u64,
    /// Training steps done and the run's length.
    pub steps: Option<(u64, u64)>,
    /// Training wall time from `log.csv` (Σ images / measured images per second), seconds.
    pub train_seconds: Option<f64>,
    /// The last logged loss.
    pub final_loss: Option<f64>,
    /// Sampling wall time, seconds.
    pub sample_seconds: Option<f64>,
    /// Evaluation wall time, seconds.
    pub eval_seconds: Option<f64>,
    /// FID.
    pub fid: Option<f64>,
    /// KID (mean over subsets).
    pub kid: Option<f64>,
    /// FID's sampling noise: its sd over resamples of the samples (`[eval] bootstrap`).
    pub fid_sampling_sd: Option<f64>,
    /// KID's sampling noise, likewise.
    pub kid_sampling_sd: Option<f64>,
    /// Samples and reference images compared.
    pub counts: Option<(usize, usize)>,
    /// Log-spectral distance.
    pub log_spectral_distance: Option<f64>,
    /// The arm's band's energy, samples over reference.
    pub band_ratio: Option<f64>,
    /// The log-spectral distance of the samples before their clamp to [0, 1].
    pub raw_log_spectral_distance: Option<f64>,
    /// The arm's band's energy before the clamp, samples over reference.
    pub raw_band_ratio: Option<f64>,
    /// The share of sampled values the clamp changed.
    pub clamped_fraction: Option<f64>,
    /// `emergence.json`, as written.
    pub emergence: Option<Value>,
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn config_batch_steps(run: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(run.join("config.toml")).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    Some((
        table.get("batch")?.as_integer()? as u64,
        table.get("steps")?.as_integer()? as u64,
    ))
}

/// Reads `log.csv` (`step,loss,lr,grad_norm,images_per_sec`): the last step, the last loss, and
/// the training time Σ (Δstep · batch / images_per_sec).
fn read_train_log(run: &Path, batch: u64) -> Option<(u64, f64, f64)> {
    let text = std::fs::read_to_string(run.join("log.csv")).ok()?;
    let (mut last_step, mut loss, mut seconds) = (0u64, f64::NAN, 0.0);
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let (Some(step), Some(l), Some(rate)) = (
            cols.first().and_then(|s| s.parse::<u64>().ok()),
            cols.get(1).and_then(|s| s.parse::<f64>().ok()),
            cols.get(4).and_then(|s| s.parse::<f64>().ok()),
        ) else {
            continue;
        };
        if step > last_step && rate > 0.0 {
            seconds += (step - last_step) as f64 * batch as f64 / rate;
        }
        last_step = last_step.max(step);
        loss = l;
    }
    Some((last_step, loss, seconds))
}

impl Experiment {
    /// Reads what `job` has produced so far.
    pub fn result(&self, job: &Job) -> JobResult {
        let arm = &self.file.arms[job.arm];
        let run = job.dir.join("run");
        let mut r = JobResult {
            seed: job.seed,
            ..JobResult::default()
        };
        if let Some((batch, steps)) = config_batch_steps(&run)
            && let Some((done, loss, seconds)) = read_train_log(&run, batch)
        {
            r.steps = Some((done, steps));
            r.final_loss = Some(loss);
            r.train_seconds = Some(seconds);
        }
        // Only outputs made with the experiment's present settings count.
        let done = |kind: StageKind| {
            self.stages(job)
                .iter()
                .any(|stage| stage.kind == kind && stage.done)
        };
        if done(StageKind::Sample)
            && let Some(summary) = read_json(&job.dir.join("samples/summary.json"))
        {
            r.sample_seconds = summary.get("seconds").and_then(Value::as_f64);
        }
        if done(StageKind::Eval)
            && let Some(m) = read_json(&job.dir.join("eval/metrics.json"))
        {
            read_metrics(&m, arm.band, &mut r);
        }
        if done(StageKind::Emergence) {
            r.emergence = read_json(&job.dir.join("emergence/emergence.json"));
        }
        r
    }

    /// What the floors' evaluations found, in the file's order (`None`: not done yet), with
    /// the energy in `band` when given.
    pub fn floor_results(&self, band: Option<[f64; 2]>) -> Vec<(Floor, Option<JobResult>)> {
        self.floor_stages()
            .into_iter()
            .map(|(floor, stage)| {
                let result = stage
                    .done
                    .then(|| read_json(&self.floor_dir(&floor).join("eval/metrics.json")))
                    .flatten()
                    .map(|m| {
                        let mut r = JobResult::default();
                        read_metrics(&m, band, &mut r);
                        r
                    });
                (floor, result)
            })
            .collect()
    }
}

/// Reads an evaluation's `metrics.json` into `r`; `band` picks the band-energy entries.
fn read_metrics(m: &Value, band: Option<[f64; 2]>, r: &mut JobResult) {
    r.eval_seconds = m.get("seconds").and_then(Value::as_f64);
    r.fid = m.get("fid").and_then(Value::as_f64);
    r.kid = m.pointer("/kid/mean").and_then(Value::as_f64);
    r.fid_sampling_sd = m.pointer("/fid_bootstrap/sd").and_then(Value::as_f64);
    r.kid_sampling_sd = m.pointer("/kid_bootstrap/sd").and_then(Value::as_f64);
    r.counts = m
        .get("sample_count")
        .and_then(Value::as_u64)
        .zip(m.get("reference_count").and_then(Value::as_u64))
        .map(|(a, b)| (a as usize, b as usize));
    r.log_spectral_distance = m
        .pointer("/spectral/log_spectral_distance")
        .and_then(Value::as_f64);
    r.raw_log_spectral_distance = m
        .pointer("/spectral_raw/log_spectral_distance")
        .and_then(Value::as_f64);
    r.clamped_fraction = m.get("clamped_fraction").and_then(Value::as_f64);
    if let Some(k) = band.and_then(band_index) {
        let band = |report: &str| {
            m.pointer(&format!("/{report}/bands/{k}/ratio"))
                .and_then(Value::as_f64)
        };
        r.band_ratio = band("spectral");
        r.raw_band_ratio = band("spectral_raw");
    }
}

/// One arm's results over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResults {
    /// The arm.
    pub arm: Arm,
    /// Per seed, in the experiment's order (seeds not run are left out).
    pub seeds: Vec<JobResult>,
}

impl ArmResults {
    fn values(&self, f: impl Fn(&JobResult) -> Option<f64>) -> Vec<f64> {
        self.seeds.iter().filter_map(f).collect()
    }
}

/// Every arm's results (arms in order).
pub fn collect(experiment: &Experiment) -> Vec<ArmResults> {
    let jobs = experiment.jobs(&[]).unwrap_or_default();
    experiment
        .file
        .arms
        .iter()
        .enumerate()
        .map(|(i, arm)| ArmResults {
            arm: arm.clone(),
            seeds: jobs
                .iter()
                .filter(|j| {
                    j.arm == i && (j.dir.join("run").is_dir() || j.dir.join("eval").is_dir())
                })
                .map(|j| experiment.result(j))
                .collect(),
        })
        .collect()
}

fn fmt_mean_sd(values: &[f64], scale: f64, digits: usize) -> String {
    match mean_sd(values) {
        None => "–".into(),
        Some((m, _)) if values.len() == 1 => format!("{:.digits$}", m * scale),
        Some((m, s)) => format!("{:.digits$} ± {:.digits$}", m * scale, s * scale),
    }
}

fn fmt_list(values: &[f64], digits: usize) -> String {
    if values.is_empty() {
        "–".into()
    } else {
        values
            .iter()
            .map(|v| format!("{v:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn minutes(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

fn emergence_number(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64)
}

/// The metrics' own sampling noise of an arm: the mean over seeds of the sd over resamples of
/// the samples (FID, KID × 10³), `–` where not measured.
fn sampling_sd(r: &ArmResults) -> String {
    let mean = |values: Vec<f64>, scale: f64, digits: usize| {
        mean_sd(&values).map_or("–".into(), |(m, _)| format!("{:.digits$}", m * scale))
    };
    let fid = mean(r.values(|j| j.fid_sampling_sd), 1.0, 1);
    let kid = mean(r.values(|j| j.kid_sampling_sd), 1e3, 2);
    if fid == "–" && kid == "–" {
        "–".into()
    } else {
        format!("{fid}, {kid}")
    }
}

/// The results table (markdown) of a sweep: one row per arm, metric means ± sd over seeds
/// (sample sd, n − 1) and the per-seed FIDs.
pub fn sweep_table(experiment: &Experiment, results: &[ArmResults]) -> String {
    let bands = results.iter().any(|r| r.arm.band.is_some());
    let mut t = String::from(
        "| arm | x | seeds evaluated | N (samples, reference) | FID per seed | FID | KID × 10³ | sampling sd: FID, KID × 10³ | log-spectral distance |",
    );
    if bands {
        t.push_str(" energy in the band (samples / reference) | the same before the clamp |");
    }
    t.push_str(
        " values clamped | train steps | compute per seed |\n|---|---|---|---|---|---|---|---|---|---|",
    );
    if bands {
        t.push_str("---|---|");
    }
    t.push_str("---|---|\n");
    for r in results {
        let fid = r.values(|j| j.fid);
        let kid = r.values(|j| j.kid);
        let lsd = r.values(|j| j.log_spectral_distance);
        // The least advanced seed's steps: a row is complete only when every seed is.
        let steps = r
            .seeds
            .iter()
            .filter_map(|j| j.steps)
            .min()
            .map_or_else(|| "–".into(), |(d, s)| format!("{d}/{s}"));
        let mut counts: Vec<String> = r
            .seeds
            .iter()
            .filter_map(|j| j.counts)
            .map(|(a, b)| format!("{a}, {b}"))
            .collect();
        counts.dedup();
        // Seeds with every stage done only: a partial seed would understate the cost.
        let wall = r.values(|j| Some(j.train_seconds? + j.sample_seconds? + j.eval_seconds?));
        let _ = write!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.arm.label.as_deref().unwrap_or(&r.arm.name),
            r.arm.x.map_or("–".into(), |x| format!("{x}")),
            format_args!(
                "{}/{}",
                r.seeds.iter().filter(|j| j.eval_seconds.is_some()).count(),
                experiment.file.seeds.len()
            ),
            if counts.is_empty() {
                "–".to_string()
            } else {
                // Several entries mean FIDs at different N: shown, never hidden.
                counts.join("; ")
            },
            fmt_list(&fid, 1),
            fmt_mean_sd(&fid, 1.0, 1),
            fmt_mean_sd(&kid, 1e3, 1),
            sampling_sd(r),
            fmt_mean_sd(&lsd, 1.0, 3),
        );
        if bands {
            let ratio = r.values(|j| j.band_ratio);
            let _ = write!(
                t,
                " {} |",
                match r.arm.band {
                    Some(b) => format!("[{}, {}]: {}", b[0], b[1], fmt_mean_sd(&ratio, 1.0, 2)),
                    None => "–".into(),
                }
            );
            let raw = r.values(|j| j.raw_band_ratio);
            let _ = write!(
                t,
                " {} |",
                match r.arm.band {
                    Some(_) if !raw.is_empty() => fmt_mean_sd(&raw, 1.0, 2),
                    _ => "–".into(),
                }
            );
        }
        let clamped = r.values(|j| j.clamped_fraction);
        let _ = writeln!(
            t,
            " {} | {steps} | {} |",
            if clamped.is_empty() {
                "–".into()
            } else {
                format!("{} %", fmt_mean_sd(&clamped, 100.0, 2))
            },
            mean_sd(&wall).map_or("–".into(), |(m, _)| minutes(m))
        );
    }
    t
}

/// The results table (markdown) of an emergence experiment: one row per arm and seed.
pub fn emergence_table(results: &[ArmResults]) -> String {
    let mut t = String::from(
        "| arm | seed | fitted α (R², modes) | rising α | falling α | τ* spread p90/p10 | linear-theory α | modes crossed / measured | checkpoints |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        for j in &r.seeds {
            let Some(e) = &j.emergence else {
                let _ = writeln!(
                    t,
                    "| {} | {} | – | – | – | – | – | – | – |",
                    r.arm.label.as_deref().unwrap_or(&r.arm.name),
                    j.seed
                );
                continue;
            };
            let fit = |group: &str| -> String {
                match (
                    emergence_number(e, &format!("/fits/{group}/alpha")),
                    emergence_number(e, &format!("/fits/{group}/r2")),
                    emergence_number(e, &format!("/fits/{group}/modes")),
                ) {
                    (Some(a), Some(r2), Some(m)) => format!("{a:.2} ({r2:.2}, {m:.0})"),
                    (Some(a), _, _) => format!("{a:.2}"),
                    _ => "–".into(),
                }
            };
            let spread =
                emergence_number(e, "/spread/ratio").map_or("–".into(), |s| format!("{s:.1}×"));
            let theory = emergence_number(e, "/linear_theory/alpha")
                .map_or("–".into(), |a| format!("{a:.2}"));
            let crossed = match (
                emergence_number(e, "/modes_crossed"),
                emergence_number(e, "/modes"),
            ) {
                (Some(c), Some(m)) => format!("{c:.0} / {m:.0}"),
                _ => "–".into(),
            };
            let checkpoints = e
                .get("steps")
                .and_then(Value::as_array)
                .map_or("–".into(), |s| s.len().to_string());
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {spread} | {theory} | {crossed} | {checkpoints} |",
                r.arm.label.as_deref().unwrap_or(&r.arm.name),
                j.seed,
                fit("all"),
                fit("rising"),
                fit("falling"),
            );
        }
    }
    t
}

/// Draws the sweep's figure: FID against the arms' `x`, one line (the seed mean) per series,
/// each seed a marker; beside it, when arms have bands, the band energy ratio the same way.
///
/// # Errors
/// [`RunError::Plot`] when the figure cannot be written.
pub fn write_sweep_figure(
    path: &Path,
    experiment: &Experiment,
    results: &[ArmResults],
) -> Result<(), RunError> {
    use sagd_plot::{LinePlot, Series};
    let mut groups: BTreeMap<String, Vec<&ArmResults>> = BTreeMap::new();
    for r in results {
        if r.arm.x.is_some() {
            groups
                .entry(r.arm.series.clone().unwrap_or_else(|| "all arms".into()))
                .or_default()
                .push(r);
        }
    }
    // Per series: its name, the seed means and the seeds' lone points.
    type Panel = Vec<(String, Vec<(f64, f64)>, Vec<(f64, f64)>)>;
    let panel = |metric: &dyn Fn(&JobResult) -> Option<f64>| -> Panel {
        groups
            .iter()
            .map(|(name, arms)| {
                let mut arms = arms.clone();
                arms.sort_by(|a, b| {
                    a.arm
                        .x
                        .partial_cmp(&b.arm.x)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                let mut means = Vec::new();
                let mut seeds = Vec::new();
                for a in arms {
                    let x = a.arm.x.unwrap_or(f64::NAN);
                    let v = a.values(metric);
                    if let Some((m, _)) = mean_sd(&v) {
                        means.push((x, m));
                    }
                    for y in v {
                        // Lone points: NaN breaks the line between them.
                        seeds.push((x, y));
                        seeds.push((f64::NAN, f64::NAN));
                    }
                }
                (name.clone(), means, seeds)
            })
            .collect()
    };
    // FID when the evaluations have it, else the log-spectral distance.
    let has_fid = results
        .iter()
        .any(|r| r.seeds.iter().any(|j| j.fid.is_some()));
    let fid = if has_fid {
        panel(&|j| j.fid)
    } else {
        panel(&|j| j.log_spectral_distance)
    };
    let names: Vec<(String, String)> = fid
        .iter()
        .map(|(n, _, _)| (format!("{n} (seed mean)"), format!("{n} (each seed)")))
        .collect();
    let mut series = Vec::new();
    for ((_, means, seeds), (mean_name, seed_name)) in fid.iter().zip(&names) {
        series.push(Series {
            name: mean_name,
            points: means.clone(),
            markers: false,
        });
        series.push(Series {
            name: seed_name,
            points: seeds.clone(),
            markers: true,
        });
    }
    let x_label = experiment.file.plot.x_label.as_str();
    let fid_plot = LinePlot {
        title: if has_fid {
            "FID against the reference (lower is better)"
        } else {
            "log-spectral distance to the reference (lower is better)"
        },
        x_label,
        y_label: if has_fid {
            "FID"
        } else {
            "log-spectral distance"
        },
        series,
        log_x: false,
        log_y: false,
    };
    let has_bands = results.iter().any(|r| r.arm.band.is_some());
    let band = panel(&|j| j.band_ratio);
    let mut band_series = Vec::new();
    for ((_, means, seeds), (mean_name, seed_name)) in band.iter().zip(&names) {
        band_series.push(Series {
            name: mean_name,
            points: means.clone(),
            markers: false,
        });
        band_series.push(Series {
            name: seed_name,
            points: seeds.clone(),
            markers: true,
        });
    }
    let band_plot = LinePlot {
        title: "energy in the arm's band, samples / reference (1: the reference's)",
        x_label,
        y_label: "energy ratio",
        series: band_series,
        log_x: false,
        log_y: true,
    };
    let plots: Vec<&LinePlot> = if has_bands {
        vec![&fid_plot, &band_plot]
    } else {
        vec![&fid_plot]
    };
    sagd_plot::write_line_plots_png(path, &plots).map_err(RunError::from)
}

/// The distinct bands of the arms, in order.
fn arm_bands(experiment: &Experiment) -> Vec<[f64; 2]> {
    let mut bands: Vec<[f64; 2]> = Vec::new();
    for band in experiment.file.arms.iter().filter_map(|a| a.band) {
        if !bands.contains(&band) {
            bands.push(band);
        }
    }
    bands
}

/// The floors' table (markdown): each `[[floor]]`'s data against the reference at the arms'
/// counts, with the energy in every arm band; `None` when the file has no floor.
pub fn floor_table(experiment: &Experiment) -> Option<String> {
    if experiment.file.floors.is_empty() {
        return None;
    }
    let bands = arm_bands(experiment);
    let mut t = String::from(
        "| data | N (samples, reference) | FID | KID × 10³ | sampling sd: FID, KID × 10³ | log-spectral distance |",
    );
    for b in &bands {
        let _ = write!(t, " energy in [{}, {}] |", b[0], b[1]);
    }
    t.push_str("\n|---|---|---|---|---|---|");
    t.push_str(&"---|".repeat(bands.len()));
    t.push('\n');
    let per_band: Vec<Vec<Option<f64>>> = bands
        .iter()
        .map(|&b| {
            experiment
                .floor_results(Some(b))
                .into_iter()
                .map(|(_, r)| r.and_then(|r| r.band_ratio))
                .collect()
        })
        .collect();
    for (i, (floor, result)) in experiment.floor_results(None).into_iter().enumerate() {
        let label = floor.label.clone().unwrap_or_else(|| floor.name.clone());
        let Some(r) = result else {
            let _ = writeln!(
                t,
                "| {label} | not run yet |{}",
                " – |".repeat(4 + bands.len())
            );
            continue;
        };
        let num = |x: Option<f64>, scale: f64, digits: usize| {
            x.map_or("–".into(), |v| format!("{:.digits$}", v * scale))
        };
        let sd = ArmResults {
            arm: Arm::default_named(&floor.name),
            seeds: vec![r.clone()],
        };
        let _ = write!(
            t,
            "| {label} | {} | {} | {} | {} | {} |",
            r.counts.map_or("–".into(), |(a, b)| format!("{a}, {b}")),
            num(r.fid, 1.0, 1),
            num(r.kid, 1e3, 1),
            sampling_sd(&sd),
            num(r.log_spectral_distance, 1.0, 3),
        );
        for band in &per_band {
            let _ = write!(t, " {} |", num(band[i], 1.0, 2));
        }
        t.push('\n');
    }
    Some(t)
}

/// What the floors' table shows, above it.
const FLOORS_INTRO: &str = "\n## The data against the reference\n\nData evaluated as if they were \
    samples, at the arms' counts: the train split against the test split is the value a \
    perfect model would reach at this N (how far from converged the arms are); a transform of \
    the data shows what that transform alone costs.\n\n";

/// What the contrasts' table shows, above it.
const CONTRASTS_INTRO: &str = "\n## Paired contrasts\n\nEach seed's difference between two arms \
    trained with that seed (the same initial weights, data order and noise draws); the mean, its \
    95% t-interval (n − 1 degrees of freedom), the two-sided p-value of a zero mean and the same \
    after Holm's adjustment over this file's contrasts. A verdict names a winner only when the \
    interval excludes 0 and the adjusted p < 0.05.\n\n";

/// Writes `results.md`, `results.json` and the figure into the experiment's output folder;
/// returns the path of `results.md`. `commands` are the stage command lines of one job (seed
/// and arm as placeholders) for the provenance section.
///
/// # Errors
/// [`RunError::Io`], [`RunError::Write`] or [`RunError::Plot`] when a file cannot be written.
pub fn write_results(experiment: &Experiment, results: &[ArmResults]) -> Result<PathBuf, RunError> {
    let out = &experiment.out;
    let contrasts = super::contrast::contrast_results(
        &experiment.file.contrasts,
        results,
        &experiment.file.seeds,
    );
    let figures = out.join("figures");
    crate::output::create_dir(&figures)?;
    let f = &experiment.file;
    let mut md = format!("# {}\n\n", f.title);
    if !f.description.trim().is_empty() {
        md.push_str(f.description.trim());
        md.push_str("\n\n");
    }
    let _ = writeln!(
        md,
        "Experiment file `{}`, seeds {:?}, output `{}`.\n",
        experiment.path.display(),
        f.seeds,
        out.display()
    );
    match f.kind {
        ExperimentKind::Sweep => {
            md.push_str(&sweep_table(experiment, results));
            if let Some(floors) = floor_table(experiment) {
                md.push_str(FLOORS_INTRO);
                md.push_str(&floors);
            }
            if !contrasts.is_empty() {
                md.push_str(CONTRASTS_INTRO);
                md.push_str(&super::contrast::contrast_table(&contrasts));
            }
            let figure = figures.join("sweep.png");
            write_sweep_figure(&figure, experiment, results)?;
            md.push_str("\n![the sweep: each arm's metric against its x](figures/sweep.png)\n");
        }
        ExperimentKind::Emergence => {
            md.push_str(&emergence_table(results));
            md.push('\n');
            for r in results {
                for j in &r.seeds {
                    if j.emergence.is_some() {
                        let _ = writeln!(
                            md,
                            "![{} seed {}]({}/seed-{}/emergence/emergence.png)",
                            r.arm.name, j.seed, r.arm.name, j.seed
                        );
                    }
                }
            }
        }
    }
    md.push_str(
        "\n## Stages of one arm and seed\n\nThe others differ in `--config`, `--seed` and the \
         folders.\n\n",
    );
    if let Ok(jobs) = experiment.jobs(&[])
        && let Some(job) = jobs.first()
    {
        for stage in experiment.stages(job) {
            let line: Vec<String> = stage.args.iter().map(|a| shell_quote(a)).collect();
            let _ = writeln!(md, "- {}: `sagd {}`", stage.kind.name(), line.join(" "));
        }
    }
    let md_path = out.join("results.md");
    crate::output::write_text(&md_path, &md)?;
    let json = serde_json::json!({
        "title": f.title,
        "kind": f.kind,
        "experiment": experiment.path,
        "seeds": f.seeds,
        "arms": results,
        "floors": experiment.floor_results(None).into_iter().map(|(floor, result)| {
            serde_json::json!({ "floor": floor, "result": result })
        }).collect::<Vec<_>>(),
        "contrasts": contrasts,
    });
    crate::output::write_json(&out.join("results.json"), &json)?;
    Ok(md_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_and_spread() {
        assert_eq!(band_index([0.1, 0.2]), Some(1));
        assert_eq!(band_index([0.0, 0.1]), Some(0));
        assert_eq!(band_index([0.9, 1.0]), Some(9));
        assert_eq!(band_index([0.15, 0.25]), None);
        assert_eq!(band_index([0.1, 0.3]), None);
        assert_eq!(band_index([1.0, 1.1]), None);
        assert_eq!(mean_sd(&[]), None);
        assert_eq!(mean_sd(&[2.0]), Some((2.0, 0.0)));
        // Sample sd of 1, 2, 3, 4: sqrt(5/3).
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn train_time_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("log.csv"),
            "step,loss,lr,grad_norm,images_per_sec\n10,1.0,1e-3,1,20\n30,0.5,1e-3,1,40\n",
        )
        .unwrap();
        // 10 steps of 8 images at 20/s, then 20 at 40/s: 4 + 4 seconds.
        let (step, loss, seconds) = read_train_log(dir.path(), 8).unwrap();
        assert_eq!((step, loss), (30, 0.5));
        assert!((seconds - 8.0).abs() < 1e-12);
    }
}
