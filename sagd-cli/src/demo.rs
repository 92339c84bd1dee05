//! `sagd demo`: the papers' headline capability in minutes, with a report. The demo is
//! [`sagd_runs::demo::demo_run`]; this parses the flags and prints its stages and summary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use sagd_core::DeviceSpec;
use sagd_runs::demo::{DemoEvent, DemoRequest, demo_run};

use crate::print_stdout;

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
    #[arg(long, default_value = "cpu", value_parser = crate::parse::device)]
    device: DeviceSpec,
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

/// Runs `sagd demo`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let request = DemoRequest {
        out: args.out.clone(),
        seed: args.seed,
        device: args.device,
        quick: args.quick,
        overwrite: args.overwrite,
        inception: args.inception.clone(),
        quiet: args.quiet,
        exe: std::env::current_exe().context("cannot find the sagd binary itself")?,
    };
    let done = demo_run(&request, &mut |event| match event {
        DemoEvent::Stage {
            done,
            total,
            label,
            command,
        } if !args.quiet => eprintln!("[{done}/{total}] {label}: {command}"),
        DemoEvent::Stage { .. } => {}
        DemoEvent::FailedOutput(text) => eprint!("{text}"),
    })?;
    if args.json {
        print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&done.summary)?
        ))?;
    } else {
        print_stdout(&format!("{}\n", done.line))?;
    }
    Ok(ExitCode::SUCCESS)
}
