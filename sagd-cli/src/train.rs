//! `sagd train`: runs [`sagd_runs::train::train_run`] with a progress bar and prints its
//! summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use sagd_core::DeviceSpec;
use sagd_core::device::parse_device_list;
use sagd_models::Event;
use sagd_runs::train::{TrainRequest, resolve_config, train_resolved};

use crate::progress::progress_bar;
use crate::usage;

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
    /// work); cube-cpu runs the GPU's kernels on the CPU (--features cube-cpu); ndarray and
    /// libtorch are other CPU backends in builds with those features.
    /// Overrides the config (for a new run: a resumed run keeps its own, and another value is
    /// refused).
    #[arg(long, value_parser = crate::parse::device)]
    device: Option<DeviceSpec>,
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
    /// Seed. Overrides the config (for a new run: a resumed run keeps its own, and another
    /// value is refused).
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

/// Runs `sagd train`.
pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    if let Some(n) = args.steps {
        return Err(usage(format!(
            "--steps {n}: `sagd train` has no --steps; use --total-steps {n} to set the run's \
             length (config key `steps`, which fixes the learning-rate schedule) or --stop-at \
             {n} to end this invocation early without changing the run"
        )));
    }
    let devices = match &args.devices {
        Some(list) => {
            let list: Vec<&str> = list.iter().map(|d| d.trim()).collect();
            Some(parse_device_list(&list).map_err(usage)?)
        }
        None => None,
    };
    let request = TrainRequest {
        config: args.config.clone(),
        out: args.out.clone(),
        resume: args.resume,
        device: args.device,
        devices,
        total_steps: args.total_steps,
        stop_at: args.stop_at,
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
        allow_low_terminal_noise: args.allow_low_terminal_noise,
    };
    // The bar's length is the steps this invocation runs: known once the config is read.
    let config = resolve_config(&request)?;
    let bar = progress_bar(args.quiet, args.stop_at.unwrap_or(config.steps), "steps");
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
                        let each: Vec<String> =
                            config.devices.iter().map(ToString::to_string).collect();
                        each.join(", ")
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
    let run = train_resolved(&request, config.clone(), &mut observer);
    bar.finish_and_clear();
    let run = run?;
    let (summary, seconds) = (&run.summary, run.json.seconds);
    if args.json {
        println!("{}", serde_json::to_value(&run.json)?);
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
