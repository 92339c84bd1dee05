//! [`NoiseOperator`]: draws coloured noise `ε^(w) ~ N(0, Σ_w)` for a batch of images, and the
//! forward process `x_t = √ᾱ_t x_0 + σ_t ε^(w)`.

use std::sync::Arc;

use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::covariance::{Normalization, SpectralCovariance};
use crate::error::CoreError;
use crate::schedule::NoiseLevel;
use crate::shape::{ImageShape, Images};
use crate::spectrum::NoiseSpectrum;

/// The random generator every sagd draw uses (ChaCha8: fast, portable, reproducible).
pub type NoiseRng = ChaCha8Rng;

/// A [`NoiseRng`] from a seed.
pub fn noise_rng(seed: u64) -> NoiseRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A source of the forward process's noise for images of shape `S`.
pub trait NoiseOperator<S: ImageShape>: Send + Sync {
    /// The image shape it draws for.
    fn shape(&self) -> S;

    /// Its covariance `Σ_w`.
    fn covariance(&self) -> &SpectralCovariance;

    /// Draws `count` images of coloured noise on `device`. The same `rng` state gives the same
    /// numbers on every CPU run.
    fn sample(
        &self,
        count: usize,
        rng: &mut NoiseRng,
        device: &Device,
    ) -> Result<Images<S>, CoreError> {
        if count == 0 {
            return Err(crate::error::invalid_value("count", 0, "at least 1 image"));
        }
        let values = self.covariance().sample::<f32>(count, rng);
        Images::from_host(values, self.shape(), device)
    }
}

/// The spectral noise operator: `ε^(w) = F⁻¹(w ⊙ F ε)` for a [`NoiseSpectrum`].
#[derive(Debug, Clone)]
pub struct SpectralNoise<S: ImageShape> {
    shape: S,
    covariance: Arc<SpectralCovariance>,
}

impl<S: ImageShape> SpectralNoise<S> {
    /// The operator of `spectrum` on images of `shape`.
    pub fn new(
        spectrum: &dyn NoiseSpectrum,
        shape: S,
        normalization: Normalization,
    ) -> Result<Self, CoreError> {
        let covariance = SpectralCovariance::new(spectrum, shape.dims(), normalization)?;
        Ok(Self {
            shape,
            covariance: Arc::new(covariance),
        })
    }

    /// The operator of an existing covariance, checking that its size is `shape`.
    pub fn from_covariance(
        covariance: Arc<SpectralCovariance>,
        shape: S,
    ) -> Result<Self, CoreError> {
        if covariance.size() != shape.dims() {
            return Err(CoreError::ShapeMismatch {
                context: "noise operator".to_string(),
                expected: format!("{:?}", shape.dims()),
                got: format!("{:?}", covariance.size()),
            });
        }
        Ok(Self { shape, covariance })
    }

    /// The shared covariance.
    pub fn covariance_arc(&self) -> Arc<SpectralCovariance> {
        self.covariance.clone()
    }
}

impl<S: ImageShape> NoiseOperator<S> for SpectralNoise<S> {
    fn shape(&self) -> S {
        self.shape
    }
    fn covariance(&self) -> &SpectralCovariance {
        &self.covariance
    }
}

/// The forward process at one noise level: returns `(x_t, ε^(w))` with
/// `x_t = √ᾱ x_0 + σ ε^(w)`.
pub fn add_noise<S: ImageShape>(
    noise: &impl NoiseOperator<S>,
    x0: &Images<S>,
    level: NoiseLevel,
    rng: &mut NoiseRng,
) -> Result<(Images<S>, Images<S>), CoreError> {
    let eps = noise.sample(x0.count(), rng, &x0.device())?;
    let x_t = x0.tensor().clone().mul_scalar(level.scale())
        + eps.tensor().clone().mul_scalar(level.sigma);
    Ok((Images::new(x_t, x0.shape())?, eps))
}
