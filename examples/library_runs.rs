//! The CLI's runs called from Rust: what `sagd sample`, `sagd theory predict` and
//! `sagd theory validate` do, as library functions with typed requests, typed errors and
//! serialisable results (the CLI only parses flags into these requests and prints).
//!
//! 1. the exact oracle of a Gaussian random field under power-law noise, sampled by Heun into
//!    `samples.npy`, `grid.png` and `summary.json`, with the oracle's checks read back;
//! 2. the theory's prediction of how fast each Fourier mode of that field is learned;
//! 3. a linear denoiser trained by full-batch gradient descent, compared mode by mode with it.
//!
//! Run with `cargo run --release --example library_runs [OUT_DIR]` (default: a temporary
//! folder).

use sagd::core::SpectrumSpec;
use sagd::runs::sample::{DataCheck, SampleEvent, SampleRequest, SampleSource, sample_run};
use sagd::runs::theory::{PredictRequest, ValidateRequest, Validation, predict_run, validate_run};
use sagd::samplers::Method;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sagd::ops::link(); // the built-in spectra, for the spectrum strings below
    let temp = std::env::temp_dir().join(format!("sagd-library-runs-{}", std::process::id()));
    let out = std::env::args_os().nth(1).map_or(temp, Into::into);
    let data = "grf:beta=2,size=1x16x16,r0=0.05";
    let spectrum: SpectrumSpec = "power-law:alpha=-1,eps=0.05".parse()?;

    // 1. Sampling: 256 images from the oracle, 50 Heun steps.
    let mut request = SampleRequest::new(
        SampleSource::oracle(data.parse()?, spectrum.clone()),
        out.join("samples"),
    );
    request.method = Method::Heun;
    request.count = 256;
    request.overwrite = true;
    let run = sample_run(&request, &mut |event| {
        if let SampleEvent::TerminalSnr(check) = event
            && check.affected > 0
        {
            eprintln!("warning: {}", check.summary());
        }
    })?;
    let s = &run.summary;
    println!(
        "{} images by {} in {:.2} s -> {}",
        s.count,
        s.sampler,
        s.seconds,
        s.samples.display()
    );
    if let Some(DataCheck::ModeVariances {
        median_relative_error,
        sampling_sd_per_mode,
        ..
    }) = &s.data_check
    {
        println!(
            "per-mode variance vs the data: median relative error {median_relative_error:.3} \
             (sampling sd {sampling_sd_per_mode:.3})"
        );
    }

    // 2. The theory: learning time of each mode against its variance, τ* ∝ λ^(-α).
    let prediction = predict_run(&PredictRequest::new(data, spectrum.clone()))?;
    if let Some(fit) = prediction.prediction.exponent() {
        println!(
            "theory: {} modes, α = {:.3} (R² = {:.3})",
            prediction.prediction.modes.len(),
            fit.alpha,
            fit.r2
        );
    }

    // 3. The theory against a trained linear denoiser (8×8 keeps the dense maps small).
    let mut validate = ValidateRequest::new(
        "grf:beta=2,size=1x8x8,r0=0.05",
        spectrum,
        out.join("validate"),
    );
    validate.sigma_max = 1.0;
    if let Validation::Affine(v) = validate_run(&validate, &mut |_, _| {})? {
        println!(
            "linear model, {} steps: largest relative error against the theory {:.2}% -> {}",
            v.steps,
            100.0 * v.max_relative_error,
            v.csv.display()
        );
    }
    Ok(())
}
