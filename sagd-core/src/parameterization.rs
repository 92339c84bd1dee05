//! What a denoiser predicts, and exact conversions between the parameterizations given
//! `(ᾱ_t, σ_t, Σ_w)`:
//!
//! | parameterization | from the coloured noise `ε^(w)` | back to `ε^(w)` |
//! | --- | --- | --- |
//! | coloured ε (default) | `ε^(w)` | `ε^(w)` |
//! | whitened ε | `Σ_w^{-1/2} ε^(w)` (pseudo-inverse) | `Σ_w^{1/2} ε̂` |
//! | x0 | `(x_t - σ ε^(w)) / a` | `(x_t - a x̂_0) / σ` |
//! | v | `a ε^(w) - σ x̂_0` | `(σ x_t + a v) / (a² + σ²)` |
//! | score | `-Σ_w⁺ ε^(w) / σ` | `-σ Σ_w s` |
//!
//! with `a = √ᾱ_t`. Whitened ε and score are exact inverses on the support of `Σ_w`, where
//! `ε^(w)` always lies.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::covariance::{Real, SpectralCovariance};
use crate::error::{CoreError, invalid_value};
use crate::schedule::NoiseLevel;
use crate::shape::{ImageShape, Images};

/// The quantity a denoiser predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// The coloured noise `ε^(w)` (the papers' default: plain ℓ2, no reweighting).
    #[default]
    ColouredEps,
    /// The white noise `ε = Σ_w^{-1/2} ε^(w)`.
    WhitenedEps,
    /// The clean image `x_0`.
    X0,
    /// `v = a ε^(w) - σ x_0`.
    V,
    /// The score `∇log p_t(x_t)`.
    Score,
}

impl Parameterization {
    /// All parameterizations.
    pub const ALL: [Parameterization; 5] = [
        Self::ColouredEps,
        Self::WhitenedEps,
        Self::X0,
        Self::V,
        Self::Score,
    ];

    /// The name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::ColouredEps => "coloured-eps",
            Self::WhitenedEps => "whitened-eps",
            Self::X0 => "x0",
            Self::V => "v",
            Self::Score => "score",
        }
    }

    /// Converts the coloured noise `eps` at `x_t` into this parameterization (host, whole
    /// images laid out (N, C, H, W)).
    pub fn from_coloured_eps<T: Real>(
        self,
        eps: &[T],
        x_t: &[T],
        level: NoiseLevel,
        cov: &SpectralCovariance,
    ) -> Result<Vec<T>, CoreError> {
        check_pair(eps, x_t)?;
        level.validate()?;
        let (a, s) = (T::of(level.scale()), T::of(level.sigma));
        let mut out = eps.to_vec();
        match self {
            Self::ColouredEps => {}
            Self::WhitenedEps => cov.whiten(&mut out)?,
            Self::X0 => zip_map(&mut out, x_t, |e, x| (x - s * e) / a),
            Self::V => {
                let norm = a * a + s * s;
                zip_map(&mut out, x_t, |e, x| (norm * e - s * x) / a)
            }
            Self::Score => {
                cov.apply_pinv(&mut out)?;
                out.iter_mut().for_each(|v| *v = -*v / s);
            }
        }
        Ok(out)
    }

    /// Converts a prediction in this parameterization at `x_t` into the coloured noise.
    pub fn to_coloured_eps<T: Real>(
        self,
        prediction: &[T],
        x_t: &[T],
        level: NoiseLevel,
        cov: &SpectralCovariance,
    ) -> Result<Vec<T>, CoreError> {
        check_pair(prediction, x_t)?;
        level.validate()?;
        let (a, s) = (T::of(level.scale()), T::of(level.sigma));
        let mut out = prediction.to_vec();
        match self {
            Self::ColouredEps => {}
            Self::WhitenedEps => cov.colour(&mut out)?,
            Self::X0 => zip_map(&mut out, x_t, |x0, x| (x - a * x0) / s),
            Self::V => {
                let norm = a * a + s * s;
                zip_map(&mut out, x_t, |v, x| (s * x + a * v) / norm)
            }
            Self::Score => {
                cov.apply_cov(&mut out)?;
                out.iter_mut().for_each(|v| *v = -*v * s);
            }
        }
        Ok(out)
    }

    /// Converts a prediction from this parameterization to `to`.
    pub fn convert<T: Real>(
        self,
        to: Parameterization,
        prediction: &[T],
        x_t: &[T],
        level: NoiseLevel,
        cov: &SpectralCovariance,
    ) -> Result<Vec<T>, CoreError> {
        let eps = self.to_coloured_eps(prediction, x_t, level, cov)?;
        to.from_coloured_eps(&eps, x_t, level, cov)
    }
}

fn check_pair<T>(a: &[T], b: &[T]) -> Result<(), CoreError> {
    if a.len() != b.len() {
        return Err(CoreError::ShapeMismatch {
            context: "parameterization conversion".to_string(),
            expected: format!("prediction and x_t of equal length ({})", b.len()),
            got: format!("{}", a.len()),
        });
    }
    Ok(())
}

fn zip_map<T: Copy>(out: &mut [T], other: &[T], f: impl Fn(T, T) -> T) {
    out.iter_mut().zip(other).for_each(|(o, &x)| *o = f(*o, x));
}

impl fmt::Display for Parameterization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Parameterization {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                invalid_value(
                    "parameterization",
                    s,
                    "one of coloured-eps, whitened-eps, x0, v, score",
                )
            })
    }
}

/// The parameterization of a denoiser for images of shape `S`: converts its predictions to and
/// from the coloured noise, and gives the training target.
#[allow(clippy::wrong_self_convention)] // `from_coloured_eps` converts *from* ε, on a bound parameterization.
pub trait ScoreParameterization<S: ImageShape> {
    /// Which parameterization.
    fn kind(&self) -> Parameterization;

    /// The prediction converted to coloured noise `ε̂^(w)`.
    fn to_coloured_eps(
        &self,
        prediction: &Images<S>,
        x_t: &Images<S>,
        level: NoiseLevel,
    ) -> Result<Images<S>, CoreError>;

    /// The coloured noise converted to this parameterization; with the true `ε^(w)` this is
    /// the regression target.
    fn from_coloured_eps(
        &self,
        eps: &Images<S>,
        x_t: &Images<S>,
        level: NoiseLevel,
    ) -> Result<Images<S>, CoreError>;
}

/// A [`Parameterization`] bound to the noise covariance it converts with.
#[derive(Debug, Clone)]
pub struct Parameterized {
    kind: Parameterization,
    covariance: Arc<SpectralCovariance>,
}

impl Parameterized {
    /// Binds `kind` to `covariance`.
    pub fn new(kind: Parameterization, covariance: Arc<SpectralCovariance>) -> Self {
        Self { kind, covariance }
    }

    fn check<S: ImageShape>(&self, images: &Images<S>) -> Result<(), CoreError> {
        if images.shape().dims() != self.covariance.size() {
            return Err(CoreError::ShapeMismatch {
                context: "parameterization".to_string(),
                expected: format!("{:?}", self.covariance.size()),
                got: format!("{:?}", images.shape().dims()),
            });
        }
        Ok(())
    }

    /// Runs a conversion: scalar ones on the device, those that need `Σ_w` on the host.
    fn run<S: ImageShape>(
        &self,
        input: &Images<S>,
        x_t: &Images<S>,
        level: NoiseLevel,
        forward: bool,
    ) -> Result<Images<S>, CoreError> {
        self.check(input)?;
        self.check(x_t)?;
        level.validate()?;
        let (a, s) = (level.scale(), level.sigma);
        let (p, x) = (input.tensor().clone(), x_t.tensor().clone());
        let tensor = match (self.kind, forward) {
            (Parameterization::ColouredEps, _) => p,
            (Parameterization::X0, true) => (x - p.mul_scalar(s)).div_scalar(a),
            (Parameterization::X0, false) => (x - p.mul_scalar(a)).div_scalar(s),
            (Parameterization::V, true) => {
                (p.mul_scalar(a * a + s * s) - x.mul_scalar(s)).div_scalar(a)
            }
            (Parameterization::V, false) => {
                (x.mul_scalar(s) + p.mul_scalar(a)).div_scalar(a * a + s * s)
            }
            (Parameterization::WhitenedEps | Parameterization::Score, _) => {
                let host = input.to_host();
                let xs = x_t.to_host();
                let out = if forward {
                    self.kind
                        .from_coloured_eps(&host, &xs, level, &self.covariance)?
                } else {
                    self.kind
                        .to_coloured_eps(&host, &xs, level, &self.covariance)?
                };
                return Images::from_host(out, input.shape(), &input.device());
            }
        };
        Images::new(tensor, input.shape())
    }
}

impl<S: ImageShape> ScoreParameterization<S> for Parameterized {
    fn kind(&self) -> Parameterization {
        self.kind
    }

    fn to_coloured_eps(
        &self,
        prediction: &Images<S>,
        x_t: &Images<S>,
        level: NoiseLevel,
    ) -> Result<Images<S>, CoreError> {
        self.run(prediction, x_t, level, false)
    }

    fn from_coloured_eps(
        &self,
        eps: &Images<S>,
        x_t: &Images<S>,
        level: NoiseLevel,
    ) -> Result<Images<S>, CoreError> {
        self.run(eps, x_t, level, true)
    }
}
