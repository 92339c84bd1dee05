//! DDPM ancestral sampling with coloured posterior noise.
//!
//! The forward transition from level `(a', σ')` to the noisier `(a, σ)` is
//! `x = r x' + ν ε^(w)` with `r = a/a'`, `ν² = σ² - r² σ'²`. Its posterior given `x_0` is
//!
//! ```text
//! q(x' | x, x_0) = N(μ̃, β̃ Σ_w),   μ̃ = (a' ν²/σ²) x_0 + (r σ'²/σ²) x,   β̃ = σ'² ν²/σ²,
//! ```
//!
//! (for consecutive VP levels, DDPM's `μ̃_t` and `β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) β_t`); the
//! sampler plugs in `x̂_0 = (x - σ ε̂^(w))/a` and draws the noise through the noise operator.
//! Strided schedules (fewer steps than levels) use the same formulas between visited levels.

use sagd_core::{ImageShape, Images};

use crate::error::SamplerError;
use crate::sampler::{Common, Sampler, Step, lin};

/// DDPM ancestral sampling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ddpm {
    /// Steps (usually the whole schedule), spacing, prior.
    pub common: Common,
}

impl<S: ImageShape> Sampler<S> for Ddpm {
    fn name(&self) -> String {
        format!("ddpm({})", self.common.describe())
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn update(&self, step: &mut Step<'_, S>, x: Images<S>) -> Result<Images<S>, SamplerError> {
        let (a, s, a2, s2) = (
            step.from.scale(),
            step.from.sigma,
            step.to.scale(),
            step.to.sigma,
        );
        let e = step.eps(&x)?;
        let x0 = lin(&x, 1.0 / a, Some(&[(&e, -s / a)]))?;
        let r = a / a2;
        let nu2 = (s * s - r * r * s2 * s2).max(0.0);
        let mean = lin(
            &x0,
            a2 * nu2 / (s * s),
            Some(&[(&x, r * s2 * s2 / (s * s))]),
        )?;
        let posterior_var = s2 * s2 * nu2 / (s * s);
        if posterior_var > 0.0 {
            let z = step.noise(&mean)?;
            return lin(&mean, 1.0, Some(&[(&z, posterior_var.sqrt())]));
        }
        Ok(mean)
    }
}
