//! The [`Sampler`] trait, the settings every sampler shares ([`SamplerConfig`]) and the loop
//! they have in common ([`Sampler::sample_from`]: the visited levels, the denoiser
//! evaluations, fresh noise, progress and the finiteness check), so that each sampler is only
//! its update rule; the prior and the linear combinations of a step.

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
/// A sampler is its [`update`](Self::update) rule, as in k-diffusion's `sampling.py`: the
/// loop over the visited levels, the progress reports, the denoiser evaluations, the fresh
/// noise (drawn through the denoiser's own noise operator, so coloured by its `Σ_w`) and the
/// check that the result is finite are shared ([`Sampler::sample_from`]).
pub trait Sampler<S: ImageShape>: Send + Sync {
    /// A short description, e.g. `ddim(eta=0, steps=50, spacing=uniform, prior=matched)`.
    fn name(&self) -> String;

    /// The settings every sampler has (steps, spacing, prior).
    fn common(&self) -> &Common;

    /// One step: `x` at [`Step::from`] to the next visited level [`Step::to`] (the clean
    /// image, `σ = 0`, after the last), evaluating the denoiser through [`Step::eps`] and
    /// drawing fresh noise through [`Step::noise`].
    fn update(&self, step: &mut Step<'_, S>, x: Images<S>) -> Result<Images<S>, SamplerError>;

    /// Checks the sampler's own settings against the denoiser's levels before the first step
    /// (the default accepts everything).
    fn check(&self, _levels: &[NoiseLevel]) -> Result<(), SamplerError> {
        Ok(())
    }

    /// The number of levels visited.
    fn steps(&self) -> usize {
        self.common().steps
    }

    /// Denoiser evaluations per batch (one per step unless the sampler says otherwise).
    fn evaluations(&self) -> usize {
        self.common().steps
    }

    /// Runs the sampler from given images `x_top` at its noisiest visited level (the first of
    /// [`select`]'s indices) down to `σ = 0`. Deterministic samplers draw nothing from `rng`:
    /// they are then a fixed map of `x_top` (affine when the denoiser is).
    fn sample_from(
        &self,
        denoiser: &dyn Denoiser<S>,
        x_top: Images<S>,
        rng: &mut NoiseRng,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Images<S>, SamplerError> {
        self.check(denoiser.levels())?;
        let common = self.common();
        let path = common.path(denoiser, &x_top)?;
        let taken = common.step_count(&path);
        let mut evaluations = 0;
        let mut x = x_top;
        // Per step, whether the images are still finite: lazy flags, read only when the result
        // is not finite, to name the first bad step without a device sync per step.
        let mut finite_after = Vec::with_capacity(taken);
        for n in 0..taken {
            let mut step = Step::new(denoiser, rng, &path, n, &mut evaluations);
            let sigma = step.from.sigma;
            x = self.update(&mut step, x)?;
            finite_after.push((sigma, x.tensor().clone().is_finite().all()));
            progress(&Progress {
                step: n + 1,
                steps: taken,
                sigma,
                evaluations,
            });
        }
        check_finite(&x, finite_after)?;
        Ok(x)
    }

    /// Draws `count` images: the prior at the noisiest visited level, then
    /// [`sample_from`](Self::sample_from). The same `rng` state gives the same images on
    /// every CPU run.
    fn sample(
        &self,
        denoiser: &dyn Denoiser<S>,
        count: usize,
        rng: &mut NoiseRng,
        device: &Device,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Images<S>, SamplerError> {
        let x_top = self.common().prior(denoiser, count, rng, device)?;
        self.sample_from(denoiser, x_top, rng, progress)
    }
}

/// One step of a sampler's loop, as its [`Sampler::update`] sees it: the two levels, the
/// denoiser evaluations (counted) and fresh noise.
pub struct Step<'a, S: ImageShape> {
    denoiser: &'a dyn Denoiser<S>,
    rng: &'a mut NoiseRng,
    path: &'a [usize],
    n: usize,
    evaluations: &'a mut usize,
    /// The level the step starts from.
    pub from: NoiseLevel,
    /// The level it ends at: the next visited level, or the clean image (`ᾱ = 1`, `σ = 0`)
    /// after the last.
    pub to: NoiseLevel,
    /// True for the step that ends at the clean image.
    pub last: bool,
}

impl<'a, S: ImageShape> Step<'a, S> {
    fn new(
        denoiser: &'a dyn Denoiser<S>,
        rng: &'a mut NoiseRng,
        path: &'a [usize],
        n: usize,
        evaluations: &'a mut usize,
    ) -> Self {
        let levels = denoiser.levels();
        Self {
            from: levels[path[n]],
            to: next_level(levels, path, n),
            last: n + 1 == path.len(),
            denoiser,
            rng,
            path,
            n,
            evaluations,
        }
    }

    /// The denoiser's coloured-noise prediction `ε̂^(w)` for `x` at the level the step starts
    /// from (counted as one evaluation).
    pub fn eps(&mut self, x: &Images<S>) -> Result<Images<S>, SamplerError> {
        self.eps_at(x, self.path[self.n])
    }

    /// The prediction for `x` at the level the step ends at (Heun's correction); there is none
    /// after the last step, where the step ends at the clean image.
    ///
    /// # Errors
    /// [`SamplerError::Config`] on the last step.
    pub fn eps_at_next(&mut self, x: &Images<S>) -> Result<Images<S>, SamplerError> {
        match self.path.get(self.n + 1) {
            Some(&t) => self.eps_at(x, t),
            None => Err(SamplerError::config(
                "step",
                self.n + 1,
                "a step before the last: the last ends at σ = 0, where the denoiser is not \
                 evaluated",
            )),
        }
    }

    fn eps_at(&mut self, x: &Images<S>, t: usize) -> Result<Images<S>, SamplerError> {
        *self.evaluations += 1;
        Ok(self.denoiser.predict_eps(x, t)?)
    }

    /// Fresh coloured noise `ε^(w) ~ N(0, Σ_w)`, as many images as `like` on its device, from
    /// the denoiser's noise operator.
    pub fn noise(&mut self, like: &Images<S>) -> Result<Images<S>, SamplerError> {
        Ok(self
            .denoiser
            .noise()
            .sample(like.count(), self.rng, &like.device())?)
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

impl Method {
    /// Every method, in the order messages list them.
    pub const ALL: [Method; 4] = [Method::Ddim, Method::Ddpm, Method::Euler, Method::Heun];

    /// The name flags and configs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ddim => "ddim",
            Self::Ddpm => "ddpm",
            Self::Euler => "euler",
            Self::Heun => "heun",
        }
    }

    /// The steps it takes when none are asked on a schedule of `levels` levels: 50 (fewer on a
    /// shorter schedule); DDPM's ancestral steps, the whole schedule.
    pub fn default_steps(self, levels: usize) -> usize {
        match self {
            Self::Ddpm => levels,
            _ => 50.min(levels),
        }
    }

    /// True when the method takes DDIM's stochasticity η (`--eta`).
    pub fn takes_eta(self) -> bool {
        self == Self::Ddim
    }

    /// True when the method integrates the probability-flow ODE in a choice of variables
    /// (`--form`).
    pub fn takes_form(self) -> bool {
        matches!(self, Self::Euler | Self::Heun)
    }

    /// The names of `methods` joined for a message (`ddim or ddpm`, `ddim, ddpm or heun`).
    pub fn names(methods: impl IntoIterator<Item = Method>) -> String {
        let names: Vec<&str> = methods.into_iter().map(Method::name).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            Some((last, _)) => last.to_string(),
            None => String::new(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = SamplerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| SamplerError::config("sampler", s, Self::names(Self::ALL)))
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

    /// Checks the starting images against the denoiser and picks the levels (noisiest first).
    pub(crate) fn path<S: ImageShape>(
        &self,
        denoiser: &dyn Denoiser<S>,
        x_top: &Images<S>,
    ) -> Result<Vec<usize>, SamplerError> {
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
        count: usize,
        rng: &mut NoiseRng,
        device: &Device,
    ) -> Result<Images<S>, SamplerError> {
        if count == 0 {
            return Err(SamplerError::config("count", 0, "at least 1 image"));
        }
        let path = select(denoiser.levels(), self.steps, self.spacing)?;
        let top = denoiser.levels()[path[0]];
        let x = match self.prior {
            Prior::Matched => denoiser.noise().sample(count, rng, device)?,
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

/// `cx·x + Σ c·e` on the device: the linear combinations every update rule is made of.
///
/// # Errors
/// When the images' shapes disagree.
pub fn lin<S: ImageShape>(
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

/// Refuses a non-finite result, naming the first step after which the images held a NaN or an
/// infinity (from the per-step flags `finite_after`: the step's starting `σ` and whether the
/// images after it were finite).
fn check_finite<S: ImageShape>(
    x: &Images<S>,
    finite_after: Vec<(f64, burn::tensor::Tensor<1, burn::tensor::Bool>)>,
) -> Result<(), SamplerError> {
    let finite: bool = x.tensor().clone().is_finite().all().into_scalar::<bool>();
    if finite {
        return Ok(());
    }
    let steps = finite_after.len();
    let (step, sigma) = finite_after
        .into_iter()
        .enumerate()
        .find(|(_, (_, ok))| !ok.clone().into_scalar::<bool>())
        .map_or((steps, f64::NAN), |(n, (sigma, _))| (n + 1, sigma));
    Err(SamplerError::NonFinite {
        step,
        steps,
        sigma,
        what: "the sampled images".to_string(),
    })
}
