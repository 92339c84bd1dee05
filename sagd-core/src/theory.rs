//! The analytic theory of spectral bias in diffusion training (Wang & Pehlevan), extended to
//! spectrally anisotropic noise: how fast each mode of the data is learned.
//!
//! Per mode `k` (an eigenvector shared by the data covariance and `Σ_w`: a Fourier mode for
//! stationary data) with data variance `λ`, noise power `w` (`w_k²` of the spectrum), learning
//! rate `η`, aligned initialization `Q` and noise range `[σ_0, σ_T]`, a per-σ denoiser
//! `D(x; σ) = ψ(σ) x` trained by full-batch gradient flow on `E‖D(x_0 + σ ε^(w)) - x_0‖²`:
//!
//! Training time τ counts gradient-descent steps: gradient flow is `dψ/dτ = -2η(ψ(λ + σ² w) - λ)`
//! and [`ModeTheory::psi_gd`] gives the exact iterates of steps of size η.
//!
//! - optimum `ψ*(σ) = λ / (λ + σ² w)`;
//! - [`ModelKind::Linear`]: `ψ(σ, τ) = ψ* + (Q - ψ*) exp(-2ητ(λ + σ² w))`;
//!   [`ModelKind::Circulant`] (a full-width convolution, one gain per Fourier mode shared by
//!   `N` pixels): the same with `η → Nη`;
//!   [`ModelKind::TwoLayer`] (`D = PPᵀ x`, aligned): `dψ/dτ = 8η(λ + σ² w) ψ (ψ* - ψ)`, the
//!   logistic `ψ = ψ* / (1 + (ψ*/Q - 1) e^{-8ηλτ})` whose rate `8ηλ` does not depend on σ or
//!   `w`; its early growth doubles `ψ` every `ln 2 / (8ηλ)`;
//! - the probability-flow ODE `dx/dσ = (1 - ψ(σ, τ)) x / σ` from `x(σ_T) ~ N(0, σ_T² w)` gives
//!   the generated variance `λ̃(τ) = σ_T² w exp(-2 ∫_{σ_0}^{σ_T} (1 - ψ(s, τ))/s ds)`.
//!
//! For the linear and circulant cases the integral has a closed form (below, with the
//! exponential integral `E₁`); [`ModeTheory::variance_quadrature`] computes it by adaptive
//! Gauss–Kronrod quadrature instead, for every case. With `u = s²`, `κ = 2η_eff τ`,
//! `J₁ = E₁(κ w u_0) - E₁(κ w u_T)`, `J₂ = E₁(κ(λ + w u_0)) - E₁(κ(λ + w u_T))`:
//!
//! ```text
//! ∫ (1-ψ)/s ds = ½ ln((λ + w u_T)/(λ + w u_0)) + ½ (1 - Q) e^{-κλ} J₁ - ½ J₂
//! λ̃(τ) = σ_T² w (λ + w σ_0²)/(λ + w σ_T²) · exp(J₂ - (1 - Q) e^{-κλ} J₁)
//! ```
//!
//! At τ = 0 this is `σ_T² w (σ_0/σ_T)^{2(1-Q)}`; as τ → ∞ it tends to
//! `σ_T² w (λ + w σ_0²)/(λ + w σ_T²) ≈ λ + w σ_0²`. The learning time `τ*` of a mode is the
//! first τ where `λ̃` crosses the geometric (or harmonic) mean of those two values. Noise
//! shaping enters through `w`: the rate of mode `k` at noise level σ is `2η(λ + σ² w)`.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, invalid_value};

/// Which denoiser the theory describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A full linear map per noise level, in the data's eigenbasis.
    Linear,
    /// A full-width circular convolution per level: Fourier-diagonal, every gain shared by
    /// `pixels` positions, so its rate is `pixels · η`.
    Circulant {
        /// The number of pixels `N = H·W` that share each gain.
        pixels: usize,
    },
    /// The symmetric two-layer linear denoiser `D = PPᵀ x` (aligned initialization).
    TwoLayer,
}

/// Which mean of the initial and the target variance defines the learning time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Crossing {
    /// `√(v_0 v_∞)` (the paper's choice).
    #[default]
    Geometric,
    /// `2 / (1/v_0 + 1/v_∞)`.
    Harmonic,
}

/// The theory of one mode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModeTheory {
    /// Data variance `λ > 0` of the mode.
    pub lambda: f64,
    /// Noise power `w ≥ 0` of the mode (0: outside the spectrum's support).
    pub w: f64,
    /// Learning rate `η > 0`.
    pub eta: f64,
    /// Initial gain `Q` (aligned initialization); must be > 0 for the two-layer model.
    pub q: f64,
    /// Smallest noise level `σ_0 > 0`.
    pub sigma_min: f64,
    /// Largest noise level `σ_T > σ_0`.
    pub sigma_max: f64,
    /// The denoiser.
    pub model: ModelKind,
}

impl ModeTheory {
    /// Checks every parameter; the error names the one at fault.
    pub fn validate(&self) -> Result<(), CoreError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid_value(name, v, "a finite number > 0"))
            }
        };
        positive("lambda", self.lambda)?;
        positive("eta", self.eta)?;
        positive("sigma_min", self.sigma_min)?;
        positive("sigma_max", self.sigma_max)?;
        if !(self.w.is_finite() && self.w >= 0.0) {
            return Err(invalid_value("w", self.w, "a finite number >= 0"));
        }
        if !self.q.is_finite() {
            return Err(invalid_value("q", self.q, "a finite number"));
        }
        if self.model == ModelKind::TwoLayer && self.q <= 0.0 {
            return Err(invalid_value(
                "q",
                self.q,
                "a number > 0 for the two-layer model (Q = 0 is a fixed point)",
            ));
        }
        if self.sigma_min >= self.sigma_max {
            return Err(invalid_value(
                "sigma_min",
                self.sigma_min,
                "a number < sigma_max",
            ));
        }
        if let ModelKind::Circulant { pixels } = self.model
            && pixels == 0
        {
            return Err(invalid_value("pixels", 0, "at least 1"));
        }
        Ok(())
    }

    /// The effective learning rate: `η`, or `N η` for the circulant model.
    pub fn rate(&self) -> f64 {
        match self.model {
            ModelKind::Circulant { pixels } => self.eta * pixels as f64,
            ModelKind::Linear | ModelKind::TwoLayer => self.eta,
        }
    }

    /// `ψ*(σ) = λ / (λ + σ² w)`.
    pub fn psi_star(&self, sigma: f64) -> f64 {
        self.lambda / (self.lambda + sigma * sigma * self.w)
    }

    /// The gain `ψ(σ, τ)` after training time τ.
    pub fn psi(&self, sigma: f64, tau: f64) -> f64 {
        let star = self.psi_star(sigma);
        match self.model {
            ModelKind::Linear | ModelKind::Circulant { .. } => {
                let decay =
                    (-2.0 * self.rate() * tau * (self.lambda + sigma * sigma * self.w)).exp();
                star + (self.q - star) * decay
            }
            ModelKind::TwoLayer => {
                let growth = (-8.0 * self.eta * self.lambda * tau).exp();
                star / (1.0 + (star / self.q - 1.0) * growth)
            }
        }
    }

    /// The generated variance before training, `λ̃(0) = σ_T² w (σ_0/σ_T)^{2(1-Q)}`.
    pub fn initial_variance(&self) -> f64 {
        let (s0, st) = (self.sigma_min, self.sigma_max);
        match self.model {
            ModelKind::Linear | ModelKind::Circulant { .. } => {
                st * st * self.w * (s0 / st).powf(2.0 * (1.0 - self.q))
            }
            // ψ(σ, 0) = Q for every σ here too.
            ModelKind::TwoLayer => st * st * self.w * (s0 / st).powf(2.0 * (1.0 - self.q)),
        }
    }

    /// The generated variance after full training, `σ_T² w (λ + w σ_0²)/(λ + w σ_T²)`.
    pub fn target_variance(&self) -> f64 {
        let (s0, st) = (self.sigma_min, self.sigma_max);
        st * st * self.w * (self.lambda + self.w * s0 * s0) / (self.lambda + self.w * st * st)
    }

    /// The generated variance `λ̃(τ)`: the closed form for the linear and circulant models,
    /// quadrature for the two-layer one.
    pub fn variance(&self, tau: f64) -> f64 {
        match self.model {
            ModelKind::TwoLayer => self.variance_quadrature(tau),
            ModelKind::Linear | ModelKind::Circulant { .. } => self.variance_closed_form(tau),
        }
    }

    fn variance_closed_form(&self, tau: f64) -> f64 {
        if self.w == 0.0 {
            return 0.0; // the ODE starts from N(0, 0): nothing is ever generated there
        }
        if tau <= 0.0 {
            return self.initial_variance();
        }
        let (u0, ut) = (self.sigma_min.powi(2), self.sigma_max.powi(2));
        let (l, w) = (self.lambda, self.w);
        let kappa = 2.0 * self.rate() * tau;
        let j1 = e1_difference(kappa * w * u0, kappa * w * ut);
        let j2 = e1_difference(kappa * (l + w * u0), kappa * (l + w * ut));
        let exponent = j2 - (1.0 - self.q) * (-kappa * l).exp() * j1;
        ut * w * (l + w * u0) / (l + w * ut) * exponent.exp()
    }

    /// `λ̃(τ)` by adaptive Gauss–Kronrod quadrature of `∫ (1 - ψ(s, τ)) d ln s` (any model).
    pub fn variance_quadrature(&self, tau: f64) -> f64 {
        if self.w == 0.0 {
            return 0.0;
        }
        let (a, b) = (self.sigma_min.ln(), self.sigma_max.ln());
        let integral = adaptive_kronrod(&|x: f64| 1.0 - self.psi(x.exp(), tau), a, b, 1e-13, 0);
        self.sigma_max.powi(2) * self.w * (-2.0 * integral).exp()
    }

    /// The gain after `steps` steps of full-batch gradient descent of size η (τ counts steps:
    /// gradient flow `dψ/dτ = -2η(ψ(λ + σ² w) - λ)` is GD in continuous τ): `ψ* + (Q - ψ*)(1 - 2η_eff(λ + σ² w))^steps`, the exact iterate of the
    /// quadratic loss; gradient flow ([`psi`](Self::psi)) is its limit of small η. `None` for
    /// the two-layer model, whose iterates have no closed form.
    pub fn psi_gd(&self, sigma: f64, steps: u64) -> Option<f64> {
        if self.model == ModelKind::TwoLayer {
            return None;
        }
        let star = self.psi_star(sigma);
        let factor = 1.0 - 2.0 * self.rate() * (self.lambda + sigma * sigma * self.w);
        Some(star + (self.q - star) * factor.powf(steps as f64))
    }

    /// The generated variance after `steps` gradient-descent steps (quadrature of
    /// [`psi_gd`](Self::psi_gd)); `None` for the two-layer model.
    pub fn variance_gd(&self, steps: u64) -> Option<f64> {
        if self.model == ModelKind::TwoLayer {
            return None;
        }
        if self.w == 0.0 {
            return Some(0.0);
        }
        let (a, b) = (self.sigma_min.ln(), self.sigma_max.ln());
        let integrand = |x: f64| 1.0 - self.psi_gd(x.exp(), steps).unwrap_or(f64::NAN);
        let integral = adaptive_kronrod(&integrand, a, b, 1e-12, 0);
        Some(self.sigma_max.powi(2) * self.w * (-2.0 * integral).exp())
    }

    /// The learning time: the first τ where `λ̃(τ)` crosses the chosen mean of its initial and
    /// target values, or `None` when they are equal (nothing to learn) or it never does.
    pub fn learning_time(&self, crossing: Crossing) -> Option<f64> {
        let (v0, vinf) = (self.initial_variance(), self.target_variance());
        if !(v0 > 0.0 && vinf > 0.0) || (v0 - vinf).abs() <= 1e-12 * v0.max(vinf) {
            return None;
        }
        let target = match crossing {
            Crossing::Geometric => (v0 * vinf).sqrt(),
            Crossing::Harmonic => 2.0 / (1.0 / v0 + 1.0 / vinf),
        };
        let rising = vinf > v0;
        let past = |tau: f64| {
            let v = self.variance(tau);
            if rising { v >= target } else { v <= target }
        };
        // The slowest time scale is 1/(rate·(λ + σ_0² w)); scan a log grid around it for the
        // first crossing, then bisect in log τ.
        let scale = match self.model {
            ModelKind::TwoLayer => 1.0 / (8.0 * self.eta * self.lambda),
            _ => 1.0 / (2.0 * self.rate() * (self.lambda + self.sigma_min.powi(2) * self.w)),
        };
        let (lo_exp, hi_exp, points) = (-8.0f64, 6.0f64, 141usize);
        let grid = |i: usize| {
            scale * 10f64.powf(lo_exp + (hi_exp - lo_exp) * i as f64 / (points - 1) as f64)
        };
        let mut prev = grid(0);
        if past(prev) {
            return Some(prev);
        }
        for i in 1..points {
            let next = grid(i);
            if past(next) {
                let (mut lo, mut hi) = (prev.ln(), next.ln());
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if past(mid.exp()) {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                return Some(hi.exp());
            }
            prev = next;
        }
        None
    }
}

/// `∫_{x1}^{x2} e^{-t}/t dt = E₁(x1) - E₁(x2)` for `0 < x1 ≤ x2`, accurate to about 1e-14
/// relative: Gauss–Legendre on close limits (no cancellation), the series of the difference
/// for small arguments, and `E₁` itself otherwise.
pub fn e1_difference(x1: f64, x2: f64) -> f64 {
    if x2 <= x1 {
        return if x2 == x1 {
            0.0
        } else {
            -e1_difference(x2, x1)
        };
    }
    if x2 <= 2.0 * x1 {
        return gauss_legendre(&|t: f64| (-t).exp() / t, x1, x2);
    }
    if x2 <= 1.0 {
        // ln(x2/x1) + Σ (-1)^n (x2^n - x1^n) / (n·n!)
        let mut sum = (x2 / x1).ln();
        let (mut p1, mut p2, mut fact) = (1.0, 1.0, 1.0);
        for n in 1..60 {
            p1 *= -x1;
            p2 *= -x2;
            fact *= n as f64;
            let term = (p2 - p1) / (n as f64 * fact);
            sum += term;
            if term.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return sum;
    }
    exp_integral_e1(x1) - exp_integral_e1(x2)
}

/// The exponential integral `E₁(x) = ∫_x^∞ e^{-t}/t dt` for `x > 0`: its power series for
/// `x ≤ 1`, the continued fraction (modified Lentz) beyond.
pub fn exp_integral_e1(x: f64) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    if x <= 0.0 {
        return f64::INFINITY;
    }
    if x <= 1.0 {
        let mut sum = 0.0;
        let (mut power, mut fact) = (1.0, 1.0);
        for n in 1..60 {
            power *= -x;
            fact *= n as f64;
            let term = power / (n as f64 * fact);
            sum += term;
            if term.abs() < 1e-17 {
                break;
            }
        }
        return -EULER_GAMMA - x.ln() - sum;
    }
    if x > 700.0 {
        return 0.0;
    }
    // E₁(x) = e^{-x} / (x + 1 - 1²/(x + 3 - 2²/(x + 5 - …)))
    let tiny = 1e-300;
    let mut b = x + 1.0;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..300 {
        let a = -((i * i) as f64);
        b += 2.0;
        d = 1.0 / (a * d + b);
        c = b + a / c;
        let delta = c * d;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h * (-x).exp()
}

/// 20-point Gauss–Legendre nodes on [0, 1] (half of the symmetric set) and weights.
const GL_NODES: [f64; 10] = [
    0.076_526_521_133_497_33,
    0.227_785_851_141_645_08,
    0.373_706_088_715_419_56,
    0.510_867_001_950_827_1,
    0.636_053_680_726_515,
    0.746_331_906_460_150_8,
    0.839_116_971_822_218_8,
    0.912_234_428_251_326,
    0.963_971_927_277_913_8,
    0.993_128_599_185_094_9,
];
const GL_WEIGHTS: [f64; 10] = [
    0.152_753_387_130_725_85,
    0.149_172_986_472_603_75,
    0.142_096_109_318_382_05,
    0.131_688_638_449_176_63,
    0.118_194_531_961_518_42,
    0.101_930_119_817_240_44,
    0.083_276_741_576_704_75,
    0.062_672_048_334_109_06,
    0.040_601_429_800_386_94,
    0.017_614_007_139_152_12,
];

fn gauss_legendre(f: &dyn Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
    GL_NODES
        .iter()
        .zip(GL_WEIGHTS)
        .map(|(x, w)| w * (f(mid - half * x) + f(mid + half * x)))
        .sum::<f64>()
        * half
}

/// Kronrod 15-point nodes (on [0, 1]), their weights, and the embedded Gauss 7-point weights.
const K15_NODES: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
const K15_WEIGHTS: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_8,
];
const G7_WEIGHTS: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

/// Adaptive Gauss–Kronrod (G7/K15) quadrature of `f` on `[a, b]` to absolute tolerance `tol`
/// (or about 1e-14 relative, whichever is larger); `depth` is the recursion depth (call it
/// with 0).
pub fn adaptive_kronrod(f: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64, depth: u32) -> f64 {
    let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
    let center = f(mid);
    let mut kronrod = K15_WEIGHTS[7] * center;
    let mut gauss = G7_WEIGHTS[3] * center;
    for (i, (x, wk)) in K15_NODES.iter().zip(K15_WEIGHTS).enumerate().take(7) {
        let pair = f(mid - half * x) + f(mid + half * x);
        kronrod += wk * pair;
        if i % 2 == 1 {
            gauss += G7_WEIGHTS[i / 2] * pair;
        }
    }
    let (kronrod, gauss) = (kronrod * half, gauss * half);
    // Below ~100 ulps of the value the estimate cannot improve: stop there too.
    if (kronrod - gauss).abs() <= tol.max(1e-14 * kronrod.abs()) || depth >= 30 {
        return kronrod;
    }
    adaptive_kronrod(f, a, mid, tol / 2.0, depth + 1)
        + adaptive_kronrod(f, mid, b, tol / 2.0, depth + 1)
}

/// A least-squares fit `ln τ* = c - α ln λ`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExponentFit {
    /// The exponent α in `τ* ∝ λ^{-α}`.
    pub alpha: f64,
    /// The intercept `c` (so `τ* ≈ e^c λ^{-α}`).
    pub intercept: f64,
    /// The coefficient of determination of the fit in log-log.
    pub r2: f64,
    /// The number of modes fitted.
    pub modes: usize,
}

/// Fits `τ* ∝ λ^{-α}` by least squares in log-log over `(λ, τ*)` pairs; `None` with fewer than
/// two distinct λ.
pub fn fit_exponent(points: &[(f64, f64)]) -> Option<ExponentFit> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(l, t)| *l > 0.0 && *t > 0.0 && l.is_finite() && t.is_finite())
        .map(|(l, t)| (l.ln(), t.ln()))
        .collect();
    let n = logs.len() as f64;
    if logs.len() < 2 {
        return None;
    }
    let mx = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 1e-12 * n {
        return None;
    }
    let sxy: f64 = logs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_tot: f64 = logs.iter().map(|p| (p.1 - my).powi(2)).sum();
    let ss_res: f64 = logs
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    Some(ExponentFit {
        alpha: -slope,
        intercept,
        r2: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            1.0
        },
        modes: logs.len(),
    })
}

/// The settings shared by every mode of a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TheoryConfig {
    /// Learning rate η.
    pub eta: f64,
    /// Initial gain Q of every mode.
    pub q: f64,
    /// Smallest noise level σ_0 (EDM: 0.002).
    pub sigma_min: f64,
    /// Largest noise level σ_T (EDM: 80).
    pub sigma_max: f64,
    /// The denoiser.
    pub model: ModelKind,
    /// The learning-time criterion.
    pub crossing: Crossing,
    /// Leave out of the exponent fit the modes whose initial variance is within this factor of
    /// the target (`max(v_0, v_∞)/min(v_0, v_∞) < exclude`); 1 keeps all.
    pub exclude: f64,
}

impl Default for TheoryConfig {
    fn default() -> Self {
        Self {
            eta: 1.0,
            q: 0.0,
            sigma_min: 0.002,
            sigma_max: 80.0,
            model: ModelKind::Linear,
            crossing: Crossing::Geometric,
            exclude: 1.0,
        }
    }
}

impl TheoryConfig {
    /// The theory of the mode with data variance `lambda` and noise power `w` under these
    /// settings.
    pub fn mode(&self, lambda: f64, w: f64) -> ModeTheory {
        ModeTheory {
            lambda,
            w,
            eta: self.eta,
            q: self.q,
            sigma_min: self.sigma_min,
            sigma_max: self.sigma_max,
            model: self.model,
        }
    }

    /// Checks the settings (η, Q, the σ range, `exclude`); the error names the one at fault.
    pub fn validate(&self) -> Result<(), CoreError> {
        self.mode(1.0, 1.0).validate()?;
        if !(self.exclude.is_finite() && self.exclude >= 1.0) {
            return Err(invalid_value("exclude", self.exclude, "a number >= 1"));
        }
        Ok(())
    }
}

/// The theory's prediction for one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModePrediction {
    /// Data variance λ.
    pub lambda: f64,
    /// Noise power w.
    pub w: f64,
    /// Initial gain Q.
    pub q: f64,
    /// `λ̃(τ)` on the prediction's τ grid.
    pub variance: Vec<f64>,
    /// `λ̃(0)`.
    pub initial: f64,
    /// `λ̃(∞)`.
    pub target: f64,
    /// The learning time, if the mode has anything to learn.
    pub tau_star: Option<f64>,
}

/// The theory's prediction for a set of modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The settings.
    pub config: TheoryConfig,
    /// The τ grid.
    pub tau: Vec<f64>,
    /// One entry per mode, in the order given.
    pub modes: Vec<ModePrediction>,
    /// `τ* ∝ λ^{-α}` over the modes whose variance rises during training.
    pub increasing: Option<ExponentFit>,
    /// The same over the modes whose variance falls.
    pub decreasing: Option<ExponentFit>,
}

impl Prediction {
    /// The headline exponent: the fit over rising modes, or over falling ones when no mode
    /// rises.
    pub fn exponent(&self) -> Option<ExponentFit> {
        self.increasing.or(self.decreasing)
    }
}

/// A log-spaced τ grid of `points` values spanning every mode's dynamics: from a hundredth of
/// the fastest time scale `1/(2η_eff max(λ + σ_0² w))` to a hundred times the slowest.
pub fn tau_grid(lambda: &[f64], w: &[f64], config: &TheoryConfig, points: usize) -> Vec<f64> {
    let rate = config.mode(1.0, 1.0).rate();
    let speeds = lambda
        .iter()
        .zip(w)
        .map(|(l, w)| match config.model {
            ModelKind::TwoLayer => 4.0 * l,
            _ => l + config.sigma_min.powi(2) * w,
        })
        .filter(|v| *v > 0.0 && v.is_finite());
    let (fast, slow) = speeds.fold((0.0f64, f64::INFINITY), |(a, b), v| (a.max(v), b.min(v)));
    if !(fast > 0.0 && slow.is_finite()) || points < 2 {
        return vec![1.0; points.max(1)];
    }
    let (lo, hi) = (
        (0.01 / (2.0 * rate * fast)).ln(),
        (100.0 / (2.0 * rate * slow)).ln(),
    );
    (0..points)
        .map(|i| (lo + (hi - lo) * i as f64 / (points - 1) as f64).exp())
        .collect()
}

/// The theory for every mode (`lambda[k]`, `w[k]`) on the τ grid `tau`, their learning times
/// and the exponent fits.
pub fn predict(
    lambda: &[f64],
    w: &[f64],
    config: &TheoryConfig,
    tau: &[f64],
) -> Result<Prediction, CoreError> {
    if lambda.len() != w.len() || lambda.is_empty() {
        return Err(CoreError::ShapeMismatch {
            context: "theory modes".to_string(),
            expected: format!("as many noise powers as data variances ({})", lambda.len()),
            got: format!("{}", w.len()),
        });
    }
    if let Some(t) = tau.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
        return Err(invalid_value("tau", t, "finite values >= 0"));
    }
    config.validate()?;
    let mut modes: Vec<ModePrediction> = Vec::with_capacity(lambda.len());
    // Modes with the same (λ, w) (mirror frequencies, channels, symmetric spectra) share one
    // computation.
    let mut seen: std::collections::HashMap<(u64, u64), usize> = std::collections::HashMap::new();
    for (&l, &wk) in lambda.iter().zip(w) {
        if let Some(&first) = seen.get(&(l.to_bits(), wk.to_bits())) {
            let copy = modes[first].clone();
            modes.push(copy);
            continue;
        }
        seen.insert((l.to_bits(), wk.to_bits()), modes.len());
        let m = config.mode(l, wk);
        m.validate()?;
        modes.push(ModePrediction {
            lambda: l,
            w: wk,
            q: config.q,
            variance: tau.iter().map(|&t| m.variance(t)).collect(),
            initial: m.initial_variance(),
            target: m.target_variance(),
            tau_star: m.learning_time(config.crossing),
        });
    }
    let (mut rising, mut falling) = (Vec::new(), Vec::new());
    for m in &modes {
        let Some(t) = m.tau_star else { continue };
        if m.initial.max(m.target) / m.initial.min(m.target) < config.exclude {
            continue;
        }
        if m.target > m.initial {
            rising.push((m.lambda, t));
        } else {
            falling.push((m.lambda, t));
        }
    }
    Ok(Prediction {
        config: *config,
        tau: tau.to_vec(),
        modes,
        increasing: fit_exponent(&rising),
        decreasing: fit_exponent(&falling),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(lambda: f64, w: f64, q: f64, model: ModelKind) -> ModeTheory {
        ModeTheory {
            lambda,
            w,
            eta: 0.5,
            q,
            sigma_min: 0.002,
            sigma_max: 80.0,
            model,
        }
    }

    #[test]
    fn e1_matches_tabulated_values_and_its_difference_its_integral() {
        // Abramowitz & Stegun 5.1: E1(0.5) = 0.5597735947761608, E1(1) = 0.2193839343955203,
        // E1(2) = 0.04890051070806112, E1(10) = 4.156968929685324e-6.
        for (x, v) in [
            (0.5, 0.559_773_594_776_160_8),
            (1.0, 0.219_383_934_395_520_3),
            (2.0, 0.048_900_510_708_061_12),
            (10.0, 4.156_968_929_685_324e-6),
        ] {
            assert!((exp_integral_e1(x) / v - 1.0).abs() < 1e-13, "E1({x})");
        }
        // The difference against plain quadrature of e^{-t}/t.
        for (a, b) in [
            (1e-12f64, 3e-12f64),
            (1e-9, 1e-3),
            (0.3, 0.5),
            (0.9, 5.0),
            (3.0, 3.1),
            (50.0, 400.0),
        ] {
            // Scaled by e^a so that the absolute tolerance is a relative one.
            let q = adaptive_kronrod(&|x: f64| (a - x.exp()).exp(), a.ln(), b.ln(), 1e-16, 0);
            let d = e1_difference(a, b) * a.exp();
            assert!((d / q - 1.0).abs() < 1e-12, "[{a}, {b}]: {d} vs {q}");
        }
    }

    #[test]
    fn closed_form_and_quadrature_agree_to_1e_8() {
        for model in [ModelKind::Linear, ModelKind::Circulant { pixels: 64 }] {
            for (lambda, w, q) in [
                (1.0, 1.0, 0.0),
                (1e-3, 1.0, 0.0),
                (50.0, 0.2, 0.3),
                (0.2, 7.0, -0.1),
                (3.0, 1e-6, 0.0),
            ] {
                let m = mode(lambda, w, q, model);
                for tau in [0.0, 1e-6, 1e-3, 0.1, 1.0, 10.0, 1e3, 1e6] {
                    let (c, n) = (m.variance(tau), m.variance_quadrature(tau));
                    assert!(
                        (c / n - 1.0).abs() < 1e-8,
                        "{model:?} λ {lambda} w {w} Q {q} τ {tau}: closed {c} vs quadrature {n}"
                    );
                }
                assert!((m.variance(1e12) / m.target_variance() - 1.0).abs() < 1e-8);
            }
        }
    }

    #[test]
    fn two_layer_is_logistic_with_doubling_time_ln2_over_8_eta_lambda() {
        let m = mode(2.0, 0.5, 1e-10, ModelKind::TwoLayer);
        let doubling = std::f64::consts::LN_2 / (8.0 * m.eta * m.lambda);
        // Early on ψ ≪ ψ*: ψ doubles every ln2/(8ηλ), at every σ.
        for sigma in [0.01, 1.0, 30.0] {
            let ratio = m.psi(sigma, doubling) / m.psi(sigma, 0.0);
            assert!((ratio - 2.0).abs() < 1e-4, "σ {sigma}: {ratio}");
            // And it solves dψ/dτ = 8η(λ + σ² w) ψ (ψ* - ψ) (central difference).
            let tau = 5.0 * doubling;
            let h = 1e-4 * doubling;
            let numeric = (m.psi(sigma, tau + h) - m.psi(sigma, tau - h)) / (2.0 * h);
            let p = m.psi(sigma, tau);
            let exact =
                8.0 * m.eta * (m.lambda + sigma * sigma * m.w) * p * (m.psi_star(sigma) - p);
            assert!((numeric / exact - 1.0).abs() < 1e-6);
        }
        assert!(mode(1.0, 1.0, 0.0, ModelKind::TwoLayer).validate().is_err());
    }

    #[test]
    fn learning_time_scales_inversely_with_variance_under_isotropic_noise() {
        let points: Vec<(f64, f64)> = (0..25)
            .map(|i| 10f64.powf(-1.5 + 3.5 * i as f64 / 24.0))
            .map(|l| {
                let t = mode(l, 1.0, 0.0, ModelKind::Linear)
                    .learning_time(Crossing::Geometric)
                    .unwrap();
                (l, t)
            })
            .collect();
        let fit = fit_exponent(&points).unwrap();
        assert!(
            (0.95..=1.10).contains(&fit.alpha) && fit.r2 > 0.99,
            "{fit:?}"
        );
        // The crossing is where it says: λ̃(τ*) is the geometric mean.
        let m = mode(0.7, 1.0, 0.0, ModelKind::Linear);
        let t = m.learning_time(Crossing::Geometric).unwrap();
        let mean = (m.initial_variance() * m.target_variance()).sqrt();
        assert!((m.variance(t) / mean - 1.0).abs() < 1e-9);
    }

    #[test]
    fn predict_shares_equal_modes_and_splits_rising_from_falling() {
        // Q = 0.5: the initial variance is σ_T² (σ_0/σ_T)^1 = 6400 · 2.5e-5 = 0.16; modes below fall,
        // modes above rise.
        let config = TheoryConfig {
            q: 0.5,
            ..TheoryConfig::default()
        };
        let lambda = [1e-3, 2e-3, 50.0, 90.0, 50.0, 1e-3];
        let w = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let tau = tau_grid(&lambda, &w, &config, 20);
        let p = predict(&lambda, &w, &config, &tau).unwrap();
        assert_eq!(p.modes[2], p.modes[4]);
        for (m, &l) in p.modes.iter().zip(&lambda) {
            let alone = config.mode(l, 1.0);
            assert_eq!(m.tau_star, alone.learning_time(Crossing::Geometric));
            assert_eq!(m.variance[7], alone.variance(tau[7]));
        }
        let (up, down) = (p.increasing.unwrap(), p.decreasing.unwrap());
        assert_eq!((up.modes, down.modes), (3, 3));
        // Excluding modes whose initial variance is within 10^6 of the target leaves fewer.
        let strict = TheoryConfig {
            exclude: 1e6,
            ..config
        };
        let q = predict(&lambda, &w, &strict, &tau).unwrap();
        let kept = q.increasing.map_or(0, |f| f.modes) + q.decreasing.map_or(0, |f| f.modes);
        assert!(kept < 6, "{kept}");
        assert!(predict(&lambda, &w[..3], &config, &tau).is_err());
    }

    #[test]
    fn gradient_descent_tends_to_the_flow_as_the_step_shrinks() {
        let m = ModeTheory {
            eta: 1e-4,
            sigma_max: 5.0,
            ..mode(0.4, 1.3, 0.0, ModelKind::Linear)
        };
        for steps in [100u64, 3000, 20000] {
            // τ counts steps: the flow is dψ/dτ = -2η(ψ(λ + σ²w) - λ).
            let tau = steps as f64;
            let (gd, flow) = (m.variance_gd(steps).unwrap(), m.variance(tau));
            assert!((gd / flow - 1.0).abs() < 2e-3, "{steps}: {gd} vs {flow}");
        }
        // One step by hand: ψ_1 = Q - 2η(Q(λ + σ²w) - λ).
        let sigma = 0.7;
        let r = m.lambda + sigma * sigma * m.w;
        let by_hand = m.q - 2.0 * m.eta * (m.q * r - m.lambda);
        assert!((m.psi_gd(sigma, 1).unwrap() - by_hand).abs() < 1e-15);
        assert!(
            mode(1.0, 1.0, 0.1, ModelKind::TwoLayer)
                .variance_gd(3)
                .is_none()
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let mut m = mode(1.0, 1.0, 0.0, ModelKind::Linear);
        m.eta = f64::NAN;
        assert!(m.validate().unwrap_err().to_string().contains("eta"));
        m.eta = 1.0;
        m.sigma_min = 100.0;
        assert!(m.validate().unwrap_err().to_string().contains("sigma_min"));
        assert!(fit_exponent(&[(1.0, 1.0)]).is_none());
    }
}
