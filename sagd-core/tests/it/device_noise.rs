//! `DeviceNoise` (DFT matrix products on a burn device) against the host FFT path on the same
//! numbers, and its draws against `Σ_w` with the host path's statistical test; on flex, or on
//! the device `SAGD_TEST_DEVICE` names (CI runs them on the CUDA build's CPU stand-in).

use std::sync::Arc;
use std::thread;

use burn::tensor::{Tensor, TensorData};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sagd_core::device::test_device;
use sagd_core::device_noise::seeded_normal;
use sagd_core::grid::FrequencyGrid;
use sagd_core::{DeviceNoise, Normalization, SpectralCovariance};

/// A Fourier multiplier as a function of the amplitude `w(f)`.
type Multiplier = fn(f64) -> f64;

/// A symmetric, strictly positive test table (as in `covariance.rs`).
fn smooth_table(h: usize, w: usize) -> Vec<f64> {
    FrequencyGrid::new(h, w)
        .frequencies()
        .map(|f| {
            1.0 + 3.0 * f.radius_cycles().powi(2) + 0.2 * (2.0 * std::f64::consts::PI * f.fx).cos()
        })
        .collect()
}

fn to_vec(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

#[test]
fn device_filters_match_the_host_ffts_on_the_same_numbers() {
    let device = test_device();
    for (c, h, w) in [
        (1, 5, 6),
        (2, 4, 7),
        (1, 1, 5),
        (1, 6, 1),
        (3, 3, 3),
        (3, 32, 32),
        (1, 28, 30),
    ] {
        let cov = Arc::new(
            SpectralCovariance::from_amplitudes(
                "test",
                smooth_table(h, w),
                [c, h, w],
                Normalization::Energy,
            )
            .unwrap(),
        );
        let noise = DeviceNoise::new(cov.clone(), &device).unwrap();
        let n = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let z: Vec<f32> = (0..n * c * h * w)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let tensor = Tensor::from_data(TensorData::new(z.clone(), [n, c, h, w]), &device);
        let cases: [(&str, Multiplier); 3] = [
            ("colour", |a| a),
            ("whiten", |a| 1.0 / a),
            ("pinv", |a| 1.0 / (a * a)),
        ];
        for (name, m) in cases {
            let mut host = z.clone();
            cov.apply_multiplier(&mut host, name, m).unwrap();
            let table = noise.multiplier(m).unwrap();
            let dev = to_vec(noise.filter(tensor.clone(), &table).unwrap());
            let scale = host.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            // f32 DFT sums of H + W terms per output: error ~ (H + W)·2⁻²⁴ of the largest value.
            let tol = 1e-5 * (h + w) as f32 * scale;
            for (i, (a, b)) in host.iter().zip(&dev).enumerate() {
                assert!(
                    (a - b).abs() <= tol,
                    "{name} on {c}x{h}x{w}, index {i}: host {a} device {b}"
                );
            }
        }
        let coloured = to_vec(noise.colour(tensor).unwrap());
        let mut host = z;
        cov.colour(&mut host).unwrap();
        let scale = host.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        for (a, b) in host.iter().zip(&coloured) {
            assert!((a - b).abs() <= 1e-5 * (h + w) as f32 * scale);
        }
    }
}

#[test]
fn device_draws_have_the_covariance_and_are_reproducible() {
    let device = test_device();
    let cov = Arc::new(
        SpectralCovariance::from_amplitudes(
            "test",
            smooth_table(5, 4),
            [1, 5, 4],
            Normalization::Energy,
        )
        .unwrap(),
    );
    let noise = DeviceNoise::new(cov.clone(), &device).unwrap();
    let d = 20;
    let n = 20_000;
    let draws: Vec<f64> = to_vec(noise.sample(n, 3).unwrap())
        .into_iter()
        .map(f64::from)
        .collect();
    // The host path's test: every entry of the empirical covariance within 5 standard errors.
    let x = DMatrix::from_column_slice(d, n, &draws);
    let empirical = &x * x.transpose() / n as f64;
    let dense = cov.dense();
    for i in 0..d {
        for j in 0..d {
            let se = ((dense[(i, i)] * dense[(j, j)] + dense[(i, j)].powi(2)) / n as f64).sqrt();
            assert!(
                (empirical[(i, j)] - dense[(i, j)]).abs() < 5.0 * se,
                "({i},{j}): {} against {}",
                empirical[(i, j)],
                dense[(i, j)]
            );
        }
    }
    let a = to_vec(noise.sample(4, 11).unwrap());
    let b = to_vec(noise.sample(4, 11).unwrap());
    let c = to_vec(noise.sample(4, 12).unwrap());
    assert_eq!(a, b, "same seed, same numbers");
    assert_ne!(a, c, "another seed, other numbers");
}

#[test]
fn device_draws_have_per_mode_variance_w_squared() {
    let device = test_device();
    let (h, w) = (8, 8);
    let cov = Arc::new(
        SpectralCovariance::from_amplitudes(
            "test",
            smooth_table(h, w),
            [2, h, w],
            Normalization::Energy,
        )
        .unwrap(),
    );
    let noise = DeviceNoise::new(cov.clone(), &device).unwrap();
    let n = 4000;
    let draws = to_vec(noise.sample(n, 21).unwrap());
    // Unitary DFT power per mode, averaged over draws and channels; E = w² per mode.
    let planes = 2 * n;
    let tau = 2.0 * std::f64::consts::PI;
    let amplitude = cov.amplitude();
    for k in 0..h {
        for l in 0..w {
            let mut power = 0.0;
            for plane in draws.chunks(h * w) {
                let (mut re, mut im) = (0.0, 0.0);
                for y in 0..h {
                    for x in 0..w {
                        let ang = -tau * ((k * y) as f64 / h as f64 + (l * x) as f64 / w as f64);
                        let v = f64::from(plane[y * w + x]);
                        re += v * ang.cos();
                        im += v * ang.sin();
                    }
                }
                power += (re * re + im * im) / (h * w) as f64;
            }
            let mean = power / planes as f64;
            let expected = amplitude[k * w + l].powi(2);
            // |F ε|²/HW is w²·χ²₂/2 (w²·χ²₁ at self-conjugate modes): standard deviation at most
            // √2·w² per draw, so 6 standard errors bound 64 modes' tails well below 1e-6.
            let se = std::f64::consts::SQRT_2 * expected / (planes as f64).sqrt();
            assert!(
                (mean - expected).abs() < 6.0 * se,
                "mode ({k},{l}): {mean} against w² = {expected}"
            );
        }
    }
}

#[test]
fn per_sample_std_on_the_device_rescales_every_plane() {
    let device = test_device();
    let cov = Arc::new(
        SpectralCovariance::from_amplitudes(
            "test",
            smooth_table(8, 8),
            [3, 8, 8],
            Normalization::PerSampleStd,
        )
        .unwrap(),
    );
    let draws = to_vec(
        DeviceNoise::new(cov, &device)
            .unwrap()
            .sample(5, 4)
            .unwrap(),
    );
    for plane in draws.chunks(64) {
        let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / 64.0;
        let var = plane
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 64.0;
        // f32 values and an f32 variance on the device: a few ulps of 1.
        assert!((var - 1.0).abs() < 1e-5, "{var}");
    }
}

#[test]
fn device_filter_refuses_other_shapes_and_empty_draws() {
    let device = test_device();
    let cov = Arc::new(
        SpectralCovariance::from_amplitudes(
            "test",
            smooth_table(4, 4),
            [1, 4, 4],
            Normalization::Energy,
        )
        .unwrap(),
    );
    let noise = DeviceNoise::new(cov, &device).unwrap();
    let wrong = Tensor::<4>::zeros([2, 1, 4, 5], &device);
    let err = noise.colour(wrong).unwrap_err().to_string();
    assert!(err.contains("[2, 1, 4, 5]"), "{err}");
    assert!(noise.sample(0, 1).is_err());
}

/// burn's generator is process-wide: without `seeded_normal`'s lock, a thread seeding between
/// another's seed and draw would hand it the wrong numbers.
#[test]
fn concurrent_draws_each_get_their_own_seeds_numbers() {
    let device = test_device();
    let shape = [2, 1, 8, 8];
    let alone: Vec<Vec<f32>> = (0..4)
        .map(|seed| to_vec(seeded_normal(shape, seed, &device)))
        .collect();
    for _ in 0..20 {
        let together: Vec<Vec<f32>> = thread::scope(|scope| {
            let draws: Vec<_> = (0..4)
                .map(|seed| {
                    let device = device.clone();
                    scope.spawn(move || to_vec(seeded_normal(shape, seed, &device)))
                })
                .collect();
            draws.into_iter().map(|d| d.join().unwrap()).collect()
        });
        assert_eq!(together, alone);
    }
}
