//! The [`Sampler`] trait, the settings every sampler shares ([`SamplerConfig`]) and the steps
//! they have in common: checking the noise operator against the denoiser, drawing the prior,
//! and the linear combinations of a step.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use rand_distr::{Distribution, StandardNormal};
use sagd_core::{ImageShape, Images, NoiseLevel, NoiseOperator, NoiseRng};
use sagd_models::Denoiser;
use serde::{Deserialize, Serialize};

use crate::ddim::Ddim;
use crate::ddpm::Ddpm;
use crate::error::SamplerError;
use crate::ode::{ProbabilityFlow, Solver};
use crate::timesteps::{Spacing, select};

/// Where a sampler is, reported to the progress callback after every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Steps done (1-based).
    pub step: usize,
    /// Steps in all.
    pub steps: usize,
    /// The noise level `σ` the step started from.
    pub sigma: f64,
    /// Denoiser evaluations so far.
    pub evaluations: usize,
}

/// A sampler: turns draws from the prior into images by repeatedly calling a [`Denoiser`].
///
/// Every sampler draws its fresh noise through the [`NoiseOperator`], which must be the
/// operator the denoiser was trained with (same shape, same `Σ_w`): it is checked.
pub trait Sampler<S: ImageShape>: Send + Sync {
    /// A short description, e.g. `ddim(eta=0, steps=50, spacing=uniform, prior=matched)`.
    fn name(&self) -> String;

    /// The number of levels visited.
    fn steps(&self) -> usize;

    /// Denoiser evaluations per batch.
    fn evaluations(&self) -> usize;

    /// The settings every sampler has (steps, spacing, prior).
    fn common(&self) -> &Common;

    /// Runs the sampler from given images `x_top` at its noisiest visited level (the first of
    /// [`select`]'s indices) down to `σ = 0`. Deterministic samplers draw nothing from `rng`:
    /// they are then a fixed map of `x_top` (affine when the denoiser is).
    fn sample_from(
        &self,
        denoiser: &dyn Denoiser<S>,
        noise: &dyn NoiseOperator<S>,
        x_top: Images<S>,
        rng: &mut NoiseRng,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Images<S>, SamplerError>;

    /// Draws `count` images: the prior at the noisiest visited level, then
    /// [`sample_from`](Self::sample_from). The same `rng` state gives the same images on
    /// every CPU run.
    fn sample(
        &self,
        denoiser: &dyn Denoiser<S>,
        noise: &dyn NoiseOperator<S>,
        count: usize,
        rng: &mut NoiseRng,
        device: &Device,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Images<S>, SamplerError> {
        let x_top = self.common().prior(denoiser, noise, count, rng, device)?;
        self.sample_from(denoiser, noise, x_top, rng, progress)
    }
}

/// The distribution sampling starts from at the noisiest level `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// `N(0, σ_T² Σ_w)`: the terminal distribution of the anisotropic process (default).
    #[default]
    Matched,
    /// `N(0, σ_T² I)`: white noise whatever the spectrum — an ablation only. Modes outside
    /// the spectrum's support (or with very little noise power) are never denoised: every
    /// step only rescales them, so they end up with the prior's content times `1/√ᾱ_T`.
    White,
}

impl fmt::Display for Prior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Matched => "matched",
            Self::White => "white",
        })
    }
}

impl FromStr for Prior {
    type Err = SamplerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "matched" => Ok(Self::Matched),
            "white" => Ok(Self::White),
            other => Err(SamplerError::config("prior", other, "matched or white")),
        }
    }
}

/// The variables a probability-flow ODE is integrated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OdeForm {
    /// Variance-preserving: `dx/dt = -½β(t)[x - ε̂^(w)/σ_t]`, integrated in `u = -ln ᾱ`.
    Vp,
    /// EDM: `x̃ = x/√ᾱ`, `σ̃ = σ/√ᾱ`, `dx̃/dσ̃ = (x̃ - D(x̃; σ̃))/σ̃ = ε̂^(w)` (default; works for
    /// VP and VE schedules alike).
    #[default]
    Edm,
}

impl fmt::Display for OdeForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vp => "vp",
            Self::Edm => "edm",
        })
    }
}

impl FromStr for OdeForm {
    type Err = SamplerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vp" => Ok(Self::Vp),
            "edm" => Ok(Self::Edm),
            other => Err(SamplerError::config("form", other, "vp or edm")),
        }
    }
}

/// The sampling method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// DDIM with stochasticity η (η = 0: the papers' deterministic sampler).
    Ddim,
    /// DDPM ancestral sampling with posterior noise `N(0, β̃ Σ_w)`.
    Ddpm,
    /// The probability-flow ODE by Euler's method.
    Euler,
    /// The probability-flow ODE by Heun's method (EDM's second-order scheme).
    Heun,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ddim => "ddim",
            Self::Ddpm => "ddpm",
            Self::Euler => "euler",
            Self::Heun => "heun",
        })
    }
}

impl FromStr for Method {
    type Err = SamplerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ddim" => Ok(Self::Ddim),
            "ddpm" => Ok(Self::Ddpm),
            "euler" => Ok(Self::Euler),
            "heun" => Ok(Self::Heun),
            other => Err(SamplerError::config(
                "sampler",
                other,
                "ddim, ddpm, euler or heun",
            )),
        }
    }
}

/// Everything that picks a sampler, as the CLI and configs write it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// The method.
    pub method: Method,
    /// Levels visited (DDPM's usual value is the whole schedule).
    pub steps: usize,
    /// DDIM's η in [0, 1] (ignored by the others).
    pub eta: f64,
    /// The ODE's variables (Euler and Heun only).
    pub form: OdeForm,
    /// Which levels are visited.
    pub spacing: Spacing,
    /// Where sampling starts.
    pub prior: Prior,
    /// End with the denoising step from the lowest visited level to `σ = 0` (default); when
    /// false, stop at the lowest level (the state `x(σ_0)` the theory's PF-ODE describes).
    pub final_denoise: bool,
}

impl SamplerConfig {
    /// `method` over `steps` levels with the defaults: η = 0, EDM form, uniform spacing,
    /// matched prior.
    pub fn new(method: Method, steps: usize) -> Self {
        Self {
            method,
            steps,
            eta: 0.0,
            form: OdeForm::Edm,
            spacing: Spacing::Uniform,
            prior: Prior::Matched,
            final_denoise: true,
        }
    }

    /// Checks the settings; the error names the one at fault.
    pub fn validate(&self) -> Result<(), SamplerError> {
        if self.steps == 0 {
            return Err(SamplerError::config("steps", 0, "at least 1"));
        }
        if !(self.eta.is_finite() && (0.0..=1.0).contains(&self.eta)) {
            return Err(SamplerError::config("eta", self.eta, "a number in [0, 1]"));
        }
        if let Spacing::Karras { rho } = self.spacing
            && !(rho.is_finite() && rho > 0.0)
        {
            return Err(SamplerError::config("rho", rho, "a finite number > 0"));
        }
        Ok(())
    }

    /// Checks these settings against a denoiser's levels before any work: the step count
    /// and spacing (through [`select`]) and, for the VP form, a variance-preserving schedule.
    pub fn check_levels(&self, levels: &[NoiseLevel]) -> Result<(), SamplerError> {
        self.validate()?;
        if let Some((t, l)) = levels
            .iter()
            .enumerate()
            .find(|(_, l)| l.validate().is_err())
        {
            return Err(SamplerError::config(
                "levels",
                format!("level {t}: ᾱ = {}, σ = {}", l.alpha_bar, l.sigma),
                "0 < ᾱ ≤ 1 and σ > 0 at every level",
            ));
        }
        select(levels, self.steps, self.spacing)?;
        if matches!(self.method, Method::Euler | Method::Heun) && self.form == OdeForm::Vp {
            crate::ode::check_vp(levels)?;
        }
        Ok(())
    }

    /// The sampler these settings describe.
    pub fn build<S: ImageShape>(&self) -> Result<Box<dyn Sampler<S>>, SamplerError> {
        self.validate()?;
        let common = Common {
            steps: self.steps,
            spacing: self.spacing,
            prior: self.prior,
            final_denoise: self.final_denoise,
        };
        Ok(match self.method {
            Method::Ddim => Box::new(Ddim {
                eta: self.eta,
                common,
            }),
            Method::Ddpm => Box::new(Ddpm { common }),
            Method::Euler => Box::new(ProbabilityFlow {
                solver: Solver::Euler,
                form: self.form,
                common,
            }),
            Method::Heun => Box::new(ProbabilityFlow {
                solver: Solver::Heun,
                form: self.form,
                common,
            }),
        })
    }
}

/// The settings every sampler has.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Common {
    /// Levels visited.
    pub steps: usize,
    /// Which levels.
    pub spacing: Spacing,
    /// Where sampling starts.
    pub prior: Prior,
    /// End with the denoising step to `σ = 0` (true) or stop at the lowest visited level.
    pub final_denoise: bool,
}

impl Common {
    /// `steps` levels, uniform spacing, matched prior, final denoising step.
    pub fn new(steps: usize) -> Self {
        Self {
            steps,
            spacing: Spacing::Uniform,
            prior: Prior::Matched,
            final_denoise: true,
        }
    }

    /// The number of steps taken along `path`: one per visited level, less the last when
    /// there is no final denoising step.
    pub(crate) fn step_count(&self, path: &[usize]) -> usize {
        if self.final_denoise {
            path.len()
        } else {
            path.len() - 1
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "steps={}, spacing={}, prior={}{}",
            self.steps,
            self.spacing,
            self.prior,
            if self.final_denoise {
                ""
            } else {
                ", no final denoising"
            }
        )
    }

    /// Checks the noise operator against the denoiser and picks the levels (noisiest first).
    pub(crate) fn path<S: ImageShape>(
        &self,
        denoiser: &dyn Denoiser<S>,
        noise: &dyn NoiseOperator<S>,
        x_top: &Images<S>,
    ) -> Result<Vec<usize>, SamplerError> {
        check_noise(denoiser, noise)?;
        if x_top.shape().dims() != denoiser.shape().dims() {
            return Err(SamplerError::config(
                "x_top",
                format!("{:?} images", x_top.shape().dims()),
                format!("{:?} images (the denoiser's)", denoiser.shape().dims()),
            ));
        }
        select(denoiser.levels(), self.steps, self.spacing)
    }

    /// `count` draws from the prior at the noisiest visited level: `σ_T ε^(w)` (matched) or
    /// `σ_T ε` (white).
    pub fn prior<S: ImageShape>(
        &self,
        denoiser: &dyn Denoiser<S>,
        noise: &dyn NoiseOperator<S>,
        count: usize,
        rng: &mut NoiseRng,
        device: &Device,
    ) -> Result<Images<S>, SamplerError> {
        if count == 0 {
            return Err(SamplerError::config("count", 0, "at least 1 image"));
        }
        check_noise(denoiser, noise)?;
        let path = select(denoiser.levels(), self.steps, self.spacing)?;
        let top = denoiser.levels()[path[0]];
        let x = match self.prior {
            Prior::Matched => noise.sample(count, rng, device)?,
            Prior::White => {
                let n = count * denoiser.shape().numel();
                let values = (0..n)
                    .map(|_| {
                        let z: f32 = StandardNormal.sample(rng);
                        z
                    })
                    .collect();
                Images::from_host(values, denoiser.shape(), device)?
            }
        };
        lin(&x, top.sigma, None)
    }
}

/// The clean end of every trajectory: `ᾱ = 1`, `σ = 0`.
pub(crate) const CLEAN: NoiseLevel = NoiseLevel {
    alpha_bar: 1.0,
    sigma: 0.0,
};

/// The level after `path[n]`: the next visited level, or the clean image after the last.
pub(crate) fn next_level(levels: &[NoiseLevel], path: &[usize], n: usize) -> NoiseLevel {
    path.get(n + 1).map_or(CLEAN, |&j| levels[j])
}

/// `cx·x + Σ c·e` on the device.
pub(crate) fn lin<S: ImageShape>(
    x: &Images<S>,
    cx: f64,
    terms: Option<&[(&Images<S>, f64)]>,
) -> Result<Images<S>, SamplerError> {
    let mut out = x.tensor().clone().mul_scalar(cx);
    for (e, c) in terms.unwrap_or(&[]) {
        out = out + e.tensor().clone().mul_scalar(*c);
    }
    Ok(Images::new(out, x.shape())?)
}

/// Refuses a noise operator whose shape, spectrum or normalization differs from the
/// denoiser's.
pub(crate) fn check_noise<S: ImageShape>(
    denoiser: &dyn Denoiser<S>,
    noise: &dyn NoiseOperator<S>,
) -> Result<(), SamplerError> {
    let (d, n) = (denoiser.covariance(), noise.covariance());
    if denoiser.shape().dims() != noise.shape().dims() || d.size() != n.size() {
        return Err(SamplerError::NoiseMismatch(format!(
            "the denoiser works on {:?} images, the noise operator draws {:?}",
            denoiser.shape().dims(),
            noise.shape().dims()
        )));
    }
    if d.normalization() != n.normalization() {
        return Err(SamplerError::NoiseMismatch(format!(
            "normalization {} (denoiser) vs {} (noise operator)",
            d.normalization(),
            n.normalization()
        )));
    }
    let scale = d.amplitude().iter().cloned().fold(0.0, f64::max);
    let worst = d
        .amplitude()
        .iter()
        .zip(n.amplitude())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    if worst > 1e-9 * scale {
        return Err(SamplerError::NoiseMismatch(format!(
            "spectrum `{}` (denoiser) vs `{}` (noise operator): amplitudes differ by up to {worst:.3e}",
            d.spectrum_name(),
            n.spectrum_name()
        )));
    }
    Ok(())
}

/// Refuses a non-finite result.
pub(crate) fn check_finite<S: ImageShape>(x: &Images<S>, steps: usize) -> Result<(), SamplerError> {
    let finite: bool = x.tensor().clone().is_finite().all().into_scalar::<bool>();
    if finite {
        Ok(())
    } else {
        Err(SamplerError::NonFinite {
            step: steps,
            steps,
            what: "the sampled images".to_string(),
        })
    }
}

/// The denoiser's coloured-noise prediction at level index `t`, counted.
pub(crate) fn eps<S: ImageShape>(
    denoiser: &dyn Denoiser<S>,
    x: &Images<S>,
    t: usize,
    evaluations: &mut usize,
) -> Result<Images<S>, SamplerError> {
    *evaluations += 1;
    Ok(denoiser.predict_eps(x, t)?)
}
