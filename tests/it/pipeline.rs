//! The pipeline-facing types on a burn device: noise draws, the forward process and the
//! parameterization trait, against the host computations they wrap.

use std::sync::Arc;

use sagd::core::parameterization::ScoreParameterization;
use sagd::prelude::*;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn operator_draws_match_the_covariance_draws_and_are_seeded() {
    let spectrum = parse_spectrum("exp-decay:beta=5").unwrap();
    let noise = SpectralNoise::new(
        spectrum.as_ref(),
        ConstShape::<2, 6, 10>::default(),
        Normalization::Energy,
    )
    .unwrap();
    let device = Device::flex();
    let a = noise.sample(5, &mut noise_rng(11), &device).unwrap();
    let b = noise.sample(5, &mut noise_rng(11), &device).unwrap();
    assert_eq!(a.to_host(), b.to_host());
    let host = noise.covariance().sample::<f32>(5, &mut noise_rng(11));
    assert_eq!(a.to_host(), host);
    assert_eq!(a.tensor().dims(), [5, 2, 6, 10]);
    assert!(noise.sample(0, &mut noise_rng(1), &device).is_err());
}

#[test]
fn add_noise_is_the_forward_process() {
    let spectrum = parse_spectrum("power-law:alpha=0.5,eps=0.01").unwrap();
    let shape = DynShape::new(1, 8, 8);
    let noise = SpectralNoise::new(spectrum.as_ref(), shape, Normalization::Energy).unwrap();
    let device = Device::flex();
    let x0_values: Vec<f32> = (0..3 * 64).map(|i| ((i % 7) as f32 - 3.0) / 3.0).collect();
    let x0 = Images::from_host(x0_values.clone(), shape, &device).unwrap();
    let level = Schedule::ddpm_linear().level(400).unwrap();
    let (x_t, eps) = add_noise(&noise, &x0, level, &mut noise_rng(5)).unwrap();
    let (x_t, eps) = (x_t.to_host(), eps.to_host());
    for i in 0..x0_values.len() {
        let expected = level.scale() as f32 * x0_values[i] + level.sigma as f32 * eps[i];
        assert!((x_t[i] - expected).abs() < 1e-5);
    }
}

#[test]
fn parameterization_trait_matches_the_host_conversions() {
    let spectrum = parse_spectrum("band-pass:a=0.1,b=0.8").unwrap();
    let shape = DynShape::new(2, 8, 9);
    let noise = SpectralNoise::new(spectrum.as_ref(), shape, Normalization::Energy).unwrap();
    let cov = noise.covariance_arc();
    let device = Device::flex();
    let level = NoiseLevel::vp(0.3);
    let eps = noise.sample(3, &mut noise_rng(1), &device).unwrap();
    let x_t = noise.sample(3, &mut noise_rng(2), &device).unwrap();
    for kind in Parameterization::ALL {
        let p = Parameterized::new(kind, Arc::clone(&cov));
        let target: Images<DynShape> = p.from_coloured_eps(&eps, &x_t, level).unwrap();
        let host = kind
            .from_coloured_eps(&eps.to_host(), &x_t.to_host(), level, &cov)
            .unwrap();
        assert!(max_abs_diff(&target.to_host(), &host) < 1e-4, "{kind}");
        let back = p.to_coloured_eps(&target, &x_t, level).unwrap();
        assert!(
            max_abs_diff(&back.to_host(), &eps.to_host()) < 1e-3,
            "{kind} round trip"
        );
    }
    // A batch of another shape is refused.
    let other = Images::from_host(vec![0.0; 64], DynShape::new(1, 8, 8), &device).unwrap();
    let p = Parameterized::new(Parameterization::Score, cov);
    assert!(ScoreParameterization::<DynShape>::to_coloured_eps(&p, &other, &other, level).is_err());
}
