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

use sagd_core::{ImageShape, Images, NoiseLevel};

use crate::error::SamplerError;
use crate::sampler::{Common, Sampler, Step, lin};

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

    fn common(&self) -> &Common {
        &self.common
    }

    fn check(&self, _levels: &[NoiseLevel]) -> Result<(), SamplerError> {
        if !(self.eta.is_finite() && (0.0..=1.0).contains(&self.eta)) {
            return Err(SamplerError::config("eta", self.eta, "a number in [0, 1]"));
        }
        Ok(())
    }

    fn update(&self, step: &mut Step<'_, S>, x: Images<S>) -> Result<Images<S>, SamplerError> {
        let (a, s, a2, s2) = (
            step.from.scale(),
            step.from.sigma,
            step.to.scale(),
            step.to.sigma,
        );
        let e = step.eps(&x)?;
        let fresh_sd = self.eta * (s2 / s) * (s * s - (a / a2).powi(2) * s2 * s2).max(0.0).sqrt();
        let carried = (s2 * s2 - fresh_sd * fresh_sd).max(0.0).sqrt();
        // a' x̂_0 + carried ε̂ = (a'/a) x + (carried - a' σ/a) ε̂
        let x = lin(&x, a2 / a, Some(&[(&e, carried - a2 * s / a)]))?;
        if fresh_sd > 0.0 {
            let z = step.noise(&x)?;
            return lin(&x, 1.0, Some(&[(&z, fresh_sd)]));
        }
        Ok(x)
    }
}
