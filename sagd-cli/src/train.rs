//! `sagd train`: runs [`sagd_models::train`] with a progress bar, `log.csv` and checkpoints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sagd_models::parallel::ReplicaDevice;
use sagd_models::{Event, ModelError, RunConfig, TrainOptions};
use serde_json::json;

use crate::UsageError;
use crate::stages::Lock;

/// Arguments of `sagd train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run config (TOML; see README). With --resume it may be left out: the run
    /// directory's config.toml is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run directory: config.toml, log.csv, checkpoints/.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its newest checkpoint, exactly as if it had never
    /// stopped. A run that is already complete is left as it is.
    #[arg(long)]
    resume: bool,
    /// Device: cpu, or cuda (built with --features cuda; the GPU is checked before any
    /// work); ndarray and libtorch are other CPU backends in builds with those features.
    /// Overrides the config (a resumed run keeps its own).
    #[arg(long)]
    device: Option<String>,
    /// Data-parallel training over several devices, comma-separated: `cuda:0,cuda:1` (each GPU
    /// once), or `cpu,cpu` for CPU replicas sharing the one CPU device. The batch must divide
    /// by their number. Sets the config's `devices` (and `device` to their kind); may change
    /// on resume, as the trajectory is the single-device one.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    devices: Option<Vec<String>>,
    /// The run's total length: sets the config's `steps`, which fixes the learning-rate
    /// schedule. For a new run only; a resumed run keeps its own (a different value is
    /// refused).
    #[arg(long, value_name = "N")]
    total_steps: Option<u64>,
    /// End this invocation after step STEP, leaving a checkpoint there, without changing the
    /// run (its length and schedule stay the config's `steps`); continue later with --resume.
    #[arg(long, value_name = "STEP")]
    stop_at: Option<u64>,
    /// Replaced by --total-steps and --stop-at (kept only to say so).
    #[arg(long, hide = true)]
    steps: Option<u64>,
    /// Checkpoint interval. Overrides the config.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Seed. Overrides the config (a resumed run keeps its own).
    #[arg(long)]
    seed: Option<u64>,
    /// Train even if the terminal-SNR check finds modes the noise never drowns.
    #[arg(long)]
    allow_low_terminal_noise: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print a JSON summary at the end.
    #[arg(long)]
    json: bool,
}

fn model_error(e: ModelError) -> anyhow::Error {
    match e {
        ModelError::Data(d) => crate::data::classify(d),
        e if e.is_usage() => anyhow::Error::new(UsageError(e.to_string())),
        e => anyhow::Error::new(e),
    }
}

/// Runs `sagd train`.
pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    if let Some(n) = args.steps {
        return Err(anyhow::Error::new(UsageError(format!(
            "--steps {n}: `sagd train` has no --steps; use --total-steps {n} to set the run's \
             length (config key `steps`, which fixes the learning-rate schedule) or --stop-at \
             {n} to end this invocation early without changing the run"
        ))));
    }
    let path = match (&args.config, args.resume) {
        (Some(p), _) => p.clone(),
        (None, true) if !args.out.join("config.toml").exists() => {
            return Err(anyhow::Error::new(UsageError(format!(
                "--resume: {} holds no run (no config.toml); start one with --config RUN.toml",
                args.out.display()
            ))));
        }
        (None, true) => args.out.join("config.toml"),
        (None, false) => {
            return Err(anyhow::Error::new(UsageError(
                "--config RUN.toml is required (or --resume on a run directory)".to_string(),
            )));
        }
    };
    if !path.exists() {
        return Err(anyhow::Error::new(UsageError(format!(
            "{}: no such config file",
            path.display()
        ))));
    }
    let mut config = RunConfig::from_file(&path).map_err(model_error)?;
    if let Some(d) = &args.device {
        config.device = d.clone();
    }
    if let Some(list) = &args.devices {
        let list: Vec<String> = list.iter().map(|d| d.trim().to_string()).collect();
        // `device` becomes the kind the list shares (a mixed list is refused by validate);
        // `cpu` or `cuda:0` alone is the plain run on that device.
        let first = list
            .first()
            .and_then(|d| sagd_models::parallel::ReplicaDevice::parse(d).ok());
        if let Some(kind) = first {
            if let Some(d) = &args.device
                && d != kind.kind()
            {
                return Err(anyhow::Error::new(UsageError(format!(
                    "--device {d} and --devices {}: the devices are {} devices; give one of \
                     the two (--devices sets the device kind)",
                    list.join(","),
                    kind.kind()
                ))));
            }
            config.device = kind.kind().to_string();
        }
        let plain = list.len() == 1
            && matches!(
                first,
                Some(ReplicaDevice::Cpu) | Some(ReplicaDevice::Cuda(0))
            );
        config.devices = if plain { Vec::new() } else { list };
    }
    if let Some(s) = args.total_steps {
        config.steps = s;
    }
    if let Some(c) = args.checkpoint_every {
        config.checkpoint_every = c;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if args.allow_low_terminal_noise {
        config.allow_low_terminal_noise = true;
    }
    config.validate().map_err(model_error)?;
    let written = (1..=config.steps)
        .filter(|&step| config.checkpoint_due(step, config.steps))
        .count();
    if !config.checkpoint_at.is_empty() && written > config.keep_checkpoints {
        // Printed even with --quiet: learning curves need the early checkpoints.
        eprintln!(
            "warning: this run writes {written} checkpoints (checkpoint_at, every \
             checkpoint_every and the last) but keep_checkpoints = {} keeps only the newest; \
             raise keep_checkpoints to keep them all",
            config.keep_checkpoints
        );
    }

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.stop_at.unwrap_or(config.steps))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut first_step = None;
    let mut checkpoints = 0usize;
    let mut observer = |event: &Event| match event {
        Event::Started {
            start,
            end,
            total,
            params,
            shape,
            replicas,
        } => {
            bar.set_length(*end);
            bar.set_position(*start);
            first_step = Some((*start, Instant::now()));
            let stop = if end < total {
                format!(", stopping after step {end}")
            } else {
                String::new()
            };
            if !args.quiet {
                // Through the bar, which may be hidden (stderr not a terminal): printed always.
                let on = if *replicas > 1 {
                    let share = config.batch / replicas;
                    let list = if config.devices.iter().all(|d| d == &config.devices[0]) {
                        format!("{replicas} × {}", config.devices[0])
                    } else {
                        config.devices.join(", ")
                    };
                    format!(
                        ", data-parallel over {replicas} replicas [{list}], {share} image{} \
                         each per step",
                        if share == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                };
                bar.suspend(|| {
                    eprintln!(
                        "training {} ({params} parameters) on {}x{}x{} images: steps \
                         {start}..{total}{stop}{on}",
                        config.model.kind(),
                        shape[0],
                        shape[1],
                        shape[2]
                    )
                });
            }
        }
        // Warnings are printed even with --quiet.
        Event::Warning(w) => bar.suspend(|| eprintln!("warning: {w}")),
        Event::Step {
            step,
            loss,
            lr,
            grad_norm,
        } => {
            bar.set_position(*step);
            if let Some((s0, t0)) = first_step {
                let rate =
                    (step - s0) as f64 * config.batch as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "loss {loss:.4}  lr {lr:.2e}  |g| {grad_norm:.3}  {rate:.1} img/s"
                ));
            }
        }
        Event::Checkpoint { .. } => checkpoints += 1,
    };
    let options = TrainOptions {
        resume: args.resume,
        stop_at: args.stop_at,
    };
    // Two trainers in one run would interleave their checkpoints and logs: one at a time. A
    // folder made here for the lock is removed again if the run fails before writing to it.
    let made = !args.out.exists();
    if made {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    // (A file named as --out is refused by the trainer, naming it.)
    let lock = if args.out.is_dir() {
        Some(Lock::take(&args.out, "train")?)
    } else {
        None
    };
    let summary = sagd_models::train(&config, &args.out, &options, &mut observer);
    drop(lock);
    if made && summary.is_err() {
        let _ = std::fs::remove_dir(&args.out);
    }
    bar.finish_and_clear();
    let summary = summary.map_err(model_error)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "out": args.out,
                "step": summary.step,
                "total_steps": summary.total,
                "complete": summary.complete(),
                "ran_steps": summary.ran,
                "last_loss": summary.last_loss,
                "checkpoint": summary.checkpoint,
                "seconds": seconds,
                "devices": if config.devices.is_empty() {
                    vec![config.device.clone()]
                } else {
                    config.devices.clone()
                },
                "replicas": config.devices.len().max(1),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let loss = summary
        .last_loss
        .map_or("none".to_string(), |l| format!("{l:.5}"));
    let out = args.out.display();
    if summary.ran == 0 {
        println!(
            "the run in {out} is already complete at step {} of {}; nothing to do (last loss \
             {loss}; checkpoint {})",
            summary.step,
            summary.total,
            summary.checkpoint.display()
        );
    } else if summary.complete() {
        println!(
            "trained to step {} of {} in {seconds:.1} s; last loss {loss}; checkpoint {}",
            summary.step,
            summary.total,
            summary.checkpoint.display()
        );
    } else {
        println!(
            "stopped at step {} of {} in {seconds:.1} s; last loss {loss}; checkpoint {}; \
             continue with `sagd train --out {out} --resume`",
            summary.step,
            summary.total,
            summary.checkpoint.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
