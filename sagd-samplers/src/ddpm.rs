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

use sagd_core::{ImageShape, Images, NoiseOperator, NoiseRng};
use sagd_models::Denoiser;

use crate::error::SamplerError;
use crate::sampler::{Common, Progress, Sampler, check_finite, eps, lin, next_level};

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
        let path = self.common.path(denoiser, noise, &x_top)?;
        let mut x = x_top;
        let levels = denoiser.levels();
        let mut evaluations = 0;
        let taken = self.common.step_count(&path);
        for (n, &t) in path.iter().enumerate().take(taken) {
            let (from, to) = (levels[t], next_level(levels, &path, n));
            let (a, s, a2, s2) = (from.scale(), from.sigma, to.scale(), to.sigma);
            let e = eps(denoiser, &x, t, &mut evaluations)?;
            let x0 = lin(&x, 1.0 / a, Some(&[(&e, -s / a)]))?;
            let r = a / a2;
            let nu2 = (s * s - r * r * s2 * s2).max(0.0);
            let mean = lin(
                &x0,
                a2 * nu2 / (s * s),
                Some(&[(&x, r * s2 * s2 / (s * s))]),
            )?;
            let posterior_var = s2 * s2 * nu2 / (s * s);
            x = if posterior_var > 0.0 {
                let z = noise.sample(count, rng, &device)?;
                lin(&mean, 1.0, Some(&[(&z, posterior_var.sqrt())]))?
            } else {
                mean
            };
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
