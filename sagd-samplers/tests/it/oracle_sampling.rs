//! Every sampler against the exact oracle denoiser.
//!
//! For `grf` data every step of every sampler is a stationary linear map, so each Fourier mode
//! evolves on its own: `x ← c·x + d·z` with the oracle's multiplier `m = σ w²/(a²λ + σ² w²)`
//! (`ε̂ = m x`). The tests carry that scalar recursion in f64 to get the exact variance `V_f`
//! the sampler produces for mode `f` with this step count; `V_f - λ_f` is its discretization
//! and prior bias, which must be small (a bound per sampler and step count). The samples'
//! second moment `P̂_f` (4096 images) then has a known sampling error: `|F x|²` is `V_f·Exp(1)`
//! for a complex mode and `V_f·χ²₁` for a real one (DC, Nyquist), so `sd(P̂_f) = V_f √(κ/N)`
//! with κ = 1 or 2. Each mode must satisfy `|P̂_f - V_f| ≤ 6·sd`, so the samples are within
//! `|V_f - λ_f| + 6·sd` of the data's variance: about 1 200 mode checks in all, at 2e-9 each
//! (normal tails; the skew of a mean of 4096 exponentials is 0.03), bound the false-alarm
//! rate by 3e-6. The mean over modes of `(P̂_f - V_f)/V_f` has sd `√(mean κ / (N M))`
//! and must be within 6 of those: this catches a bias of well under 1 % common to all modes.

use sagd_core::grid::FrequencyGrid;
use sagd_core::prelude::*;
use sagd_datasets::synthetic::gmm::GmmConfig;
use sagd_datasets::synthetic::grf::GrfConfig;
use sagd_datasets::{Dataset, Pixels, stats};
use sagd_models::Denoiser;
use sagd_samplers::timesteps::select;
use sagd_samplers::{
    Method, OdeForm, OracleData, OracleDenoiser, Prior, Sampler, SamplerConfig, SamplerError,
    Spacing,
};

const COUNT: usize = 4096;
const Z: f64 = 6.0;

/// flex, or the device `SAGD_TEST_DEVICE` names (the CUDA build's stand-in in CI).
fn device() -> Device {
    sagd_core::device::test_device()
}

struct Setup {
    shape: DynShape,
    noise: SpectralNoise<DynShape>,
    oracle: OracleDenoiser<DynShape>,
    /// Data mode variances λ_f (H×W).
    lambda: Vec<f64>,
}

fn grf_setup(spectrum: &str, size: [usize; 3], schedule: &Schedule) -> Setup {
    sagd_ops::link();
    let shape = DynShape::new(size[0], size[1], size[2]);
    let grf = GrfConfig {
        beta: 1.5,
        r0: 0.05,
        ..GrfConfig::new(size, 1, 0)
    };
    let spectrum = parse_spectrum(spectrum).unwrap();
    let noise = SpectralNoise::new(spectrum.as_ref(), shape, Normalization::Energy).unwrap();
    let oracle = OracleDenoiser::new(
        OracleData::from_source(&sagd_datasets::spec::Source::Grf(grf.clone())).unwrap(),
        noise.clone(),
        schedule,
    )
    .unwrap();
    Setup {
        shape,
        noise,
        oracle,
        lambda: grf.mode_variances(),
    }
}

fn draw(setup: &Setup, config: &SamplerConfig, seed: u64) -> Vec<f32> {
    let sampler: Box<dyn Sampler<DynShape>> = config.build().unwrap();
    let mut rng = noise_rng(seed);
    sampler
        .sample(&setup.oracle, COUNT, &mut rng, &device(), &mut |_| {})
        .unwrap()
        .to_host()
}

/// The exact output variance of one Fourier mode (data variance λ, noise power p) under the
/// sampler `config` on `levels`: the scalar recursion of its steps with the oracle's
/// multiplier.
fn mode_recursion(config: &SamplerConfig, levels: &[NoiseLevel], lambda: f64, p: f64) -> f64 {
    let path = select(levels, config.steps, config.spacing).unwrap();
    let m = |l: NoiseLevel| {
        let c = l.alpha_bar * lambda + l.sigma * l.sigma * p;
        if c > 0.0 { l.sigma * p / c } else { 0.0 }
    };
    let top = levels[path[0]];
    let mut v = top.sigma
        * top.sigma
        * match config.prior {
            Prior::Matched => p,
            Prior::White => 1.0,
        };
    for (n, &t) in path.iter().enumerate() {
        let from = levels[t];
        let to = path.get(n + 1).map_or(
            NoiseLevel {
                alpha_bar: 1.0,
                sigma: 0.0,
            },
            |&j| levels[j],
        );
        let last = n + 1 == path.len();
        let (a, s, a2, s2) = (from.scale(), from.sigma, to.scale(), to.sigma);
        let mi = m(from);
        let (c, fresh) = match config.method {
            Method::Ddim => {
                let sd =
                    config.eta * (s2 / s) * (s * s - (a / a2).powi(2) * s2 * s2).max(0.0).sqrt();
                let carried = (s2 * s2 - sd * sd).max(0.0).sqrt();
                (a2 / a + (carried - a2 * s / a) * mi, sd * sd * p)
            }
            Method::Ddpm => {
                let r = a / a2;
                let nu2 = s * s - r * r * s2 * s2;
                let x0 = (1.0 - s * mi) / a;
                (
                    a2 * nu2 / (s * s) * x0 + r * s2 * s2 / (s * s),
                    s2 * s2 * nu2 / (s * s) * p,
                )
            }
            Method::Euler | Method::Heun => {
                let heun = config.method == Method::Heun && !last;
                match config.form {
                    OdeForm::Edm => {
                        let h = a2 * (s2 / a2 - s / a);
                        let euler = a2 / a + h * mi;
                        if heun {
                            (a2 / a + h / 2.0 * (mi + m(to) * euler), 0.0)
                        } else {
                            (euler, 0.0)
                        }
                    }
                    OdeForm::Vp if last => ((1.0 - s * mi) / a, 0.0),
                    OdeForm::Vp => {
                        let h = (a * a).ln() - (a2 * a2).ln();
                        // f(x) = -½(x - m x/σ) per mode
                        let f = |mm: f64, sig: f64| -0.5 * (1.0 - mm / sig);
                        let euler = 1.0 + h * f(mi, s);
                        if heun {
                            (1.0 + h / 2.0 * (f(mi, s) + f(m(to), s2) * euler), 0.0)
                        } else {
                            (euler, 0.0)
                        }
                    }
                }
            }
        };
        v = c * c * v + fresh;
    }
    v
}

/// Second moments `mean |F_u x|²` of the samples' Fourier modes (H×W, channels averaged).
fn sample_power(samples: &[f32], size: [usize; 3]) -> Vec<f64> {
    let d = Dataset::new("samples", size, Pixels::F32(samples.to_vec()), None).unwrap();
    stats::second_moment_spectrum(&d).unwrap()
}

/// Checks every independent mode and the pooled mean as the module doc describes; returns
/// the largest |V/λ - 1| over the checked modes.
fn check_modes(label: &str, setup: &Setup, config: &SamplerConfig, samples: &[f32]) -> f64 {
    let size = setup.shape.dims();
    let grid = FrequencyGrid::new(size[1], size[2]);
    let p = setup.noise.covariance().power();
    let observed = sample_power(samples, size);
    let levels = setup.oracle_levels();
    let n = (COUNT * size[0]) as f64;
    let (mut pooled, mut kappa_sum, mut modes, mut worst_bias) = (0.0, 0.0, 0usize, 0f64);
    for k in 0..size[1] {
        for l in 0..size[2] {
            let (mk, ml) = grid.mirror(k, l);
            if (mk, ml) < (k, l) {
                continue; // counted with its mirror
            }
            let i = k * size[2] + l;
            if p[i] == 0.0 {
                continue; // outside the support: checked separately
            }
            let kappa = if (mk, ml) == (k, l) { 2.0 } else { 1.0 };
            let v = mode_recursion(config, &levels, setup.lambda[i], p[i]);
            let sd = v * (kappa / n).sqrt();
            let bias = (v - setup.lambda[i]).abs();
            assert!(
                (observed[i] - v).abs() <= Z * sd,
                "{label}: mode ({k},{l}): samples {:.5}, data {:.5}, sampler's exact {:.5} (sd {:.5})",
                observed[i],
                setup.lambda[i],
                v,
                sd
            );
            worst_bias = worst_bias.max(bias / setup.lambda[i]);
            pooled += (observed[i] - v) / v;
            kappa_sum += kappa;
            modes += 1;
        }
    }
    let pooled = pooled / modes as f64;
    let pooled_sd = (kappa_sum / modes as f64 / (n * modes as f64)).sqrt();
    assert!(
        pooled.abs() <= Z * pooled_sd,
        "{label}: mean relative deviation {pooled:.5} over {modes} modes exceeds {Z}·{pooled_sd:.5}"
    );
    eprintln!(
        "{label}: {modes} modes, pooled deviation {pooled:+.5} (sd {pooled_sd:.5}), worst sampler bias {:.4}",
        worst_bias
    );
    worst_bias
}

impl Setup {
    fn oracle_levels(&self) -> Vec<NoiseLevel> {
        self.oracle.levels().to_vec()
    }
}

fn config(method: Method, steps: usize) -> SamplerConfig {
    SamplerConfig::new(method, steps)
}

const SPECTRA: [&str; 3] = [
    "isotropic",
    "power-law:alpha=-1,eps=0.05",
    "band-pass:a=0,b=0.5",
];

#[test]
fn ddim_and_heun_at_100_steps_reproduce_every_mode_variance() {
    let schedule = Schedule::ddpm_linear();
    for spectrum in SPECTRA {
        let setup = grf_setup(spectrum, [1, 16, 16], &schedule);
        let mut heun_vp = config(Method::Heun, 100);
        heun_vp.form = OdeForm::Vp;
        for (label, cfg, bound) in [
            ("ddim-100", config(Method::Ddim, 100), 0.06),
            ("heun-edm-100", config(Method::Heun, 100), 0.005),
            ("heun-vp-100", heun_vp, 0.005),
        ] {
            let label = format!("{label} {spectrum}");
            let samples = draw(&setup, &cfg, 1);
            let bias = check_modes(&label, &setup, &cfg, &samples);
            assert!(
                bias <= bound,
                "{label}: the sampler's own bias {bias} > {bound}"
            );
            check_outside_support(&label, &setup, &samples);
        }
    }
}

#[test]
fn ddpm_ancestral_at_1000_steps_reproduces_every_mode_variance() {
    let schedule = Schedule::ddpm_linear();
    for spectrum in SPECTRA {
        let setup = grf_setup(spectrum, [1, 8, 8], &schedule);
        let cfg = config(Method::Ddpm, 1000);
        let label = format!("ddpm-1000 {spectrum}");
        let samples = draw(&setup, &cfg, 2);
        let bias = check_modes(&label, &setup, &cfg, &samples);
        assert!(bias <= 0.02, "{label}: the sampler's own bias {bias}");
        check_outside_support(&label, &setup, &samples);
    }
}

/// With a rank-deficient spectrum the modes outside the support start at zero (the matched
/// prior) and no step adds anything there: they stay zero up to f32 rounding.
fn check_outside_support(label: &str, setup: &Setup, samples: &[f32]) {
    let size = setup.shape.dims();
    let p = setup.noise.covariance().power();
    let observed = sample_power(samples, size);
    let mean_lambda = setup.lambda.iter().sum::<f64>() / setup.lambda.len() as f64;
    for (i, (&pi, &o)) in p.iter().zip(&observed).enumerate() {
        if pi == 0.0 {
            assert!(
                o <= 1e-6 * mean_lambda,
                "{label}: mode {i} outside the support has power {o} (data {})",
                setup.lambda[i]
            );
        }
    }
}

/// The exact probability-flow solution of one mode from the top level down to the lowest one
/// (`x̃ ∝ √(λ + σ̃² p)`), followed by the samplers' common final denoising step
/// `x̃ ← x̃ λ/(λ + σ̃_0² p)`: what Euler and Heun converge to.
fn ode_reference(levels: &[NoiseLevel], lambda: f64, p: f64) -> f64 {
    let ratio2 = |l: NoiseLevel| l.sigma * l.sigma / l.alpha_bar;
    let (top, low) = (levels[levels.len() - 1], levels[0]);
    let prior_tilde = ratio2(top) * p; // x̃_T = x_T/a_T
    let at_low = (lambda + ratio2(low) * p) * prior_tilde / (lambda + prior_tilde);
    at_low * (lambda / (lambda + ratio2(low) * p)).powi(2)
}

#[test]
fn ode_solvers_converge_at_their_order() {
    // Scalar recursion only: the error against the exact flow must fall ~10x (Euler) and
    // ~100x (Heun) from 100 to 1000 steps, in both forms, on every mode of a grf.
    let levels = Schedule::ddpm_linear().levels().unwrap();
    let lambda = GrfConfig {
        beta: 1.5,
        r0: 0.05,
        ..GrfConfig::new([1, 16, 16], 1, 0)
    }
    .mode_variances();
    let error = |cfg: &SamplerConfig| {
        lambda
            .iter()
            .map(|&l| {
                let exact = ode_reference(&levels, l, 1.0);
                (mode_recursion(cfg, &levels, l, 1.0) / exact - 1.0).abs()
            })
            .fold(0.0, f64::max)
    };
    for (method, form, max_ratio) in [
        (Method::Euler, OdeForm::Edm, 0.2),
        (Method::Euler, OdeForm::Vp, 0.2),
        (Method::Heun, OdeForm::Edm, 0.03),
        (Method::Heun, OdeForm::Vp, 0.03),
    ] {
        let mut coarse = config(method, 100);
        coarse.form = form;
        let fine = SamplerConfig {
            steps: 1000,
            ..coarse
        };
        let (e100, e1000) = (error(&coarse), error(&fine));
        eprintln!("{method} {form}: error {e100:.2e} at 100 steps, {e1000:.2e} at 1000");
        assert!(
            e1000 <= max_ratio * e100 && e100 < 0.1,
            "{method} {form}: {e100:.3e} -> {e1000:.3e}"
        );
    }
}

#[test]
fn identities_between_samplers_hold_on_real_draws() {
    // DDIM with η = 1 is DDPM's ancestral step, and one Euler step in the EDM variables is a
    // DDIM (η = 0) step: the same draws give the same images up to f32 rounding.
    let schedule = Schedule::ddpm_linear();
    let setup = grf_setup("power-law:alpha=-1,eps=0.05", [1, 8, 8], &schedule);
    let run = |cfg: SamplerConfig| {
        let sampler: Box<dyn Sampler<DynShape>> = cfg.build().unwrap();
        sampler
            .sample(&setup.oracle, 64, &mut noise_rng(5), &device(), &mut |_| {})
            .unwrap()
            .to_host()
    };
    let close = |a: &[f32], b: &[f32], what: &str| {
        let scale = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{what}: differ by {worst} (scale {scale})"
        );
    };
    let mut ddim1 = config(Method::Ddim, 50);
    ddim1.eta = 1.0;
    close(
        &run(ddim1),
        &run(config(Method::Ddpm, 50)),
        "ddim(eta=1) vs ddpm",
    );
    let mut euler = config(Method::Euler, 50);
    euler.form = OdeForm::Edm;
    close(
        &run(euler),
        &run(config(Method::Ddim, 50)),
        "euler(edm) vs ddim(eta=0)",
    );
}

#[test]
fn same_seed_same_samples_and_progress_is_reported() {
    let schedule = Schedule::ddpm_linear();
    let setup = grf_setup("isotropic", [1, 8, 8], &schedule);
    let mut cfg = config(Method::Ddim, 20);
    cfg.eta = 0.5;
    let sampler: Box<dyn Sampler<DynShape>> = cfg.build().unwrap();
    let mut steps = Vec::new();
    let run = |seed: u64, log: &mut Vec<usize>| {
        sampler
            .sample(
                &setup.oracle,
                8,
                &mut noise_rng(seed),
                &device(),
                &mut |p| log.push(p.step),
            )
            .unwrap()
            .to_host()
    };
    let a = run(3, &mut steps);
    let b = run(3, &mut Vec::new());
    let c = run(4, &mut Vec::new());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.iter().zip(&c).any(|(x, y)| x != y));
    assert_eq!(steps, (1..=20).collect::<Vec<_>>());
}

#[test]
fn heun_in_edm_variables_on_a_ve_ladder_with_karras_spacing() {
    // The VE (EDM) process, x = x_0 + σ ε^(w) with σ up to 80: 991 levels hold the 100-step
    // Karras ladder exactly.
    let schedule = Schedule::edm(991);
    let setup = grf_setup("power-law:alpha=-1,eps=0.05", [1, 16, 16], &schedule);
    let mut cfg = config(Method::Heun, 100);
    cfg.spacing = Spacing::KARRAS;
    let samples = draw(&setup, &cfg, 6);
    let bias = check_modes("heun-edm-karras-100 (VE)", &setup, &cfg, &samples);
    assert!(bias <= 0.005, "{bias}");
    // The VP form needs a variance-preserving schedule.
    cfg.form = OdeForm::Vp;
    let sampler: Box<dyn Sampler<DynShape>> = cfg.build().unwrap();
    let err = sampler
        .sample(&setup.oracle, 2, &mut noise_rng(0), &device(), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(err, SamplerError::Config { .. }) && err.to_string().contains("vp"),
        "{err}"
    );
}

#[test]
fn a_two_component_mixture_keeps_its_weights() {
    sagd_ops::link();
    let gmm = GmmConfig {
        components: 2,
        size: [1, 8, 8],
        spread: 0.4,
        within: 0.5,
        ..GmmConfig::default()
    };
    let mixture = gmm.mixture().unwrap();
    let shape = DynShape::new(1, 8, 8);
    let spectrum = parse_spectrum("power-law:alpha=-1,eps=0.05").unwrap();
    let noise = SpectralNoise::new(spectrum.as_ref(), shape, Normalization::Energy).unwrap();
    let schedule = Schedule::ddpm_linear();
    let oracle = OracleDenoiser::new(
        OracleData::from_source(&sagd_datasets::spec::Source::Gmm(gmm.clone())).unwrap(),
        noise,
        &schedule,
    )
    .unwrap();
    let means = mixture.means();
    let gap = (&means[0] - &means[1]).norm();
    // The components overlap little but not trivially: the gap is a few within-sds.
    eprintln!("gmm: distance between means {gap:.2} (within-sd 0.5 per pixel)");
    let mut heun = config(Method::Heun, 100);
    heun.form = OdeForm::Vp;
    for (label, cfg) in [
        ("ddim-100", config(Method::Ddim, 100)),
        ("heun-edm-100", config(Method::Heun, 100)),
        ("heun-vp-100", heun),
        ("ddpm-1000", config(Method::Ddpm, 1000)),
    ] {
        let sampler: Box<dyn Sampler<DynShape>> = cfg.build().unwrap();
        let samples = sampler
            .sample(&oracle, COUNT, &mut noise_rng(9), &device(), &mut |_| {})
            .unwrap()
            .to_host();
        let clean = mixture
            .noisy(NoiseLevel::ve(0.0), &nalgebra::DMatrix::zeros(64, 64))
            .unwrap();
        let mut first = 0usize;
        let mut within = 0.0;
        for image in samples.chunks(64) {
            let x = nalgebra::DVector::from_iterator(64, image.iter().map(|&v| v as f64));
            let r = clean.responsibilities(&x);
            let k = usize::from(r[1] > r[0]);
            first += usize::from(k == 0);
            within += (&x - &means[k]).norm_squared() / 64.0;
        }
        let share = first as f64 / COUNT as f64;
        let within = within / COUNT as f64;
        eprintln!("gmm {label}: component 0 share {share:.4}, within-variance {within:.4} (0.25)");
        assert!(
            (share - mixture.weights()[0]).abs() <= 0.03,
            "{label}: share {share} vs weight {}",
            mixture.weights()[0]
        );
        assert!(
            (within / 0.25 - 1.0).abs() <= 0.05,
            "{label}: within-variance {within}"
        );
    }
}

#[test]
fn a_count_of_zero_and_bad_settings_are_refused() {
    let schedule = Schedule::ddpm_linear();
    let setup = grf_setup("power-law:alpha=-1,eps=0.05", [1, 8, 8], &schedule);
    let sampler: Box<dyn Sampler<DynShape>> = config(Method::Ddim, 10).build().unwrap();
    let err = sampler
        .sample(&setup.oracle, 0, &mut noise_rng(0), &device(), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("count"), "{err}");
    let mut bad = config(Method::Ddim, 10);
    bad.eta = f64::NAN;
    assert!(bad.build::<DynShape>().is_err());
}

#[test]
fn other_settings_match_their_exact_mode_variances() {
    // Euler in both forms, stochastic DDIM, quadratic spacing and the white prior: the
    // samples must match each setting's own exact variances (the recursion), whatever its
    // bias against the data.
    let schedule = Schedule::ddpm_linear();
    let setup = grf_setup("power-law:alpha=-1,eps=0.05", [1, 16, 16], &schedule);
    let mut euler_vp = config(Method::Euler, 100);
    euler_vp.form = OdeForm::Vp;
    let euler_edm = config(Method::Euler, 100);
    let mut ddim_half = config(Method::Ddim, 100);
    ddim_half.eta = 0.5;
    let mut quadratic = config(Method::Ddim, 100);
    quadratic.spacing = Spacing::Quadratic;
    let mut white = config(Method::Ddim, 100);
    white.prior = Prior::White;
    let mut strided = config(Method::Ddpm, 250);
    strided.spacing = Spacing::Uniform;
    for (label, cfg) in [
        ("euler-vp-100", euler_vp),
        ("euler-edm-100", euler_edm),
        ("ddim(eta=0.5)-100", ddim_half),
        ("ddim-quadratic-100", quadratic),
        ("ddim-white-prior-100", white),
        ("ddpm-strided-250", strided),
    ] {
        let samples = draw(&setup, &cfg, 12);
        let bias = check_modes(label, &setup, &cfg, &samples);
        // The white prior gives every mode the prior's unit power instead of w: the output is
        // biased wherever w differs from 1, which the recursion accounts for.
        if cfg.prior == Prior::Matched {
            assert!(bias < 0.1, "{label}: bias {bias}");
        }
    }
}

/// The oracle, but its predictions turn NaN below level `bad_below` (a denoiser that diverges
/// part-way down the ladder).
struct NanBelow {
    oracle: OracleDenoiser<DynShape>,
    bad_below: usize,
}

impl Denoiser<DynShape> for NanBelow {
    fn shape(&self) -> DynShape {
        self.oracle.shape()
    }

    fn parameterization(&self) -> Parameterization {
        self.oracle.parameterization()
    }

    fn levels(&self) -> &[NoiseLevel] {
        self.oracle.levels()
    }

    fn noise(&self) -> &SpectralNoise<DynShape> {
        self.oracle.noise()
    }

    fn predict(
        &self,
        x_t: &Images<DynShape>,
        t: &[usize],
    ) -> Result<Images<DynShape>, sagd_models::ModelError> {
        let eps = self.oracle.predict(x_t, t)?;
        if t.iter().all(|&level| level >= self.bad_below) {
            return Ok(eps);
        }
        let nan = eps.tensor().clone().mul_scalar(f32::NAN);
        Ok(Images::new(nan, x_t.shape()).unwrap())
    }
}

/// A sampling that turns non-finite names the first step after which it was, and that step's
/// starting σ, whichever the sampler.
#[test]
fn non_finite_samples_name_the_first_bad_step() {
    let schedule = Schedule::ddpm_linear();
    let setup = grf_setup("isotropic", [1, 8, 8], &schedule);
    let levels = setup.oracle.levels().to_vec();
    let path = select(&levels, 10, Spacing::Uniform).unwrap();
    // The 4th step (index 3) is the first to ask for a level below the threshold.
    let third = path[3];
    let denoiser = NanBelow {
        oracle: setup.oracle,
        bad_below: third + 1,
    };
    for method in [Method::Ddim, Method::Ddpm, Method::Euler] {
        let sampler: Box<dyn Sampler<DynShape>> = config(method, 10).build().unwrap();
        let err = sampler
            .sample(&denoiser, 2, &mut noise_rng(0), &device(), &mut |_| {})
            .unwrap_err();
        let SamplerError::NonFinite {
            step, steps, sigma, ..
        } = &err
        else {
            panic!("{method:?}: {err}");
        };
        assert_eq!((*step, *steps), (4, 10), "{method:?}: {err}");
        assert!(
            (sigma - levels[third].sigma).abs() < 1e-9 * sigma,
            "{method:?}: {err}"
        );
        assert!(
            err.to_string().contains("first after step 4 of 10"),
            "{err}"
        );
    }
}
