//! Every metric against a closed form or a brute-force reference computed here, independently
//! of the library's code path.

use burn::tensor::Device;
use nalgebra::DMatrix;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sagd_datasets::{Dataset, Pixels};
use sagd_eval::fid::trace_sqrt_product;
use sagd_eval::spectral::{BANDS, band_of, spectral};
use sagd_eval::{
    Features, GaussianStats, KidOptions, fid, frechet_distance, kid, precision_recall,
};

fn random_features(count: usize, dim: usize, seed: u64, scale: f32) -> Features {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values = (0..count * dim)
        .map(|_| rng.random_range(-1.0f32..1.0) * scale)
        .collect();
    Features::new(count, dim, values).unwrap()
}

/// Σ = Q diag(λ) Qᵀ for a random orthogonal Q (QR of a random matrix), row-major.
fn rotated(eigenvalues: &[f64], q: &DMatrix<f64>) -> Vec<f64> {
    let d = eigenvalues.len();
    let m = q
        * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(eigenvalues))
        * q.transpose();
    (0..d * d).map(|i| m[(i / d, i % d)]).collect()
}

fn random_orthogonal(d: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = DMatrix::from_fn(d, d, |_, _| rng.random_range(-1.0..1.0));
    a.qr().q()
}

#[test]
fn fid_of_commuting_gaussians_is_the_closed_form() {
    // Σ₁, Σ₂ share eigenvectors: tr(Σ₁^½Σ₂Σ₁^½)^½ = Σ √(aᵢbᵢ), so
    // FID = ‖μ₁−μ₂‖² + Σ (√aᵢ − √bᵢ)².
    let d = 6;
    let q = random_orthogonal(d, 1);
    let a = [4.0, 1.0, 0.25, 9.0, 2.0, 0.5];
    let b = [1.0, 1.0, 1.0, 16.0, 0.1, 3.0];
    let s1 = GaussianStats {
        mu: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        sigma: rotated(&a, &q),
        count: None,
    };
    let s2 = GaussianStats {
        mu: vec![1.0, 1.0, 2.0, 3.0, 4.0, 3.0],
        sigma: rotated(&b, &q),
        count: None,
    };
    let expected = 1.0
        + 4.0
        + a.iter()
            .zip(&b)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let got = frechet_distance(&s1, &s2).unwrap();
    // Round-off of two 6×6 eigendecompositions: ~1e-14 relative to traces of order 10.
    assert!((got - expected).abs() < 1e-10, "{got} vs {expected}");
}

#[test]
fn fid_of_non_commuting_2x2_gaussians_is_the_closed_form() {
    // For 2×2 positive definite M: tr √M = √(tr M + 2√det M), with M = Σ₁^½Σ₂Σ₁^½:
    // tr M = tr(Σ₁Σ₂), det M = det Σ₁ det Σ₂.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..20 {
        let mut spd = || {
            let a = DMatrix::from_fn(2, 2, |_, _| rng.random_range(-1.0..1.0));
            let m = &a * a.transpose() + DMatrix::identity(2, 2) * 0.1;
            vec![m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]]
        };
        let (s1, s2) = (spd(), spd());
        let tr_product = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
        let det = |s: &[f64]| s[0] * s[3] - s[1] * s[2];
        let expected = (tr_product + 2.0 * (det(&s1) * det(&s2)).sqrt()).sqrt();
        let got = trace_sqrt_product(&s1, &s2, 2);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }
}

#[test]
fn fid_of_rank_deficient_covariances_matches_the_cross_gram_nuclear_norm() {
    // N < d: Σ₁ = AᵀA/(N₁−1), Σ₂ = BᵀB/(N₂−1) with centred A (N₁×d), B (N₂×d). The nonzero
    // eigenvalues of Σ₁^½Σ₂Σ₁^½ are those of Σ₁Σ₂, i.e. the squared singular values of
    // A Bᵀ/√((N₁−1)(N₂−1)): tr(…)^½ is that matrix's nuclear norm, an N₁×N₂ computation.
    let (n1, n2, d) = (5, 7, 16);
    let x = random_features(n1, d, 3, 1.0);
    let y = random_features(n2, d, 4, 2.0);
    let centred = |f: &Features| {
        let n = f.count;
        let mean: Vec<f64> = (0..d)
            .map(|j| (0..n).map(|i| f64::from(f.row(i)[j])).sum::<f64>() / n as f64)
            .collect();
        (
            DMatrix::from_fn(n, d, |i, j| f64::from(f.row(i)[j]) - mean[j]),
            mean,
        )
    };
    let ((a, ma), (b, mb)) = (centred(&x), centred(&y));
    let cross = (&a * b.transpose()) / (((n1 - 1) * (n2 - 1)) as f64).sqrt();
    let nuclear: f64 = cross.singular_values().iter().sum();
    let trace1 = a.iter().map(|v| v * v).sum::<f64>() / (n1 - 1) as f64;
    let trace2 = b.iter().map(|v| v * v).sum::<f64>() / (n2 - 1) as f64;
    let mean_term: f64 = ma.iter().zip(&mb).map(|(p, q)| (p - q).powi(2)).sum();
    let expected = mean_term + trace1 + trace2 - 2.0 * nuclear;
    let got = fid(&x, &y).unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
}

#[test]
fn statistics_are_the_mean_and_the_n_minus_1_covariance() {
    let f = random_features(9, 3, 5, 1.0);
    let s = GaussianStats::from_features(&f).unwrap();
    for j in 0..3 {
        let mean = (0..9).map(|i| f64::from(f.row(i)[j])).sum::<f64>() / 9.0;
        assert!((s.mu[j] - mean).abs() < 1e-12);
        for k in 0..3 {
            let mk = (0..9).map(|i| f64::from(f.row(i)[k])).sum::<f64>() / 9.0;
            let cov = (0..9)
                .map(|i| (f64::from(f.row(i)[j]) - mean) * (f64::from(f.row(i)[k]) - mk))
                .sum::<f64>()
                / 8.0;
            assert!((s.sigma[j * 3 + k] - cov).abs() < 1e-12);
        }
    }
    assert_eq!(s.count, Some(9));
}

#[test]
fn fid_of_a_set_with_itself_is_zero_and_needs_two_vectors() {
    let f = random_features(40, 8, 6, 1.0);
    assert!(fid(&f, &f).unwrap().abs() < 1e-10);
    let one = random_features(1, 8, 6, 1.0);
    let err = fid(&one, &f).unwrap_err().to_string();
    assert!(err.contains("at least 2"), "{err}");
}

#[test]
fn a_covariance_that_is_not_positive_semi_definite_is_refused() {
    let good = GaussianStats {
        mu: vec![0.0, 0.0],
        sigma: vec![1.0, 0.0, 0.0, 1.0],
        count: None,
    };
    // A negative variance is no covariance.
    let bad = GaussianStats {
        mu: vec![0.0, 0.0],
        sigma: vec![-1.0, 0.0, 0.0, -1.0],
        count: None,
    };
    let err = frechet_distance(&good, &bad).unwrap_err().to_string();
    assert!(err.contains("negative variance"), "{err}");
    // Positive variances with a negative eigenvalue (|covariance| > variance): FID < 0.
    let indefinite = GaussianStats {
        mu: vec![0.0, 0.0],
        sigma: vec![1.0, 3.0, 3.0, 1.0],
        count: None,
    };
    let err = frechet_distance(
        &indefinite,
        &GaussianStats {
            mu: vec![0.0, 0.0],
            sigma: vec![0.0; 4],
            count: None,
        },
    );
    // Against zero: tr Σ₁ = 2, cross term 0, FID = 2 ≥ 0 passes. Against itself (eigenvalues
    // 4 and −2): Σ^½ keeps 4 only, the cross term is √16 = 4, FID = 2 + 2 − 2·4 = −4: refused.
    assert!(err.is_ok());
    let err = frechet_distance(&indefinite, &indefinite)
        .unwrap_err()
        .to_string();
    assert!(err.contains("positive semi-definite"), "{err}");
    assert_eq!(frechet_distance(&good, &good).unwrap(), 0.0);
}

#[test]
fn statistics_round_trip_through_pytorch_fid_npz() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.npz");
    let s = GaussianStats::from_features(&random_features(10, 4, 8, 1.0)).unwrap();
    s.save_npz(&path).unwrap();
    let keys = sagd_datasets::npz::npz_keys(&path).unwrap();
    assert_eq!(keys, vec!["mu".to_string(), "sigma".to_string()]);
    let back = GaussianStats::load_npz(&path).unwrap();
    assert_eq!(back.mu, s.mu);
    assert_eq!(back.sigma, s.sigma);
    assert_eq!(back.count, None);
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn malformed_statistics_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npz");
    sagd_datasets::npz::write_npz_f64(
        &path,
        &[
            ("mu", &[2], &[0.0, 1.0]),
            ("sigma", &[2, 2], &[1.0, 0.5, 0.0, 1.0]),
        ],
    )
    .unwrap();
    let err = GaussianStats::load_npz(&path).unwrap_err().to_string();
    assert!(err.contains("not symmetric"), "{err}");
    sagd_datasets::npz::write_npz_f64(
        &path,
        &[
            ("mu", &[3], &[0.0, 1.0, 2.0]),
            ("sigma", &[2, 2], &[1.0, 0.0, 0.0, 1.0]),
        ],
    )
    .unwrap();
    let err = GaussianStats::load_npz(&path).unwrap_err().to_string();
    assert!(err.contains("(d,) and (d, d)"), "{err}");
    sagd_datasets::npz::write_npz_f64(&path, &[("mu", &[1], &[0.0])]).unwrap();
    let err = GaussianStats::load_npz(&path).unwrap_err().to_string();
    assert!(err.contains("sigma"), "{err}");
}

/// torch-fidelity's unbiased MMD² with the kernel (xᵀy/d + 1)³, from the definition.
fn brute_mmd2(x: &[&[f32]], y: &[&[f32]]) -> f64 {
    let d = x[0].len() as f64;
    let k = |a: &[f32], b: &[f32]| {
        (a.iter()
            .zip(b)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum::<f64>()
            / d
            + 1.0)
            .powi(3)
    };
    let m = x.len() as f64;
    let mut within = 0.0;
    for set in [x, y] {
        for (i, a) in set.iter().enumerate() {
            for (j, b) in set.iter().enumerate() {
                if i != j {
                    within += k(a, b);
                }
            }
        }
    }
    let cross: f64 = x.iter().flat_map(|a| y.iter().map(move |b| k(a, b))).sum();
    within / (m * (m - 1.0)) - 2.0 * cross / (m * m)
}

fn kid_against_brute_force(n1: usize, n2: usize, dim: usize, m: usize, subsets: usize) {
    let x = random_features(n1, dim, 11, 1.0);
    let y = random_features(n2, dim, 12, 1.0);
    let options = KidOptions {
        subsets,
        subset_size: m,
        seed: 5,
    };
    let got = kid(&x, &y, options, &Device::default()).unwrap();
    // The documented draws: one ChaCha8 stream from the seed; per subset, m of the generated
    // indices, then m of the real ones, without replacement.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mmds: Vec<f64> = (0..subsets)
        .map(|_| {
            let ix = sample(&mut rng, n1, m).into_vec();
            let iy = sample(&mut rng, n2, m).into_vec();
            let xs: Vec<&[f32]> = ix.iter().map(|&i| x.row(i)).collect();
            let ys: Vec<&[f32]> = iy.iter().map(|&i| y.row(i)).collect();
            brute_mmd2(&xs, &ys)
        })
        .collect();
    let mean = mmds.iter().sum::<f64>() / subsets as f64;
    let std = (mmds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64).sqrt();
    // The library forms inner products in float32 (as torch-fidelity does): relative 1e-6 of
    // kernel values of order 1.
    assert!((got.mean - mean).abs() < 1e-5, "{} vs {mean}", got.mean);
    assert!((got.std - std).abs() < 1e-5, "{} vs {std}", got.std);
    assert_eq!((got.subsets, got.subset_size), (subsets, m));
}

#[test]
fn kid_is_the_mean_and_population_sd_of_unbiased_mmd2_over_subsets() {
    kid_against_brute_force(40, 30, 8, 12, 7);
}

#[test]
fn kid_of_large_sets_draws_the_same_subsets_without_a_full_gram_matrix() {
    // Over 4096 vectors the inner products are formed per subset instead of once.
    kid_against_brute_force(4100, 50, 3, 20, 3);
}

#[test]
fn kid_with_subsets_of_every_vector_has_zero_spread() {
    let x = random_features(15, 4, 1, 1.0);
    let y = random_features(15, 4, 2, 1.5);
    let got = kid(
        &x,
        &y,
        KidOptions {
            subsets: 5,
            subset_size: 15,
            seed: 0,
        },
        &Device::default(),
    )
    .unwrap();
    let xs: Vec<&[f32]> = (0..15).map(|i| x.row(i)).collect();
    let ys: Vec<&[f32]> = (0..15).map(|i| y.row(i)).collect();
    assert!((got.mean - brute_mmd2(&xs, &ys)).abs() < 1e-5);
    assert!(got.std < 1e-9);
    let err = kid(
        &x,
        &y,
        KidOptions {
            subsets: 5,
            subset_size: 16,
            seed: 0,
        },
        &Device::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("subset size 16"), "{err}");
}

/// Precision and recall from the definition, in f64 with explicit distances.
fn brute_precision_recall(generated: &Features, real: &Features, k: usize) -> (f64, f64) {
    let dist = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (f64::from(*p) - f64::from(*q)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let radii = |set: &Features| -> Vec<f64> {
        (0..set.count)
            .map(|i| {
                let mut d: Vec<f64> = (0..set.count)
                    .filter(|&j| j != i)
                    .map(|j| dist(set.row(i), set.row(j)))
                    .collect();
                d.sort_by(f64::total_cmp);
                d[k - 1]
            })
            .collect()
    };
    let share = |probe: &Features, manifold: &Features, r: &[f64]| {
        (0..probe.count)
            .filter(|&i| (0..manifold.count).any(|j| dist(probe.row(i), manifold.row(j)) <= r[j]))
            .count() as f64
            / probe.count as f64
    };
    let (rr, rg) = (radii(real), radii(generated));
    (share(generated, real, &rr), share(real, generated, &rg))
}

#[test]
fn precision_and_recall_match_the_definition() {
    for seed in 0..4 {
        let generated = random_features(60, 5, 100 + seed, 1.0);
        let real = random_features(80, 5, 200 + seed, 0.8);
        let got = precision_recall(&generated, &real, 3, &Device::default()).unwrap();
        let (p, r) = brute_precision_recall(&generated, &real, 3);
        assert_eq!((got.precision, got.recall), (p, r), "seed {seed}");
        assert_eq!(got.k, 3);
    }
}

#[test]
fn precision_is_about_generated_points_and_recall_about_real_ones() {
    // Real points spread on a line (radius 3 each with k = 3); generated points a tight
    // cluster on the first real point. Every generated point is inside the real manifold
    // (precision 1); only that one real point is inside the generated manifold (recall 1/20).
    let real: Vec<f32> = (0..20).flat_map(|i| [i as f32, 0.0]).collect();
    let generated: Vec<f32> = (0..10).flat_map(|j| [0.0, 0.001 * j as f32]).collect();
    let real = Features::new(20, 2, real).unwrap();
    let generated = Features::new(10, 2, generated).unwrap();
    let got = precision_recall(&generated, &real, 3, &Device::default()).unwrap();
    assert_eq!(got.precision, 1.0);
    assert_eq!(got.recall, 0.05);
    // Swapping the roles swaps the numbers.
    let swapped = precision_recall(&real, &generated, 3, &Device::default()).unwrap();
    assert_eq!((swapped.precision, swapped.recall), (0.05, 1.0));
}

#[test]
fn precision_recall_needs_more_than_k_points() {
    let small = random_features(3, 4, 1, 1.0);
    let big = random_features(10, 4, 2, 1.0);
    let err = precision_recall(&small, &big, 3, &Device::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than k points"), "{err}");
}

fn float_dataset(shape: [usize; 3], values: Vec<f32>) -> Dataset {
    Dataset::new("test", shape, Pixels::F32(values), None).unwrap()
}

#[test]
fn spectral_metrics_of_a_scaled_copy_are_closed_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let values: Vec<f32> = (0..20 * 2 * 8 * 8)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let reference = float_dataset([2, 8, 8], values.clone());
    let same = spectral(&reference, &reference).unwrap();
    assert_eq!(same.log_spectral_distance, 0.0);
    assert_eq!(same.mode_variance_relative_error, 0.0);
    // An 8×8 grid has no mode in [0.4, 0.5): no energy there, no ratio.
    for b in &same.bands {
        let expected = if b.lo == 0.4 { None } else { Some(1.0) };
        assert_eq!(
            (b.ratio, b.modes == 0),
            (expected, expected.is_none()),
            "{b:?}"
        );
    }
    // Twice the pixels: four times every power and variance.
    let doubled = float_dataset([2, 8, 8], values.iter().map(|v| 2.0 * v).collect());
    let s = spectral(&doubled, &reference).unwrap();
    let ln4 = 4f64.ln();
    assert!((s.log_spectral_distance - ln4).abs() < 1e-12);
    assert!((s.mode_variance_log_rms - ln4).abs() < 1e-12);
    assert!((s.mode_variance_relative_error - 3.0).abs() < 1e-12);
    for b in s.bands.iter().filter(|b| b.modes > 0) {
        assert!((b.ratio.unwrap() - 4.0).abs() < 1e-12, "{b:?}");
    }
}

#[test]
fn band_energies_sum_to_the_mean_energy_and_a_cosine_sits_in_its_band() {
    // Parseval for the unitary DFT: Σ_k |X_k|² = Σ_n x_n², so the ten bands together hold the
    // mean (over images and channels) of each image's Σ x².
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let (n, c, h, w) = (6, 3, 12, 10);
    let values: Vec<f32> = (0..n * c * h * w)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mean_energy = values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / (n * c) as f64;
    let data = float_dataset([c, h, w], values);
    let s = spectral(&data, &data).unwrap();
    let total: f64 = s.bands.iter().map(|b| b.samples).sum();
    // The mean image passes through float32 on its way (stats::second_moment_spectrum):
    // relative 1e-7.
    assert!(
        (total - mean_energy).abs() < 1e-7 * mean_energy,
        "{total} vs {mean_energy}"
    );

    // cos(2π·4m/16) along the width: all its power at (0, ±4), radius 0.25 cycles/pixel,
    // unit radius 0.25/(√2/2) ≈ 0.354: band 3.
    let (h, w) = (16, 16);
    let cosine: Vec<f32> = (0..h * w)
        .map(|i| (2.0 * std::f64::consts::PI * 4.0 * (i % w) as f64 / w as f64).cos() as f32)
        .collect();
    let data = float_dataset([1, h, w], [cosine.clone(), cosine].concat());
    let s = spectral(&data, &data).unwrap();
    assert_eq!(band_of(0.25 / std::f64::consts::FRAC_1_SQRT_2), 3);
    for (i, b) in s.bands.iter().enumerate() {
        if i == 3 {
            // Σ x² of one image: h·w/2.
            assert!((b.samples - 128.0).abs() < 1e-9, "{b:?}");
        } else {
            assert!(b.samples.abs() < 1e-9, "band {i}: {b:?}");
        }
    }
    assert_eq!(s.bands.len(), BANDS);
    assert_eq!(band_of(1.0), BANDS - 1);
}

#[test]
fn spectral_metrics_refuse_differing_shapes() {
    let a = float_dataset([1, 4, 4], vec![0.5; 32]);
    let b = float_dataset([1, 4, 5], vec![0.5; 40]);
    let err = spectral(&a, &b).unwrap_err().to_string();
    assert!(err.contains("1x4x4") && err.contains("1x4x5"), "{err}");
}
