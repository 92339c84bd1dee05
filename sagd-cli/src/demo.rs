//! `sagd demo`: the papers' headline capability in minutes, with a report.
//!
//! On the built-in `shapes` data corrupted by white noise in one frequency band, it trains two
//! models (isotropic noise, and the two-band SAGD spectrum whose gap is exactly the corrupted
//! band: selective omission), samples both with the same sampler and seed, evaluates both
//! against clean and corrupted data and writes `report.md`.
//!
//! Every stage is one ordinary `sagd` subcommand, run as a child process of this binary with
//! the arguments the report prints: the demo has no training, sampling or evaluation of its
//! own, and each part of the report reproduces with the command written beside it. This
//! module runs the stages (processes, the lock, continuation); the plan, figures, verdict,
//! summary and report are [`sagd_eval::demo`]'s.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use sagd_eval::demo::{
    DemoSettings, Model, Plan, Results, RunLog, Stage, read_log, report_markdown, summary_json,
    summary_line, write_figures,
};
use serde_json::Value;

use crate::stages::{Lock, command_line, die_with_parent};
use crate::{print_stdout, usage, write_atomic};

/// Arguments of `sagd demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory: report.md and everything it shows.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Seed of both runs (the same initial weights), the samplers and the evaluation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device of training, sampling and evaluation: cpu, or cuda (built with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// A short version for tests (under 2 minutes): 40 steps per model, 32 samples, DDIM-20.
    /// Its models have not learned the data; the report says so.
    #[arg(long)]
    quick: bool,
    /// Start over: remove the demo's own files in --out (its report, runs, samples,
    /// evaluations, configs and figures; nothing else) first. Without it an existing report
    /// is not replaced, and an interrupted demo continues where it stopped.
    #[arg(long)]
    overwrite: bool,
    /// The FID Inception weights (default: $SAGD_INCEPTION, else
    /// $SAGD_MODELS_DIR/fid-inception/); without them the report has spectral metrics only.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// No progress bars or stage headers (the stages still print warnings and errors).
    #[arg(long)]
    quiet: bool,
    /// Print the summary (metrics, verdicts, timings, paths) as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the stages as child processes of this binary, in order, with one header line each.
struct Runner {
    exe: PathBuf,
    quiet: bool,
    done: usize,
    total: usize,
    stages: Vec<Stage>,
}

impl Runner {
    /// Runs `sagd ARGS` (ARGS with `--json` when `json_out`), its progress bars and warnings
    /// on this terminal; returns its JSON output (or `Null`). `canonical` is the command that
    /// does the stage from scratch, when it differs from ARGS (a continuation's `--resume`).
    fn run(
        &mut self,
        label: &str,
        args: &[String],
        canonical: Option<&[String]>,
        json_out: bool,
    ) -> Result<Value> {
        self.done += 1;
        let command = command_line(args);
        if !self.quiet {
            eprintln!("[{}/{}] {label}: {command}", self.done, self.total);
        }
        let mut full: Vec<String> = args.to_vec();
        if json_out {
            full.push("--json".into());
        }
        if self.quiet && json_out {
            full.push("--quiet".into());
        }
        let started = Instant::now();
        let mut child = Command::new(&self.exe);
        child
            .args(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Quiet: a stage without --quiet of its own (data preview) is captured, and
            // printed only when it fails.
            .stderr(if self.quiet && !json_out {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        die_with_parent(&mut child);
        let child = child
            .output()
            .with_context(|| format!("cannot run {}", self.exe.display()))?;
        let seconds = started.elapsed().as_secs_f64();
        if !child.status.success() {
            eprint!("{}", String::from_utf8_lossy(&child.stderr));
            let code = child
                .status
                .code()
                .map_or("a signal".into(), |c| format!("exit code {c}"));
            return Err(anyhow!(
                "stage {label} failed ({code}): {command}; its error is printed above. The \
                 finished stages are kept: run the demo again with the same arguments to \
                 continue, or pass --overwrite to start over"
            ));
        }
        let output = if json_out {
            let text = String::from_utf8_lossy(&child.stdout);
            serde_json::from_str(text.trim())
                .with_context(|| format!("stage {label}: unreadable JSON from {command}"))?
        } else {
            Value::Null
        };
        self.stages.push(Stage {
            label: label.to_string(),
            command: canonical.map_or(command, command_line),
            seconds: Some(seconds),
            output: output.clone(),
        });
        Ok(output)
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

fn remove_own(out: &Path) -> Result<()> {
    let paths = OWN
        .iter()
        .map(|p| out.join(p))
        .chain(FIGURES.iter().map(|f| out.join("figures").join(f)));
    for path in paths {
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
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

/// Runs `sagd demo`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let plan = Plan::new(args.quick);
    let out = &args.out;
    if out.exists() && !out.is_dir() {
        return Err(usage(format!(
            "--out {} is a file; expected a folder (new or existing)",
            out.display()
        )));
    }
    let report_path = out.join("report.md");
    if report_path.exists() && !args.overwrite {
        return Err(usage(format!(
            "{} exists; pass --overwrite to replace it (and the runs beside it) or choose \
             another --out",
            report_path.display()
        )));
    }
    // A bad device or weights file is refused here, before minutes of work.
    sagd_models::train::device_for(&args.device).map_err(|e| usage(e.to_string()))?;
    let weights = crate::eval::find_weights(args.inception.as_deref()).ok();
    if let Some(w) = &weights {
        let source = if args.inception.is_some() {
            "--inception"
        } else {
            "the FID Inception weights ($SAGD_INCEPTION)"
        };
        if !w.is_file() {
            return Err(usage(format!("{source} {}: no such file", w.display())));
        }
        sagd_eval::FidInception::load(w, &sagd_core::prelude::Device::flex())
            .map_err(|e| usage(format!("{source}: {e}")))?;
    }
    let configs = [
        (
            "isotropic",
            plan.config(args.seed, "isotropic", "isotropic"),
        ),
        (
            "sagd",
            plan.config(
                args.seed,
                &plan.sagd_spectrum(),
                "SAGD (two-band, gap = corrupted band)",
            ),
        ),
    ];
    if !args.overwrite {
        // An unfinished demo in --out continues only with the same settings.
        for (key, text) in &configs {
            let path = out.join("configs").join(format!("{key}.toml"));
            if let Ok(old) = std::fs::read_to_string(&path)
                && old != *text
            {
                return Err(usage(format!(
                    "{} holds an unfinished demo with other settings ({}): run it again with \
                     the arguments it was started with to continue it, or pass --overwrite to \
                     start over",
                    out.display(),
                    differing_keys(&old, text)
                )));
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let _lock = Lock::take(out, "demo")?;
    if args.overwrite {
        remove_own(out)?;
    }
    for dir in ["configs", "figures"] {
        std::fs::create_dir_all(out.join(dir))
            .with_context(|| format!("cannot create {}", out.join(dir).display()))?;
    }
    for (key, text) in &configs {
        write_atomic(
            &out.join("configs").join(format!("{key}.toml")),
            text.as_bytes(),
        )?;
    }

    let models = [
        Model {
            key: "isotropic",
            label: "isotropic",
            spectrum: s("isotropic"),
        },
        Model {
            key: "sagd",
            label: "SAGD (two-band, gap = corrupted band)",
            spectrum: plan.sagd_spectrum(),
        },
    ];
    let with_fid = weights.is_some();
    let mut runner = Runner {
        exe: std::env::current_exe().context("cannot find the sagd binary itself")?,
        quiet: args.quiet,
        done: 0,
        // previews 2, training 2 × 2, sampling 3, evaluation 2 + 2 × 2 (+ 2 × FID)
        total: 2 + 4 + 3 + 6 + if with_fid { 2 } else { 0 },
        stages: Vec::new(),
    };
    let device: Vec<String> = if args.device == "cpu" {
        Vec::new()
    } else {
        vec![s("--device"), args.device.clone()]
    };
    let seed = args.seed.to_string();
    let corrupt = format!("{},gamma={}", plan.corrupt(), plan.gamma);

    // 1. The data, clean and corrupted.
    let figures = out.join("figures");
    for (label, transform, file) in [
        ("clean data", None, "clean.png"),
        ("corrupted data", Some(&corrupt), "corrupted.png"),
    ] {
        let mut a = vec![
            s("data"),
            s("preview"),
            s(plan.data),
            s("--count"),
            s("64"),
            s("--seed"),
            seed.clone(),
        ];
        if let Some(t) = transform {
            a.extend([s("--transform"), t.clone()]);
        }
        a.extend([s("--png"), path_arg(&figures.join(file))]);
        runner.run(label, &a, None, false)?;
    }

    // 2. Training: a step-1 checkpoint first (the untrained baseline), then the whole run.
    let mut trained = Vec::new();
    for model in &models {
        let config = out.join("configs").join(format!("{}.toml", model.key));
        let run_dir = out.join("runs").join(model.key);
        let mut base = vec![
            s("train"),
            s("--config"),
            path_arg(&config),
            s("--out"),
            path_arg(&run_dir),
        ];
        base.extend(device.iter().cloned());
        let checkpoints_dir = sagd_models::train::checkpoints_dir(&run_dir);
        let first_checkpoint = checkpoints_dir.join("step-00000001.safetensors");
        if !first_checkpoint.is_file() {
            // A demo interrupted before its step-1 checkpoint may have left a config.toml
            // (train then needs --resume); one interrupted after it has every checkpoint.
            let existing =
                sagd_models::checkpoint::list(&checkpoints_dir).map_err(|e| anyhow!("{e}"))?;
            if let Some((step, _)) = existing.first() {
                return Err(anyhow!(
                    "{} has checkpoints (from step {step}) but not the step-1 one the untrained \
                     baseline needs; pass --overwrite to start the demo over",
                    run_dir.display()
                ));
            }
            let mut canonical = base.clone();
            canonical.extend([s("--stop-at"), s("1")]);
            let mut a = canonical.clone();
            let resume = ["config.toml", "log.csv"]
                .iter()
                .any(|f| run_dir.join(f).exists());
            if resume {
                a.push(s("--resume"));
            }
            runner.run(
                &format!("train {} (step 1)", model.key),
                &a,
                Some(&canonical),
                true,
            )?;
        } else {
            let mut canonical = base.clone();
            canonical.extend([s("--stop-at"), s("1")]);
            runner.skip(&format!("train {} (step 1)", model.key), &canonical);
        }
        let mut a = base.clone();
        a.push(s("--resume"));
        let summary = runner.run(
            &format!("train {} ({} steps)", model.key, plan.steps),
            &a,
            None,
            true,
        )?;
        trained.push((run_dir, first_checkpoint, summary));
    }

    // 3. Sampling: the same sampler, seed and count for every model.
    let sample_args = |checkpoint: &Path, count: usize, dir: &Path| {
        let mut a = vec![
            s("sample"),
            s("--checkpoint"),
            path_arg(checkpoint),
            s("--ema"),
            s("--sampler"),
            s("ddim"),
            s("--steps"),
            plan.sampler_steps.to_string(),
            s("--count"),
            count.to_string(),
            s("--seed"),
            seed.clone(),
            s("--out"),
            path_arg(dir),
            s("--overwrite"),
        ];
        a.extend(device.iter().cloned());
        a
    };
    let samples_dir = out.join("samples");
    let untrained_checkpoint = &trained[0].1;
    if !untrained_checkpoint.is_file() {
        return Err(anyhow!(
            "{} is missing (the untrained baseline); pass --overwrite to start over",
            untrained_checkpoint.display()
        ));
    }
    let untrained_dir = samples_dir.join("untrained");
    runner.run(
        "sample the untrained model",
        &sample_args(untrained_checkpoint, plan.untrained_samples, &untrained_dir),
        None,
        true,
    )?;
    let mut sampled = Vec::new();
    for (model, (run_dir, _, _)) in models.iter().zip(&trained) {
        let dir = samples_dir.join(model.key);
        let summary = runner.run(
            &format!("sample {}", model.key),
            &sample_args(run_dir, plan.samples, &dir),
            None,
            true,
        )?;
        sampled.push((dir, summary));
    }

    // 4. Evaluation against clean and corrupted held-out data.
    let eval_dir = out.join("eval");
    let eval_args = |samples: &Path, corrupted: bool, inception: bool, name: &str| {
        let mut a = vec![
            s("eval"),
            s("--samples"),
            path_arg(samples),
            s("--reference"),
            s(plan.reference),
        ];
        if corrupted {
            a.extend([s("--transform"), corrupt.clone()]);
        }
        a.extend([
            s("--metrics"),
            s(if inception { "fid,kid" } else { "spectral" }),
            s("--seed"),
            seed.clone(),
        ]);
        if inception && let Some(w) = &weights {
            a.extend([s("--inception"), path_arg(w)]);
        }
        a.extend([s("--out"), path_arg(&eval_dir.join(name)), s("--overwrite")]);
        a.extend(device.iter().cloned());
        a
    };
    let untrained_clean = runner.run(
        "evaluate the untrained model against clean data",
        &eval_args(&untrained_dir, false, false, "untrained-vs-clean"),
        None,
        true,
    )?;
    let untrained_corrupted = runner.run(
        "evaluate the untrained model against corrupted data",
        &eval_args(&untrained_dir, true, false, "untrained-vs-corrupted"),
        None,
        true,
    )?;
    let mut evaluated = Vec::new();
    for (model, (dir, _)) in models.iter().zip(&sampled) {
        let clean = runner.run(
            &format!("evaluate {} against clean data", model.key),
            &eval_args(dir, false, false, &format!("{}-vs-clean", model.key)),
            None,
            true,
        )?;
        let corrupted = runner.run(
            &format!("evaluate {} against corrupted data", model.key),
            &eval_args(dir, true, false, &format!("{}-vs-corrupted", model.key)),
            None,
            true,
        )?;
        let fid = if with_fid {
            let mut a = eval_args(dir, false, true, &format!("{}-fid", model.key));
            a.extend([s("--count"), plan.fid_count.to_string()]);
            runner.run(
                &format!("FID and KID of {} against clean data", model.key),
                &a,
                None,
                true,
            )?
        } else {
            Value::Null
        };
        evaluated.push((clean, corrupted, fid));
    }

    // 5. Figures and the report.
    let results = Results::collect(
        &models,
        (&untrained_clean, &untrained_corrupted),
        &evaluated,
    )?;
    let logs: Vec<RunLog> = trained
        .iter()
        .map(|(dir, _, _)| read_log(&dir.join("log.csv"), plan.batch))
        .collect::<Result<_, _>>()?;
    let report_started = Instant::now();
    write_figures(&figures, &plan, &models, &results, &logs)?;
    let total_seconds = started.elapsed().as_secs_f64();
    let settings = DemoSettings {
        out: args.out.clone(),
        seed: args.seed,
        device: args.device.clone(),
        quick: args.quick,
    };
    let summary = summary_json(
        &settings,
        &plan,
        &models,
        &results,
        &runner.stages,
        total_seconds,
        with_fid,
    );
    let report = report_markdown(
        &settings,
        &plan,
        &models,
        &results,
        &runner.stages,
        &sampled,
        &logs,
        total_seconds,
        weights.as_deref(),
        report_started.elapsed().as_secs_f64(),
    );
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    write_atomic(&report_path, report.as_bytes())?;
    if args.json {
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&summary)?))?;
    } else {
        print_stdout(&format!(
            "{}\n",
            summary_line(&plan, &results, &report_path, total_seconds)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
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
