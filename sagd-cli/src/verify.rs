//! `sagd verify`: the property suite P1–P6 on a spectrum ([`sagd_core::verify`]), or with
//! `--data` the terminal-SNR check of the spectrum against training data
//! ([`sagd_runs::verify`]).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use sagd_core::verify::{Outcome, VerifyConfig, verify_spectrum_string};
use sagd_core::{Normalization, Schedule};
use sagd_runs::data::DataRequest;
use sagd_runs::verify::terminal_check;
use serde_json::json;

use crate::usage;

/// `sagd verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The spectrum: NAME (all parameters random), NAME:key=value,... (those fixed) or @file.toml.
    spec: String,
    /// Random cases per property.
    #[arg(long, default_value_t = 64)]
    cases: u32,
    /// Seed of the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest grid side.
    #[arg(long, default_value_t = 9)]
    max_side: usize,
    /// Largest channel count.
    #[arg(long, default_value_t = 2)]
    max_channels: usize,
    /// energy | none | per-sample-std.
    #[arg(long, default_value = "energy", value_parser = crate::parse::normalization)]
    normalization: Normalization,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Instead of the property suite, run the terminal-SNR check of SPEC against this training
    /// data (a dataset spec): does the forward process reach N(0, Σ_w) at t = T in every mode?
    #[arg(long, value_name = "DATASPEC")]
    data: Option<String>,
    /// Transforms of the data for --data (repeatable), as in `sagd data`.
    #[arg(long = "transform", value_name = "T", requires = "data")]
    transforms: Vec<String>,
    /// Schedule whose last level is checked with --data: ddpm-linear or cosine.
    #[arg(long, default_value = "ddpm-linear", requires = "data")]
    schedule: String,
    /// With --data: report, but do not fail, when the signal dominates some mode at t = T.
    #[arg(long, requires = "data")]
    allow_low_terminal_noise: bool,
}

/// Runs `sagd verify`.
pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    if args.cases == 0 {
        return Err(usage("--cases: must be at least 1"));
    }
    if args.max_side == 0 || args.max_channels == 0 {
        return Err(usage("--max-side and --max-channels must be at least 1"));
    }
    if args.max_side > 16 {
        return Err(usage(
            "--max-side: at most 16 (the suite builds dense d×d matrices)",
        ));
    }
    if let Some(data) = &args.data {
        return terminal(args, data);
    }
    let config = VerifyConfig {
        cases: args.cases,
        seed: args.seed,
        max_side: args.max_side,
        max_channels: args.max_channels,
        normalization: args.normalization,
    };
    let report = verify_spectrum_string(&args.spec, &config).map_err(usage)?;
    if args.json {
        let props: Vec<_> = report
            .properties
            .iter()
            .map(|p| {
                let (status, detail) = match &p.outcome {
                    Outcome::Passed { applicable } => ("passed", json!({ "cases": applicable })),
                    Outcome::NotApplicable { reason } => ("not-applicable", json!({ "reason": reason })),
                    Outcome::Failed { case, message } => ("failed", json!({ "case": case, "message": message })),
                };
                json!({ "id": p.id, "description": p.description, "status": status, "detail": detail })
            })
            .collect();
        let out = json!({
            "spectrum": report.spectrum,
            "cases": report.cases,
            "seed": args.seed,
            "normalization": config.normalization.name(),
            "passed": report.passed(),
            "properties": props,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", report.summary());
        println!(
            "{}",
            if report.passed() {
                "all properties hold"
            } else {
                "VERIFICATION FAILED"
            }
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `sagd verify SPEC --data DATASPEC`: the terminal-SNR check of the spectrum against the data
/// (in the models' range, as training sees it).
fn terminal(args: &VerifyArgs, data: &str) -> Result<ExitCode> {
    let schedule = match args.schedule.as_str() {
        "ddpm-linear" => Schedule::ddpm_linear(),
        "cosine" => Schedule::cosine(),
        other => {
            return Err(usage(format!(
                "--schedule: `{other}` is not ddpm-linear or cosine"
            )));
        }
    };
    let spectrum = crate::parse::spectrum(&args.spec).map_err(usage)?;
    let data = DataRequest {
        spec: data.to_string(),
        transforms: args.transforms.clone(),
        seed: 0,
    };
    let result = terminal_check(&spectrum, &data, &schedule, args.normalization)?;
    let report = &result.report;
    let refused = report.signal_dominates() && !args.allow_low_terminal_noise;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&result)?)?
        );
    } else {
        println!("{}", report.summary());
    }
    if report.affected > 0 && !args.json {
        eprintln!(
            "warning: {} modes keep signal at t = T; sampling from the prior N(0, Σ_w) cannot \
             recover them",
            report.affected
        );
    }
    if refused {
        eprintln!(
            "error: the signal dominates the noise in {} modes at t = T (pass \
             --allow-low-terminal-noise to accept)",
            report.dominated
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
