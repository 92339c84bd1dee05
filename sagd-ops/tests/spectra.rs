//! The built-in spectra against their closed forms written out independently, their
//! validation errors, and their serialization.

use sagd_core::registry::{entries, parse_spectrum};
use sagd_core::spectrum::config_string;
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, Normalization, SpecError, SpectralCovariance, SpectrumError,
};

/// `numpy.fft.fftfreq(n)` written out.
fn numpy_fftfreq(n: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let positive = (n - 1) / 2 + 1;
    for i in 0..positive {
        out.push(i as f64 / n as f64);
    }
    for i in positive..n {
        out.push(-((n - i) as f64) / n as f64);
    }
    out
}

/// Radius of every grid point in cycles per pixel, row-major.
fn radii(h: usize, w: usize) -> Vec<f64> {
    let (fy, fx) = (numpy_fftfreq(h), numpy_fftfreq(w));
    let mut out = Vec::new();
    for y in &fy {
        for x in &fx {
            out.push((x * x + y * y).sqrt());
        }
    }
    out
}

fn table(spec: &str, h: usize, w: usize) -> Vec<f64> {
    parse_spectrum(spec)
        .unwrap()
        .amplitudes(&FrequencyGrid::new(h, w))
        .unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "index {i}: {x} vs {y}"
        );
    }
}

#[test]
fn every_builtin_is_registered() {
    let names: Vec<&str> = entries().iter().map(|e| e.name).collect();
    for name in sagd_ops::BUILTIN {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[test]
fn power_law_matches_its_formula() {
    for (h, w) in [(5, 6), (8, 8), (7, 3)] {
        let expected: Vec<f64> = radii(h, w)
            .iter()
            .map(|r| (r + 0.01f64).powf(-0.7))
            .collect();
        close(
            &table("power-law:alpha=-0.7,eps=0.01", h, w),
            &expected,
            1e-14,
        );
        let unit: Vec<f64> = radii(h, w)
            .iter()
            .map(|r| (r / 0.5f64.sqrt() + 0.01).powf(1.5))
            .collect();
        close(
            &table("power-law:alpha=1.5,eps=0.01,radius=unit", h, w),
            &unit,
            1e-14,
        );
    }
    // The papers' default floor: DC power 1e10 for α = -0.5 before normalization.
    let t = table("power-law", 4, 4);
    assert!((t[0] * t[0] - 1e10).abs() < 1e-3);
}

#[test]
fn band_pass_selects_its_annulus_in_each_convention() {
    let (h, w) = (9, 10);
    let r = radii(h, w);
    let expect = |lo: f64, hi: f64, scale: f64| -> Vec<f64> {
        r.iter()
            .map(|x| {
                if x / scale >= lo && x / scale <= hi {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    };
    close(
        &table("band-pass:a=0.2,b=0.6", h, w),
        &expect(0.2, 0.6, 0.5f64.sqrt()),
        0.0,
    );
    close(
        &table("band-pass:a=0.1,b=0.3,radius=cycles", h, w),
        &expect(0.1, 0.3, 1.0),
        0.0,
    );
    close(
        &table("band-pass:a=0.5,b=1.2,radius=nyquist", h, w),
        &expect(0.5, 1.2, 0.5),
        0.0,
    );
    let cov = SpectralCovariance::new(
        parse_spectrum("band-pass:a=0.2,b=0.6").unwrap().as_ref(),
        [1, h, w],
        Normalization::Energy,
    )
    .unwrap();
    assert!(!cov.full_support());
}

#[test]
fn two_band_scales_each_band_to_unit_pixel_variance() {
    let (h, w) = (16, 16);
    let n = (h * w) as f64;
    let low = table("two-band:gamma_l=1.5,gamma_h=0,a_l=0,b_l=0.3", h, w);
    let mean_sq: f64 = low.iter().map(|a| a * a).sum::<f64>() / n;
    assert!((mean_sq - 1.5 * 1.5).abs() < 1e-12);
    let both = table(
        "two-band:gamma_l=1,gamma_h=2,a_l=0,b_l=0.3,a_h=0.5,b_h=1",
        h,
        w,
    );
    let high = table("two-band:gamma_l=0,gamma_h=2,a_h=0.5,b_h=1", h, w);
    let low1 = table("two-band:gamma_l=1,gamma_h=0,a_l=0,b_l=0.3", h, w);
    let sum: Vec<f64> = low1.iter().zip(&high).map(|(a, b)| a + b).collect();
    close(&both, &sum, 1e-14);
    // The gap (0.3, 0.5) carries no noise.
    for (a, rr) in both.iter().zip(radii(h, w)) {
        let u = rr / 0.5f64.sqrt();
        if u > 0.3 + 1e-9 && u < 0.5 - 1e-9 {
            assert_eq!(*a, 0.0);
        }
    }
}

#[test]
fn exp_decay_and_tabulated_match_their_formulas() {
    let (h, w) = (6, 7);
    let expected: Vec<f64> = radii(h, w).iter().map(|r| (-3.0 * r * r).exp()).collect();
    close(&table("exp-decay:beta=3", h, w), &expected, 1e-14);
    let t: Vec<f64> = radii(h, w)
        .iter()
        .map(|r| {
            let u = r / 0.5f64.sqrt();
            if u <= 0.5 {
                2.0 - 2.0 * u
            } else {
                1.0 - (u - 0.5) * 1.0
            }
        })
        .collect();
    close(&table("tabulated:r=0;0.5;1,w=2;1;0.5", h, w), &t, 1e-12);
    // Constant beyond the last point.
    let flat = table("tabulated:r=0;0.1,w=1;3", h, w);
    assert_eq!(flat.iter().filter(|&&v| v == 3.0).count(), h * w - 1);
}

fn error_of(spec: &str) -> SpectrumError {
    match parse_spectrum(spec) {
        Ok(s) => s.amplitudes(&FrequencyGrid::new(8, 8)).unwrap_err(),
        Err(e) => e,
    }
}

fn param_of(e: &SpectrumError) -> &str {
    match e {
        SpectrumError::InvalidParam { param, .. } => param,
        other => panic!("expected InvalidParam, got {other}"),
    }
}

#[test]
fn invalid_parameters_are_typed_errors_naming_the_parameter() {
    assert_eq!(param_of(&error_of("power-law:alpha=NaN")), "alpha");
    assert_eq!(param_of(&error_of("power-law:alpha=inf")), "alpha");
    assert_eq!(param_of(&error_of("power-law:eps=-1")), "eps");
    assert_eq!(param_of(&error_of("band-pass:a=0.7,b=0.2")), "a");
    assert_eq!(param_of(&error_of("band-pass:a=0.2,b=1.5")), "b");
    assert_eq!(
        param_of(&error_of("band-pass:a=0.1,b=0.8,radius=cycles")),
        "b"
    );
    assert_eq!(param_of(&error_of("two-band:gamma_l=-0.5")), "gamma_l");
    assert_eq!(param_of(&error_of("two-band:gamma_h=nan")), "gamma_h");
    assert_eq!(param_of(&error_of("two-band:a_h=0.9,b_h=0.8")), "a_h");
    assert_eq!(param_of(&error_of("exp-decay:beta=-2")), "beta");
    assert_eq!(param_of(&error_of("tabulated:r=0;0;1,w=1;1;1")), "r");
    assert_eq!(param_of(&error_of("tabulated:r=0;1,w=1;-1")), "w");
    assert_eq!(param_of(&error_of("band-pass:radius=furlongs")), "radius");
    assert_eq!(param_of(&error_of("power-law:dc=zero")), "dc");
    assert_eq!(param_of(&error_of("power-law:alpha=-1,eps=0")), "eps");
    assert_eq!(param_of(&error_of("offset:offset=-0.1")), "offset");
    assert_eq!(param_of(&error_of("offset:offset=nan")), "offset");
    assert_eq!(param_of(&error_of("band-stop:a=0.6,b=0.5")), "a");
    assert_eq!(param_of(&error_of("band-stop:b=1.5")), "b");
    assert!(matches!(
        error_of("band-pass:a=0.1,b=0.12"),
        SpectrumError::EmptyBand { .. }
    ));
    assert!(matches!(
        error_of("power-law:gamma=1"),
        SpectrumError::Spec(SpecError::UnknownKey { .. })
    ));
    assert!(matches!(
        error_of("pink"),
        SpectrumError::Spec(SpecError::UnknownName { .. })
    ));
    assert!(
        error_of("pink").to_string().contains("power-law"),
        "lists the available names"
    );
}

#[test]
fn spectra_round_trip_through_typetag_and_config_strings() {
    let specs = [
        "isotropic",
        "power-law:alpha=-0.5",
        "band-pass:a=0.1,b=0.4,radius=nyquist",
        "two-band:gamma_l=0.5",
        "exp-decay:beta=2",
        "tabulated:r=0;0.5;1,w=1;0.2;0.1",
        "power-law:alpha=-0.3,dc=neighbours",
        "band-stop:a=0.2,b=0.5",
        "offset:offset=0.3",
    ];
    let grid = FrequencyGrid::new(7, 8);
    for spec in specs {
        let s = parse_spectrum(spec).unwrap();
        let reference = s.amplitudes(&grid).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let from_json: Box<dyn NoiseSpectrum> = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json.amplitudes(&grid).unwrap(), reference, "{json}");
        let toml_text = toml::to_string(&s).unwrap();
        let from_toml: Box<dyn NoiseSpectrum> = toml::from_str(&toml_text).unwrap();
        assert_eq!(
            from_toml.amplitudes(&grid).unwrap(),
            reference,
            "{toml_text}"
        );
        let again = parse_spectrum(&config_string(s.as_ref())).unwrap();
        assert_eq!(again.amplitudes(&grid).unwrap(), reference);
        // The same TOML through the registry (what `@file.toml` uses).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, &toml_text).unwrap();
        let from_file = parse_spectrum(&format!("@{}", path.display())).unwrap();
        assert_eq!(from_file.amplitudes(&grid).unwrap(), reference);
    }
    // Unknown keys and wrong kinds are refused by serde too.
    assert!(
        toml::from_str::<Box<dyn NoiseSpectrum>>("kind = \"power-law\"\nalpha = 1\nbeta = 2")
            .is_err()
    );
    assert!(toml::from_str::<Box<dyn NoiseSpectrum>>("kind = \"pink\"").is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "kind = \"band-pass\"\na = \"x\"").unwrap();
    let err = parse_spectrum(&format!("@{}", path.display()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`a`"), "{err}");
    std::fs::write(&path, "alpha = 1").unwrap();
    assert!(
        parse_spectrum(&format!("@{}", path.display()))
            .unwrap_err()
            .to_string()
            .contains("kind")
    );
}

/// Offset noise against its covariance written out: diffusers' `randn(C, H, W) +
/// offset·randn(C, 1, 1)` has, per channel, `Σ = I + offset²·11ᵀ` (a dense matrix built here
/// directly, not through the DFT).
#[test]
fn offset_has_the_covariance_of_white_noise_plus_a_constant() {
    for (c, h, w, offset) in [(1, 4, 4, 0.1), (2, 3, 5, 0.7), (1, 6, 2, 0.0)] {
        let spectrum = parse_spectrum(&format!("offset:offset={offset}")).unwrap();
        let cov =
            SpectralCovariance::new(spectrum.as_ref(), [c, h, w], Normalization::None).unwrap();
        let dense = cov.dense();
        let plane = h * w;
        for i in 0..c * plane {
            for j in 0..c * plane {
                let same_channel = i / plane == j / plane;
                let expected =
                    f64::from(u8::from(i == j)) + if same_channel { offset * offset } else { 0.0 };
                assert!(
                    (dense[(i, j)] - expected).abs() < 1e-12,
                    "{c}x{h}x{w}, offset {offset}: Σ[{i},{j}] = {} vs {expected}",
                    dense[(i, j)]
                );
            }
        }
        // Energy normalization divides by the per-pixel variance 1 + offset².
        let energy =
            SpectralCovariance::new(spectrum.as_ref(), [c, h, w], Normalization::Energy).unwrap();
        let scale = 1.0 + offset * offset;
        close(
            &energy.power(),
            &cov.power().iter().map(|p| p / scale).collect::<Vec<_>>(),
            1e-12,
        );
    }
}

/// `dc=neighbours` changes the DC mode only, to the mean power of its four neighbours, and
/// allows ε = 0 for α < 0.
#[test]
fn power_law_dc_at_its_neighbours_level() {
    for (h, w) in [(8, 8), (5, 6), (1, 7), (7, 1)] {
        let floor = table("power-law:alpha=-0.6,eps=1e-10", h, w);
        let level = table("power-law:alpha=-0.6,eps=1e-10,dc=neighbours", h, w);
        assert_eq!(floor[1..], level[1..], "{h}x{w}: only the DC mode changes");
        let r = radii(h, w);
        let law = |r: f64| (r + 1e-10f64).powf(-0.6);
        // The neighbours (0, ±1) have r = 1/W, (±1, 0) r = 1/H, where the grid has them.
        let mut powers = Vec::new();
        if w > 1 {
            powers.extend([law(1.0 / w as f64).powi(2); 2]);
        }
        if h > 1 {
            powers.extend([law(1.0 / h as f64).powi(2); 2]);
        }
        let expected = (powers.iter().sum::<f64>() / powers.len() as f64).sqrt();
        assert!((level[0] - expected).abs() < 1e-12 * expected, "{h}x{w}");
        assert!(r[0] == 0.0 && floor[0] > 1e5, "the floor's DC is the boost");
        let no_floor = table("power-law:alpha=-0.6,eps=0,dc=neighbours", h, w);
        assert!(no_floor.iter().all(|x| x.is_finite()));
    }
    // A 1×1 grid has no neighbours: the floor's value stays.
    assert_eq!(
        table("power-law:alpha=-0.6,dc=neighbours", 1, 1),
        table("power-law:alpha=-0.6", 1, 1)
    );
}

/// `band-stop` omits exactly the modes `two-band` omits, keeping every other mode at one
/// power; `two-band` instead reweights what it keeps. On 32×32 with the gap (0.1, 0.2), the
/// energy-normalized two-band gives its 21 low modes 1024/21/2 = 24.4× the isotropic power and
/// its 955 high modes 1024/955/2 = 0.54×, where band-stop gives all 976 kept modes 1024/976.
#[test]
fn band_stop_omits_the_two_band_gap_at_equal_power() {
    for (h, w) in [(32, 32), (9, 10), (16, 12)] {
        for (a, b) in [(0.1, 0.2), (0.4, 0.5), (0.7, 0.8)] {
            let stop = table(&format!("band-stop:a={a},b={b}"), h, w);
            let bands = table(&format!("two-band:a_l=0,b_l={a},a_h={b},b_h=1"), h, w);
            let kept: Vec<bool> = stop.iter().map(|&x| x > 0.0).collect();
            let kept_two: Vec<bool> = bands.iter().map(|&x| x > 0.0).collect();
            assert_eq!(kept, kept_two, "{h}x{w} [{a}, {b}]: the same support");
            // The band's modes by radius (unit convention: r / √½), edges kept.
            for (x, r) in stop.iter().zip(radii(h, w)) {
                let unit = r / 0.5f64.sqrt();
                let inside = unit > a + 1e-9 && unit < b - 1e-9;
                assert_eq!(*x, if inside { 0.0 } else { 1.0 }, "r = {unit}");
            }
        }
    }
    let energy = |spec: &str| {
        SpectralCovariance::new(
            parse_spectrum(spec).unwrap().as_ref(),
            [1, 32, 32],
            Normalization::Energy,
        )
        .unwrap()
        .power()
    };
    let stop = energy("band-stop:a=0.1,b=0.2");
    let kept: Vec<f64> = stop.iter().copied().filter(|&p| p > 0.0).collect();
    assert_eq!(kept.len(), 976);
    close(&kept, &vec![1024.0 / 976.0; 976], 1e-12);
    let two = energy("two-band:a_l=0,b_l=0.1,a_h=0.2,b_h=1");
    let radius = radii(32, 32);
    let low: Vec<f64> = two
        .iter()
        .zip(&radius)
        .filter(|(p, r)| **p > 0.0 && **r / 0.5f64.sqrt() <= 0.1 + 1e-9)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(low.len(), 21);
    close(&low, &[1024.0 / 21.0 / 2.0; 21], 1e-12);
    assert_eq!(two.iter().filter(|&&p| p > 0.0).count() - 21, 955);
}
