//! The oracle: the exact posterior-mean denoiser `ε̂^(w)(x, t) = E[ε^(w) | x_t = x]` of data
//! whose law is known, under any noise spectrum. It implements [`Denoiser`], so it can stand
//! wherever a trained model does — the reference every sampler is tested against.
//!
//! With `x_t = a x_0 + σ ε^(w)`, `ε^(w) ~ N(0, Σ_w)` and `x_0 ~ Σ_k π_k N(μ_k, Σ_k)`,
//! `E[ε^(w) | x, k] = σ Σ_w C_k⁻¹ (x - a μ_k)` with `C_k = a² Σ_k + σ² Σ_w`, weighted by the
//! posterior responsibilities `r_k(x)` (see `sagd_core::density`). Two representations:
//!
//! - [`OracleData::Stationary`]: components sharing one stationary covariance
//!   `Σ = F⁻¹ diag(λ) F` (a `grf` is one zero-mean component; a `gmm` has `λ = within²`). Then
//!   `C = F⁻¹ diag(a² λ_f + σ² w_f²) F` is diagonal in Fourier space and
//!   `E[ε^(w) | x] = σ Σ_w C⁻¹ (x - a Σ_k r_k μ_k)`, with `r_k` from the whitened distances
//!   `‖C^{-1/2}(x - a μ_k)‖²` (the log-determinant is shared and cancels): two FFTs per image.
//! - [`OracleData::Dense`]: any [`GaussianMixture`], through its dense noisy marginal (one
//!   Cholesky factor per component and level, cached): for small images and cross-checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use sagd_core::density::{GaussianMixture, NoisyMixture};
use sagd_core::{
    ImageShape, Images, NoiseLevel, NoiseOperator, Parameterization, Schedule, SpectralNoise,
};
use sagd_datasets::spec::Source;
use sagd_models::{Denoiser, ModelError};

use crate::error::SamplerError;

/// The law of the clean data an oracle knows.
#[derive(Debug, Clone)]
pub enum OracleData {
    /// `Σ_k π_k N(μ_k, F⁻¹ diag(λ) F)`: one stationary covariance shared by all components,
    /// the same for every channel.
    Stationary {
        /// Component weights `π_k` (normalized to sum 1).
        weights: Vec<f64>,
        /// Component means, `C·H·W` values each.
        means: Vec<Vec<f64>>,
        /// Mode variances `λ(f)` of one channel (unitary DFT), H×W row-major in `fftfreq`
        /// order.
        power: Vec<f64>,
    },
    /// Any Gaussian mixture in dimension `C·H·W`.
    Dense(GaussianMixture),
}

impl OracleData {
    /// A zero-mean stationary Gaussian with mode variances `power` (a `grf`).
    pub fn stationary_gaussian(power: Vec<f64>, dims: [usize; 3]) -> Self {
        Self::Stationary {
            weights: vec![1.0],
            means: vec![vec![0.0; dims.iter().product()]],
            power,
        }
    }

    /// The law of a synthetic dataset source: `grf` (its exact mode variances) or `gmm` (its
    /// seeded means, equal weights, covariance `within² I`). Other sources have no closed-form
    /// law and are refused.
    pub fn from_source(source: &Source) -> Result<Self, SamplerError> {
        match source {
            Source::Grf(config) => {
                config.validate()?;
                Ok(Self::stationary_gaussian(
                    config.mode_variances(),
                    config.size,
                ))
            }
            Source::Gmm(config) => {
                config.validate()?;
                let hw = config.size[1] * config.size[2];
                Ok(Self::Stationary {
                    weights: vec![1.0 / config.components as f64; config.components],
                    means: config.means(),
                    power: vec![config.within * config.within; hw],
                })
            }
            Source::Mnist(_) => Err(no_oracle("mnist")),
            Source::FashionMnist(_) => Err(no_oracle("fashion-mnist")),
            Source::Cifar10(_) => Err(no_oracle("cifar10")),
            Source::Folder { .. } => Err(no_oracle("folder")),
            Source::Npy { .. } => Err(no_oracle("npy")),
            Source::Npz { .. } => Err(no_oracle("npz")),
            Source::Shapes(_) => Err(no_oracle("shapes")),
        }
    }

    /// The mixture weights `π_k`, normalized to sum 1 whatever scale they were given in (what
    /// the oracle samples from and what a report should show).
    pub fn mixture_weights(&self) -> Vec<f64> {
        let raw: Vec<f64> = match self {
            Self::Stationary { weights, .. } => weights.clone(),
            Self::Dense(mixture) => mixture.weights().to_vec(),
        };
        let total: f64 = raw.iter().sum();
        raw.iter().map(|w| w / total).collect()
    }

    /// The image dims this law lives on, when it fixes them (dense: only the dimension).
    fn check(&self, dims: [usize; 3]) -> Result<(), SamplerError> {
        let d: usize = dims.iter().product();
        let hw = dims[1] * dims[2];
        match self {
            Self::Stationary {
                weights,
                means,
                power,
            } => {
                if weights.is_empty() || weights.len() != means.len() {
                    return Err(SamplerError::config(
                        "oracle weights",
                        weights.len(),
                        format!("one weight per mean ({}), at least one", means.len()),
                    ));
                }
                if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
                    return Err(SamplerError::config(
                        "oracle weight",
                        w,
                        "a finite number > 0",
                    ));
                }
                if let Some(m) = means.iter().find(|m| m.len() != d) {
                    return Err(SamplerError::config(
                        "oracle mean",
                        format!("{} values", m.len()),
                        format!("{d} values (C·H·W of {dims:?})"),
                    ));
                }
                if means.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(SamplerError::config(
                        "oracle mean",
                        "a non-finite value",
                        "finite values",
                    ));
                }
                if power.len() != hw {
                    return Err(SamplerError::config(
                        "oracle power",
                        format!("{} values", power.len()),
                        format!("{hw} values (H·W of {dims:?})"),
                    ));
                }
                if let Some(p) = power.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
                    return Err(SamplerError::config(
                        "oracle power",
                        p,
                        "finite numbers >= 0",
                    ));
                }
                // The Fourier filters read half the plane: the table must be even in f.
                let grid = sagd_core::FrequencyGrid::new(dims[1], dims[2]);
                for k in 0..dims[1] {
                    for l in 0..dims[2] {
                        let (mk, ml) = grid.mirror(k, l);
                        let (a, b) = (power[k * dims[2] + l], power[mk * dims[2] + ml]);
                        if (a - b).abs() > 1e-12 * a.abs().max(b.abs()) {
                            return Err(SamplerError::config(
                                "oracle power",
                                format!("{a} at ({k}, {l}) but {b} at its mirror ({mk}, {ml})"),
                                "a table with λ(f) = λ(-f)",
                            ));
                        }
                    }
                }
                // A mode with no data variance separates components whose means differ there;
                // the posterior would be a hard assignment, which this path does not compute.
                if means.len() > 1 && power.contains(&0.0) {
                    return Err(SamplerError::config(
                        "oracle power",
                        "0 in some mode",
                        "a positive variance in every mode for a mixture",
                    ));
                }
            }
            Self::Dense(mixture) => {
                if mixture.dim() != d {
                    return Err(SamplerError::config(
                        "oracle mixture dimension",
                        mixture.dim(),
                        format!("{d} (C·H·W of {dims:?})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn no_oracle(kind: &str) -> SamplerError {
    SamplerError::NoOracle(format!(
        "`{kind}` data: the oracle knows the laws of `grf` and `gmm` data only"
    ))
}

/// The exact posterior-mean denoiser of [`OracleData`] under the noise covariance `Σ_w`, on
/// the levels of a schedule. It predicts the coloured noise.
#[derive(Debug)]
pub struct OracleDenoiser<S: ImageShape> {
    levels: Vec<NoiseLevel>,
    noise: SpectralNoise<S>,
    data: OracleData,
    dense_noise: Option<DMatrix<f64>>,
    dense_cache: Mutex<HashMap<usize, Arc<NoisyMixture>>>,
}

impl<S: ImageShape> OracleDenoiser<S> {
    /// The oracle of `data` under the forward noise `noise` (its images' shape and `Σ_w`), on
    /// the levels of `schedule`.
    pub fn new(
        data: OracleData,
        noise: SpectralNoise<S>,
        schedule: &Schedule,
    ) -> Result<Self, SamplerError> {
        data.check(noise.shape().dims())?;
        let data = match data {
            OracleData::Stationary {
                weights,
                means,
                power,
            } => {
                let total: f64 = weights.iter().sum();
                OracleData::Stationary {
                    weights: weights.iter().map(|w| w / total).collect(),
                    means,
                    power,
                }
            }
            dense => dense,
        };
        let dense_noise = matches!(data, OracleData::Dense(_)).then(|| noise.covariance().dense());
        Ok(Self {
            levels: schedule.levels()?,
            noise,
            data,
            dense_noise,
            dense_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The data law.
    pub fn data(&self) -> &OracleData {
        &self.data
    }

    /// `E[ε^(w) | x_t = x]` for whole images `x` (host, f64), all at level index `t`.
    pub fn posterior_eps(&self, x: &[f64], t: usize) -> Result<Vec<f64>, SamplerError> {
        let level = *self.levels.get(t).ok_or_else(|| {
            SamplerError::config("t", t, format!("a level index below {}", self.levels.len()))
        })?;
        let d = self.noise.shape().numel();
        if !x.len().is_multiple_of(d) {
            return Err(SamplerError::config(
                "oracle input",
                format!("{} values", x.len()),
                format!("whole images of {d} values"),
            ));
        }
        match &self.data {
            OracleData::Stationary {
                weights,
                means,
                power,
            } => self.stationary_eps(x, level, weights, means, power),
            OracleData::Dense(mixture) => {
                let noisy = self.dense_level(mixture, t, level)?;
                let mut out = vec![0.0; x.len()];
                out.par_chunks_mut(d)
                    .zip(x.par_chunks(d))
                    .for_each(|(o, image)| {
                        let e = noisy.posterior_mean_eps(&DVector::from_column_slice(image));
                        o.copy_from_slice(e.as_slice());
                    });
                Ok(out)
            }
        }
    }

    fn stationary_eps(
        &self,
        x: &[f64],
        level: NoiseLevel,
        weights: &[f64],
        means: &[Vec<f64>],
        power: &[f64],
    ) -> Result<Vec<f64>, SamplerError> {
        let (a, s) = (level.scale(), level.sigma);
        let d = self.noise.shape().numel();
        // C_f = a² λ_f + σ² w_f²; C_f = 0 only for one component (mixtures need λ_f > 0), where
        // the mode of x - aμ is identically zero, and it gets 0.
        let c: Vec<f64> = power
            .iter()
            .zip(self.noise.covariance().power())
            .map(|(l, w2)| a * a * l + s * s * w2)
            .collect();
        let ratio = |num: &dyn Fn(usize) -> f64, den: &dyn Fn(usize) -> f64| -> Vec<f64> {
            (0..c.len())
                .map(|f| if c[f] > 0.0 { num(f) / den(f) } else { 0.0 })
                .collect()
        };
        let w2 = self.noise.covariance().power();
        if means.len() == 1 {
            // One component: E[ε | x] = σ Σ_w C⁻¹ (x - a μ).
            let table = ratio(&|f| s * w2[f], &|f| c[f]);
            let mut out: Vec<f64> = x
                .chunks(d)
                .flat_map(|image| image.iter().zip(&means[0]).map(|(v, m)| v - a * m))
                .collect();
            self.noise
                .covariance()
                .apply_table(&mut out, "oracle", &table)?;
            return Ok(out);
        }
        let whiten = ratio(&|_| 1.0, &|f| c[f].sqrt());
        let colour = ratio(&|f| s * w2[f], &|f| c[f].sqrt());
        // ν_k = C^{-1/2} a μ_k and y = C^{-1/2} x.
        let mut nu: Vec<f64> = means.iter().flatten().map(|m| a * m).collect();
        self.noise
            .covariance()
            .apply_table(&mut nu, "oracle", &whiten)?;
        let mut y = x.to_vec();
        self.noise
            .covariance()
            .apply_table(&mut y, "oracle", &whiten)?;
        let log_weights: Vec<f64> = weights.iter().map(|w| w.ln()).collect();
        y.par_chunks_mut(d).for_each(|yi| {
            let logits: Vec<f64> = nu
                .chunks(d)
                .zip(&log_weights)
                .map(|(nk, lw)| {
                    let q: f64 = yi.iter().zip(nk).map(|(u, v)| (u - v) * (u - v)).sum();
                    lw - 0.5 * q
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let r: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f64 = r.iter().sum();
            for (nk, rk) in nu.chunks(d).zip(&r) {
                let rk = rk / total;
                yi.iter_mut().zip(nk).for_each(|(u, v)| *u -= rk * v);
            }
        });
        self.noise
            .covariance()
            .apply_table(&mut y, "oracle", &colour)?;
        Ok(y)
    }

    fn dense_level(
        &self,
        mixture: &GaussianMixture,
        t: usize,
        level: NoiseLevel,
    ) -> Result<Arc<NoisyMixture>, SamplerError> {
        let mut cache = self
            .dense_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(n) = cache.get(&t) {
            return Ok(n.clone());
        }
        let noise = self
            .dense_noise
            .as_ref()
            .expect("a dense oracle keeps the dense Σ_w");
        let noisy = Arc::new(mixture.noisy(level, noise)?);
        cache.insert(t, noisy.clone());
        Ok(noisy)
    }
}

impl<S: ImageShape> Denoiser<S> for OracleDenoiser<S> {
    fn shape(&self) -> S {
        self.noise.shape()
    }

    fn parameterization(&self) -> Parameterization {
        Parameterization::ColouredEps
    }

    fn levels(&self) -> &[NoiseLevel] {
        &self.levels
    }

    fn noise(&self) -> &SpectralNoise<S> {
        &self.noise
    }

    fn predict(&self, x_t: &Images<S>, t: &[usize]) -> Result<Images<S>, ModelError> {
        let count = x_t.count();
        if t.len() != count {
            return Err(ModelError::Shape {
                context: "oracle levels".to_string(),
                expected: format!("{count} level indices"),
                got: format!("{}", t.len()),
            });
        }
        let d = self.noise.shape().numel();
        let host: Vec<f64> = x_t.to_host().iter().map(|&v| v as f64).collect();
        let mut out = vec![0f32; host.len()];
        // One batched call per distinct level (a sampler asks for one level at a time).
        let mut distinct: Vec<usize> = t.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for level in distinct {
            let members: Vec<usize> = (0..count).filter(|&i| t[i] == level).collect();
            let gathered: Vec<f64> = members
                .iter()
                .flat_map(|&i| host[i * d..(i + 1) * d].iter().copied())
                .collect();
            let eps = self.posterior_eps(&gathered, level).map_err(|e| match e {
                SamplerError::Model(m) => m,
                SamplerError::Core(c) => ModelError::Core(c),
                other => ModelError::config("oracle", "request", other.to_string()),
            })?;
            for (k, &i) in members.iter().enumerate() {
                for (o, v) in out[i * d..(i + 1) * d].iter_mut().zip(&eps[k * d..]) {
                    *o = *v as f32;
                }
            }
        }
        Ok(Images::from_host(out, self.noise.shape(), &x_t.device())?)
    }
}
