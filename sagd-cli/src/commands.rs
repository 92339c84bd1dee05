//! `sagd spectra`, `sagd noise` and `sagd verify`: flags in, the library's work
//! ([`sagd_eval::spectra`], [`sagd_datasets::run`], [`sagd_core::verify`]) out, printed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sagd_core::registry::{ParamKind, entries};
use sagd_core::spectrum::config_string;
use sagd_core::verify::{Outcome, VerifyConfig, verify_spectrum_string};
use sagd_core::{
    DynShape, ImageShape, NoiseSpectrum, Normalization, RadiusConvention, SpectralCovariance,
    parse_spectrum,
};
use sagd_datasets::run::write_noise_npy;
use sagd_eval::EvalError;
use sagd_eval::spectra::{spectrum_report, write_spectrum_png};
use serde_json::json;

use crate::usage;

/// `sagd spectra show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The spectrum: NAME, NAME:key=value,... or @file.toml.
    spec: String,
    /// Image size CxHxW, e.g. 3x32x32.
    #[arg(long)]
    size: String,
    /// Radius convention of the radial profile.
    #[arg(long, default_value = "cycles")]
    radius: String,
    /// energy | none | per-sample-std.
    #[arg(long, default_value = "energy")]
    normalization: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Write a heat map of w(f)² (DC centred) and the radial profile to this PNG.
    #[arg(long)]
    png: Option<PathBuf>,
}

/// `sagd noise`.
#[derive(Debug, Args)]
pub struct NoiseArgs {
    /// The spectrum: NAME, NAME:key=value,... or @file.toml.
    spec: String,
    /// Image size CxHxW.
    #[arg(long)]
    size: String,
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
    #[arg(long, default_value = "energy")]
    normalization: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

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
    #[arg(long, default_value = "energy")]
    normalization: String,
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

fn parse_size(text: &str) -> Result<DynShape> {
    text.parse::<DynShape>()
        .map_err(|e| usage(format!("--size: {e}")))
}

fn parse_normalization(text: &str) -> Result<Normalization> {
    text.parse::<Normalization>()
        .map_err(|e| usage(format!("--normalization: {e}")))
}

fn parse_spec(text: &str) -> Result<Box<dyn NoiseSpectrum>> {
    parse_spectrum(text).map_err(usage)
}

fn covariance(
    spectrum: &dyn NoiseSpectrum,
    size: DynShape,
    normalization: Normalization,
) -> Result<SpectralCovariance> {
    SpectralCovariance::new(spectrum, size.dims(), normalization).map_err(usage)
}

/// `sagd spectra list`.
pub fn spectra_list(as_json: bool) -> Result<ExitCode> {
    let all = entries();
    if as_json {
        let list: Vec<_> = all
            .iter()
            .map(|e| {
                let params: Vec<_> = e
                    .params
                    .iter()
                    .map(|p| {
                        let mut v = json!({
                            "name": p.name,
                            "doc": p.doc,
                            "type": p.type_name(),
                            "default": param_json(&p.default_value()),
                        });
                        if let ParamKind::Number { sample, .. } | ParamKind::List { sample, .. } =
                            p.kind
                        {
                            v["verify_range"] = json!([sample.0, sample.1]);
                        }
                        v
                    })
                    .collect();
                json!({ "name": e.name, "doc": e.doc, "params": params })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for e in all {
            println!("{:<12} {}", e.name, e.doc);
            for p in e.params {
                println!(
                    "    {:<10} {:<30} default {}  ({})",
                    p.name,
                    p.type_name(),
                    p.default_value(),
                    p.doc
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn param_json(v: &sagd_core::ParamValue) -> serde_json::Value {
    match v {
        sagd_core::ParamValue::Number(x) => json!(x),
        sagd_core::ParamValue::Text(s) => json!(s),
        sagd_core::ParamValue::List(xs) => json!(xs),
    }
}

/// `sagd spectra show`.
pub fn spectra_show(args: &ShowArgs) -> Result<ExitCode> {
    let spectrum = parse_spec(&args.spec)?;
    let size = parse_size(&args.size)?;
    let normalization = parse_normalization(&args.normalization)?;
    let radius: RadiusConvention = args
        .radius
        .parse()
        .map_err(|e| usage(format!("--radius: {e}")))?;
    let report = spectrum_report(spectrum.as_ref(), size.dims(), normalization, radius).map_err(
        |e| match e {
            EvalError::Request(m) => usage(m),
            e => anyhow::Error::new(e),
        },
    )?;
    let [c, h, w] = report.size;
    if let Some(path) = &args.png {
        write_spectrum_png(path, &report)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&report)?)?
        );
    } else {
        println!("spectrum       {}", report.spectrum);
        println!("size           {c}x{h}x{w} (dimension {})", report.dim);
        println!("normalization  {normalization}");
        println!("full support   {}", report.full_support);
        println!("rank           {} of {}", report.rank, report.dim);
        println!("log det (supp) {:.6}", report.log_det_support);
        println!("condition      {:.3e}", report.condition_number);
        println!("radial profile (bin centres in the {radius} convention, mean w(f)^2 per bin):");
        for b in &report.radial_profile {
            println!(
                "  {:>8.4}  {:>12.5e}  ({} frequencies)",
                b.radius, b.mean_power, b.count
            );
        }
        if let Some(path) = &args.png {
            println!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sagd noise`.
pub fn noise(args: &NoiseArgs) -> Result<ExitCode> {
    let spectrum = parse_spec(&args.spec)?;
    let size = parse_size(&args.size)?;
    let normalization = parse_normalization(&args.normalization)?;
    if args.count == 0 {
        return Err(usage("--count: must be at least 1"));
    }
    let cov = covariance(spectrum.as_ref(), size, normalization)?;
    let [c, h, w] = cov.size();
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.count as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    write_noise_npy(&cov, args.count, args.seed, &args.out, &mut |done| {
        bar.set_position(done as u64)
    })
    .map_err(crate::data::classify)?;
    bar.finish_and_clear();
    if !args.quiet {
        eprintln!(
            "wrote {} ({} x {c}x{h}x{w} float32, {}, {normalization})",
            args.out.display(),
            args.count,
            config_string(spectrum.as_ref())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sagd verify`.
pub fn verify(args: &VerifyArgs) -> Result<ExitCode> {
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
        return crate::data::terminal_check(
            &args.spec,
            data,
            &args.transforms,
            &args.schedule,
            parse_normalization(&args.normalization)?,
            args.allow_low_terminal_noise,
            args.json,
        );
    }
    let config = VerifyConfig {
        cases: args.cases,
        seed: args.seed,
        max_side: args.max_side,
        max_channels: args.max_channels,
        normalization: parse_normalization(&args.normalization)?,
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
