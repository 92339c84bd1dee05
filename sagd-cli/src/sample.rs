//! `sagd sample`: draws images from a trained checkpoint or from the exact oracle of a
//! synthetic dataset, with any sampler, into `samples.npy`, `grid.png` and `summary.json`.
//! The run is [`sagd_runs::sample::sample_run`]; this parses the flags, draws the progress
//! bar and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use sagd_core::{DeviceSpec, DynShape, ImageShape, Normalization};
use sagd_runs::sample::{OracleSchedule, SampleEvent, SampleRequest, SampleSource, sample_run};
use sagd_samplers::{Method, OdeForm, Prior, Spacing};

use crate::progress::progress_bar;
use crate::{print_stdout, usage};

/// Arguments of `sagd sample`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["checkpoint", "oracle"]))]
pub struct SampleArgs {
    /// A run directory (its newest checkpoint is used) or a checkpoint file.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Use the checkpoint's EMA weights.
    #[arg(long, requires = "checkpoint")]
    ema: bool,
    /// Sample from the exact posterior-mean oracle of this dataset (grf or gmm), e.g.
    /// `grf:beta=2,size=1x16x16`.
    #[arg(long, requires = "spectrum")]
    oracle: Option<String>,
    /// The noise spectrum of the oracle's process, e.g. `power-law:alpha=-0.5,eps=0.05`.
    #[arg(long, conflicts_with = "checkpoint")]
    spectrum: Option<String>,
    /// The oracle's spectrum normalization: energy, none or per-sample-std.
    #[arg(long, default_value = "energy", conflicts_with = "checkpoint")]
    normalization: String,
    /// The oracle's schedule: ddpm-linear, cosine or edm.
    #[arg(long, default_value = "ddpm-linear", conflicts_with = "checkpoint")]
    schedule: String,
    /// The number of levels of the oracle's schedule.
    #[arg(long, default_value_t = 1000, conflicts_with = "checkpoint")]
    levels: usize,
    /// ddim, ddpm, euler or heun.
    #[arg(long, default_value = "ddim")]
    sampler: String,
    /// Levels visited (default: 50; for ddpm the whole schedule).
    #[arg(long)]
    steps: Option<usize>,
    /// DDIM's η in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    eta: f64,
    /// The ODE's variables for euler and heun: edm (default) or vp.
    #[arg(long)]
    form: Option<String>,
    /// uniform, quadratic, karras or karras:rho=R.
    #[arg(long, default_value = "uniform")]
    spacing: String,
    /// matched (N(0, σ_T² Σ_w)) or white (ablation).
    #[arg(long, default_value = "matched")]
    prior: String,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Seed: the same seed and batch give the same images on CPU.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// The image shape CxHxW asked for; a checkpoint or oracle of another shape is refused.
    #[arg(long)]
    shape: Option<String>,
    /// Output directory: samples.npy, grid.png, summary.json.
    #[arg(long)]
    out: PathBuf,
    /// Replace samples already in --out.
    #[arg(long)]
    overwrite: bool,
    /// Device: cpu, or cuda / cuda:N (built with --features cuda; GPU N as nvidia-smi numbers
    /// it, checked before any work); cube-cpu runs the GPU's kernels on the CPU (--features cube-cpu); ndarray and
    /// libtorch are other CPU backends in builds with those features.
    #[arg(long, default_value = "cpu", value_parser = crate::parse::device)]
    device: DeviceSpec,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// The request `args` describe.
fn request(args: &SampleArgs) -> Result<SampleRequest> {
    let source = match (&args.checkpoint, &args.oracle, &args.spectrum) {
        (Some(path), _, _) => SampleSource::Checkpoint {
            path: path.clone(),
            ema: args.ema,
        },
        (None, Some(data), Some(spectrum)) => SampleSource::Oracle {
            data: data.parse().map_err(usage)?,
            spectrum: spectrum
                .parse()
                .map_err(|e| usage(format!("--spectrum: {e}")))?,
            normalization: args
                .normalization
                .parse::<Normalization>()
                .map_err(|e| usage(format!("--normalization: {e}")))?,
            schedule: match args.schedule.as_str() {
                "ddpm-linear" => OracleSchedule::DdpmLinear,
                "cosine" => OracleSchedule::Cosine,
                "edm" => OracleSchedule::Edm,
                other => {
                    return Err(usage(format!(
                        "--schedule `{other}`: expected ddpm-linear, cosine or edm"
                    )));
                }
            },
            levels: args.levels,
        },
        _ => return Err(usage("--oracle needs --spectrum")),
    };
    let method: Method = args.sampler.parse().map_err(usage)?;
    let form = args
        .form
        .as_deref()
        .unwrap_or("edm")
        .parse::<OdeForm>()
        .map_err(usage)?;
    let spacing = args.spacing.parse::<Spacing>().map_err(usage)?;
    let prior = args.prior.parse::<Prior>().map_err(usage)?;
    if args.eta != 0.0 && !method.takes_eta() {
        let takers = Method::ALL.into_iter().filter(|m| m.takes_eta());
        return Err(usage(format!(
            "--eta {} applies to --sampler {} only",
            args.eta,
            Method::names(takers)
        )));
    }
    if let Some(form) = args.form.as_deref().filter(|_| !method.takes_form()) {
        let takers: Vec<&str> = Method::ALL
            .into_iter()
            .filter(|m| m.takes_form())
            .map(Method::name)
            .collect();
        return Err(usage(format!(
            "--form {form} applies to --sampler {} only",
            takers.join(" and ")
        )));
    }
    let shape = match &args.shape {
        Some(text) => Some(
            text.parse::<DynShape>()
                .map_err(|e| usage(format!("--shape: {e}")))?
                .dims(),
        ),
        None => None,
    };
    Ok(SampleRequest {
        source,
        method,
        steps: args.steps,
        eta: args.eta,
        form,
        spacing,
        prior,
        count: args.count,
        seed: args.seed,
        batch: args.batch,
        shape,
        out: args.out.clone(),
        overwrite: args.overwrite,
        device: args.device,
    })
}

/// Runs `sagd sample`.
pub fn run(args: &SampleArgs) -> Result<ExitCode> {
    let request = request(args)?;
    let bar = progress_bar(args.quiet, 0, "steps");
    let result = sample_run(&request, &mut |event| match event {
        SampleEvent::TerminalSnr(report) if report.affected > 0 => eprintln!(
            "warning: the prior does not match the process in every mode: {}",
            report.summary()
        ),
        SampleEvent::TerminalSnr(_) => {}
        SampleEvent::Warning(warning) => bar.suspend(|| eprintln!("warning: {warning}")),
        SampleEvent::Unfinished(out) => bar.suspend(|| {
            eprintln!(
                "note: {} holds samples.npy but no summary.json (a run that did not finish): \
                 sampling again",
                out.display()
            )
        }),
        SampleEvent::Started { total_steps } => bar.set_length(total_steps),
        SampleEvent::Step {
            done,
            batch,
            batches,
            sigma,
        } => {
            bar.set_position(done);
            bar.set_message(format!("batch {batch}/{batches}  σ {sigma:.3}"));
        }
    });
    bar.finish_and_clear();
    let summary = result?.summary;
    let value = serde_json::to_value(&summary)?;
    if args.json {
        print_stdout(&format!("{}\n", serde_json::to_string(&value)?))?;
    } else {
        let [c, h, w] = summary.shape;
        let mut text = format!(
            "{} images ({c}x{h}x{w}) by {} in {:.1} s ({:.1} images/s) -> {}\n",
            summary.count,
            summary.sampler,
            summary.seconds,
            summary.images_per_s,
            args.out.display()
        );
        if let Some(check) = value.get("data_check") {
            text.push_str(&format!("data check: {check}\n"));
        }
        print_stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
