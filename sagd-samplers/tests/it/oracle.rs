//! The oracle's fast stationary path against the dense Gaussian-mixture posterior of
//! sagd-core (an independent computation: Cholesky solves with the dense `C_k`, whose own
//! posterior means are checked against Monte Carlo in sagd-core).

use nalgebra::DVector;
use sagd_core::density::GaussianMixture;
use sagd_core::prelude::*;
use sagd_models::Denoiser;
use sagd_samplers::{OracleData, OracleDenoiser};

fn noise(spectrum: &str, size: [usize; 3]) -> SpectralNoise<DynShape> {
    sagd_ops::link();
    let s = parse_spectrum(spectrum).unwrap();
    let shape = DynShape::new(size[0], size[1], size[2]);
    SpectralNoise::new(s.as_ref(), shape, Normalization::Energy).unwrap()
}

/// A symmetric, strictly positive mode-variance table on H×W.
fn power_table(h: usize, w: usize) -> Vec<f64> {
    sagd_core::FrequencyGrid::new(h, w)
        .frequencies()
        .map(|f| 0.3 + 2.0 / (1.0 + 40.0 * f.radius_cycles().powi(2)))
        .collect()
}

#[test]
fn stationary_path_equals_the_dense_posterior() {
    let size = [2, 4, 6];
    let d = 48;
    let power = power_table(4, 6);
    // The dense data covariance F⁻¹ diag(λ) F per channel.
    let data_cov = SpectralCovariance::from_amplitudes(
        "data",
        power.iter().map(|p| p.sqrt()).collect(),
        size,
        Normalization::None,
    )
    .unwrap()
    .dense();
    let means = [
        (0..d)
            .map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.6)
            .collect::<Vec<f64>>(),
        (0..d)
            .map(|i| ((i * 3 % 4) as f64 - 1.5) * 0.5)
            .collect::<Vec<f64>>(),
        vec![0.2; d],
    ];
    let weights = [0.5, 0.3, 0.2];
    let schedule = Schedule::ddpm_linear();
    let x: Vec<f64> = (0..3 * d)
        .map(|i| ((i * 37 % 23) as f64 / 11.0 - 1.0) * 1.3)
        .collect();
    for spectrum in ["power-law:alpha=-1,eps=0.05", "band-pass:a=0.2,b=0.7"] {
        let noise = noise(spectrum, size);
        for components in [1usize, 3] {
            let stationary = OracleDenoiser::new(
                OracleData::Stationary {
                    weights: weights[..components].to_vec(),
                    means: means[..components].to_vec(),
                    power: power.clone(),
                },
                noise.clone(),
                &schedule,
            )
            .unwrap();
            let mixture = GaussianMixture::new(
                weights[..components].to_vec(),
                means[..components]
                    .iter()
                    .map(|m| DVector::from_vec(m.clone()))
                    .collect(),
                vec![data_cov.clone(); components],
            )
            .unwrap();
            let dense =
                OracleDenoiser::new(OracleData::Dense(mixture), noise.clone(), &schedule).unwrap();
            for t in [0, 100, 500, 999] {
                let a = stationary.posterior_eps(&x, t).unwrap();
                let b = dense.posterior_eps(&x, t).unwrap();
                let scale = b.iter().map(|v| v.abs()).fold(0.0, f64::max);
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst <= 1e-9 * scale.max(1.0),
                    "{spectrum}, K = {components}, t = {t}: differ by {worst}"
                );
            }
        }
    }
}

#[test]
fn predict_takes_a_level_per_image_and_checks_its_input() {
    let size = [1, 4, 4];
    let shape = DynShape::new(1, 4, 4);
    let oracle = OracleDenoiser::new(
        OracleData::stationary_gaussian(power_table(4, 4), size),
        noise("isotropic", size),
        &Schedule::ddpm_linear(),
    )
    .unwrap();
    let device = Device::flex();
    let values: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Images::from_host(values.clone(), shape, &device).unwrap();
    let mixed = oracle.predict(&x, &[10, 700]).unwrap().to_host();
    for (i, t) in [(0usize, 10usize), (1, 700)] {
        let one: Vec<f64> = values[i * 16..(i + 1) * 16]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let alone = oracle.posterior_eps(&one, t).unwrap();
        for (a, b) in mixed[i * 16..(i + 1) * 16].iter().zip(&alone) {
            assert!((*a as f64 - b).abs() < 1e-6, "image {i}");
        }
    }
    assert!(oracle.predict(&x, &[10]).is_err());
    assert!(oracle.predict(&x, &[10, 1000]).is_err());
    // Wrong sizes and unknown laws are refused with what was expected.
    let wrong = OracleDenoiser::new(
        OracleData::stationary_gaussian(power_table(4, 4), size),
        noise("isotropic", [1, 8, 8]),
        &Schedule::ddpm_linear(),
    )
    .unwrap_err();
    assert!(
        wrong.is_usage() && wrong.to_string().contains("64"),
        "{wrong}"
    );
    let short = OracleDenoiser::new(
        OracleData::stationary_gaussian(vec![1.0; 15], size),
        noise("isotropic", size),
        &Schedule::ddpm_linear(),
    )
    .unwrap_err();
    assert!(short.to_string().contains("16 values"), "{short}");
    let mnist: sagd_datasets::spec::DataSpec = "mnist:/nowhere".parse().unwrap();
    let none = OracleData::from_source(&mnist.source).unwrap_err();
    assert!(
        none.to_string().contains("grf") && none.is_usage(),
        "{none}"
    );
}

/// Mixture weights are reported normalized to sum 1, whatever scale they were given in; a
/// `gmm` source's law carries its equal weights already normalized.
#[test]
fn mixture_weights_are_normalized() {
    let data = OracleData::Stationary {
        weights: vec![2.0, 1.0, 1.0],
        means: vec![vec![0.0; 4]; 3],
        power: vec![1.0; 4],
    };
    assert_eq!(data.mixture_weights(), [0.5, 0.25, 0.25]);
    let spec: sagd_datasets::DataSpec = "gmm:components=3,size=1x4x4".parse().unwrap();
    let law = OracleData::from_source(&spec.source).unwrap();
    let OracleData::Stationary { weights, .. } = &law else {
        panic!("a gmm has a stationary law")
    };
    assert_eq!(weights, &[1.0 / 3.0; 3]);
    assert_eq!(law.mixture_weights(), [1.0 / 3.0; 3]);
}
