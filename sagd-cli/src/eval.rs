//! `sagd eval`: FID, KID, precision/recall and spectral metrics of samples against a reference,
//! into `metrics.json` and `spectra.png`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sagd_datasets::transform::Pipeline;
use sagd_eval::evaluate::{Stage, check, parse_metrics};
use sagd_eval::inception::INPUT_SIZE;
use sagd_eval::kid::KidOptions;
use sagd_eval::{EvalError, EvalOptions, EvalReport, FidInception, evaluate};
use sagd_models::train::device_for;
use serde_json::{Value, json};

use crate::{usage, write_atomic};
use sagd_plot::{LinePlot, Series, write_line_plots_png};

/// The file name of the FID weights in the shared models folder.
const WEIGHTS_FILE: &str = "pt_inception-2015-12-05.safetensors";

/// Where pytorch-fid publishes the same weights.
const WEIGHTS_URL: &str = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// Arguments of `sagd eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The samples: a .npy file (N, C, H, W) in [0, 1] (as `sagd sample` writes), a `sagd
    /// sample` output folder, a folder of PNG/JPEG images, or a dataset spec.
    #[arg(long)]
    samples: String,
    /// The reference: a dataset spec (e.g. mnist:DIR,split=test), a .npy file, a folder of
    /// images, or pytorch-fid statistics (.npz with mu and sigma; FID only).
    #[arg(long)]
    reference: String,
    /// A transform of the reference images, applied in order (repeatable), e.g. pad:2 to
    /// compare 28x28 MNIST with 32x32 samples, or corrupt:a=0.1,b=0.2 for corrupted data.
    #[arg(long = "transform", value_name = "T")]
    transforms: Vec<String>,
    /// Seed of the --count subsets, the random transforms and KID's subsets.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Metrics, comma-separated: fid, kid, pr, spectral.
    #[arg(long, default_value = "fid,kid,pr,spectral")]
    metrics: String,
    /// Images used from each side: a random subset of N (seeded by --seed) of each set larger
    /// than N; default: all samples, and as many reference images (FID depends on N: compare
    /// FIDs only at equal N).
    #[arg(long)]
    count: Option<usize>,
    /// The FID Inception weights: pt_inception-2015-12-05.safetensors or pytorch-fid's
    /// pt_inception-2015-12-05-6726825d.pth. Default: $SAGD_INCEPTION, else
    /// $SAGD_MODELS_DIR/fid-inception/pt_inception-2015-12-05.safetensors.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Save the reference's Inception statistics (mu, sigma) in pytorch-fid's .npz layout.
    #[arg(long, value_name = "FILE.npz")]
    save_stats: Option<PathBuf>,
    /// Images per Inception batch.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// KID's subsets.
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// KID's subset size (lowered, with a warning, to the smaller set's count).
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// Device: cpu, or cuda (built with --features cuda); ndarray and libtorch in builds with
    /// those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output directory: metrics.json and spectra.png.
    #[arg(long)]
    out: PathBuf,
    /// Replace a metrics.json already in --out.
    #[arg(long)]
    overwrite: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print the metrics as JSON.
    #[arg(long)]
    json: bool,
}

/// Bad input is a usage error (exit 2); unreadable files and failures are runtime errors.
fn eval_error(e: EvalError) -> anyhow::Error {
    match e {
        EvalError::Input { .. } => usage(e.to_string()),
        EvalError::Dataset(d) => crate::data::classify(d),
        other => anyhow::Error::new(other),
    }
}

/// The weights file: `--inception`, `$SAGD_INCEPTION`, or the shared models folder.
fn weights_path(args: &EvalArgs) -> Result<PathBuf> {
    find_weights(args.inception.as_deref())
}

/// The FID Inception weights `sagd eval` would use: `explicit` (`--inception`), else
/// `$SAGD_INCEPTION`, else `$SAGD_MODELS_DIR/fid-inception/` when the file is there; otherwise
/// a usage error saying where to get them.
pub fn find_weights(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("SAGD_INCEPTION").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    if let Some(dir) = std::env::var_os("SAGD_MODELS_DIR").filter(|p| !p.is_empty()) {
        let path = Path::new(&dir).join("fid-inception").join(WEIGHTS_FILE);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(usage(format!(
        "no FID Inception weights: pass --inception FILE or set SAGD_INCEPTION to {WEIGHTS_FILE} \
         ($SAGD_MODELS_DIR/fid-inception/) or pytorch-fid's weights ({WEIGHTS_URL}); \
         or use --metrics spectral"
    )))
}

/// Runs `sagd eval`.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let metrics = parse_metrics(&args.metrics).map_err(eval_error)?;
    if args.count == Some(0) {
        return Err(usage("--count must be at least 1"));
    }
    if args.batch == 0 {
        return Err(usage("--batch must be at least 1"));
    }
    if args.out.exists() && !args.out.is_dir() {
        return Err(usage(format!(
            "--out {} is a file; expected a folder (new or existing)",
            args.out.display()
        )));
    }
    if let Some(path) = &args.save_stats {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if path.is_dir() || !parent.is_dir() {
            return Err(usage(format!(
                "--save-stats {}: expected a file path in an existing folder",
                path.display()
            )));
        }
    }
    let metrics_path = args.out.join("metrics.json");
    if metrics_path.exists() && !args.overwrite {
        return Err(usage(format!(
            "{} exists; pass --overwrite or choose another --out",
            metrics_path.display()
        )));
    }
    let needs_inception = metrics.iter().any(|m| m.needs_inception());
    let weights = if needs_inception {
        Some(weights_path(args)?)
    } else {
        None
    };
    if args.save_stats.is_some() && !needs_inception {
        return Err(usage(
            "--save-stats saves Inception statistics; add fid to --metrics",
        ));
    }
    let device = device_for(&args.device).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let pipeline = Pipeline::parse(&args.transforms).map_err(crate::data::classify)?;

    let samples = sagd_eval::load_images(&args.samples)
        .map_err(eval_error)
        .with_context(|| format!("--samples {}", args.samples))?;
    if let Some(n) = args.count
        && n > samples.len()
    {
        return Err(usage(format!(
            "--count {n}, but the samples hold {} images",
            samples.len()
        )));
    }
    let count = args.count.unwrap_or(samples.len());
    let samples = sagd_eval::sources::subset(samples, count, args.seed);
    let reference = sagd_eval::load_reference(&args.reference, &pipeline, Some(count), args.seed)
        .map_err(eval_error)
        .with_context(|| format!("--reference {}", args.reference))?;
    let options = EvalOptions {
        metrics,
        batch: args.batch,
        kid: KidOptions {
            subsets: args.kid_subsets,
            subset_size: args.kid_subset_size,
            seed: args.seed,
        },
        pr_k: 3,
    };
    check(&samples, &reference, weights.is_some(), &options).map_err(eval_error)?;
    let model = match &weights {
        Some(path) => Some(
            FidInception::load(path, &device)
                .map_err(eval_error)
                .with_context(|| "--inception".to_string())?,
        ),
        None => None,
    };

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} images  {msg}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = evaluate(
        &samples,
        &reference,
        model.as_ref(),
        &options,
        &mut |stage, done, total| {
            if bar.length() != Some(total as u64) || done as u64 <= bar.position() {
                bar.reset();
                bar.set_length(total as u64);
                bar.set_message(match stage {
                    Stage::SampleFeatures => "Inception features: samples",
                    Stage::ReferenceFeatures => "Inception features: reference",
                });
            }
            bar.set_position(done as u64);
        },
    )
    .map_err(eval_error)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    if let (Some(path), Some(stats)) = (&args.save_stats, &report.reference_stats) {
        stats
            .save_npz(path)
            .map_err(eval_error)
            .with_context(|| format!("--save-stats {}", path.display()))?;
    }
    let plot_path = args.out.join("spectra.png");
    if let Some(spectral) = &report.spectral {
        write_spectra_png(&plot_path, spectral)?;
    }
    let summary = summary_json(args, &report, model.as_ref(), seconds, &plot_path);
    write_json_atomic(&metrics_path, &summary)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        crate::print_stdout(&format!("{}\n", serde_json::to_string(&summary)?))?;
    } else {
        crate::print_stdout(&summary_text(&report, seconds, &args.out))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(
    args: &EvalArgs,
    report: &EvalReport,
    model: Option<&FidInception>,
    seconds: f64,
    plot_path: &Path,
) -> Value {
    let mut summary = json!({
        "samples": args.samples,
        "reference": args.reference,
        "reference_transforms": args.transforms,
        "sample_count": report.sample_count,
        "reference_count": report.reference_count,
        "metrics": metric_names(&args.metrics),
        "count": args.count,
        "fid": report.fid,
        "kid": report.kid,
        "precision_recall": report.precision_recall,
        "spectral": report.spectral,
        "warnings": report.warnings,
        "feature_seconds": report.feature_seconds,
        "feature_images_per_s": report.feature_images_per_s,
        "device": args.device,
        "seed": args.seed,
        "seconds": seconds,
    });
    if let Some(model) = model {
        let info = model.info();
        summary["inception"] = json!({
            "weights": info.path,
            "sha256": info.sha256,
            "format": info.format.name(),
            "features": "pool3 (2048-d), pytorch-fid's FID Inception-v3",
            "input": format!(
                "8-bit quantised (floor(255 x + 0.5)), /255, bilinear resize to \
                 {INPUT_SIZE}x{INPUT_SIZE} with half-pixel centres and no antialiasing \
                 (align_corners = false), 2x - 1; grey copied to 3 channels"
            ),
            "batch": args.batch,
        });
    }
    if report.spectral.is_some() {
        summary["spectra_png"] = json!(plot_path);
    }
    if let Some(path) = &args.save_stats {
        summary["saved_stats"] = json!(path);
    }
    summary
}

/// The metric names as parsed (the command has already refused an invalid list).
fn metric_names(list: &str) -> Vec<&'static str> {
    parse_metrics(list)
        .map(|m| m.iter().map(|m| m.name()).collect())
        .unwrap_or_default()
}

fn summary_text(report: &EvalReport, seconds: f64, out: &Path) -> String {
    let mut text = format!(
        "{} samples against {} in {:.1} s -> {}\n",
        report.sample_count,
        report
            .reference_count
            .map(|n| format!("{n} reference images"))
            .unwrap_or_else(|| "reference statistics".to_string()),
        seconds,
        out.display()
    );
    if let Some(rate) = report.feature_images_per_s {
        text.push_str(&format!(
            "Inception features: {:.1} s ({rate:.1} images/s)\n",
            report.feature_seconds
        ));
    }
    if let Some(fid) = report.fid {
        text.push_str(&format!("FID        {fid:.4}\n"));
    }
    if let Some(kid) = &report.kid {
        text.push_str(&format!(
            "KID        {:.6} ± {:.6} ({} subsets of {})\n",
            kid.mean, kid.std, kid.subsets, kid.subset_size
        ));
    }
    if let Some(pr) = &report.precision_recall {
        text.push_str(&format!(
            "precision  {:.4}\nrecall     {:.4} (k = {})\n",
            pr.precision, pr.recall, pr.k
        ));
    }
    if let Some(s) = &report.spectral {
        text.push_str(&format!(
            "log-spectral distance  {:.4}\nmode-variance error    {:.4} (relative), {:.4} (log RMS)\n",
            s.log_spectral_distance, s.mode_variance_relative_error, s.mode_variance_log_rms
        ));
        let ratios: Vec<String> = s
            .bands
            .iter()
            .map(|b| match b.ratio {
                Some(r) => format!("{r:.3}"),
                None => "-".to_string(),
            })
            .collect();
        text.push_str(&format!(
            "band energy / reference, unit-radius bands of 0.1: {}\n",
            ratios.join(" ")
        ));
    }
    text
}

fn write_json_atomic(path: &Path, value: &Value) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// Radial spectra (log-log) and band ratios (linear) side by side.
fn write_spectra_png(path: &Path, s: &sagd_eval::SpectralReport) -> Result<()> {
    let positive = |points: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        points
            .into_iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
            .collect()
    };
    let spectra = LinePlot {
        title: "radial power spectrum (mean image included)",
        x_label: "radius (cycles/pixel)",
        y_label: "power",
        series: vec![
            Series {
                name: "reference",
                points: positive(s.radial.iter().map(|p| (p.radius, p.reference)).collect()),
                markers: false,
            },
            Series {
                name: "samples",
                points: positive(s.radial.iter().map(|p| (p.radius, p.samples)).collect()),
                markers: false,
            },
        ],
        log_x: true,
        log_y: true,
    };
    let ratios = LinePlot {
        title: "band energy / reference's, unit-radius bands",
        x_label: "band centre (unit radius)",
        y_label: "ratio",
        series: vec![
            Series {
                name: "reference (1)",
                points: vec![(0.05, 1.0), (0.95, 1.0)],
                markers: false,
            },
            Series {
                name: "samples",
                points: positive(
                    s.bands
                        .iter()
                        .filter_map(|b| b.ratio.map(|r| ((b.lo + b.hi) / 2.0, r)))
                        .collect(),
                ),
                markers: true,
            },
        ],
        log_x: false,
        // Linear: ratios sit near 1, where a log axis's decade ticks say nothing.
        log_y: false,
    };
    Ok(write_line_plots_png(path, &[&spectra, &ratios])?)
}
