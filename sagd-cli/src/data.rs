//! `sagd data`: statistics, previews and exports of any dataset spec. The work is
//! [`sagd_runs::data`]'s; this parses the flags and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use sagd_core::RadiusConvention;
use sagd_runs::data::{DataRequest, data_export, data_preview, data_stats, write_psd_png};

use crate::usage;

/// `sagd data …`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Count, shape, classes, mean pixel and radially averaged power spectrum.
    Stats(StatsArgs),
    /// An image grid of a seeded random sample of the images.
    Preview(PreviewArgs),
    /// The images after the transforms, as float32 (N, C, H, W) .npy in the models' range.
    Export(ExportArgs),
}

/// Options shared by the data commands.
#[derive(Debug, Args)]
pub struct Source {
    /// The data: mnist:DIR, fashion-mnist:DIR, cifar10:DIR, folder:DIR, npy:FILE, npz:FILE,
    /// grf:beta=2,size=1x32x32,n=1000,seed=0, gmm:…, shapes:…; add ,split=test for the test split.
    spec: String,
    /// A transform, applied in order (repeatable): pad:2, crop:28x28, resize:32x32, scale,
    /// hflip:0.5, channels:3, corrupt:a=0.1,b=0.2,gamma=1.
    #[arg(long = "transform", value_name = "T")]
    transforms: Vec<String>,
    /// Seed of the random transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `sagd data stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    source: Source,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Plot the radially averaged power spectrum (log-log) to this PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Radius convention of the radial PSD.
    #[arg(long, default_value = "cycles")]
    radius: String,
    /// Use only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Also compute the covariance eigen-spectrum (PCA; dimension at most 3×32×32).
    #[arg(long)]
    pca: bool,
    /// Images used for the PCA (the eigen-solver is cubic in min(N, C·H·W)).
    #[arg(long, default_value_t = 2000)]
    pca_images: usize,
}

/// `sagd data preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    source: Source,
    /// Output PNG.
    #[arg(long)]
    png: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    count: usize,
}

/// `sagd data export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    source: Source,
    /// Output .npy.
    #[arg(long)]
    out: PathBuf,
    /// Number of images (default: all).
    #[arg(long)]
    count: Option<usize>,
}

impl Source {
    fn request(&self) -> DataRequest {
        DataRequest {
            spec: self.spec.clone(),
            transforms: self.transforms.clone(),
            seed: self.seed,
        }
    }
}

/// Runs a data command.
pub fn run(command: &DataCommand) -> Result<ExitCode> {
    match command {
        DataCommand::Stats(args) => stats(args),
        DataCommand::Preview(args) => preview(args),
        DataCommand::Export(args) => export(args),
    }
}

fn stats(args: &StatsArgs) -> Result<ExitCode> {
    let radius: RadiusConvention = args
        .radius
        .parse()
        .map_err(|e| usage(format!("--radius: {e}")))?;
    let stats = data_stats(
        &args.source.request(),
        radius,
        args.limit,
        args.pca.then_some(args.pca_images),
    )?;
    if let Some(path) = &args.png {
        write_psd_png(path, &stats)?;
    }
    let [c, h, w] = stats.shape;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&stats)?)?
        );
    } else {
        println!("data        {}", stats.spec);
        println!("count       {}", stats.count);
        println!(
            "shape       {c}x{h}x{w} ({})",
            if stats.dtype == "u8" {
                "u8, read as v/255"
            } else {
                "f32"
            }
        );
        if let Some(classes) = &stats.classes {
            let parts: Vec<String> = classes
                .iter()
                .map(|c| format!("{}: {}", c.name, c.count))
                .collect();
            println!("classes     {}", parts.join(", "));
        }
        println!("mean pixel  {:.5}", stats.mean);
        println!("radial PSD (radius in the {radius} convention):");
        for b in &stats.radial_psd {
            println!(
                "  {:>8.4}  {:>12.5e}  ({} frequencies)",
                b.radius, b.power, b.count
            );
        }
        if let Some(pca) = &stats.pca_eigenvalues {
            let top: Vec<String> = pca.iter().take(10).map(|v| format!("{v:.4e}")).collect();
            println!(
                "PCA eigenvalues (largest 10 of {}): {}",
                pca.len(),
                top.join(" ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn preview(args: &PreviewArgs) -> Result<ExitCode> {
    let shown = data_preview(&args.source.request(), args.count, &args.png)?;
    eprintln!("wrote {} ({shown} images)", args.png.display());
    Ok(ExitCode::SUCCESS)
}

fn export(args: &ExportArgs) -> Result<ExitCode> {
    let done = data_export(&args.source.request(), args.count, &args.out)?;
    let [c, h, w] = done.shape;
    eprintln!(
        "wrote {} ({} x {c}x{h}x{w} float32; transforms: {})",
        args.out.display(),
        done.count,
        done.transforms.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}
