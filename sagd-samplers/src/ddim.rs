//! DDIM with coloured noise.
//!
//! From level `(a, σ)` to `(a', σ')` (`a = √ᾱ`), with `ε̂ = ε̂^(w)(x, t)` and
//! `x̂_0 = (x - σ ε̂)/a`:
//!
//! ```text
//! x' = a' x̂_0 + √(σ'² - s²) ε̂ + s ε'^(w),   s = η (σ'/σ) √(σ² - (a/a')² σ'²),
//! ```
//!
//! which for a VP schedule is DDIM's `s = η √((1-ᾱ')/(1-ᾱ)) √(1 - ᾱ/ᾱ')` and for a VE one
//! the same with `a = a' = 1`. `ε'^(w)` is fresh noise from the noise operator. η = 0 is the
//! deterministic sampler of the papers; η = 1 is DDPM's ancestral step.

use sagd_core::{ImageShape, Images, NoiseOperator, NoiseRng};
use sagd_models::Denoiser;

use crate::error::SamplerError;
use crate::sampler::{Common, Progress, Sampler, check_finite, eps, lin, next_level};

/// DDIM with stochasticity `eta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ddim {
    /// η in [0, 1].
    pub eta: f64,
    /// Steps, spacing, prior.
    pub common: Common,
}

impl<S: ImageShape> Sampler<S> for Ddim {
    fn name(&self) -> String {
        format!("ddim(eta={}, {})", self.eta, self.common.describe())
    }

    fn steps(&self) -> usize {
        self.common.steps
    }

    fn evaluations(&self) -> usize {
        self.common.steps
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn sample_from(
        &self,
        denoiser: &dyn Denoiser<S>,
        noise: &dyn NoiseOperator<S>,
        x_top: Images<S>,
        rng: &mut NoiseRng,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Images<S>, SamplerError> {
        let (count, device) = (x_top.count(), x_top.device());
        if !(self.eta.is_finite() && (0.0..=1.0).contains(&self.eta)) {
            return Err(SamplerError::config("eta", self.eta, "a number in [0, 1]"));
        }
        let path = self.common.path(denoiser, noise, &x_top)?;
        let mut x = x_top;
        let levels = denoiser.levels();
        let mut evaluations = 0;
        let taken = self.common.step_count(&path);
        for (n, &t) in path.iter().enumerate().take(taken) {
            let (from, to) = (levels[t], next_level(levels, &path, n));
            let (a, s, a2, s2) = (from.scale(), from.sigma, to.scale(), to.sigma);
            let e = eps(denoiser, &x, t, &mut evaluations)?;
            let fresh_sd =
                self.eta * (s2 / s) * (s * s - (a / a2).powi(2) * s2 * s2).max(0.0).sqrt();
            let carried = (s2 * s2 - fresh_sd * fresh_sd).max(0.0).sqrt();
            // a' x̂_0 + carried ε̂ = (a'/a) x + (carried - a' σ/a) ε̂
            x = lin(&x, a2 / a, Some(&[(&e, carried - a2 * s / a)]))?;
            if fresh_sd > 0.0 {
                let z = noise.sample(count, rng, &device)?;
                x = lin(&x, 1.0, Some(&[(&z, fresh_sd)]))?;
            }
            progress(&Progress {
                step: n + 1,
                steps: taken,
                sigma: s,
                evaluations,
            });
        }
        check_finite(&x, taken)?;
        Ok(x)
    }
}
