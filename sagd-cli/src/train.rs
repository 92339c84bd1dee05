//! `sagd train`: runs [`sagd_models::train`] with a progress bar, `log.csv` and checkpoints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sagd_models::{Event, ModelError, RunConfig, TrainOptions};
use serde_json::json;

use crate::UsageError;

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
    /// Continue the run in --out from its newest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Device: cpu, cuda (built with --features cuda) or wgpu. Overrides the config.
    #[arg(long)]
    device: Option<String>,
    /// Total steps. Overrides the config.
    #[arg(long)]
    steps: Option<u64>,
    /// Checkpoint interval. Overrides the config.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Seed. Overrides the config.
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
    let path = match (&args.config, args.resume) {
        (Some(p), _) => p.clone(),
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
    if let Some(s) = args.steps {
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
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.steps)
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
            total,
            params,
            shape,
        } => {
            bar.set_position(*start);
            first_step = Some((*start, Instant::now()));
            bar.println(format!(
                "training {} ({params} parameters) on {}x{}x{} images, steps {start}..{total}",
                config.model.kind(),
                shape[0],
                shape[1],
                shape[2]
            ));
        }
        Event::Warning(w) => bar.println(format!("warning: {w}")),
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
        stop_after: None,
    };
    let summary = sagd_models::train(&config, &args.out, &options, &mut observer);
    bar.finish_and_clear();
    let summary = summary.map_err(model_error)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "out": args.out,
                "steps": summary.steps,
                "last_loss": summary.last_loss,
                "checkpoint": summary.checkpoint,
                "seconds": seconds,
            })
        );
    } else {
        println!(
            "trained to step {} in {:.1} s; last loss {:.5}; checkpoint {}",
            summary.steps,
            seconds,
            summary.last_loss,
            summary.checkpoint.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
