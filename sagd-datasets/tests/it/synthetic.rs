//! Synthetic data against their known statistics, and the statistics against closed forms.

use sagd_core::{FrequencyGrid, RadiusConvention};
use sagd_datasets::stats::{
    mean_image, mode_variances, pca_spectrum, power_spectrum, radial_average, radial_psd,
    radial_psd_bins,
};
use sagd_datasets::synthetic::{GmmConfig, GrfConfig, SHAPE_CLASSES, ShapesConfig};
use sagd_datasets::{Dataset, DatasetError, Pixels};

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

fn param_of<T: std::fmt::Debug>(result: Result<T, DatasetError>) -> String {
    match result {
        Err(DatasetError::InvalidParam { param, .. }) => param,
        other => panic!("expected an InvalidParam error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Gaussian random fields
// ---------------------------------------------------------------------------------------------

/// Tolerance of the measured mode variances (derivation).
///
/// For a mode `f` with `f ≠ -f` the unitary DFT coefficient `z = F_u x(f)` of one channel of
/// one image is circular complex Gaussian with `E|z|² = λ`, so `|z|² ~ λ·Exp(1)`; for a
/// self-conjugate mode (`f = -f`: DC, and the Nyquist row/column of an even side) `z` is real
/// and `|z|² ~ λ·χ²₁`. The estimate averages over n images after subtracting their mean
/// (a Helmert rotation leaves n - 1 independent terms), per channel and, for `power_spectrum`,
/// over C independent channels: `m̂ = λ/(nC) · Gamma(C(n-1), 1)` (complex) or
/// `λ/(nC) · χ²_{C(n-1)}` (real). So `E m̂ = λ(1 - 1/n)` and the relative standard deviation
/// is `≈ 1/√m` (complex) or `√(2/m)` (real), `m = n` per channel and `m = nC` averaged over
/// channels. We require every entry to lie within `z = 6` standard deviations of its mean.
/// Bonferroni over at most `M = 3·9·12 = 324` tested entries: a Gaussian two-sided 6σ tail is
/// 2·10⁻⁹, times M ≈ 6·10⁻⁷; the right skew of the Gamma sum (skewness `2/√m ≤ 0.032` for
/// m ≥ 4000) makes the effective z about 5.8 (Cornish–Fisher), still a family-wise
/// false-alarm rate of order 10⁻⁶. f32 storage adds a relative error of ~10⁻⁷ per pixel,
/// negligible.
fn check_mode_variances(measured: &[f64], exact: &[f64], h: usize, w: usize, m: usize, n: usize) {
    const Z: f64 = 6.0;
    let grid = FrequencyGrid::new(h, w);
    let mut worst: f64 = 0.0;
    for (j, (&got, &lam)) in measured.iter().zip(exact).enumerate() {
        let (k, l) = ((j % (h * w)) / w, j % w);
        let self_conjugate = grid.mirror(k, l) == (k, l);
        let rel_std = if self_conjugate {
            (2.0 / m as f64).sqrt()
        } else {
            1.0 / (m as f64).sqrt()
        };
        let deviation = (got / lam - (1.0 - 1.0 / n as f64)) / rel_std;
        worst = worst.max(deviation.abs());
        assert!(
            deviation.abs() < Z,
            "mode {j} (k={k}, l={l}): measured {got}, exact {lam}, {deviation:.2} sd"
        );
    }
    // A generator with the wrong spectrum would be off by far more; a correct one is typically
    // within ~3.5 sd over a few hundred modes.
    assert!(worst > 0.5, "suspiciously exact: worst deviation {worst}");
}

fn grf_matches_its_spectrum(size: [usize; 3], beta: f64, seed: u64) {
    let n = 4000;
    let config = GrfConfig {
        beta,
        r0: 0.02,
        ..GrfConfig::new(size, n, seed)
    };
    let data = config.generate().unwrap();
    assert_eq!(data.len(), n);
    assert_eq!(data.shape(), size);
    assert!(data.labels().is_none());
    let [c, h, w] = size;
    let lam = config.mode_variances();
    assert_eq!(lam.len(), h * w);
    // Per channel: n copies per entry.
    let per_channel = mode_variances(&data);
    let exact: Vec<f64> = (0..c).flat_map(|_| lam.iter().copied()).collect();
    check_mode_variances(&per_channel, &exact, h, w, n, n);
    // Averaged over channels: n·C copies per entry.
    check_mode_variances(&power_spectrum(&data), &lam, h, w, n * c, n);
    // Per-pixel variance: mean_f λ(f) = scale² = 1 (Parseval). Mean over all modes of
    // the per-channel estimates, whose relative spread is at most that of the DC mode alone.
    let mean_var = per_channel.iter().sum::<f64>() / per_channel.len() as f64;
    assert!((mean_var - 1.0).abs() < 6.0 * (2.0 / n as f64).sqrt());
}

#[test]
fn grf_mode_variances_match_on_a_square_power_of_two_grid() {
    grf_matches_its_spectrum([1, 16, 16], 2.0, 11);
}

#[test]
fn grf_mode_variances_match_on_an_odd_non_power_of_two_grid() {
    grf_matches_its_spectrum([3, 9, 12], 1.5, 12);
}

#[test]
fn grf_is_seeded_and_independent_of_the_thread_count() {
    let config = GrfConfig::new([2, 10, 7], 50, 3);
    let a = in_pool(1, || config.generate().unwrap());
    let b = in_pool(3, || config.generate().unwrap());
    assert_eq!(a.pixels(), b.pixels());
    let prefix = GrfConfig {
        n: 5,
        ..config.clone()
    }
    .generate()
    .unwrap();
    assert_eq!(prefix.to_f32(), a.take(5).to_f32());
    let other = GrfConfig { seed: 4, ..config }.generate().unwrap();
    assert_ne!(a.pixels(), other.pixels());
}

#[test]
fn grf_invalid_parameters_are_named() {
    let base = GrfConfig::default();
    assert_eq!(
        param_of(
            GrfConfig {
                beta: -0.5,
                ..base.clone()
            }
            .generate()
        ),
        "beta"
    );
    assert_eq!(
        param_of(
            GrfConfig {
                r0: f64::NAN,
                ..base.clone()
            }
            .covariance()
        ),
        "r0"
    );
    assert_eq!(
        param_of(
            GrfConfig {
                scale: 0.0,
                ..base.clone()
            }
            .generate()
        ),
        "scale"
    );
    assert_eq!(
        param_of(
            GrfConfig {
                n: 0,
                ..base.clone()
            }
            .generate()
        ),
        "n"
    );
    assert_eq!(
        param_of(
            GrfConfig {
                size: [0, 4, 4],
                ..base
            }
            .generate()
        ),
        "size"
    );
}

// ---------------------------------------------------------------------------------------------
// Statistics against closed forms
// ---------------------------------------------------------------------------------------------

fn f32_dataset(shape: [usize; 3], images: &[Vec<f64>]) -> Dataset {
    let values = images.iter().flatten().map(|&v| v as f32).collect();
    Dataset::new("closed-form", shape, Pixels::F32(values), None).unwrap()
}

/// `x(i, j) = cos(2π(k0 i/H + l0 j/W) + φ) + offset`.
fn cosine(h: usize, w: usize, k0: usize, l0: usize, phase: f64, offset: f64) -> Vec<f64> {
    let mut x = Vec::with_capacity(h * w);
    for i in 0..h {
        for j in 0..w {
            let t = 2.0
                * std::f64::consts::PI
                * (k0 as f64 * i as f64 / h as f64 + l0 as f64 * j as f64 / w as f64);
            x.push((t + phase).cos() + offset);
        }
    }
    x
}

#[test]
fn power_spectrum_of_a_cosine_matches_the_closed_form() {
    // The unitary DFT of cos(2π⟨f0, n⟩ + φ) is √(HW)/2 · e^{±iφ} at ±f0 (and 0 elsewhere), so
    // |F_u x|² = HW/4 there. The dataset {x, -x} (plus a constant offset, removed with the mean
    // image) has mean offset and centred second moment (1/2)(|F_u x|² + |F_u x|²) = HW/4.
    let (h, w) = (6, 8);
    let (k0, l0) = (1, 3);
    let x = cosine(h, w, k0, l0, 0.4, 0.0);
    let images: Vec<Vec<f64>> = vec![
        x.iter().map(|v| v + 2.0).collect(),
        x.iter().map(|v| 2.0 - v).collect(),
    ];
    let d = f32_dataset([1, h, w], &images);
    let ps = power_spectrum(&d);
    let grid = FrequencyGrid::new(h, w);
    let mirror = grid.mirror(k0, l0);
    for k in 0..h {
        for l in 0..w {
            let expected = if (k, l) == (k0, l0) || (k, l) == mirror {
                (h * w) as f64 / 4.0
            } else {
                0.0
            };
            assert!(
                (ps[k * w + l] - expected).abs() < 1e-5,
                "({k}, {l}): {} vs {expected}",
                ps[k * w + l]
            );
        }
    }
    assert!(mean_image(&d).iter().all(|m| (m - 2.0).abs() < 1e-6));

    // A self-conjugate mode: (-1)^(i+j) = cos(π i + π j) has F_u x = √(HW) at (H/2, W/2),
    // so |F_u x|² = HW.
    let checker = cosine(h, w, h / 2, w / 2, 0.0, 0.0);
    let neg: Vec<f64> = checker.iter().map(|v| -v).collect();
    let ps = power_spectrum(&f32_dataset([1, h, w], &[checker, neg]));
    let nyquist = (h / 2) * w + w / 2;
    assert!((ps[nyquist] - (h * w) as f64).abs() < 1e-5);
    assert!((ps.iter().sum::<f64>() - (h * w) as f64).abs() < 1e-5);
}

#[test]
fn mode_variances_keep_channels_apart() {
    // Channel 0 holds the cosine, channel 1 is constant: its variance is zero everywhere.
    let (h, w) = (5, 7);
    let x = cosine(h, w, 2, 1, 0.0, 0.0);
    let image = |s: f64| -> Vec<f64> {
        x.iter()
            .map(|v| s * v)
            .chain(std::iter::repeat_n(0.3, h * w))
            .collect()
    };
    let d = f32_dataset([2, h, w], &[image(1.0), image(-1.0)]);
    let mv = mode_variances(&d);
    assert_eq!(mv.len(), 2 * h * w);
    assert!((mv[2 * w + 1] - (h * w) as f64 / 4.0).abs() < 1e-5);
    assert!(mv[h * w..].iter().all(|v| v.abs() < 1e-12));
    let ps = power_spectrum(&d);
    assert!((ps[2 * w + 1] - (h * w) as f64 / 8.0).abs() < 1e-5);
}

#[test]
fn radial_bins_cover_every_frequency_exactly_once() {
    for (h, w) in [(16, 16), (9, 12), (5, 7), (1, 6), (32, 32)] {
        let grid = FrequencyGrid::new(h, w);
        for convention in RadiusConvention::ALL {
            for bins in [1, 7, 23, 100] {
                let delta = convention.max_radius() / bins as f64;
                // One-hot tables: each frequency lands in exactly one bin, whose centre is
                // within half a bin width of the frequency's radius.
                for (j, f) in grid.frequencies().enumerate() {
                    let mut table = vec![0.0; h * w];
                    table[j] = 1.0;
                    let out = radial_average(&table, h, w, convention, bins).unwrap();
                    assert_eq!(out.iter().map(|b| b.count).sum::<usize>(), h * w);
                    let hits: Vec<_> = out.iter().filter(|b| b.power > 0.0).collect();
                    assert_eq!(hits.len(), 1, "{h}x{w} {convention} {bins}: frequency {j}");
                    let b = hits[0];
                    assert!((b.power - 1.0 / b.count as f64).abs() < 1e-15);
                    assert!((f.radius(convention) - b.radius).abs() <= delta / 2.0 + 1e-9);
                }
            }
        }
    }
}

#[test]
fn radial_psd_default_bins_are_one_frequency_step_wide() {
    let data = GrfConfig::new([2, 9, 12], 20, 1).generate().unwrap();
    for convention in RadiusConvention::ALL {
        let bins = radial_psd(&data, convention);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 9 * 12);
        // DC alone in bin 0, centred at half a step (1/12 cycles per pixel).
        assert_eq!(bins[0].count, 1);
        assert!((bins[0].radius - convention.from_cycles(0.5 / 12.0)).abs() < 1e-15);
        // The bin averages reproduce the total power.
        let total: f64 = bins.iter().map(|b| b.power * b.count as f64).sum();
        let ps: f64 = power_spectrum(&data).iter().sum();
        assert!((total - ps).abs() < 1e-9 * ps);
        assert!(bins.windows(2).all(|p| p[0].radius < p[1].radius));
    }
    assert_eq!(
        param_of(radial_psd_bins(&data, RadiusConvention::Unit, 0)),
        "bins"
    );
}

// ---------------------------------------------------------------------------------------------
// PCA spectrum on Gaussian mixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn pca_of_one_isotropic_component_gives_within_squared() {
    let s = 0.7;
    let (n, d) = (4000usize, 16usize);
    let config = GmmConfig {
        components: 1,
        size: [1, 4, 4],
        n,
        seed: 9,
        spread: 3.0,
        within: s,
    };
    let data = config.generate().unwrap();
    let eig = pca_spectrum(&data, None).unwrap();
    assert_eq!(eig.len(), d);
    assert!(eig.windows(2).all(|p| p[0] >= p[1]));
    // The sample covariance of n draws of N(μ, s² I) in dimension d is s²/n · Wishart: its
    // eigenvalues fill the Marchenko–Pastur interval s²[(1-√γ)², (1+√γ)²], γ = d/n, up to
    // O(n^(-2/3)) edge fluctuations (a margin of 0.05 covers them many times over).
    let g = (d as f64 / n as f64).sqrt();
    let (lo, hi) = ((1.0 - g).powi(2) - 0.05, (1.0 + g).powi(2) + 0.05);
    for v in &eig {
        assert!(v / (s * s) > lo && v / (s * s) < hi, "{eig:?}");
    }
    // Their mean is tr/d = s² · χ²_{d(n-1)} / (n d): relative sd √(2/(n d)); z = 6.
    let mean = eig.iter().sum::<f64>() / d as f64;
    let expected = s * s * (1.0 - 1.0 / n as f64);
    assert!((mean - expected).abs() < 6.0 * s * s * (2.0 / (n * d) as f64).sqrt());

    // With fewer images than dimensions (Gram route) the spectrum has rank N - 1.
    let few = pca_spectrum(&data, Some(10)).unwrap();
    assert_eq!(few.len(), d);
    assert!(
        few[8] > 0.01 && few[9..].iter().all(|v| *v < 1e-12),
        "{few:?}"
    );
}

#[test]
fn pca_gram_and_covariance_routes_agree_through_the_public_api() {
    // d = 12. 11 images take the Gram route (N < d); adding their mean image as a 12th image
    // leaves the mean and Σ (x - x̄)(x - x̄)ᵀ unchanged and takes the covariance route (N = d).
    let config = GmmConfig {
        components: 2,
        size: [1, 3, 4],
        n: 11,
        seed: 2,
        spread: 1.0,
        within: 0.4,
    };
    let data = config.generate().unwrap();
    let gram = pca_spectrum(&data, None).unwrap(); // N = 11 < d = 12
    let mut values = data.to_f32();
    let mean = mean_image(&data);
    values.extend(mean.iter().map(|&m| m as f32));
    let padded = Dataset::new("padded", [1, 3, 4], Pixels::F32(values), None).unwrap();
    let cov = pca_spectrum(&padded, None).unwrap(); // N = 12 = d: covariance route
    for (g, c) in gram.iter().zip(&cov) {
        // Σ (x - x̄)(x - x̄)ᵀ is the same; the divisor goes from 11 to 12.
        assert!(
            (g * 11.0 / 12.0 - c).abs() < 1e-5 * gram[0],
            "{gram:?} vs {cov:?}"
        );
    }
}

#[test]
fn pca_rejects_large_images_naming_the_limit() {
    let data = GrfConfig::new([3, 32, 33], 2, 0).generate().unwrap();
    let err = pca_spectrum(&data, None).unwrap_err();
    assert!(err.to_string().contains("3072"), "{err}");
    assert!(matches!(err, DatasetError::InvalidParam { .. }));
    let ok = GrfConfig::new([3, 32, 32], 2, 0).generate().unwrap();
    assert_eq!(pca_spectrum(&ok, None).unwrap().len(), 3072);
    assert_eq!(param_of(pca_spectrum(&ok, Some(0))), "max_images");
}

#[test]
fn gmm_labels_are_components_and_invalid_parameters_are_named() {
    let data = GmmConfig {
        components: 3,
        n: 600,
        ..GmmConfig::default()
    }
    .generate()
    .unwrap();
    let counts = data.class_counts().unwrap();
    assert_eq!(counts.len(), 3);
    assert!(counts.iter().all(|&c| c > 130), "{counts:?}");
    assert_eq!(
        param_of(
            GmmConfig {
                within: -1.0,
                ..GmmConfig::default()
            }
            .mixture()
        ),
        "within"
    );
    assert_eq!(
        param_of(
            GmmConfig {
                size: [1, 65, 65],
                ..GmmConfig::default()
            }
            .generate()
        ),
        "size"
    );
}

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

fn u8_pixels(d: &Dataset) -> &[u8] {
    match d.pixels() {
        Pixels::U8(v) => v,
        Pixels::F32(_) => panic!("shapes must be stored as u8"),
    }
}

#[test]
fn shapes_do_not_depend_on_the_thread_count_or_n() {
    let config = ShapesConfig {
        n: 400,
        size: [3, 32, 32],
        seed: 7,
    };
    let one = in_pool(1, || config.generate().unwrap());
    let many = in_pool(4, || config.generate().unwrap());
    assert_eq!(one.pixels(), many.pixels());
    assert_eq!(one.labels(), many.labels());
    let prefix = ShapesConfig {
        n: 10,
        ..config.clone()
    }
    .generate()
    .unwrap();
    assert_eq!(u8_pixels(&prefix), &u8_pixels(&one)[..10 * 3 * 32 * 32]);
    let other = ShapesConfig { seed: 8, ..config }.generate().unwrap();
    assert_ne!(one.pixels(), other.pixels());
}

#[test]
fn shapes_labels_are_balanced_and_named() {
    let data = ShapesConfig {
        n: 3000,
        size: [1, 16, 16],
        seed: 1,
    }
    .generate()
    .unwrap();
    assert_eq!(
        data.class_names().unwrap(),
        SHAPE_CLASSES.map(String::from).as_slice()
    );
    // Each count is Binomial(3000, 1/3): sd ≈ 25.8; 6 sd ≈ 155.
    let counts = data.class_counts().unwrap();
    assert_eq!(counts.len(), 3);
    assert!(
        counts.iter().all(|&c| (845..=1155).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn shapes_have_a_black_background_a_bright_shape_and_anti_aliased_edges() {
    for size in [[1, 32, 32], [3, 32, 32], [1, 20, 28]] {
        let data = ShapesConfig {
            n: 300,
            size,
            seed: 5,
        }
        .generate()
        .unwrap();
        assert!(data.is_u8());
        let [c, h, w] = size;
        let plane = h * w;
        for (i, image) in u8_pixels(&data).chunks(c * plane).enumerate() {
            let max = *image.iter().max().unwrap();
            // Intensity ≥ 0.5 and a brightest channel at full intensity: ≥ round(127.5).
            assert!(max >= 127, "image {i}: max {max}");
            // The largest shape (a square of side 0.6·min(H, W)) covers < 40% of the canvas.
            let background = (0..plane)
                .filter(|&p| (0..c).all(|j| image[j * plane + p] == 0))
                .count();
            assert!(
                background * 2 > plane,
                "image {i}: {background} background pixels"
            );
            // Edges are not on the pixel grid: some pixel of the brightest channel is strictly
            // between black and that channel's full value. (Only a square whose four edges all
            // fall within ~1/400 px of pixel boundaries lacks one: probability ~1e-7 per
            // square; the data are seeded, so this check is deterministic.)
            let brightest = (0..c)
                .max_by_key(|&j| image[j * plane..(j + 1) * plane].iter().max())
                .unwrap();
            let ch = &image[brightest * plane..(brightest + 1) * plane];
            let full = *ch.iter().max().unwrap();
            assert!(
                ch.iter().any(|&v| v > 0 && v < full),
                "image {i}: no intermediate value"
            );
        }
    }
}

#[test]
fn shapes_invalid_parameters_are_named() {
    assert_eq!(
        param_of(
            ShapesConfig {
                n: 0,
                ..ShapesConfig::default()
            }
            .generate()
        ),
        "n"
    );
    assert_eq!(
        param_of(
            ShapesConfig {
                size: [1, 3, 32],
                ..ShapesConfig::default()
            }
            .generate()
        ),
        "size"
    );
    assert_eq!(
        param_of(
            ShapesConfig {
                size: [0, 32, 32],
                ..ShapesConfig::default()
            }
            .generate()
        ),
        "size"
    );
}
