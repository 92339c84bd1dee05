//! Analytic densities for verification: Gaussian and Gaussian-mixture data, and their exact
//! noisy marginals under anisotropic noise.
//!
//! With `x_t = a x_0 + σ ε^(w)`, `ε^(w) ~ N(0, Σ_w)` and `x_0 ~ Σ_k π_k N(μ_k, Σ_k)`:
//! `p_t = Σ_k π_k N(a μ_k, C_k)`, `C_k = a² Σ_k + σ² Σ_w`, and per component
//! `E[x_0 | x, k] = μ_k + a Σ_k C_k⁻¹ (x - a μ_k)`, `E[ε^(w) | x, k] = σ Σ_w C_k⁻¹ (x - a μ_k)`,
//! `∇log N(x; a μ_k, C_k) = -C_k⁻¹ (x - a μ_k)`; mixtures weight these by the posterior
//! responsibilities `r_k(x)`.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use rand::Rng;

use crate::covariance::Real;
use crate::error::{CoreError, invalid_value};
use crate::schedule::NoiseLevel;

/// A Gaussian mixture `Σ_k π_k N(μ_k, Σ_k)` in dimension `d` (a single Gaussian when K = 1).
#[derive(Debug, Clone)]
pub struct GaussianMixture {
    weights: Vec<f64>,
    means: Vec<DVector<f64>>,
    covariances: Vec<DMatrix<f64>>,
    factors: Vec<DMatrix<f64>>,
}

impl GaussianMixture {
    /// A mixture; weights must be positive (they are normalized to sum 1), covariances
    /// symmetric positive definite and all dimensions equal.
    pub fn new(
        weights: Vec<f64>,
        means: Vec<DVector<f64>>,
        covariances: Vec<DMatrix<f64>>,
    ) -> Result<Self, CoreError> {
        if weights.is_empty() || weights.len() != means.len() || weights.len() != covariances.len()
        {
            return Err(CoreError::ShapeMismatch {
                context: "Gaussian mixture".to_string(),
                expected: "as many weights, means and covariances (at least one)".to_string(),
                got: format!("{}, {}, {}", weights.len(), means.len(), covariances.len()),
            });
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(invalid_value("mixture weight", w, "a finite number > 0"));
        }
        let total: f64 = weights.iter().sum();
        let d = means[0].len();
        let mut factors = Vec::new();
        for (k, (m, c)) in means.iter().zip(&covariances).enumerate() {
            if m.len() != d || c.nrows() != d || c.ncols() != d {
                return Err(CoreError::ShapeMismatch {
                    context: format!("mixture component {k}"),
                    expected: format!("mean of length {d} and a {d}x{d} covariance"),
                    got: format!(
                        "mean {} and covariance {}x{}",
                        m.len(),
                        c.nrows(),
                        c.ncols()
                    ),
                });
            }
            let chol = Cholesky::new(c.clone()).ok_or_else(|| CoreError::NotPositiveDefinite {
                what: format!("covariance of mixture component {k}"),
            })?;
            factors.push(chol.l());
        }
        Ok(Self {
            weights: weights.iter().map(|w| w / total).collect(),
            means,
            covariances,
            factors,
        })
    }

    /// A single Gaussian `N(μ, Σ)`.
    pub fn gaussian(mean: DVector<f64>, covariance: DMatrix<f64>) -> Result<Self, CoreError> {
        Self::new(vec![1.0], vec![mean], vec![covariance])
    }

    /// Dimension d.
    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    /// Number of components.
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    /// Normalized weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Component means.
    pub fn means(&self) -> &[DVector<f64>] {
        &self.means
    }

    /// Component covariances.
    pub fn covariances(&self) -> &[DMatrix<f64>] {
        &self.covariances
    }

    /// One draw from the mixture.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> DVector<f64> {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut k = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                k = i;
                break;
            }
        }
        let z = DVector::from_fn(self.dim(), |_, _| f64::standard_normal(rng));
        &self.means[k] + &self.factors[k] * z
    }

    /// The exact marginal at noise level `level` under noise covariance `noise_cov` (`Σ_w`,
    /// dense). `σ = 0` gives the data density itself.
    pub fn noisy(
        &self,
        level: NoiseLevel,
        noise_cov: &DMatrix<f64>,
    ) -> Result<NoisyMixture, CoreError> {
        let d = self.dim();
        if noise_cov.nrows() != d || noise_cov.ncols() != d {
            return Err(CoreError::ShapeMismatch {
                context: "noise covariance".to_string(),
                expected: format!("{d}x{d}"),
                got: format!("{}x{}", noise_cov.nrows(), noise_cov.ncols()),
            });
        }
        if !(level.alpha_bar.is_finite()
            && level.alpha_bar > 0.0
            && level.sigma.is_finite()
            && level.sigma >= 0.0)
        {
            return Err(invalid_value(
                "noise level",
                format!("{level:?}"),
                "0 < alpha_bar, 0 <= sigma",
            ));
        }
        let a = level.scale();
        let s2 = level.sigma * level.sigma;
        let components = (0..self.components())
            .map(|k| {
                let c = &self.covariances[k] * (a * a) + noise_cov * s2;
                let chol = Cholesky::new(c).ok_or_else(|| CoreError::NotPositiveDefinite {
                    what: format!("noisy covariance of component {k}"),
                })?;
                let log_det = 2.0
                    * chol
                        .l_dirty()
                        .diagonal()
                        .iter()
                        .map(|v| v.ln())
                        .sum::<f64>();
                Ok(NoisyComponent {
                    log_weight: self.weights[k].ln(),
                    mean: &self.means[k] * a,
                    clean_mean: self.means[k].clone(),
                    clean_cov: self.covariances[k].clone(),
                    chol,
                    log_det,
                })
            })
            .collect::<Result<Vec<_>, CoreError>>()?;
        Ok(NoisyMixture {
            level,
            noise_cov: noise_cov.clone(),
            components,
        })
    }
}

#[derive(Debug, Clone)]
struct NoisyComponent {
    log_weight: f64,
    mean: DVector<f64>,
    clean_mean: DVector<f64>,
    clean_cov: DMatrix<f64>,
    chol: Cholesky<f64, Dyn>,
    log_det: f64,
}

/// The exact noisy density `p_t` of a [`GaussianMixture`].
#[derive(Debug, Clone)]
pub struct NoisyMixture {
    level: NoiseLevel,
    noise_cov: DMatrix<f64>,
    components: Vec<NoisyComponent>,
}

impl NoisyMixture {
    /// Per component: `ln π_k + ln N(x; a μ_k, C_k)` and `C_k⁻¹ (x - a μ_k)`.
    fn terms(&self, x: &DVector<f64>) -> Vec<(f64, DVector<f64>)> {
        let d = x.len() as f64;
        self.components
            .iter()
            .map(|c| {
                let r = x - &c.mean;
                let solved = c.chol.solve(&r);
                let quad = r.dot(&solved);
                let log_n = -0.5 * (quad + c.log_det + d * (2.0 * std::f64::consts::PI).ln());
                (c.log_weight + log_n, solved)
            })
            .collect()
    }

    fn responsibilities_of(terms: &[(f64, DVector<f64>)]) -> (Vec<f64>, f64) {
        let max = terms.iter().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = terms.iter().map(|t| (t.0 - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        (exps.iter().map(|e| e / total).collect(), max + total.ln())
    }

    /// `ln p_t(x)`.
    pub fn log_density(&self, x: &DVector<f64>) -> f64 {
        Self::responsibilities_of(&self.terms(x)).1
    }

    /// Posterior component probabilities `r_k(x)`.
    pub fn responsibilities(&self, x: &DVector<f64>) -> Vec<f64> {
        Self::responsibilities_of(&self.terms(x)).0
    }

    /// The exact score `∇log p_t(x) = -Σ_k r_k C_k⁻¹ (x - a μ_k)`.
    pub fn score(&self, x: &DVector<f64>) -> DVector<f64> {
        let terms = self.terms(x);
        let (r, _) = Self::responsibilities_of(&terms);
        let mut out = DVector::zeros(x.len());
        for (rk, (_, solved)) in r.iter().zip(&terms) {
            out -= solved * *rk;
        }
        out
    }

    /// The posterior mean `E[x_0 | x_t = x] = Σ_k r_k (μ_k + a Σ_k C_k⁻¹ (x - a μ_k))`.
    pub fn posterior_mean_x0(&self, x: &DVector<f64>) -> DVector<f64> {
        let terms = self.terms(x);
        let (r, _) = Self::responsibilities_of(&terms);
        let a = self.level.scale();
        let mut out = DVector::zeros(x.len());
        for ((rk, (_, solved)), c) in r.iter().zip(&terms).zip(&self.components) {
            out += (&c.clean_mean + &c.clean_cov * solved * a) * *rk;
        }
        out
    }

    /// The posterior mean of the coloured noise, `E[ε^(w) | x_t = x] = Σ_k r_k σ Σ_w C_k⁻¹
    /// (x - a μ_k)` (computed from the joint Gaussian, not from the score).
    pub fn posterior_mean_eps(&self, x: &DVector<f64>) -> DVector<f64> {
        let terms = self.terms(x);
        let (r, _) = Self::responsibilities_of(&terms);
        let mut out = DVector::zeros(x.len());
        for (rk, (_, solved)) in r.iter().zip(&terms) {
            out += &self.noise_cov * solved * (self.level.sigma * *rk);
        }
        out
    }

    /// The level this density is at.
    pub fn level(&self) -> NoiseLevel {
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn example() -> (GaussianMixture, DMatrix<f64>) {
        let means = vec![
            DVector::from_vec(vec![1.0, -0.5, 0.2]),
            DVector::from_vec(vec![-1.0, 0.3, 0.0]),
        ];
        let covs = vec![
            DMatrix::from_row_slice(3, 3, &[1.0, 0.2, 0.0, 0.2, 0.5, 0.1, 0.0, 0.1, 0.3]),
            DMatrix::from_row_slice(3, 3, &[0.4, 0.0, 0.1, 0.0, 0.6, 0.0, 0.1, 0.0, 0.9]),
        ];
        let mixture = GaussianMixture::new(vec![0.3, 0.7], means, covs).unwrap();
        let noise = DMatrix::from_row_slice(3, 3, &[2.0, 0.5, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.2]);
        (mixture, noise)
    }

    #[test]
    fn score_matches_finite_differences_of_the_log_density() {
        let (mixture, noise) = example();
        let p = mixture.noisy(NoiseLevel::vp(0.6), &noise).unwrap();
        let x = DVector::from_vec(vec![0.3, -0.2, 0.7]);
        let s = p.score(&x);
        let h = 1e-5;
        for i in 0..3 {
            let mut plus = x.clone();
            let mut minus = x.clone();
            plus[i] += h;
            minus[i] -= h;
            let fd = (p.log_density(&plus) - p.log_density(&minus)) / (2.0 * h);
            assert!((fd - s[i]).abs() < 1e-7, "coordinate {i}: {fd} vs {}", s[i]);
        }
    }

    #[test]
    fn single_gaussian_log_density_matches_the_closed_form_in_one_dimension() {
        let g = GaussianMixture::gaussian(
            DVector::from_vec(vec![0.5]),
            DMatrix::from_element(1, 1, 2.0),
        )
        .unwrap();
        let p = g
            .noisy(NoiseLevel::vp(0.25), &DMatrix::from_element(1, 1, 3.0))
            .unwrap();
        // x_t ~ N(0.5·0.5, 0.25·2 + 0.75·3)
        let var = 0.25 * 2.0 + 0.75 * 3.0;
        let x = 1.3;
        let exact =
            -0.5 * ((x - 0.25f64).powi(2) / var + var.ln() + (2.0 * std::f64::consts::PI).ln());
        assert!((p.log_density(&DVector::from_vec(vec![x])) - exact).abs() < 1e-13);
    }

    #[test]
    fn posterior_means_match_monte_carlo() {
        // Independent check of E[x0|x] through self-normalized importance sampling on the
        // clean mixture: E[x0 | x] ∝ E_{x0~p0}[x0 N(x; a x0, σ² Σ_w)].
        let (mixture, noise) = example();
        let level = NoiseLevel::vp(0.7);
        let p = mixture.noisy(level, &noise).unwrap();
        let x = DVector::from_vec(vec![0.2, 0.1, -0.3]);
        let lik = GaussianMixture::gaussian(DVector::zeros(3), noise.clone() * level.sigma.powi(2))
            .unwrap();
        let lik = lik
            .noisy(NoiseLevel::ve(0.0), &DMatrix::zeros(3, 3))
            .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut num, mut den) = (DVector::zeros(3), 0.0);
        for _ in 0..200_000 {
            let x0 = mixture.sample(&mut rng);
            let wgt = lik.log_density(&(&x - &x0 * level.scale())).exp();
            num += &x0 * wgt;
            den += wgt;
        }
        let mc = num / den;
        let exact = p.posterior_mean_x0(&x);
        assert!((mc - &exact).norm() < 0.02, "{exact} vs Monte Carlo");
        // And the noise posterior is the rest of x: x = a E[x0|x] + σ E[ε|x].
        let eps = p.posterior_mean_eps(&x);
        assert!((&exact * level.scale() + eps * level.sigma - &x).norm() < 1e-12);
    }
}
