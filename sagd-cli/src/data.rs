//! `sagd data`: statistics, previews and exports of any dataset spec. The work is
//! [`sagd_datasets::run`]'s; this parses the flags and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use sagd_core::RadiusConvention;
use sagd_datasets::DatasetError;
use sagd_datasets::run::{
    DataRequest, data_export, data_preview, data_stats, terminal_check as check, write_psd_png,
};

use crate::UsageError;

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

/// Spec and parameter mistakes are usage errors (exit 2); unreadable or malformed files are
/// runtime failures (exit 1).
pub fn classify(error: DatasetError) -> anyhow::Error {
    match error {
        DatasetError::Spec { .. }
        | DatasetError::InvalidParam { .. }
        | DatasetError::Request(_) => anyhow::Error::new(UsageError(error.to_string())),
        other => anyhow::Error::new(other),
    }
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
        .map_err(|e| anyhow::Error::new(UsageError(format!("--radius: {e}"))))?;
    let stats = data_stats(
        &args.source.request(),
        radius,
        args.limit,
        args.pca.then_some(args.pca_images),
    )
    .map_err(classify)?;
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
    let shown =
        data_preview(&args.source.request(), args.count, &args.png).map_err(|e| match e {
            DatasetError::Plot(_) => anyhow::Error::new(e),
            e => classify(e),
        })?;
    eprintln!("wrote {} ({shown} images)", args.png.display());
    Ok(ExitCode::SUCCESS)
}

fn export(args: &ExportArgs) -> Result<ExitCode> {
    let done = data_export(&args.source.request(), args.count, &args.out).map_err(classify)?;
    let [c, h, w] = done.shape;
    eprintln!(
        "wrote {} ({} x {c}x{h}x{w} float32; transforms: {})",
        args.out.display(),
        done.count,
        done.transforms.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `sagd verify SPEC --data DATASPEC`: the terminal-SNR check of the spectrum against the data
/// (in the models' range, as training sees it).
pub fn terminal_check(
    spec: &str,
    data: &str,
    transforms: &[String],
    schedule: &str,
    normalization: sagd_core::Normalization,
    allow: bool,
    as_json: bool,
) -> Result<ExitCode> {
    let usage = |m: String| anyhow::Error::new(UsageError(m));
    let schedule = match schedule {
        "ddpm-linear" => sagd_core::Schedule::ddpm_linear(),
        "cosine" => sagd_core::Schedule::cosine(),
        other => {
            return Err(usage(format!(
                "--schedule: `{other}` is not ddpm-linear or cosine"
            )));
        }
    };
    let data = DataRequest {
        spec: data.to_string(),
        transforms: transforms.to_vec(),
        seed: 0,
    };
    let result = check(spec, &data, &schedule, normalization).map_err(classify)?;
    let report = &result.report;
    let refused = report.signal_dominates() && !allow;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&result)?)?
        );
    } else {
        println!("{}", report.summary());
    }
    if report.affected > 0 && !as_json {
        eprintln!(
            "warning: {} modes keep signal at t = T; sampling from the prior N(0, Σ_w) cannot recover them",
            report.affected
        );
    }
    if refused {
        eprintln!(
            "error: the signal dominates the noise in {} modes at t = T (pass --allow-low-terminal-noise to accept)",
            report.dominated
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
