//! `sagd eval`: FID, KID, precision/recall and spectral metrics of samples against a reference,
//! into `metrics.json` and `spectra.png`. The run is [`sagd_runs::eval::eval_run`]; this
//! parses the flags, draws the progress bar and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use sagd_core::DeviceSpec;
use sagd_eval::EvalReport;
use sagd_eval::evaluate::{Stage, parse_metrics};
use sagd_runs::eval::{EvalRequest, ReferenceCount, eval_run};

use crate::progress::progress_bar;
use crate::usage;

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
    /// A transform of the samples, applied in order after --count's subset (repeatable), e.g.
    /// pad:2 when the samples are 28x28 data, or notch:a=0.1,b=0.2 to filter a band out.
    #[arg(long = "sample-transform", value_name = "T")]
    sample_transforms: Vec<String>,
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
    /// Reference images used instead of as many as the samples: `all` (e.g. the whole test
    /// split against 1024 samples) or a number; the first ones after the transforms.
    #[arg(long, value_name = "all|N", value_parser = clap::value_parser!(ReferenceCount))]
    reference_count: Option<ReferenceCount>,
    /// The FID Inception weights: pt_inception-2015-12-05.safetensors or pytorch-fid's
    /// pt_inception-2015-12-05-6726825d.pth. Default: $SAGD_INCEPTION, else
    /// $SAGD_MODELS_DIR/fid-inception/pt_inception-2015-12-05.safetensors.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Save the reference's Inception statistics (mu, sigma) in pytorch-fid's .npz layout.
    #[arg(long, value_name = "FILE.npz")]
    save_stats: Option<PathBuf>,
    /// Keep the reference images' Inception features in this .npz and reuse them on the next
    /// evaluation against the same images (same spec, transforms, --count and --seed) and
    /// weights; any other file there is recomputed and replaced, with a warning.
    #[arg(long, value_name = "FILE.npz")]
    feature_cache: Option<PathBuf>,
    /// Images per Inception batch.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// KID's subsets.
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// KID's subset size (lowered, with a warning, to the smaller set's count).
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// Resample the samples' features this many times (with replacement, the reference
    /// fixed) and report FID's and KID's spread over the resamples: the metrics' own
    /// sampling noise (0: off).
    #[arg(long, default_value_t = 0, value_name = "N")]
    bootstrap: usize,
    /// Device: cpu, or cuda (built with --features cuda); cube-cpu (--features cube-cpu),
    /// ndarray and libtorch in builds with those features.
    #[arg(long, default_value = "cpu", value_parser = crate::parse::device)]
    device: DeviceSpec,
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

/// Runs `sagd eval`.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let request = EvalRequest {
        samples: args.samples.clone(),
        reference: args.reference.clone(),
        transforms: args.transforms.clone(),
        sample_transforms: args.sample_transforms.clone(),
        seed: args.seed,
        metrics: parse_metrics(&args.metrics).map_err(usage)?,
        count: args.count,
        reference_count: args.reference_count,
        inception: args.inception.clone(),
        save_stats: args.save_stats.clone(),
        feature_cache: args.feature_cache.clone(),
        batch: args.batch,
        kid_subsets: args.kid_subsets,
        kid_subset_size: args.kid_subset_size,
        bootstrap: args.bootstrap,
        device: args.device,
        out: args.out.clone(),
        overwrite: args.overwrite,
    };
    let bar = progress_bar(args.quiet, 0, "images");
    let result = eval_run(&request, &mut |stage, done, total| {
        if bar.length() != Some(total as u64) || done as u64 <= bar.position() {
            bar.reset();
            bar.set_length(total as u64);
            bar.set_message(match stage {
                Stage::SampleFeatures => "Inception features: samples",
                Stage::ReferenceFeatures => "Inception features: reference",
            });
        }
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let run = result?;
    for warning in &run.report.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        let summary = serde_json::to_value(&run.summary)?;
        crate::print_stdout(&format!("{}\n", serde_json::to_string(&summary)?))?;
    } else {
        crate::print_stdout(&summary_text(&run.report, run.summary.seconds, &args.out))?;
    }
    Ok(ExitCode::SUCCESS)
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
