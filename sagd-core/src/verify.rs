//! The property suite: checks that a spectrum, on random grids and with random Gaussian-mixture
//! data, satisfies the identities the rest of the framework relies on. Any crate can run it on
//! its own spectrum ([`verify_entry`]); the CLI runs it as `sagd verify SPEC`.
//!
//! Properties (each over `cases` random cases: spectrum parameters not fixed by the user drawn
//! from their [`ParamKind`] ranges, grids of 1..=`max_channels` channels and sides
//! 1..=`max_side` (odd and non-power-of-two included), mixtures of 1–3 Gaussians, points drawn
//! from the noisy marginal):
//!
//! - **P1 score identity** (full support): `-Σ_w⁻¹ E[ε^(w)|x_t]/σ_t = ∇log p_t`, and the exact
//!   score agrees with central finite differences of `log p_t`.
//! - **P2 convergence** (full support): `‖ŝ_σ(x) − ∇log p_0(x)‖` falls like `σ²`: halving σ
//!   divides it by 4 (ratio in [3.4, 4.6]).
//! - **P3 rank-deficient**: `-Σ_w⁺ E[ε^(w)|x_t]/σ = Π_w ∇log p_t`, it converges like `σ²`, it
//!   has no component off the support while `(I − Π_w)∇log p_t` is not zero.
//! - **P4 Tweedie**: `E[x_0|x_t] = (x_t + σ² Σ_w ∇log p_t)/√ᾱ`.
//! - **P5 covariance**: `Σ_w` equals the explicit cosine sum `(1/HW) Σ_f w(f)² cos(2π f·Δ)`,
//!   is symmetric PSD; colour∘whiten = whiten∘colour = `Π_w`; `energy` gives per-pixel variance
//!   1; the empirical covariance of 4000 draws matches `Σ_w` entry by entry within 7 standard
//!   errors (Bonferroni over ≤ 10⁶ entry tests at a Gaussian tail of 2.6e-12 each); the same
//!   seed gives the same draws.
//! - **P6 conversions**: for every parameterization, `to ∘ from` and `from ∘ to` are the
//!   identity (on the support for whitened ε and score).
//!
//! Tolerances scale with the condition number κ of `Σ_w` on its support, since applying `Σ_w⁻¹`
//! amplifies rounding by κ: the relative tolerance is `1e-10·κ + 1e-9` (dense f64 with
//! d ≤ 200).

use std::cell::Cell;

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::covariance::{Normalization, Real, SpectralCovariance};
use crate::density::{GaussianMixture, NoisyMixture};
use crate::error::SpectrumError;
use crate::parameterization::Parameterization;
use crate::registry::{
    ParamKind, ParamMap, ParamValue, SpectrumEntry, entry, parse_spectrum_params,
};
use crate::schedule::NoiseLevel;
use crate::spectrum::{NoiseSpectrum, config_string};

/// Settings of a verification run.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Random cases per property (default 64).
    pub cases: u32,
    /// Seed of the whole run (the same seed gives the same cases).
    pub seed: u64,
    /// Largest grid side (default 9).
    pub max_side: usize,
    /// Largest channel count (default 2).
    pub max_channels: usize,
    /// Normalization of the spectra under test.
    pub normalization: Normalization,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            cases: 64,
            seed: 0,
            max_side: 9,
            max_channels: 2,
            normalization: Normalization::Energy,
        }
    }
}

/// The outcome of one property.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Held on every applicable case.
    Passed {
        /// Cases where the property applied and held.
        applicable: u32,
    },
    /// Applies to no sampled case (e.g. P1 for a spectrum that is never full-support).
    NotApplicable {
        /// Why.
        reason: String,
    },
    /// Failed; `case` is the (shrunk) counterexample.
    Failed {
        /// The counterexample.
        case: String,
        /// What went wrong.
        message: String,
    },
}

/// One property's result.
#[derive(Debug, Clone)]
pub struct PropertyReport {
    /// Short id, `P1` … `P6`.
    pub id: &'static str,
    /// What it checks.
    pub description: &'static str,
    /// The outcome.
    pub outcome: Outcome,
}

/// Results of a verification run.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The spectrum under test (name and fixed parameters).
    pub spectrum: String,
    /// Cases per property.
    pub cases: u32,
    /// One report per property.
    pub properties: Vec<PropertyReport>,
}

impl VerifyReport {
    /// True when no property failed.
    pub fn passed(&self) -> bool {
        !self
            .properties
            .iter()
            .any(|p| matches!(p.outcome, Outcome::Failed { .. }))
    }

    /// Panics with the failures (for use in `#[test]`s).
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{}", self.summary());
        }
    }

    /// A readable multi-line summary.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "verify {} ({} cases per property)\n",
            self.spectrum, self.cases
        );
        for p in &self.properties {
            let line = match &p.outcome {
                Outcome::Passed { applicable } => format!("ok    {applicable} cases"),
                Outcome::NotApplicable { reason } => format!("n/a   {reason}"),
                Outcome::Failed { case, message } => format!("FAIL  {message}\n      case: {case}"),
            };
            out.push_str(&format!("{:<3} {:<58} {line}\n", p.id, p.description));
        }
        out
    }
}

/// Verifies a spectrum given as a config string (`NAME` or `NAME:k=v,...` or `@file.toml`):
/// parameters it fixes stay fixed, the others are drawn at random.
pub fn verify_spectrum_string(
    spec: &str,
    config: &VerifyConfig,
) -> Result<VerifyReport, SpectrumError> {
    let (name, fixed) = parse_spectrum_params(spec)?;
    let entry = entry(&name)?;
    // Build once with defaults so that bad fixed parameters are reported up front.
    entry.build_from(&fixed)?;
    Ok(verify_entry(entry, &fixed, config))
}

/// Verifies a registered spectrum; `fixed` parameters are held, the others drawn at random.
pub fn verify_entry(
    entry: &'static SpectrumEntry,
    fixed: &ParamMap,
    config: &VerifyConfig,
) -> VerifyReport {
    let label = if fixed.is_empty() {
        entry.name.to_string()
    } else {
        let parts: Vec<String> = fixed.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}:{}", entry.name, parts.join(","))
    };
    let suite: [(&'static str, &'static str, Check); 6] = [
        (
            "P1",
            "score identity -Σ⁻¹E[ε|x]/σ = ∇log p_t (full support)",
            check_score_identity,
        ),
        (
            "P2",
            "convergence to ∇log p_0 at rate O(σ²) (full support)",
            check_convergence,
        ),
        (
            "P3",
            "rank-deficient: Π∇log p_t recovered, complement not",
            check_rank_deficient,
        ),
        (
            "P4",
            "Tweedie E[x0|x] = (x + σ²Σ∇log p_t)/√ᾱ",
            check_tweedie,
        ),
        (
            "P5",
            "Σ_w symmetric PSD, colour∘whiten = Π, energy, draws",
            check_covariance,
        ),
        (
            "P6",
            "parameterization conversions are mutual inverses",
            check_conversions,
        ),
    ];
    let properties = suite
        .iter()
        .enumerate()
        .map(|(i, (id, description, check))| PropertyReport {
            id,
            description,
            outcome: run_property(entry, fixed, config, i as u64, *check),
        })
        .collect();
    VerifyReport {
        spectrum: label,
        cases: config.cases,
        properties,
    }
}

/// One random case.
#[derive(Debug, Clone)]
struct Case {
    params: ParamMap,
    size: [usize; 3],
    seed: u64,
}

/// What a check sees: the case, its spectrum and covariance.
struct Setup<'a> {
    spectrum: &'a dyn NoiseSpectrum,
    cov: SpectralCovariance,
    rng: ChaCha8Rng,
}

/// `Ok(true)`: held; `Ok(false)`: not applicable to this case; `Err`: failed.
type Check = fn(&mut Setup) -> Result<bool, String>;

fn param_strategy(entry: &SpectrumEntry, fixed: &ParamMap) -> BoxedStrategy<ParamMap> {
    let mut parts: Vec<BoxedStrategy<(String, ParamValue)>> = Vec::new();
    for spec in entry.params {
        let name = spec.name.to_string();
        if let Some(v) = fixed.get(spec.name) {
            parts.push(Just((name, v.clone())).boxed());
            continue;
        }
        let s = match spec.kind {
            ParamKind::Number {
                sample: (lo, hi),
                log_sample,
                ..
            } => {
                if log_sample && lo > 0.0 {
                    (lo.ln()..=hi.ln())
                        .prop_map(move |x| (name.clone(), ParamValue::Number(x.exp())))
                        .boxed()
                } else if lo < hi {
                    (lo..=hi)
                        .prop_map(move |x| (name.clone(), ParamValue::Number(x)))
                        .boxed()
                } else {
                    Just((name, ParamValue::Number(lo))).boxed()
                }
            }
            ParamKind::Radius { default } => {
                Just((name, ParamValue::Text(default.name().to_string()))).boxed()
            }
            ParamKind::Choice { choices, .. } => proptest::sample::select(choices)
                .prop_map(move |c| (name.clone(), ParamValue::Text(c.to_string())))
                .boxed(),
            ParamKind::List {
                sample: (lo, hi),
                sorted,
                ..
            } => proptest::collection::vec(lo..=hi, 4)
                .prop_map(move |mut xs| {
                    if sorted {
                        xs.sort_by(|a, b| a.total_cmp(b));
                        xs.dedup();
                    }
                    (name.clone(), ParamValue::List(xs))
                })
                .boxed(),
        };
        parts.push(s);
    }
    parts.prop_map(|pairs| pairs.into_iter().collect()).boxed()
}

fn run_property(
    entry: &'static SpectrumEntry,
    fixed: &ParamMap,
    config: &VerifyConfig,
    salt: u64,
    check: Check,
) -> Outcome {
    let strategy = (
        param_strategy(entry, fixed),
        1..=config.max_channels.max(1),
        1..=config.max_side.max(1),
        1..=config.max_side.max(1),
        any::<u64>(),
    )
        .prop_map(|(params, c, h, w, seed)| Case {
            params,
            size: [c, h, w],
            seed,
        });
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&config.seed.to_le_bytes());
    seed_bytes[8..16].copy_from_slice(&salt.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let runner_config = Config {
        cases: config.cases,
        max_global_rejects: config.cases.saturating_mul(50).max(1000),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(runner_config, rng);
    let applicable = Cell::new(0u32);
    let normalization = config.normalization;
    let result = runner.run(&strategy, |case| {
        // Random parameter combinations may be invalid, and a band may miss a small grid: those
        // cases are skipped. Any other construction error is a defect of the spectrum.
        let spectrum = match entry.build_from(&case.params) {
            Ok(s) => s,
            Err(e) => return Err(reject_or_fail(SpectrumOrCore::Spectrum(e))),
        };
        let cov = match SpectralCovariance::new(spectrum.as_ref(), case.size, normalization) {
            Ok(c) => c,
            Err(e) => return Err(reject_or_fail(SpectrumOrCore::Core(e))),
        };
        let mut setup = Setup {
            spectrum: spectrum.as_ref(),
            cov,
            rng: ChaCha8Rng::seed_from_u64(case.seed),
        };
        match check(&mut setup) {
            Ok(true) => {
                applicable.set(applicable.get() + 1);
                Ok(())
            }
            Ok(false) => Err(TestCaseError::reject(
                "property does not apply to this case",
            )),
            Err(message) => Err(TestCaseError::fail(message)),
        }
    });
    match result {
        Ok(()) => Outcome::Passed {
            applicable: applicable.get(),
        },
        Err(TestError::Fail(message, case)) => {
            let spectrum = entry
                .build_from(&case.params)
                .map(|s| config_string(s.as_ref()))
                .unwrap_or_else(|_| format!("{:?}", case.params));
            Outcome::Failed {
                case: format!(
                    "{spectrum} on {}x{}x{} ({}), seed {}",
                    case.size[0], case.size[1], case.size[2], normalization, case.seed
                ),
                message: message.to_string(),
            }
        }
        Err(TestError::Abort(reason)) => {
            if applicable.get() == 0 {
                Outcome::NotApplicable {
                    reason: "no sampled case applies".to_string(),
                }
            } else {
                Outcome::Failed {
                    case: format!("{} applicable cases before giving up", applicable.get()),
                    message: format!("too many rejected cases: {reason}"),
                }
            }
        }
    }
}

enum SpectrumOrCore {
    Spectrum(SpectrumError),
    Core(crate::CoreError),
}

fn reject_or_fail(error: SpectrumOrCore) -> TestCaseError {
    let spectrum_error = match &error {
        SpectrumOrCore::Spectrum(e) => Some(e),
        SpectrumOrCore::Core(crate::CoreError::Spectrum(e)) => Some(e),
        SpectrumOrCore::Core(_) => None,
    };
    let message = match &error {
        SpectrumOrCore::Spectrum(e) => e.to_string(),
        SpectrumOrCore::Core(e) => e.to_string(),
    };
    match spectrum_error {
        Some(SpectrumError::InvalidParam { .. } | SpectrumError::EmptyBand { .. }) => {
            TestCaseError::reject(message)
        }
        _ => TestCaseError::fail(format!(
            "the spectrum cannot be built on this grid: {message}"
        )),
    }
}

fn tolerance(cov: &SpectralCovariance) -> f64 {
    1e-10 * cov.condition_number() + 1e-9
}

fn rel_err(a: &DVector<f64>, b: &DVector<f64>) -> f64 {
    (a - b).norm() / (b.norm().max(a.norm()) + 1e-300)
}

fn apply(
    cov: &SpectralCovariance,
    x: &DVector<f64>,
    op: fn(&SpectralCovariance, &mut [f64]) -> Result<(), crate::CoreError>,
) -> DVector<f64> {
    let mut v = x.as_slice().to_vec();
    op(cov, &mut v).expect("sized to the grid");
    DVector::from_vec(v)
}

/// A random mixture of 1–3 Gaussians in dimension d with well-conditioned covariances.
fn random_mixture(d: usize, rng: &mut ChaCha8Rng) -> GaussianMixture {
    use rand::Rng;
    let k = rng.random_range(1..=3);
    let mut weights = Vec::new();
    let mut means = Vec::new();
    let mut covs = Vec::new();
    for _ in 0..k {
        weights.push(rng.random_range(0.2..1.0));
        means.push(DVector::from_fn(d, |_, _| f64::standard_normal(rng)));
        let a = DMatrix::from_fn(d, d, |_, _| f64::standard_normal(rng));
        let scale = rng.random_range(0.2..2.0) / d as f64;
        covs.push(&a * a.transpose() * scale + DMatrix::identity(d, d) * 0.05);
    }
    GaussianMixture::new(weights, means, covs).expect("positive definite by construction")
}

/// A point drawn from `p_t`: `a x_0 + σ ε^(w)`.
fn noisy_point(
    mixture: &GaussianMixture,
    cov: &SpectralCovariance,
    level: NoiseLevel,
    rng: &mut ChaCha8Rng,
) -> DVector<f64> {
    let x0 = mixture.sample(rng);
    let eps = DVector::from_vec(cov.sample::<f64>(1, rng));
    x0 * level.scale() + eps * level.sigma
}

fn random_vp_level(rng: &mut ChaCha8Rng) -> NoiseLevel {
    use rand::Rng;
    NoiseLevel::vp(rng.random_range(0.05..0.99))
}

fn noisy(
    mixture: &GaussianMixture,
    level: NoiseLevel,
    dense: &DMatrix<f64>,
) -> Result<NoisyMixture, String> {
    mixture.noisy(level, dense).map_err(|e| e.to_string())
}

fn check_score_identity(s: &mut Setup) -> Result<bool, String> {
    if !s.cov.full_support() {
        return Ok(false);
    }
    let dense = s.cov.dense();
    let mixture = random_mixture(s.cov.dim(), &mut s.rng);
    let level = random_vp_level(&mut s.rng);
    let p = noisy(&mixture, level, &dense)?;
    let tol = tolerance(&s.cov);
    for _ in 0..3 {
        let x = noisy_point(&mixture, &s.cov, level, &mut s.rng);
        let score = p.score(&x);
        let eps = p.posterior_mean_eps(&x);
        let estimate = apply(&s.cov, &eps, SpectralCovariance::apply_pinv) * (-1.0 / level.sigma);
        let err = rel_err(&estimate, &score);
        if err > tol {
            return Err(format!(
                "relative error {err:.3e} > {tol:.1e} at σ = {:.4}",
                level.sigma
            ));
        }
        // The exact score against central differences of log p_t along a random direction.
        let v = DVector::from_fn(x.len(), |_, _| f64::standard_normal(&mut s.rng)).normalize();
        let h = 1e-5;
        let fd = (p.log_density(&(&x + &v * h)) - p.log_density(&(&x - &v * h))) / (2.0 * h);
        let exact = score.dot(&v);
        if (fd - exact).abs() > 1e-5 * (1.0 + score.norm()) {
            return Err(format!(
                "score·v = {exact:.6e} but finite differences give {fd:.6e}"
            ));
        }
    }
    Ok(true)
}

/// The learned-score estimate `-Σ_w⁺ E[ε|x]/σ` at `σ` on a VP path.
fn estimate_at(
    mixture: &GaussianMixture,
    cov: &SpectralCovariance,
    dense: &DMatrix<f64>,
    sigma: f64,
    x: &DVector<f64>,
) -> Result<DVector<f64>, String> {
    let level = NoiseLevel::vp(1.0 - sigma * sigma);
    let p = noisy(mixture, level, dense)?;
    Ok(apply(
        cov,
        &p.posterior_mean_eps(x),
        SpectralCovariance::apply_pinv,
    ) * (-1.0 / sigma))
}

/// σ small enough for the O(σ²) regime: σ² max w² ≤ 1e-3 × the data's smallest variance.
fn asymptotic_sigma(cov: &SpectralCovariance) -> f64 {
    let max_power = cov.power().into_iter().fold(0.0, f64::max);
    (1e-3 * 0.05 / max_power).sqrt()
}

fn convergence_ratio(s: &mut Setup, project: bool) -> Result<(), String> {
    let dense = s.cov.dense();
    let mixture = random_mixture(s.cov.dim(), &mut s.rng);
    let clean = noisy(&mixture, NoiseLevel::ve(0.0), &dense)?;
    let sigma = asymptotic_sigma(&s.cov);
    for _ in 0..2 {
        let x = mixture.sample(&mut s.rng);
        let mut target = clean.score(&x);
        if project {
            target = apply(&s.cov, &target, SpectralCovariance::project);
        }
        let e1 = (estimate_at(&mixture, &s.cov, &dense, sigma, &x)? - &target).norm();
        let e2 = (estimate_at(&mixture, &s.cov, &dense, sigma / 2.0, &x)? - &target).norm();
        let ratio = e1 / e2;
        if !(3.4..=4.6).contains(&ratio) {
            return Err(format!(
                "error {e1:.3e} at σ = {sigma:.2e} and {e2:.3e} at σ/2: ratio {ratio:.3}, expected ≈ 4 (O(σ²))"
            ));
        }
    }
    Ok(())
}

fn check_convergence(s: &mut Setup) -> Result<bool, String> {
    if !s.cov.full_support() {
        return Ok(false);
    }
    convergence_ratio(s, false)?;
    Ok(true)
}

fn check_rank_deficient(s: &mut Setup) -> Result<bool, String> {
    if s.cov.full_support() {
        return Ok(false);
    }
    let dense = s.cov.dense();
    let mixture = random_mixture(s.cov.dim(), &mut s.rng);
    let level = random_vp_level(&mut s.rng);
    let p = noisy(&mixture, level, &dense)?;
    let tol = tolerance(&s.cov);
    for _ in 0..3 {
        let x = noisy_point(&mixture, &s.cov, level, &mut s.rng);
        let score = p.score(&x);
        let projected = apply(&s.cov, &score, SpectralCovariance::project);
        let estimate = apply(
            &s.cov,
            &p.posterior_mean_eps(&x),
            SpectralCovariance::apply_pinv,
        ) * (-1.0 / level.sigma);
        let err = rel_err(&estimate, &projected);
        if err > tol {
            return Err(format!(
                "Π∇log p_t not recovered: relative error {err:.3e} > {tol:.1e}"
            ));
        }
        let off = apply(&s.cov, &estimate, SpectralCovariance::project_complement).norm();
        if off > 1e-12 * estimate.norm().max(1e-300) {
            return Err(format!(
                "estimate has a component {off:.3e} off the support"
            ));
        }
        let missed = apply(&s.cov, &score, SpectralCovariance::project_complement).norm();
        if missed < 1e-6 * score.norm() {
            return Err(format!(
                "(I - Π)∇log p_t = {missed:.3e}: the complement should carry score the estimate cannot see"
            ));
        }
    }
    convergence_ratio(s, true)?;
    Ok(true)
}

fn check_tweedie(s: &mut Setup) -> Result<bool, String> {
    let dense = s.cov.dense();
    let mixture = random_mixture(s.cov.dim(), &mut s.rng);
    let level = random_vp_level(&mut s.rng);
    let p = noisy(&mixture, level, &dense)?;
    for _ in 0..3 {
        let x = noisy_point(&mixture, &s.cov, level, &mut s.rng);
        let posterior = p.posterior_mean_x0(&x);
        let score = p.score(&x);
        let tweedie = (&x
            + apply(&s.cov, &score, SpectralCovariance::apply_cov) * level.sigma.powi(2))
            / level.scale();
        let err = rel_err(&tweedie, &posterior);
        if err > 1e-9 {
            return Err(format!("relative error {err:.3e} > 1e-9"));
        }
    }
    Ok(true)
}

/// `Σ_w` from its definition, `(1/HW) Σ_f w(f)² cos(2π (f_y Δy + f_x Δx))` per channel.
fn cosine_sum_covariance(cov: &SpectralCovariance) -> DMatrix<f64> {
    let [c, h, w] = cov.size();
    let grid = cov.grid();
    let power = cov.power();
    let hw = h * w;
    let mut m = DMatrix::zeros(c * hw, c * hw);
    for p in 0..hw {
        for q in 0..hw {
            let (dy, dx) = (
                (p / w) as f64 - (q / w) as f64,
                (p % w) as f64 - (q % w) as f64,
            );
            let mut sum = 0.0;
            for (i, f) in grid.frequencies().enumerate() {
                sum += power[i] * (2.0 * std::f64::consts::PI * (f.fy * dy + f.fx * dx)).cos();
            }
            for ch in 0..c {
                m[(ch * hw + p, ch * hw + q)] = sum / hw as f64;
            }
        }
    }
    m
}

fn check_covariance(s: &mut Setup) -> Result<bool, String> {
    let dense = s.cov.dense();
    let d = s.cov.dim();
    let scale = dense.amax();
    let reference = cosine_sum_covariance(&s.cov);
    let diff = (&dense - &reference).amax();
    if diff > 1e-11 * scale {
        return Err(format!(
            "FFT Σ_w differs from the cosine sum by {diff:.3e} (scale {scale:.3e})"
        ));
    }
    let asym = (&dense - dense.transpose()).amax();
    if asym > 1e-12 * scale {
        return Err(format!("Σ_w is not symmetric: max |Σ - Σᵀ| = {asym:.3e}"));
    }
    let min_eig = dense.clone().symmetric_eigenvalues().min();
    if min_eig < -1e-10 * scale {
        return Err(format!("Σ_w has a negative eigenvalue {min_eig:.3e}"));
    }
    // colour ∘ whiten and whiten ∘ colour are the projector onto the support.
    let tol = tolerance(&s.cov).sqrt().max(1e-9);
    let x = DVector::from_fn(d, |_, _| f64::standard_normal(&mut s.rng));
    let projected = apply(&s.cov, &x, SpectralCovariance::project);
    let cw = apply(
        &s.cov,
        &apply(&s.cov, &x, SpectralCovariance::whiten),
        SpectralCovariance::colour,
    );
    let wc = apply(
        &s.cov,
        &apply(&s.cov, &x, SpectralCovariance::colour),
        SpectralCovariance::whiten,
    );
    for (name, v) in [("colour∘whiten", cw), ("whiten∘colour", wc)] {
        let err = (&v - &projected).norm() / x.norm();
        if err > tol {
            return Err(format!(
                "{name} differs from Π_w by {err:.3e} (relative, tolerance {tol:.1e})"
            ));
        }
    }
    if s.cov.normalization() == Normalization::Energy {
        let worst = dense
            .diagonal()
            .iter()
            .map(|v| (v - 1.0).abs())
            .fold(0.0, f64::max);
        if worst > 1e-10 {
            return Err(format!(
                "energy normalization: per-pixel variance off 1 by {worst:.3e}"
            ));
        }
    }
    if s.cov.normalization() != Normalization::PerSampleStd {
        // Empirical covariance of M draws against Σ_w, entry by entry in standard errors.
        const DRAWS: usize = 4000;
        let draws = s.cov.sample::<f64>(DRAWS, &mut s.rng);
        let x = DMatrix::from_column_slice(d, DRAWS, &draws);
        let empirical = &x * x.transpose() / DRAWS as f64;
        let mut worst = (0.0, 0, 0);
        for i in 0..d {
            for j in 0..d {
                let se =
                    ((dense[(i, i)] * dense[(j, j)] + dense[(i, j)].powi(2)) / DRAWS as f64).sqrt();
                let z = if se > 0.0 {
                    (empirical[(i, j)] - dense[(i, j)]).abs() / se
                } else if empirical[(i, j)] == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                };
                if z > worst.0 {
                    worst = (z, i, j);
                }
            }
        }
        if worst.0 > 7.0 {
            return Err(format!(
                "empirical covariance of {DRAWS} draws is {:.2} standard errors from Σ_w at ({}, {})",
                worst.0, worst.1, worst.2
            ));
        }
    }
    let seed = s.rng.next_u64();
    let a = s.cov.sample::<f32>(2, &mut ChaCha8Rng::seed_from_u64(seed));
    let b = s.cov.sample::<f32>(2, &mut ChaCha8Rng::seed_from_u64(seed));
    if a != b {
        return Err("the same seed gave different draws".to_string());
    }
    let _ = s.spectrum;
    Ok(true)
}

fn check_conversions(s: &mut Setup) -> Result<bool, String> {
    use rand::Rng;
    let d = s.cov.dim();
    let level = if s.rng.random_bool(0.5) {
        random_vp_level(&mut s.rng)
    } else {
        NoiseLevel::ve(s.rng.random_range(0.01..20.0))
    };
    let tol = tolerance(&s.cov).sqrt().max(1e-9);
    let x_t: Vec<f64> = (0..d).map(|_| f64::standard_normal(&mut s.rng)).collect();
    let eps = s.cov.sample::<f64>(1, &mut s.rng);
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    for p in Parameterization::ALL {
        let y = p
            .from_coloured_eps(&eps, &x_t, level, &s.cov)
            .map_err(|e| e.to_string())?;
        let back = p
            .to_coloured_eps(&y, &x_t, level, &s.cov)
            .map_err(|e| e.to_string())?;
        let err = norm(
            &back
                .iter()
                .zip(&eps)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>(),
        ) / norm(&eps).max(1e-300);
        if err > tol {
            return Err(format!(
                "{p}: to(from(ε)) differs from ε by {err:.3e} (relative)"
            ));
        }
        // The other direction, with a prediction in the range of `from` (the support).
        let mut z: Vec<f64> = (0..d).map(|_| f64::standard_normal(&mut s.rng)).collect();
        if matches!(p, Parameterization::WhitenedEps | Parameterization::Score) {
            s.cov.project(&mut z).map_err(|e| e.to_string())?;
        }
        let e = p
            .to_coloured_eps(&z, &x_t, level, &s.cov)
            .map_err(|e| e.to_string())?;
        let again = p
            .from_coloured_eps(&e, &x_t, level, &s.cov)
            .map_err(|e| e.to_string())?;
        let err = norm(&again.iter().zip(&z).map(|(a, b)| a - b).collect::<Vec<_>>())
            / norm(&z).max(1e-300);
        if err > tol {
            return Err(format!(
                "{p}: from(to(y)) differs from y by {err:.3e} (relative)"
            ));
        }
    }
    // x0 and v against their definitions.
    let x0 = Parameterization::X0
        .from_coloured_eps(&eps, &x_t, level, &s.cov)
        .map_err(|e| e.to_string())?;
    let v = Parameterization::V
        .from_coloured_eps(&eps, &x_t, level, &s.cov)
        .map_err(|e| e.to_string())?;
    for i in 0..d {
        let rebuilt = level.scale() * x0[i] + level.sigma * eps[i];
        let v_def = level.scale() * eps[i] - level.sigma * x0[i];
        if (rebuilt - x_t[i]).abs() > 1e-9 * (1.0 + x_t[i].abs())
            || (v_def - v[i]).abs() > 1e-9 * (1.0 + v[i].abs())
        {
            return Err(format!(
                "x0 or v disagree with their definitions at index {i}"
            ));
        }
    }
    Ok(true)
}

use rand::RngCore;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_sum_reference_is_identity_for_white_noise() {
        let cov = SpectralCovariance::from_amplitudes(
            "white",
            vec![1.0; 12],
            [1, 3, 4],
            Normalization::Energy,
        )
        .unwrap();
        let m = cosine_sum_covariance(&cov);
        assert!((m - DMatrix::identity(12, 12)).amax() < 1e-12);
    }
}
