//! `sagd demo`'s orchestration: the stages as child processes of the `sagd` binary, in order,
//! continuing an interrupted demo, then the figures, `summary.json` and `report.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sagd_core::DeviceSpec;
use sagd_core::files::write_atomic;
use sagd_eval::FidInception;
use serde_json::Value;

use super::plan::{DemoSettings, Model, Plan, Stage};
use super::report::{Report, summary_json, summary_line};
use super::results::{Results, RunLog, read_log, write_figures};
use crate::error::RunError;
use crate::output::create_dir;
use crate::stages::{Lock, Stream, command_line, run_stage};

/// What `sagd demo` is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRequest {
    /// Output folder: `report.md` and everything it shows.
    pub out: PathBuf,
    /// Seed of both runs (the same initial weights), the samplers and the evaluation.
    pub seed: u64,
    /// Device of training, sampling and evaluation.
    pub device: DeviceSpec,
    /// The short version (40 steps per model, 32 samples, DDIM-20).
    pub quick: bool,
    /// Start over: remove the demo's own files in `out` first.
    pub overwrite: bool,
    /// The FID Inception weights; `None`: found as `sagd eval` finds them, or left out.
    pub inception: Option<PathBuf>,
    /// Stages run without their progress bars (their errors are still reported).
    pub quiet: bool,
    /// The `sagd` binary the stages run (the CLI passes itself).
    pub exe: PathBuf,
}

/// What a running demo reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DemoEvent {
    /// A stage starts: `[done/total] label: command`.
    Stage {
        /// Stages started so far, this one included.
        done: usize,
        /// Stages in all.
        total: usize,
        /// What it does.
        label: String,
        /// Its command line.
        command: String,
    },
    /// The standard error of a failed stage that ran quietly, to show the user.
    FailedOutput(String),
}

/// The outcome of [`demo_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRun {
    /// `summary.json`.
    pub summary: Value,
    /// The one-line summary.
    pub line: String,
    /// `report.md`.
    pub report: PathBuf,
}

/// The demo's own files and folders in `out`: what `--overwrite` removes (and nothing else;
/// folders left empty go too).
const OWN: [&str; 17] = [
    "report.md",
    "summary.json",
    "configs/isotropic.toml",
    "configs/sagd.toml",
    "runs/isotropic",
    "runs/sagd",
    "samples/untrained",
    "samples/isotropic",
    "samples/sagd",
    "eval/untrained-vs-clean",
    "eval/untrained-vs-corrupted",
    "eval/isotropic-vs-clean",
    "eval/isotropic-vs-corrupted",
    "eval/isotropic-fid",
    "eval/sagd-vs-clean",
    "eval/sagd-vs-corrupted",
    "eval/sagd-fid",
];

/// The demo's figures (in `figures/`), also removed by `--overwrite`.
const FIGURES: [&str; 4] = ["clean.png", "corrupted.png", "spectra.png", "loss.png"];

/// Runs the selective-omission demonstration into `req.out` (see the [module](super) docs):
/// every stage is an ordinary `sagd` subcommand run as a child process of `req.exe`, its
/// progress bars on this process's terminal; `observer` sees each stage start.
///
/// # Errors
/// [`RunError::Request`] before any work for an `out` that is a file, an existing report
/// without `overwrite`, a device or weights file that cannot be used, or an unfinished demo
/// with other settings; [`RunError::Stage`] naming the command and exit code of a failing
/// stage (the finished ones are kept: the same request continues).
pub fn demo_run(
    req: &DemoRequest,
    observer: &mut dyn FnMut(DemoEvent),
) -> Result<DemoRun, RunError> {
    let started = Instant::now();
    let plan = Plan::new(req.quick);
    let weights = check_request(req)?;
    let configs = configs(&plan, req.seed);
    if !req.overwrite {
        check_unfinished(&req.out, &configs)?;
    }
    let _lock = prepare_out(req, &configs)?;
    let models = models(&plan);
    let mut runner = Runner {
        exe: &req.exe,
        quiet: req.quiet,
        done: 0,
        // previews 2, training 2 × 2, sampling 3, evaluation 2 + 2 × 2 (+ 2 × FID)
        total: 2 + 4 + 3 + 6 + if weights.is_some() { 2 } else { 0 },
        stages: Vec::new(),
        observer,
    };
    let args = StageArgs::new(req, &plan, weights.as_deref());
    preview_data(&mut runner, &args)?;
    let trained = train_models(&mut runner, &args, &models)?;
    let sampled = sample_models(&mut runner, &args, &models, &trained)?;
    let evaluated = evaluate_models(&mut runner, &args, &models, &sampled)?;
    let results = Results::collect(&models, (&evaluated.0, &evaluated.1), &evaluated.2)?;
    let logs: Vec<RunLog> = trained
        .iter()
        .map(|(dir, _)| read_log(&dir.join("log.csv"), plan.batch))
        .collect::<Result<_, _>>()?;
    let stages = runner.stages;
    write_report(
        req,
        &plan,
        &models,
        &Finished {
            results,
            stages,
            sampled,
            logs,
            weights,
        },
        started,
    )
}

/// Refuses, before any work, an `out` that is a file, an existing report without
/// `overwrite`, a device this build cannot run, and an Inception weights file that cannot be
/// read; returns the weights found (none: the report goes without FID and KID).
fn check_request(req: &DemoRequest) -> Result<Option<PathBuf>, RunError> {
    let out = &req.out;
    if out.exists() && !out.is_dir() {
        return Err(RunError::request(format!(
            "--out {} is a file; expected a folder (new or existing)",
            out.display()
        )));
    }
    let report_path = out.join("report.md");
    if report_path.exists() && !req.overwrite {
        return Err(RunError::request(format!(
            "{} exists; pass --overwrite to replace it (and the runs beside it) or choose \
             another --out",
            report_path.display()
        )));
    }
    // A bad device or weights file is refused here, before minutes of work. The stages train
    // with `--device`, which names a kind (a GPU is picked by `--devices`).
    if let DeviceSpec::Cuda(Some(index)) = req.device {
        return Err(RunError::request(format!(
            "--device cuda:{index}: expected a device kind without an index (cpu, cuda); the \
             demo trains on GPU 0 with `--device cuda` (CUDA_VISIBLE_DEVICES={index} selects \
             GPU {index})"
        )));
    }
    req.device
        .open()
        .map_err(|e| RunError::request(e.to_string()))?;
    let weights = sagd_eval::weights::find_weights(req.inception.as_deref()).ok();
    if let Some(w) = &weights {
        let source = if req.inception.is_some() {
            "--inception"
        } else {
            "the FID Inception weights ($SAGD_INCEPTION)"
        };
        if !w.is_file() {
            return Err(RunError::request(format!(
                "{source} {}: no such file",
                w.display()
            )));
        }
        FidInception::load(w, &burn::tensor::Device::flex())
            .map_err(|e| RunError::request(format!("{source}: {e}")))?;
    }
    Ok(weights)
}

/// The two run configs, by model key.
fn configs(plan: &Plan, seed: u64) -> [(&'static str, String); 2] {
    [
        ("isotropic", plan.config(seed, "isotropic", "isotropic")),
        (
            "sagd",
            plan.config(
                seed,
                &plan.sagd_spectrum(),
                "SAGD (two-band, gap = corrupted band)",
            ),
        ),
    ]
}

/// The two models of the demo.
fn models(plan: &Plan) -> [Model; 2] {
    [
        Model {
            key: "isotropic",
            label: "isotropic",
            spectrum: "isotropic".to_string(),
        },
        Model {
            key: "sagd",
            label: "SAGD (two-band, gap = corrupted band)",
            spectrum: plan.sagd_spectrum(),
        },
    ]
}

/// An unfinished demo in `out` continues only with the same settings.
fn check_unfinished(out: &Path, configs: &[(&str, String)]) -> Result<(), RunError> {
    for (key, text) in configs {
        let path = out.join("configs").join(format!("{key}.toml"));
        if let Ok(old) = std::fs::read_to_string(&path)
            && old != *text
        {
            return Err(RunError::request(format!(
                "{} holds an unfinished demo with other settings ({}): run it again with the \
                 arguments it was started with to continue it, or pass --overwrite to start over",
                out.display(),
                differing_keys(&old, text)
            )));
        }
    }
    Ok(())
}

/// Creates `out`, takes its lock, clears the demo's files when overwriting, and writes the
/// configs; the lock is held as long as the returned value lives.
fn prepare_out(req: &DemoRequest, configs: &[(&str, String)]) -> Result<Lock, RunError> {
    let out = &req.out;
    create_dir(out)?;
    let lock = Lock::take(out, "demo")?;
    if req.overwrite {
        remove_own(out)?;
    }
    for dir in ["configs", "figures"] {
        create_dir(&out.join(dir))?;
    }
    for (key, text) in configs {
        write_atomic(
            &out.join("configs").join(format!("{key}.toml")),
            text.as_bytes(),
        )?;
    }
    Ok(lock)
}

fn remove_own(out: &Path) -> Result<(), RunError> {
    let paths = OWN
        .iter()
        .map(|p| out.join(p))
        .chain(FIGURES.iter().map(|f| out.join("figures").join(f)));
    for path in paths {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.map_err(|source| RunError::Io {
            action: "remove",
            path: path.clone(),
            source,
        })?;
    }
    for dir in ["configs", "runs", "samples", "eval", "figures"] {
        // Only when empty: anything of the user's stays.
        let _ = std::fs::remove_dir(out.join(dir));
    }
    Ok(())
}

/// The `key = value` lines of two configs that differ, for an error message.
fn differing_keys(old: &str, new: &str) -> String {
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(" = "))
            .map(str::to_string)
            .collect()
    };
    let (old, new) = (keys(old), keys(new));
    let changed: Vec<String> = old
        .iter()
        .filter(|l| !new.contains(l))
        .map(|l| {
            let key = l.split(" = ").next().unwrap_or(l);
            let now = new
                .iter()
                .find(|n| n.starts_with(&format!("{key} = ")))
                .map_or("absent", |n| n.split(" = ").nth(1).unwrap_or(""));
            format!("{l} there, {now} now")
        })
        .collect();
    if changed.is_empty() {
        "its configs differ".to_string()
    } else {
        changed.join("; ")
    }
}

/// Runs the stages as child processes of the `sagd` binary, in order, one event each.
struct Runner<'a> {
    exe: &'a Path,
    quiet: bool,
    done: usize,
    total: usize,
    stages: Vec<Stage>,
    observer: &'a mut dyn FnMut(DemoEvent),
}

impl Runner<'_> {
    /// Runs `sagd ARGS` (with `--json` when `json_out`), its progress bars and warnings on
    /// this terminal; returns its JSON output (or `Null`). `canonical` is the command that
    /// does the stage from scratch, when it differs from ARGS (a continuation's `--resume`).
    fn run(
        &mut self,
        label: &str,
        args: &[String],
        canonical: Option<&[String]>,
        json_out: bool,
    ) -> Result<Value, RunError> {
        self.done += 1;
        let command = command_line(args);
        (self.observer)(DemoEvent::Stage {
            done: self.done,
            total: self.total,
            label: label.to_string(),
            command: command.clone(),
        });
        let mut full: Vec<String> = args.to_vec();
        if json_out {
            full.push("--json".into());
        }
        if self.quiet && json_out {
            full.push("--quiet".into());
        }
        // Quiet: a stage without --quiet of its own (data preview) is captured, and shown
        // only when it fails.
        let stderr = if self.quiet && !json_out {
            Stream::Capture
        } else {
            Stream::Inherit
        };
        let output = match run_stage(self.exe, &full, Stream::Capture, stderr) {
            Ok(output) => output,
            Err(Err(e)) => return Err(e),
            Err(Ok(failure)) => {
                if !failure.stderr.is_empty() {
                    (self.observer)(DemoEvent::FailedOutput(failure.stderr.clone()));
                }
                return Err(RunError::Stage(format!(
                    "stage {label} failed ({}): {command}; its error is printed above. The \
                     finished stages are kept: run the demo again with the same arguments to \
                     continue, or pass --overwrite to start over",
                    failure.status
                )));
            }
        };
        let value = if json_out {
            serde_json::from_str(output.stdout.trim()).map_err(|e| {
                RunError::Stage(format!(
                    "stage {label}: unreadable JSON from {command}: {e}"
                ))
            })?
        } else {
            Value::Null
        };
        self.stages.push(Stage {
            label: label.to_string(),
            command: canonical.map_or(command, command_line),
            seconds: Some(output.seconds),
            output: value.clone(),
        });
        Ok(value)
    }

    /// Records a stage an earlier invocation completed.
    fn skip(&mut self, label: &str, args: &[String]) {
        self.done += 1;
        self.stages.push(Stage {
            label: label.to_string(),
            command: command_line(args),
            seconds: None,
            output: Value::Null,
        });
    }
}

fn s(text: impl Into<String>) -> String {
    text.into()
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// The arguments every stage shares: folders, seed, device, corruption, weights.
struct StageArgs<'a> {
    out: &'a Path,
    plan: &'a Plan,
    seed: String,
    device: Vec<String>,
    corrupt: String,
    weights: Option<&'a Path>,
}

impl<'a> StageArgs<'a> {
    fn new(req: &'a DemoRequest, plan: &'a Plan, weights: Option<&'a Path>) -> Self {
        Self {
            out: &req.out,
            plan,
            seed: req.seed.to_string(),
            device: if req.device.is_cpu() {
                Vec::new()
            } else {
                vec![s("--device"), req.device.to_string()]
            },
            corrupt: format!("{},gamma={}", plan.corrupt(), plan.gamma),
            weights,
        }
    }

    /// `sagd sample` of `checkpoint`: the same sampler, seed and count for every model.
    fn sample(&self, checkpoint: &Path, count: usize, dir: &Path) -> Vec<String> {
        let mut a = vec![
            s("sample"),
            s("--checkpoint"),
            path_arg(checkpoint),
            s("--ema"),
            s("--sampler"),
            s("ddim"),
            s("--steps"),
            self.plan.sampler_steps.to_string(),
            s("--count"),
            count.to_string(),
            s("--seed"),
            self.seed.clone(),
            s("--out"),
            path_arg(dir),
            s("--overwrite"),
        ];
        a.extend(self.device.iter().cloned());
        a
    }

    /// `sagd eval` of `samples` against clean (or `corrupted`) held-out data: spectral
    /// metrics, or FID and KID (`inception`), into `eval/NAME`.
    fn eval(&self, samples: &Path, corrupted: bool, inception: bool, name: &str) -> Vec<String> {
        let mut a = vec![
            s("eval"),
            s("--samples"),
            path_arg(samples),
            s("--reference"),
            s(self.plan.reference),
        ];
        if corrupted {
            a.extend([s("--transform"), self.corrupt.clone()]);
        }
        a.extend([
            s("--metrics"),
            s(if inception { "fid,kid" } else { "spectral" }),
            s("--seed"),
            self.seed.clone(),
        ]);
        if inception && let Some(w) = self.weights {
            a.extend([s("--inception"), path_arg(w)]);
        }
        let dir = self.out.join("eval").join(name);
        a.extend([s("--out"), path_arg(&dir), s("--overwrite")]);
        a.extend(self.device.iter().cloned());
        a
    }
}

/// Stage 1: the data, clean and corrupted.
fn preview_data(runner: &mut Runner<'_>, args: &StageArgs<'_>) -> Result<(), RunError> {
    let figures = args.out.join("figures");
    for (label, transform, file) in [
        ("clean data", None, "clean.png"),
        ("corrupted data", Some(&args.corrupt), "corrupted.png"),
    ] {
        let mut a = vec![
            s("data"),
            s("preview"),
            s(args.plan.data),
            s("--count"),
            s("64"),
            s("--seed"),
            args.seed.clone(),
        ];
        if let Some(t) = transform {
            a.extend([s("--transform"), t.clone()]);
        }
        a.extend([s("--png"), path_arg(&figures.join(file))]);
        runner.run(label, &a, None, false)?;
    }
    Ok(())
}

/// Stage 2, training: a step-1 checkpoint first (the untrained baseline), then the whole
/// run. Returns each model's run folder and its step-1 checkpoint.
fn train_models(
    runner: &mut Runner<'_>,
    args: &StageArgs<'_>,
    models: &[Model],
) -> Result<Vec<(PathBuf, PathBuf)>, RunError> {
    let mut trained = Vec::new();
    for model in models {
        let config = args.out.join("configs").join(format!("{}.toml", model.key));
        let run_dir = args.out.join("runs").join(model.key);
        let mut base = vec![
            s("train"),
            s("--config"),
            path_arg(&config),
            s("--out"),
            path_arg(&run_dir),
        ];
        base.extend(args.device.iter().cloned());
        let first = train_first_step(runner, model, &run_dir, &base)?;
        let mut a = base.clone();
        a.push(s("--resume"));
        let label = format!("train {} ({} steps)", model.key, args.plan.steps);
        runner.run(&label, &a, None, true)?;
        trained.push((run_dir, first));
    }
    Ok(trained)
}

/// The step-1 checkpoint of `model`'s run (trained unless an earlier invocation left it).
fn train_first_step(
    runner: &mut Runner<'_>,
    model: &Model,
    run_dir: &Path,
    base: &[String],
) -> Result<PathBuf, RunError> {
    let checkpoints_dir = sagd_models::train::checkpoints_dir(run_dir);
    let first_checkpoint = checkpoints_dir.join("step-00000001.safetensors");
    let mut canonical = base.to_vec();
    canonical.extend([s("--stop-at"), s("1")]);
    let label = format!("train {} (step 1)", model.key);
    if first_checkpoint.is_file() {
        runner.skip(&label, &canonical);
        return Ok(first_checkpoint);
    }
    // A demo interrupted before its step-1 checkpoint may have left a config.toml (train
    // then needs --resume); one interrupted after it has every checkpoint.
    let existing = sagd_models::checkpoint::list(&checkpoints_dir)?;
    if let Some((step, _)) = existing.first() {
        return Err(RunError::Stage(format!(
            "{} has checkpoints (from step {step}) but not the step-1 one the untrained \
             baseline needs; pass --overwrite to start the demo over",
            run_dir.display()
        )));
    }
    let mut a = canonical.clone();
    if ["config.toml", "log.csv"]
        .iter()
        .any(|f| run_dir.join(f).exists())
    {
        a.push(s("--resume"));
    }
    runner.run(&label, &a, Some(&canonical), true)?;
    Ok(first_checkpoint)
}

/// Stage 3, sampling: the untrained baseline, then each model, with the same sampler and
/// seed. Returns each model's samples folder and its summary.
fn sample_models(
    runner: &mut Runner<'_>,
    args: &StageArgs<'_>,
    models: &[Model],
    trained: &[(PathBuf, PathBuf)],
) -> Result<Vec<(PathBuf, Value)>, RunError> {
    let samples_dir = args.out.join("samples");
    let untrained_checkpoint = &trained[0].1;
    if !untrained_checkpoint.is_file() {
        return Err(RunError::Stage(format!(
            "{} is missing (the untrained baseline); pass --overwrite to start over",
            untrained_checkpoint.display()
        )));
    }
    let untrained = samples_dir.join("untrained");
    let a = args.sample(
        untrained_checkpoint,
        args.plan.untrained_samples,
        &untrained,
    );
    runner.run("sample the untrained model", &a, None, true)?;
    let mut sampled = vec![(untrained, Value::Null)];
    for (model, (run_dir, _)) in models.iter().zip(trained) {
        let dir = samples_dir.join(model.key);
        let a = args.sample(run_dir, args.plan.samples, &dir);
        let summary = runner.run(&format!("sample {}", model.key), &a, None, true)?;
        sampled.push((dir, summary));
    }
    Ok(sampled)
}

/// The evaluations: the untrained model against clean and corrupted data, then each model's
/// (clean, corrupted, FID) outputs.
type Evaluated = (Value, Value, Vec<(Value, Value, Value)>);

/// Stage 4: evaluation against clean and corrupted held-out data (and FID/KID with the
/// weights).
fn evaluate_models(
    runner: &mut Runner<'_>,
    args: &StageArgs<'_>,
    models: &[Model],
    sampled: &[(PathBuf, Value)],
) -> Result<Evaluated, RunError> {
    let untrained = &sampled[0].0;
    let untrained_clean = runner.run(
        "evaluate the untrained model against clean data",
        &args.eval(untrained, false, false, "untrained-vs-clean"),
        None,
        true,
    )?;
    let untrained_corrupted = runner.run(
        "evaluate the untrained model against corrupted data",
        &args.eval(untrained, true, false, "untrained-vs-corrupted"),
        None,
        true,
    )?;
    let mut evaluated = Vec::new();
    for (model, (dir, _)) in models.iter().zip(&sampled[1..]) {
        let key = model.key;
        let clean = runner.run(
            &format!("evaluate {key} against clean data"),
            &args.eval(dir, false, false, &format!("{key}-vs-clean")),
            None,
            true,
        )?;
        let corrupted = runner.run(
            &format!("evaluate {key} against corrupted data"),
            &args.eval(dir, true, false, &format!("{key}-vs-corrupted")),
            None,
            true,
        )?;
        let fid = match args.weights {
            Some(_) => {
                let mut a = args.eval(dir, false, true, &format!("{key}-fid"));
                a.extend([s("--count"), args.plan.fid_count.to_string()]);
                let label = format!("FID and KID of {key} against clean data");
                runner.run(&label, &a, None, true)?
            }
            None => Value::Null,
        };
        evaluated.push((clean, corrupted, fid));
    }
    Ok((untrained_clean, untrained_corrupted, evaluated))
}

/// What the stages produced, for the report.
struct Finished {
    results: Results,
    stages: Vec<Stage>,
    /// The samples folders and summaries: the untrained model's first, then each model's.
    sampled: Vec<(PathBuf, Value)>,
    logs: Vec<RunLog>,
    weights: Option<PathBuf>,
}

/// Stage 5: figures, `summary.json` and `report.md`.
fn write_report(
    req: &DemoRequest,
    plan: &Plan,
    models: &[Model],
    done: &Finished,
    started: Instant,
) -> Result<DemoRun, RunError> {
    let out = &req.out;
    let report_started = Instant::now();
    write_figures(
        &out.join("figures"),
        plan,
        models,
        &done.results,
        &done.logs,
    )?;
    let total_seconds = started.elapsed().as_secs_f64();
    let settings = DemoSettings {
        out: req.out.clone(),
        seed: req.seed,
        device: req.device.to_string(),
        quick: req.quick,
    };
    let with_fid = done.weights.is_some();
    let summary = summary_json(
        &settings,
        plan,
        models,
        &done.results,
        &done.stages,
        total_seconds,
        with_fid,
    );
    let report = Report {
        settings: &settings,
        plan,
        models,
        results: &done.results,
        stages: &done.stages,
        sampled: &done.sampled[1..],
        logs: &done.logs,
        total_seconds,
        weights: done.weights.as_deref(),
        report_seconds: report_started.elapsed().as_secs_f64(),
    }
    .markdown();
    let report_path = out.join("report.md");
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    write_atomic(&report_path, report.as_bytes())?;
    Ok(DemoRun {
        line: summary_line(plan, &done.results, &report_path, total_seconds),
        summary,
        report: report_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--overwrite` removes the demo's files and folders and nothing of the user's, even in
    /// the folders the demo shares.
    #[test]
    fn overwrite_removes_only_the_demos_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let own = [
            "report.md",
            "configs/sagd.toml",
            "runs/isotropic/log.csv",
            "samples/sagd/samples.npy",
            "eval/sagd-fid/metrics.json",
            "figures/spectra.png",
        ];
        let users = [
            "notes.md",
            "runs/mine/model.safetensors",
            "samples/mine.npy",
            "figures/paper.png",
            "eval/old.json",
        ];
        for f in own.iter().chain(&users) {
            let path = out.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x").unwrap();
        }
        remove_own(out).unwrap();
        for f in own {
            assert!(!out.join(f).exists(), "{f} was kept");
        }
        for f in users {
            assert!(out.join(f).exists(), "{f} was removed");
        }
        assert!(
            !out.join("configs").exists(),
            "an emptied folder of the demo's stays"
        );
    }

    #[test]
    fn differing_keys_name_the_changed_settings() {
        let plan = Plan::new(false);
        let a = plan.config(0, "isotropic", "x");
        let b = Plan::new(true).config(1, "isotropic", "x");
        let text = differing_keys(&a, &b);
        assert!(text.contains("seed = 0 there, 1 now"), "{text}");
        assert!(text.contains("steps = 600 there, 40 now"), "{text}");
    }
}
