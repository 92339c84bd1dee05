//! `SpectralCovariance` against independent computations: a naive O(n²) 2-D DFT, dense linear
//! algebra, and sample statistics.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sagd_core::grid::FrequencyGrid;
use sagd_core::{Normalization, SpectralCovariance};

/// A symmetric, strictly positive test table: w(f) = 1 + 3 r² + cos(2π f_x)·0.2 (even in f).
fn smooth_table(h: usize, w: usize) -> Vec<f64> {
    FrequencyGrid::new(h, w)
        .frequencies()
        .map(|f| {
            1.0 + 3.0 * f.radius_cycles().powi(2) + 0.2 * (2.0 * std::f64::consts::PI * f.fx).cos()
        })
        .collect()
}

/// Applies the Fourier multiplier m to a real plane with the textbook DFT sums.
fn naive_filter(plane: &[f64], h: usize, w: usize, m: &[f64]) -> Vec<f64> {
    let tau = 2.0 * std::f64::consts::PI;
    let mut spec = vec![(0.0, 0.0); h * w];
    for k in 0..h {
        for l in 0..w {
            let (mut re, mut im) = (0.0, 0.0);
            for y in 0..h {
                for x in 0..w {
                    let ang = -tau * ((k * y) as f64 / h as f64 + (l * x) as f64 / w as f64);
                    re += plane[y * w + x] * ang.cos();
                    im += plane[y * w + x] * ang.sin();
                }
            }
            spec[k * w + l] = (re * m[k * w + l], im * m[k * w + l]);
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut re = 0.0;
            for k in 0..h {
                for l in 0..w {
                    let ang = tau * ((k * y) as f64 / h as f64 + (l * x) as f64 / w as f64);
                    re += spec[k * w + l].0 * ang.cos() - spec[k * w + l].1 * ang.sin();
                }
            }
            out[y * w + x] = re / (h * w) as f64;
        }
    }
    out
}

#[test]
#[allow(clippy::type_complexity)]
fn operators_match_the_naive_dft_on_odd_and_even_grids() {
    for (c, h, w) in [(1, 5, 6), (2, 4, 7), (1, 1, 5), (1, 6, 1), (3, 3, 3)] {
        let cov = SpectralCovariance::from_amplitudes(
            "test",
            smooth_table(h, w),
            [c, h, w],
            Normalization::None,
        )
        .unwrap();
        let amp = cov.amplitude().to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x: Vec<f64> = (0..2 * c * h * w)
            .map(|_| rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng))
            .collect();
        let cases: [(
            &str,
            fn(&SpectralCovariance, &mut [f64]) -> Result<(), sagd_core::CoreError>,
            Box<dyn Fn(f64) -> f64>,
        ); 4] = [
            ("colour", SpectralCovariance::colour, Box::new(|a| a)),
            ("whiten", SpectralCovariance::whiten, Box::new(|a| 1.0 / a)),
            (
                "apply_cov",
                SpectralCovariance::apply_cov,
                Box::new(|a| a * a),
            ),
            (
                "apply_pinv",
                SpectralCovariance::apply_pinv,
                Box::new(|a| 1.0 / (a * a)),
            ),
        ];
        for (name, op, m) in cases {
            let mut fast = x.clone();
            op(&cov, &mut fast).unwrap();
            let mult: Vec<f64> = amp.iter().map(|&a| m(a)).collect();
            for (plane_fast, plane_x) in fast.chunks(h * w).zip(x.chunks(h * w)) {
                let slow = naive_filter(plane_x, h, w, &mult);
                for (a, b) in plane_fast.iter().zip(&slow) {
                    assert!(
                        (a - b).abs() < 1e-12 * (1.0 + b.abs()),
                        "{name} on {c}x{h}x{w}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn f32_and_f64_paths_agree() {
    let cov = SpectralCovariance::from_amplitudes(
        "test",
        smooth_table(8, 9),
        [1, 8, 9],
        Normalization::Energy,
    )
    .unwrap();
    let x64: Vec<f64> = (0..72).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
    let mut x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
    let mut y64 = x64.clone();
    cov.colour(&mut y64).unwrap();
    cov.colour(&mut x32).unwrap();
    for (a, b) in x32.iter().zip(&y64) {
        // f32 FFTs of length ≤ 9: a few ulps of the largest value.
        assert!((*a as f64 - b).abs() < 1e-5 * 10.0, "{a} vs {b}");
    }
}

#[test]
fn rank_log_det_and_support_match_dense_linear_algebra() {
    // Full support: log det from the dense matrix.
    let cov = SpectralCovariance::from_amplitudes(
        "test",
        smooth_table(4, 5),
        [2, 4, 5],
        Normalization::Energy,
    )
    .unwrap();
    let dense = cov.dense();
    let chol = dense.clone().cholesky().unwrap();
    let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    assert!((cov.log_det_support() - log_det).abs() < 1e-9 * log_det.abs().max(1.0));
    assert!(cov.full_support());
    assert_eq!(cov.rank(), 40);
    // Rank-deficient: zero a symmetric pair and the DC.
    let grid = FrequencyGrid::new(4, 5);
    let mut table = smooth_table(4, 5);
    table[0] = 0.0;
    let (mk, ml) = grid.mirror(1, 2);
    table[5 + 2] = 0.0; // row 1, column 2
    table[mk * 5 + ml] = 0.0;
    let cov = SpectralCovariance::from_amplitudes("test", table, [2, 4, 5], Normalization::Energy)
        .unwrap();
    assert!(!cov.full_support());
    assert_eq!(cov.rank(), 2 * 17);
    let eig = cov.dense().symmetric_eigenvalues();
    let numerical_rank = eig.iter().filter(|&&e| e > 1e-10).count();
    assert_eq!(numerical_rank, cov.rank());
    // log det on the support = sum of the logs of the non-zero eigenvalues.
    let log_det: f64 = eig.iter().filter(|&&e| e > 1e-10).map(|e| e.ln()).sum();
    assert!((cov.log_det_support() - log_det).abs() < 1e-9 * log_det.abs().max(1.0));
    // Π = Σ Σ⁺ as dense matrices.
    let pi = cov.dense_of(|c, x| c.project(x));
    let product = cov.dense() * cov.dense_of(|c, x| c.apply_pinv(x));
    assert!((pi - product).amax() < 1e-10);
}

#[test]
fn energy_normalization_gives_unit_pixel_variance_and_none_keeps_the_table() {
    let table = smooth_table(6, 6);
    let energy = SpectralCovariance::from_amplitudes(
        "test",
        table.clone(),
        [1, 6, 6],
        Normalization::Energy,
    )
    .unwrap();
    let mean_power: f64 = energy.power().iter().sum::<f64>() / 36.0;
    assert!((mean_power - 1.0).abs() < 1e-14);
    assert!(
        energy
            .dense()
            .diagonal()
            .iter()
            .all(|v| (v - 1.0).abs() < 1e-12)
    );
    let none =
        SpectralCovariance::from_amplitudes("test", table.clone(), [1, 6, 6], Normalization::None)
            .unwrap();
    assert_eq!(none.amplitude(), table.as_slice());
    // Huge dynamic range (the papers' power-law DC) normalizes without overflow.
    let mut extreme = vec![1.0; 16];
    extreme[0] = 1e200;
    let cov =
        SpectralCovariance::from_amplitudes("test", extreme, [1, 4, 4], Normalization::Energy)
            .unwrap();
    assert!((cov.power().iter().sum::<f64>() / 16.0 - 1.0).abs() < 1e-12);
}

#[test]
fn draws_have_the_covariance_and_are_reproducible_whatever_the_thread_count() {
    let cov = SpectralCovariance::from_amplitudes(
        "test",
        smooth_table(5, 4),
        [1, 5, 4],
        Normalization::Energy,
    )
    .unwrap();
    let d = 20;
    let n = 20_000;
    let draws = cov.sample::<f64>(n, &mut ChaCha8Rng::seed_from_u64(3));
    let x = DMatrix::from_column_slice(d, n, &draws);
    let empirical = &x * x.transpose() / n as f64;
    let dense = cov.dense();
    for i in 0..d {
        for j in 0..d {
            let se = ((dense[(i, i)] * dense[(j, j)] + dense[(i, j)].powi(2)) / n as f64).sqrt();
            // 400 entries: 5 standard errors is a two-sided tail of 5.7e-7 each.
            assert!(
                (empirical[(i, j)] - dense[(i, j)]).abs() < 5.0 * se,
                "({i},{j})"
            );
        }
    }
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let a = one_thread.install(|| cov.sample::<f32>(64, &mut ChaCha8Rng::seed_from_u64(9)));
    let b = cov.sample::<f32>(64, &mut ChaCha8Rng::seed_from_u64(9));
    assert_eq!(a, b);
}

#[test]
fn per_sample_std_rescales_every_plane() {
    let cov = SpectralCovariance::from_amplitudes(
        "test",
        smooth_table(8, 8),
        [3, 8, 8],
        Normalization::PerSampleStd,
    )
    .unwrap();
    let draws = cov.sample::<f64>(5, &mut ChaCha8Rng::seed_from_u64(4));
    for plane in draws.chunks(64) {
        let mean = plane.iter().sum::<f64>() / 64.0;
        let var = plane.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 64.0;
        assert!((var - 1.0).abs() < 1e-12);
    }
}

#[test]
fn bad_tables_are_typed_errors() {
    let err = |t: Vec<f64>, size| {
        SpectralCovariance::from_amplitudes("t", t, size, Normalization::Energy)
            .unwrap_err()
            .to_string()
    };
    assert!(err(vec![1.0; 5], [1, 2, 3]).contains("returned 5 amplitudes"));
    assert!(err(vec![1.0, f64::NAN, 1.0, 1.0], [1, 2, 2]).contains("NaN"));
    assert!(err(vec![1.0, -1.0, 1.0, 1.0], [1, 2, 2]).contains("-1"));
    assert!(err(vec![0.0; 4], [1, 2, 2]).contains("zero at every frequency"));
    // Row 1 and row 2 are mirrors on a 3-row grid; make them differ.
    assert!(err(vec![1.0, 2.0, 3.0], [1, 3, 1]).contains("not symmetric"));
    assert!(err(vec![], [1, 0, 3]).contains("at least 1"));
    let cov =
        SpectralCovariance::from_amplitudes("t", vec![1.0; 4], [1, 2, 2], Normalization::Energy)
            .unwrap();
    let mut short = vec![0.0f64; 6];
    assert!(
        cov.colour(&mut short)
            .unwrap_err()
            .to_string()
            .contains("whole number")
    );
}

#[test]
fn apply_table_matches_the_naive_dft_and_refuses_bad_tables() {
    // A table that is not a function of w(f): the filter of a different symmetric profile.
    for (c, h, w) in [(1, 5, 6), (2, 4, 7), (1, 6, 1)] {
        let cov = SpectralCovariance::from_amplitudes(
            "test",
            vec![1.0; h * w],
            [c, h, w],
            Normalization::None,
        )
        .unwrap();
        let table: Vec<f64> = smooth_table(h, w).iter().map(|v| v * v - 0.5).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let data: Vec<f64> = (0..2 * c * h * w)
            .map(|_| rand::Rng::random::<f64>(&mut rng) - 0.5)
            .collect();
        let mut filtered = data.clone();
        cov.apply_table(&mut filtered, "test", &table).unwrap();
        for (plane, out) in data.chunks(h * w).zip(filtered.chunks(h * w)) {
            let naive = naive_filter(plane, h, w, &table);
            for (a, b) in naive.iter().zip(out) {
                assert!((a - b).abs() < 1e-12, "{c}x{h}x{w}: {a} vs {b}");
            }
        }
    }
    let cov =
        SpectralCovariance::from_amplitudes("test", vec![1.0; 16], [1, 4, 4], Normalization::None)
            .unwrap();
    let mut x = vec![0.0f64; 16];
    let short = cov.apply_table(&mut x, "probe", &[1.0; 15]).unwrap_err();
    assert!(short.to_string().contains("16 values"), "{short}");
    let mut table = vec![1.0; 16];
    table[3] = f64::NAN;
    let nan = cov.apply_table(&mut x, "probe", &table).unwrap_err();
    assert!(nan.to_string().contains("probe"), "{nan}");
}
