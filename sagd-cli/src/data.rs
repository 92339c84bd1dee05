//! `sagd data`: statistics, previews and exports of any dataset spec.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use sagd_core::RadiusConvention;
use sagd_datasets::npy::NpyWriter;
use sagd_datasets::spec::DataSpec;
use sagd_datasets::stats::{mean_pixel, pca_spectrum, radial_psd};
use sagd_datasets::transform::Pipeline;
use sagd_datasets::{Dataset, DatasetError};
use serde_json::json;

use crate::UsageError;
use sagd_plot::{LinePlot, Series, write_image_grid_png, write_line_plot_png};

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
        DatasetError::Spec { .. } | DatasetError::InvalidParam { .. } => {
            anyhow::Error::new(UsageError(error.to_string()))
        }
        other => anyhow::Error::new(other),
    }
}

fn load(source: &Source) -> Result<(Dataset, Pipeline)> {
    let spec: DataSpec = source.spec.parse().map_err(classify)?;
    let pipeline = Pipeline::parse(&source.transforms).map_err(classify)?;
    let dataset = spec.load().map_err(classify)?;
    pipeline.output_shape(dataset.shape()).map_err(classify)?;
    Ok((dataset, pipeline))
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
    let (dataset, pipeline) = load(&args.source)?;
    let dataset = match args.limit {
        Some(n) => dataset.take(n),
        None => dataset,
    };
    let source_u8 = dataset.is_u8();
    // The mean pixel is reported on the source's own scale ([0, 1] for u8 sources), before any
    // transform; the spectra describe the data as the transforms leave it.
    let mean = mean_pixel(&dataset);
    let transformed_owned;
    let transformed = if pipeline.transforms.is_empty() {
        &dataset
    } else {
        transformed_owned = pipeline
            .apply_to(&dataset, dataset.len(), args.source.seed)
            .map_err(classify)?;
        &transformed_owned
    };
    let psd = radial_psd(transformed, radius);
    let pca = if args.pca {
        Some(pca_spectrum(transformed, Some(args.pca_images)).map_err(classify)?)
    } else {
        None
    };
    let classes = dataset.class_counts().map(|counts| {
        let names = dataset.class_names();
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = names
                    .and_then(|n| n.get(i))
                    .cloned()
                    .unwrap_or_else(|| i.to_string());
                json!({ "label": i, "name": name, "count": c })
            })
            .collect::<Vec<_>>()
    });
    if let Some(path) = &args.png {
        let x_label = format!("radius ({radius})");
        let plot = LinePlot {
            title: &format!("radially averaged power spectrum: {}", args.source.spec),
            x_label: &x_label,
            y_label: "power",
            series: vec![Series {
                name: "radial PSD",
                points: psd.iter().map(|b| (b.radius, b.power)).collect(),
                markers: true,
            }],
            log_x: true,
            log_y: true,
        };
        write_line_plot_png(path, &plot).with_context(|| format!("writing {}", path.display()))?;
    }
    let [c, h, w] = dataset.shape();
    if args.json {
        let out = json!({
            "spec": args.source.spec,
            "transforms": pipeline.transforms.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "count": dataset.len(),
            "shape": [c, h, w],
            "shape_after_transforms": transformed.shape(),
            "dtype": if source_u8 { "u8" } else { "f32" },
            "classes": classes,
            "mean": mean,
            "radius": radius.name(),
            "radial_psd": psd.iter().map(|b| json!({"radius": b.radius, "power": b.power, "count": b.count})).collect::<Vec<_>>(),
            "pca_eigenvalues": pca,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("data        {}", args.source.spec);
        println!("count       {}", dataset.len());
        println!(
            "shape       {c}x{h}x{w} ({})",
            if source_u8 {
                "u8, read as v/255"
            } else {
                "f32"
            }
        );
        if let Some(classes) = &classes {
            let parts: Vec<String> = classes
                .iter()
                .map(|c| format!("{}: {}", c["name"].as_str().unwrap_or(""), c["count"]))
                .collect();
            println!("classes     {}", parts.join(", "));
        }
        println!("mean pixel  {mean:.5}");
        println!("radial PSD (radius in the {radius} convention):");
        for b in &psd {
            println!(
                "  {:>8.4}  {:>12.5e}  ({} frequencies)",
                b.radius, b.power, b.count
            );
        }
        if let Some(pca) = &pca {
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
    if args.count == 0 {
        return Err(anyhow::Error::new(UsageError(
            "--count: must be at least 1".into(),
        )));
    }
    let (dataset, pipeline) = load(&args.source)?;
    let shown = pipeline
        .apply_to(&dataset, args.count, args.source.seed)
        .map_err(classify)?;
    let [c, h, w] = shown.shape();
    if c != 1 && c != 3 {
        return Err(anyhow::Error::new(UsageError(format!(
            "cannot show {c}-channel images; add --transform channels:1 or channels:3"
        ))));
    }
    let mut values = shown.to_f32();
    // Map to [0, 1] for display: [-1, 1] after `scale`, min–max for float sources.
    if pipeline.scales() {
        values.iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0);
    } else if !dataset.is_u8() {
        let (lo, hi) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let span = (hi - lo).max(1e-12);
        values.iter_mut().for_each(|v| *v = (*v - lo) / span);
    }
    let cols = (shown.len() as f64).sqrt().ceil() as usize;
    let scale = (128 / h.max(w)).clamp(1, 4);
    write_image_grid_png(&args.png, &values, shown.len(), c, h, w, cols, scale)
        .with_context(|| format!("writing {}", args.png.display()))?;
    eprintln!("wrote {} ({} images)", args.png.display(), shown.len());
    Ok(ExitCode::SUCCESS)
}

fn export(args: &ExportArgs) -> Result<ExitCode> {
    let (dataset, mut pipeline) = load(&args.source)?;
    // u8 sources are read in [0, 1]; the models train in [-1, 1].
    if dataset.is_u8() && !pipeline.scales() {
        pipeline
            .transforms
            .push(sagd_datasets::transform::Transform::Scale);
    }
    let count = args.count.unwrap_or(dataset.len()).min(dataset.len());
    if count == 0 {
        return Err(anyhow::Error::new(UsageError(
            "nothing to export (--count 0 or an empty dataset)".into(),
        )));
    }
    let out = pipeline
        .apply_to(&dataset, count, args.source.seed)
        .map_err(classify)?;
    let [c, h, w] = out.shape();
    let mut writer = NpyWriter::create(&args.out, &[count, c, h, w])?;
    writer.write(&out.to_f32())?;
    writer.finish()?;
    eprintln!(
        "wrote {} ({count} x {c}x{h}x{w} float32; transforms: {})",
        args.out.display(),
        pipeline
            .transforms
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
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
    let spectrum = sagd_core::parse_spectrum(spec).map_err(|e| usage(e.to_string()))?;
    let schedule = match schedule {
        "ddpm-linear" => sagd_core::Schedule::ddpm_linear(),
        "cosine" => sagd_core::Schedule::cosine(),
        other => {
            return Err(usage(format!(
                "--schedule: `{other}` is not ddpm-linear or cosine"
            )));
        }
    };
    let terminal = *schedule
        .levels()?
        .last()
        .expect("a schedule has at least one level");
    let (dataset, mut pipeline) = load(&Source {
        spec: data.to_string(),
        transforms: transforms.to_vec(),
        seed: 0,
    })?;
    if dataset.is_u8() && !pipeline.scales() {
        pipeline
            .transforms
            .push(sagd_datasets::transform::Transform::Scale);
    }
    let data = pipeline
        .apply_to(&dataset, dataset.len(), 0)
        .map_err(classify)?;
    let cov = sagd_core::SpectralCovariance::new(spectrum.as_ref(), data.shape(), normalization)
        .map_err(|e| usage(e.to_string()))?;
    let signal = sagd_datasets::stats::second_moment_spectrum(&data)?;
    let report = sagd_core::terminal::terminal_snr(&cov, &signal, terminal)?;
    let refused = report.signal_dominates() && !allow;
    if as_json {
        let out = json!({
            "spectrum": sagd_core::spectrum::config_string(spectrum.as_ref()),
            "data": data.name(),
            "alpha_bar_T": terminal.alpha_bar,
            "sigma_T": terminal.sigma,
            "modes": report.snr.len(),
            "affected": report.affected,
            "affected_threshold": sagd_core::terminal::AFFECTED_SNR,
            "affected_band_unit": report.affected_band.map(|(a, b)| [a, b]),
            "dominated": report.dominated,
            "outside_support": report.outside_support,
            "worst_snr": report.worst_snr,
            "passed": !report.signal_dominates(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
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
