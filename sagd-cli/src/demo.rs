//! `sagd demo`: the papers' headline capability in minutes, with a report.
//!
//! On the built-in `shapes` data corrupted by white noise in one frequency band, it trains two
//! models (isotropic noise, and the two-band SAGD spectrum whose gap is exactly the corrupted
//! band: selective omission), samples both with the same sampler and seed, evaluates both
//! against clean and corrupted data and writes `report.md`.
//!
//! Every stage is one ordinary `sagd` subcommand, run as a child process of this binary with
//! the arguments the report prints: the demo has no training, sampling or evaluation of its
//! own, and each part of the report reproduces with the command written beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use serde_json::{Value, json};

use crate::{print_stdout, usage, write_atomic};
use sagd_plot::{LinePlot, Series, write_line_plots_png};

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

/// The demo's setting: data, corruption, models, training and sampling lengths.
struct Plan {
    /// Training data (without the corruption).
    data: &'static str,
    /// Held-out data the samples are compared with.
    reference: &'static str,
    /// The corrupted band `[a, b]`, unit radius convention.
    band: (f64, f64),
    /// Amplitude γ of the band noise.
    gamma: f64,
    /// Training steps of each model.
    steps: u64,
    /// Steps of the linear warm-up.
    warmup: u64,
    /// Checkpoint interval.
    checkpoint_every: u64,
    /// Log interval.
    log_every: u64,
    batch: usize,
    /// Samples per trained model (and reference images per comparison).
    samples: usize,
    /// Samples of the untrained model.
    untrained_samples: usize,
    /// DDIM steps.
    sampler_steps: usize,
    /// Samples (and clean test images) per FID/KID: the Inception network's 299×299 input
    /// makes it the slowest stage on a CPU (about 6 images/s).
    fid_count: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
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

    fn corrupt(&self) -> String {
        format!("corrupt:a={},b={}", self.band.0, self.band.1)
    }

    /// The two-band spectrum whose gap is exactly the corrupted band.
    fn sagd_spectrum(&self) -> String {
        format!(
            "two-band:a_l=0,b_l={},a_h={},b_h=1",
            self.band.0, self.band.1
        )
    }

    /// The index of the evaluation's unit-radius band `[i/10, (i+1)/10)` that is the corrupted
    /// band (the plan's band is one of them).
    fn eval_band(&self) -> usize {
        (self.band.0 * sagd_eval::spectral::BANDS as f64).round() as usize
    }

    fn config(&self, seed: u64, spectrum: &str, what: &str) -> String {
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

/// Quotes `arg` for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// One stage: a `sagd` subcommand, its wall time and what it printed as JSON.
struct Stage {
    label: String,
    /// The command that reproduces the stage from scratch.
    command: String,
    /// Wall time in this invocation; `None` for a stage an earlier, interrupted invocation
    /// completed.
    seconds: Option<f64>,
    output: Value,
}

/// Runs the stages as child processes of this binary, in order, with one header line each.
struct Runner {
    exe: PathBuf,
    quiet: bool,
    done: usize,
    total: usize,
    stages: Vec<Stage>,
}

fn command_line(args: &[String]) -> String {
    std::iter::once("sagd".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
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

/// Asks Linux to send SIGTERM to a stage when the demo dies, so that killing the demo never
/// leaves a trainer running on its own (its checkpoints are written atomically, so the kill is
/// safe). Elsewhere a no-op.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child's own state.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// `DIR/.demo.lock`, holding the PID of the demo working in DIR; removed when dropped.
struct Lock(PathBuf);

impl Lock {
    /// Takes the lock, or refuses when a live demo holds it (a stale lock, whose process is
    /// gone, is taken over).
    fn take(out: &Path) -> Result<Self> {
        let path = out.join(".demo.lock");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(pid) = text.trim().parse::<u32>()
            && pid != std::process::id()
            && demo_alive(pid)
        {
            return Err(usage(format!(
                "another sagd demo (process {pid}) is working in {}; wait for it or stop it \
                 (or remove {} if that process is not a demo)",
                out.display(),
                path.display()
            )));
        }
        write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(Self(path))
    }
}

/// Whether process `pid` is a running (not zombie) `sagd demo`, from Linux's `/proc`;
/// elsewhere any lock is taken as stale.
fn demo_alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name: `PID (comm) S …`.
    let running = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X');
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    running && cmdline.split(|b| *b == 0).any(|arg| arg == b"demo")
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

/// A model of the demo: its name in paths, its label in the report, its run and spectrum.
struct Model {
    key: &'static str,
    label: &'static str,
    spectrum: String,
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
    let _lock = Lock::take(out)?;
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
        .collect::<Result<_>>()?;
    let report_started = Instant::now();
    write_figures(&figures, &plan, &models, &results, &logs)?;
    let total_seconds = started.elapsed().as_secs_f64();
    let summary = summary_json(
        args,
        &plan,
        &models,
        &results,
        &runner.stages,
        total_seconds,
        with_fid,
    );
    let report = report_markdown(
        args,
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

/// The numbers the report is made of, read from the evaluations' JSON.
struct Results {
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

fn number(value: &Value, path: &[&str]) -> Result<f64> {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_f64()
        .ok_or_else(|| anyhow!("the evaluation's JSON has no number at {}", path.join(".")))
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

fn spectral_parts(value: &Value) -> Result<SpectralParts> {
    let bands = value["spectral"]["bands"]
        .as_array()
        .ok_or_else(|| anyhow!("the evaluation's JSON has no spectral.bands"))?;
    let radial = value["spectral"]["radial"]
        .as_array()
        .ok_or_else(|| anyhow!("the evaluation's JSON has no spectral.radial"))?;
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
    fn collect(
        models: &[Model],
        untrained: (&Value, &Value),
        evaluated: &[(Value, Value, Value)],
    ) -> Result<Self> {
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
struct RunLog {
    /// (step, mean loss over the log interval ending there).
    losses: Vec<(f64, f64)>,
    /// Training seconds, from each row's images/s over the steps since the previous row
    /// (so an interrupted and continued run counts each step once).
    seconds: f64,
    /// Images trained on.
    images: f64,
}

fn read_log(path: &Path, batch: usize) -> Result<RunLog> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
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

fn write_figures(
    dir: &Path,
    plan: &Plan,
    models: &[Model],
    results: &Results,
    logs: &[RunLog],
) -> Result<()> {
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
struct Verdict {
    learned: Vec<(String, bool, f64)>,
    /// Band ratios in the corrupted band: corrupted data, isotropic, SAGD.
    ratios: (f64, f64, f64),
    omitted: bool,
}

/// A model "learned the data" when its log-spectral distance to the data it was trained
/// towards is below half the untrained model's.
const LEARNED_FRACTION: f64 = 0.5;

fn verdict(plan: &Plan, results: &Results) -> Verdict {
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

#[allow(clippy::too_many_arguments)]
fn summary_json(
    args: &DemoArgs,
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

fn summary_line(plan: &Plan, results: &Results, report: &Path, seconds: f64) -> String {
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

#[allow(clippy::too_many_arguments)]
fn report_markdown(
    args: &DemoArgs,
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
