//! A pipeline composed in code, with shapes checked at compile time: the built-in `shapes`
//! data → transforms → shuffled batches → `Images<ConstShape<3, 32, 32>>` → anisotropic forward
//! noise → the training target of each parameterization; then sampling, with the exact oracle
//! of Gaussian random fields standing in for a trained model.
//!
//! Run with `cargo run --release --example pipeline`.

use sagd::core::ScoreParameterization;
use sagd::datasets::synthetic::grf::GrfConfig;
use sagd::datasets::{DataSpec, Pipeline};
use sagd::prelude::*;
use sagd::samplers::{Method, OracleData, OracleDenoiser, SamplerConfig};

type Shape = ConstShape<3, 32, 32>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let data = "shapes:n=256,size=3x32x32,seed=0"
        .parse::<DataSpec>()?
        .load()?;
    let transforms = Pipeline::parse(&["hflip:0.5", "scale"])?;
    let data = transforms.apply_to(&data, data.len(), 0)?;

    let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=0.01")?;
    let noise: SpectralNoise<Shape> =
        SpectralNoise::new(spectrum.as_ref(), Shape::default(), Normalization::Energy)?;
    let schedule = Schedule::ddpm_linear();
    let mut rng = noise_rng(0);

    let mut batches = data.batches(64, 0, true)?;
    let (indices, _) = batches.next().ok_or("no batch")?;
    let x0: Images<Shape> = data.to_images(indices, &device)?;
    for t in [10, 500, 1000] {
        let level = schedule.level(t)?;
        let (x_t, eps) = add_noise(&noise, &x0, level, &mut rng)?;
        for kind in [
            Parameterization::ColouredEps,
            Parameterization::X0,
            Parameterization::Score,
        ] {
            let target = Parameterized::new(kind, noise.covariance_arc())
                .from_coloured_eps(&eps, &x_t, level)?;
            let values = target.to_host();
            let rms = (values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
                / values.len() as f64)
                .sqrt();
            println!(
                "t = {t:>4}  σ = {:.3}  {kind:<13} target rms {rms:.3}",
                level.sigma
            );
        }
    }

    // Sampling: Heun's PF-ODE (50 levels) with the oracle of unit-variance Gaussian random
    // fields under the same noise. Operator, oracle and sampler share one compile-time shape.
    type Small = ConstShape<1, 16, 16>;
    let grf = GrfConfig::new([1, 16, 16], 1, 0);
    let small_noise: SpectralNoise<Small> =
        SpectralNoise::new(spectrum.as_ref(), Small::default(), Normalization::Energy)?;
    let oracle = OracleDenoiser::new(
        OracleData::stationary_gaussian(grf.mode_variances(), [1, 16, 16]),
        small_noise,
        &schedule,
    )?;
    let sampler = SamplerConfig::new(Method::Heun, 50).build::<Small>()?;
    let images = sampler.sample(&oracle, 256, &mut rng, &device, &mut |_| {})?;
    let values = images.to_host();
    let variance = values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / values.len() as f64;
    println!(
        "{}: 256 samples, pixel variance {variance:.3} (data: 1)",
        sampler.name()
    );
    Ok(())
}
