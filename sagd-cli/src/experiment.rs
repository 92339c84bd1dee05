//! `sagd experiment FILE.toml`: every arm and seed of an experiment trained, sampled and
//! evaluated (or measured for learning curves), then the tables and figures. The experiment is
//! [`sagd_runs::experiment::experiment_run`]; this parses the flags and prints its lines.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use sagd_runs::experiment::{ExperimentEvent, ExperimentRequest, experiment_run};

use crate::print_stdout;

/// Arguments of `sagd experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The experiment file (TOML: title, kind, seeds, [sample], [eval] or [emergence], and
    /// [[arm]] entries naming run configs), e.g. experiments/alpha-sweep.toml.
    file: PathBuf,
    /// Output folder (default: the file's `out`, else runs/<file stem>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Arm-seed pairs worked on at once (training uses about one core each on the CPU).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Only these arms (comma-separated names); the tables still show every arm.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run nothing: rebuild results.md, results.json and the figures from what is on disk.
    #[arg(long)]
    report_only: bool,
    /// No progress bars or stage lines (failures are still printed).
    #[arg(long)]
    quiet: bool,
    /// Print results.json's content.
    #[arg(long)]
    json: bool,
}

/// Runs `sagd experiment`.
pub fn run(args: &ExperimentArgs) -> Result<ExitCode> {
    let request = ExperimentRequest {
        file: args.file.clone(),
        out: args.out.clone(),
        jobs: args.jobs,
        only: args.only.clone(),
        report_only: args.report_only,
        quiet: args.quiet,
        stage_stdout: !args.json,
        exe: std::env::current_exe().context("cannot find the sagd binary")?,
    };
    let result = experiment_run(&request, &|event| match event {
        ExperimentEvent::Line(line) => eprintln!("{line}"),
        ExperimentEvent::Written { json, .. } if args.json => {
            match std::fs::read_to_string(&json) {
                Ok(text) => {
                    let _ = print_stdout(&text);
                }
                Err(e) => eprintln!("error: cannot read {}: {e}", json.display()),
            }
        }
        ExperimentEvent::Written { .. } => {}
    });
    let done = result?;
    if !args.quiet && args.report_only {
        eprintln!(
            "results rebuilt from what is on disk: {}",
            done.report.display()
        );
    } else if !args.quiet {
        eprintln!(
            "{} arm-seed pairs in {:.1} min; results in {}",
            done.pairs,
            done.seconds / 60.0,
            done.report.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
