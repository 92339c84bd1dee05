//! The probability-flow ODE, by Euler's or Heun's method, in the VP or the EDM variables.
//!
//! - **EDM form** (`x̃ = x/√ᾱ`, `σ̃ = σ/√ᾱ`): `dx̃/dσ̃ = (x̃ - D(x̃; σ̃))/σ̃ = ε̂^(w)`, the
//!   denoiser evaluated at `x = √ᾱ x̃`. It needs no β(t), so it serves VP and VE schedules
//!   alike; one Euler step is exactly a DDIM (η = 0) step.
//! - **VP form**: `dx/dt = -½β(t)[x - ε̂^(w)/σ_t]`, integrated in `u = -ln ᾱ` (so that
//!   `β dt = du` and the discrete schedule needs no interpolation):
//!   `dx/du = -½[x - ε̂^(w)/σ(u)]`. Variance-preserving schedules only.
//!
//! Heun's method corrects every step but the last (EDM's Algorithm 1). The last step goes from
//! the lowest visited level to `σ = 0`: in the EDM form an Euler step, which lands exactly on
//! `x̂_0`; in the VP form, where `ε̂/σ` is singular at `σ = 0`, the same denoising step
//! `x̂_0 = (x - σ ε̂)/√ᾱ`.

use sagd_core::{ImageShape, Images, NoiseLevel};

use crate::error::SamplerError;
use crate::sampler::{Common, OdeForm, Sampler, Step, lin};

/// The integration scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// First order, one evaluation per step.
    Euler,
    /// Second order, two evaluations per step (one on the last).
    Heun,
}

/// The probability-flow ODE sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbabilityFlow {
    /// Euler or Heun.
    pub solver: Solver,
    /// VP or EDM variables.
    pub form: OdeForm,
    /// Steps, spacing, prior.
    pub common: Common,
}

/// Largest `|ᾱ + σ² - 1|` for a level to count as variance-preserving.
const VP_TOLERANCE: f64 = 1e-9;

/// Refuses a schedule that is not variance-preserving (the VP form needs `σ² = 1 - ᾱ`).
pub(crate) fn check_vp(levels: &[sagd_core::NoiseLevel]) -> Result<(), SamplerError> {
    match levels
        .iter()
        .enumerate()
        .find(|(_, l)| (l.alpha_bar + l.sigma * l.sigma - 1.0).abs() > VP_TOLERANCE)
    {
        Some((t, l)) => Err(SamplerError::config(
            "form",
            "vp",
            format!(
                "a variance-preserving schedule (level {t} has ᾱ = {}, σ = {}); use form = edm",
                l.alpha_bar, l.sigma
            ),
        )),
        None => Ok(()),
    }
}

impl<S: ImageShape> Sampler<S> for ProbabilityFlow {
    fn name(&self) -> String {
        let solver = match self.solver {
            Solver::Euler => "euler",
            Solver::Heun => "heun",
        };
        format!("{solver}(form={}, {})", self.form, self.common.describe())
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn evaluations(&self) -> usize {
        match self.solver {
            Solver::Euler => self.common.steps,
            Solver::Heun => (2 * self.common.steps).saturating_sub(1),
        }
    }

    fn check(&self, levels: &[NoiseLevel]) -> Result<(), SamplerError> {
        if self.form == OdeForm::Vp {
            check_vp(levels)?;
        }
        Ok(())
    }

    fn update(&self, step: &mut Step<'_, S>, x: Images<S>) -> Result<Images<S>, SamplerError> {
        match self.form {
            OdeForm::Edm => self.edm_step(step, x),
            OdeForm::Vp => self.vp_step(step, x),
        }
    }
}

impl ProbabilityFlow {
    /// `x' = a' (x/a + (σ̃' − σ̃) ε̂)`: an Euler step in `x̃ = x/a`, mapped back; Heun averages
    /// the slopes at both ends (not on the last step, which lands on `x̂_0`).
    fn edm_step<S: ImageShape>(
        &self,
        step: &mut Step<'_, S>,
        x: Images<S>,
    ) -> Result<Images<S>, SamplerError> {
        let (a, s, a2, s2) = (
            step.from.scale(),
            step.from.sigma,
            step.to.scale(),
            step.to.sigma,
        );
        let e = step.eps(&x)?;
        let h = a2 * (s2 / a2 - s / a);
        let euler = lin(&x, a2 / a, Some(&[(&e, h)]))?;
        if self.solver == Solver::Heun && !step.last {
            let e2 = step.eps_at_next(&euler)?;
            return lin(&x, a2 / a, Some(&[(&e, h / 2.0), (&e2, h / 2.0)]));
        }
        Ok(euler)
    }

    /// `dx/du = −½(x − ε̂/σ)` in `u = −ln ᾱ`; the last step (to `σ = 0`, where `ε̂/σ` is
    /// singular) is the denoising step `x̂_0 = (x − σ ε̂)/√ᾱ`.
    fn vp_step<S: ImageShape>(
        &self,
        step: &mut Step<'_, S>,
        x: Images<S>,
    ) -> Result<Images<S>, SamplerError> {
        let (a, s, a2, s2) = (
            step.from.scale(),
            step.from.sigma,
            step.to.scale(),
            step.to.sigma,
        );
        let e = step.eps(&x)?;
        if step.last {
            return lin(&x, 1.0 / a, Some(&[(&e, -s / a)]));
        }
        // h = u' - u < 0; f(x) = -½(x - ε̂/σ).
        let h = 2.0 * (a.ln() - a2.ln());
        let euler = lin(&x, 1.0 - h / 2.0, Some(&[(&e, h / (2.0 * s))]))?;
        if self.solver == Solver::Euler {
            return Ok(euler);
        }
        let e2 = step.eps_at_next(&euler)?;
        // x + h/2 (f(x) + f(x_euler))
        lin(
            &x,
            1.0 - h / 4.0,
            Some(&[
                (&euler, -h / 4.0),
                (&e, h / (4.0 * s)),
                (&e2, h / (4.0 * s2)),
            ]),
        )
    }
}
