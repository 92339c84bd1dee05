//! Stationary Gaussian random fields with a power-law spectrum.
//!
//! Each channel of an image is an independent, zero-mean, stationary (circulant) Gaussian
//! field on the H×W torus. With `r = sqrt(f_x² + f_y²)` in cycles per pixel (`fftfreq`
//! convention) the variance of Fourier mode `f` under the **unitary** DFT is
//!
//! ```text
//! λ(f) = scale² · p(f) / mean_g p(g),     p(f) = (r(f) + r0)^(-β)
//! ```
//!
//! (the mean over the H×W grid), so `mean_f λ(f) = scale²` is the per-pixel variance and the
//! covariance of the data is `F⁻¹ diag(λ) F` with eigenvalues `λ` (each repeated for every
//! channel). Draws are exact: the field is `F⁻¹(sqrt(λ) ⊙ F ε)`, `ε ~ N(0, I)`, computed by
//! [`SpectralCovariance::sample`] with amplitudes `sqrt(λ)` and no normalization.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sagd_core::{FrequencyGrid, Normalization, SpectralCovariance};

use super::{check_number, check_scale, check_shape};
use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;

/// Name of the parameters' context in error messages.
const CONTEXT: &str = "grf";

/// A Gaussian random field dataset with power spectrum `∝ 1/(r + r0)^β`.
#[derive(Debug, Clone, PartialEq)]
pub struct GrfConfig {
    /// Spectral slope β ≥ 0 (0 is white noise, 2 is close to natural images). Default 2.
    pub beta: f64,
    /// Radius floor r0 > 0 in cycles per pixel, which keeps the DC variance finite. Default
    /// 0.01: on a 32×32 grid that is a third of the lowest non-zero frequency `1/32`, so the
    /// DC mode holds `((1/32 + 0.01)/0.01)^β ≈ 17` times the power of the first harmonic at
    /// β = 2.
    pub r0: f64,
    /// Per-pixel standard deviation (the overall amplitude): `mean_f λ(f) = scale²`. Default
    /// 1, i.e. unit per-pixel variance.
    pub scale: f64,
    /// `[C, H, W]`. Default `[1, 32, 32]`.
    pub size: [usize; 3],
    /// Number of images. Default 1000.
    pub n: usize,
    /// Seed. Default 0.
    pub seed: u64,
}

impl Default for GrfConfig {
    fn default() -> Self {
        Self {
            beta: 2.0,
            r0: 0.01,
            scale: 1.0,
            size: [1, 32, 32],
            n: 1000,
            seed: 0,
        }
    }
}

impl GrfConfig {
    /// The default spectrum (β = 2, r0 = 0.01, unit per-pixel variance) on `size`.
    pub fn new(size: [usize; 3], n: usize, seed: u64) -> Self {
        Self {
            size,
            n,
            seed,
            ..Self::default()
        }
    }

    /// Checks every parameter; errors name the one at fault.
    pub fn validate(&self) -> Result<(), DatasetError> {
        check_number(CONTEXT, "beta", self.beta, 0.0, true)?;
        check_number(CONTEXT, "r0", self.r0, 0.0, false)?;
        check_scale(CONTEXT, "scale", self.scale, 0.0, false)?;
        check_shape(CONTEXT, self.size, self.n)?;
        Ok(())
    }

    /// The exact variance `λ(f) = E|F_u x(f)|²` of every Fourier mode of one channel (unitary
    /// DFT), H×W row-major in `fftfreq` order: the eigenvalues of the data covariance (each
    /// repeated for every channel). Their mean is `scale²`.
    ///
    /// Meaningful for a valid configuration ([`validate`](Self::validate)); the table is
    /// computed in the log domain, so large β or tiny r0 do not overflow (far modes may
    /// underflow to 0).
    pub fn mode_variances(&self) -> Vec<f64> {
        let grid = FrequencyGrid::new(self.size[1], self.size[2]);
        // ln p(f) relative to its maximum (at DC, r = 0): ln p(f) - ln p(0) ≤ 0.
        let relative: Vec<f64> = grid
            .frequencies()
            .map(|f| (-self.beta * ((f.radius_cycles() + self.r0) / self.r0).ln()).exp())
            .collect();
        let mean = relative.iter().sum::<f64>() / relative.len() as f64;
        let s2 = self.scale * self.scale;
        relative.iter().map(|p| s2 * p / mean).collect()
    }

    /// The data covariance `F⁻¹ diag(λ) F` as a [`SpectralCovariance`] (amplitudes `sqrt(λ)`,
    /// [`Normalization::None`]), for downstream use (whitening, exact Gaussian densities).
    pub fn covariance(&self) -> Result<SpectralCovariance, DatasetError> {
        self.validate()?;
        let amplitudes = self.mode_variances().into_iter().map(f64::sqrt).collect();
        Ok(SpectralCovariance::from_amplitudes(
            "grf-power-law",
            amplitudes,
            self.size,
            Normalization::None,
        )?)
    }

    /// `n` exact draws, stored as f32, without labels. Seeded by `seed` through a ChaCha8
    /// generator that seeds one stream per image, so the result does not depend on the
    /// thread count.
    pub fn generate(&self) -> Result<Dataset, DatasetError> {
        let cov = self.covariance()?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let values = cov.sample::<f32>(self.n, &mut rng);
        Dataset::new(self.name(), self.size, Pixels::F32(values), None)
    }

    /// A name for messages: `grf(beta=…, r0=…, scale=…)`.
    pub fn name(&self) -> String {
        format!(
            "grf(beta={}, r0={}, scale={})",
            self.beta, self.r0, self.scale
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_variances_have_unit_mean_and_the_power_law_ratio() {
        let c = GrfConfig {
            beta: 1.5,
            r0: 0.05,
            ..GrfConfig::new([1, 8, 6], 1, 0)
        };
        let lam = c.mode_variances();
        let mean = lam.iter().sum::<f64>() / lam.len() as f64;
        assert!((mean - 1.0).abs() < 1e-12);
        // λ at (k, l) = (0, 1): r = 1/6; ratio to DC is (r0 / (r + r0))^β.
        let expected = (0.05f64 / (1.0 / 6.0 + 0.05)).powf(1.5);
        assert!((lam[1] / lam[0] - expected).abs() < 1e-12);
    }

    #[test]
    fn scale_sets_the_per_pixel_variance_and_large_beta_does_not_overflow() {
        let c = GrfConfig {
            beta: 400.0,
            r0: 1e-6,
            scale: 3.0,
            ..GrfConfig::new([1, 4, 4], 1, 0)
        };
        let lam = c.mode_variances();
        assert!(lam.iter().all(|v| v.is_finite()));
        assert!((lam.iter().sum::<f64>() / 16.0 - 9.0).abs() < 1e-9);
    }

    #[test]
    fn covariance_power_is_the_mode_variance_table() {
        let c = GrfConfig::new([2, 5, 4], 1, 0);
        let cov = c.covariance().unwrap();
        for (p, l) in cov.power().iter().zip(c.mode_variances()) {
            assert!((p - l).abs() < 1e-12 * l.max(1.0));
        }
    }

    #[test]
    fn invalid_parameters_are_named() {
        let base = GrfConfig::default();
        let cases = [
            (
                GrfConfig {
                    beta: -1.0,
                    ..base.clone()
                },
                "beta",
            ),
            (
                GrfConfig {
                    beta: f64::NAN,
                    ..base.clone()
                },
                "beta",
            ),
            (
                GrfConfig {
                    r0: 0.0,
                    ..base.clone()
                },
                "r0",
            ),
            (
                GrfConfig {
                    scale: f64::INFINITY,
                    ..base.clone()
                },
                "scale",
            ),
            (
                GrfConfig {
                    n: 0,
                    ..base.clone()
                },
                "n",
            ),
            (
                GrfConfig {
                    size: [1, 0, 4],
                    ..base.clone()
                },
                "size",
            ),
        ];
        for (config, name) in cases {
            match config.generate() {
                Err(DatasetError::InvalidParam { param, .. }) => assert_eq!(param, name),
                other => panic!("{name}: expected an InvalidParam error, got {other:?}"),
            }
        }
    }
}
