//! `sagd noise`: coloured noise of a spectrum into a float32 `.npy` ([`sagd_runs::noise`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use sagd_core::spectrum::config_string;
use sagd_core::{DynShape, Normalization, SpectrumSpec};
use sagd_runs::noise::{NoiseRequest, noise_run};

use crate::progress::progress_bar;

/// `sagd noise`.
#[derive(Debug, Args)]
pub struct NoiseArgs {
    /// The spectrum: NAME, NAME:key=value,... or @file.toml.
    #[arg(value_parser = crate::parse::spectrum)]
    spec: SpectrumSpec,
    /// Image size CxHxW.
    #[arg(long, value_parser = crate::parse::size)]
    size: DynShape,
    /// Number of images.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .npy file.
    #[arg(long)]
    out: PathBuf,
    /// energy | none | per-sample-std.
    #[arg(long, default_value = "energy", value_parser = crate::parse::normalization)]
    normalization: Normalization,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `sagd noise`.
pub fn run(args: &NoiseArgs) -> Result<ExitCode> {
    let request = NoiseRequest {
        spectrum: args.spec.clone(),
        size: args.size,
        normalization: args.normalization,
        count: args.count,
        seed: args.seed,
        out: args.out.clone(),
    };
    let bar = progress_bar(args.quiet, args.count as u64, "images");
    let done = noise_run(&request, &mut |n| bar.set_position(n as u64));
    bar.finish_and_clear();
    let done = done?;
    let [c, h, w] = done.shape;
    if !args.quiet {
        eprintln!(
            "wrote {} ({} x {c}x{h}x{w} float32, {}, {})",
            args.out.display(),
            done.count,
            config_string(args.spec.spectrum()),
            args.normalization
        );
    }
    Ok(ExitCode::SUCCESS)
}
