//! Gaussian mixtures on small images.
//!
//! `K` equally weighted components `N(μ_k, within² I)` in dimension `d = C·H·W`, with means
//! `μ_k ~ N(0, spread² I)` drawn from the seed. The labels of the generated images are the
//! component indices, so the exact density ([`GmmConfig::mixture`]) and its score are known
//! for every image, as the theory checks need.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use sagd_core::density::GaussianMixture;

use super::{check_scale, check_shape, stream_rng};
use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;

/// Name of the parameters' context in error messages.
const CONTEXT: &str = "gmm";

/// The ChaCha8 stream of the seed that draws the component means (image `i` uses stream `i`).
const MEANS_STREAM: u64 = u64::MAX;

/// A Gaussian-mixture dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmConfig {
    /// Number of components K, 1 ..= [`MAX_COMPONENTS`](Self::MAX_COMPONENTS), equally
    /// weighted. Default 4.
    pub components: usize,
    /// `[C, H, W]`, with `C·H·W ≤` [`MAX_DIM`](Self::MAX_DIM). Default `[1, 8, 8]`.
    pub size: [usize; 3],
    /// Number of images. Default 1000.
    pub n: usize,
    /// Seed (means and draws). Default 0.
    pub seed: u64,
    /// Standard deviation of every coordinate of the component means (≥ 0). Default 1.
    pub spread: f64,
    /// Per-pixel standard deviation within a component (> 0): covariance `within² I`.
    /// Default 0.5.
    pub within: f64,
}

impl Default for GmmConfig {
    fn default() -> Self {
        Self {
            components: 4,
            size: [1, 8, 8],
            n: 1000,
            seed: 0,
            spread: 1.0,
            within: 0.5,
        }
    }
}

impl GmmConfig {
    /// Largest image dimension `C·H·W` (a dense d×d covariance per component must stay
    /// tractable for [`mixture`](Self::mixture)).
    pub const MAX_DIM: usize = 4096;
    /// Largest number of components.
    pub const MAX_COMPONENTS: usize = 65_536;
    /// Bound on `K·d²`, the number of covariance entries [`mixture`](Self::mixture) holds
    /// (2²⁷, i.e. 1 GiB of f64 covariances plus as much for their Cholesky factors).
    pub const MAX_MIXTURE_ENTRIES: usize = 1 << 27;

    /// Checks every parameter; errors name the one at fault.
    pub fn validate(&self) -> Result<(), DatasetError> {
        if !(1..=Self::MAX_COMPONENTS).contains(&self.components) {
            return Err(DatasetError::param(
                CONTEXT,
                "components",
                self.components,
                &format!("between 1 and {}", Self::MAX_COMPONENTS),
            ));
        }
        check_shape(CONTEXT, self.size, self.n)?;
        let dim = self.dim();
        if dim > Self::MAX_DIM {
            let [c, h, w] = self.size;
            return Err(DatasetError::param(
                CONTEXT,
                "size",
                format!("{c}x{h}x{w} ({dim} values)"),
                &format!("at most {} values per image", Self::MAX_DIM),
            ));
        }
        check_scale(CONTEXT, "spread", self.spread, 0.0, true)?;
        check_scale(CONTEXT, "within", self.within, 0.0, false)?;
        Ok(())
    }

    /// The dimension `C·H·W`.
    pub fn dim(&self) -> usize {
        self.size.iter().product()
    }

    /// The component means, `K` vectors of length d, drawn from the seed.
    pub fn means(&self) -> Vec<Vec<f64>> {
        let mut rng = stream_rng(self.seed, MEANS_STREAM);
        (0..self.components)
            .map(|_| {
                (0..self.dim())
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        self.spread * z
                    })
                    .collect()
            })
            .collect()
    }

    /// The exact mixture the data are drawn from: weights `1/K`, the seeded means, covariances
    /// `within² I` (dense d×d; `K·d²` is capped by
    /// [`MAX_MIXTURE_ENTRIES`](Self::MAX_MIXTURE_ENTRIES)).
    pub fn mixture(&self) -> Result<GaussianMixture, DatasetError> {
        self.validate()?;
        let dim = self.dim();
        if self.components.saturating_mul(dim * dim) > Self::MAX_MIXTURE_ENTRIES {
            return Err(DatasetError::param(
                CONTEXT,
                "components",
                self.components,
                &format!(
                    "components x dimension² <= {} for a dense mixture (dimension {dim})",
                    Self::MAX_MIXTURE_ENTRIES
                ),
            ));
        }
        let cov = DMatrix::<f64>::identity(dim, dim) * (self.within * self.within);
        let means: Vec<DVector<f64>> = self.means().into_iter().map(DVector::from_vec).collect();
        Ok(GaussianMixture::new(
            vec![1.0; self.components],
            means,
            vec![cov; self.components],
        )?)
    }

    /// `n` draws, stored as f32, labelled with their component (class names
    /// `component-0`, …). Image `i` uses ChaCha8 stream `i` of the seed: it picks its component
    /// uniformly, then adds `within ·` standard normal noise to the mean.
    pub fn generate(&self) -> Result<Dataset, DatasetError> {
        self.validate()?;
        let dim = self.dim();
        let means = self.means();
        let mut values = vec![0f32; self.n * dim];
        let mut labels = vec![0u32; self.n];
        values
            .par_chunks_mut(dim)
            .zip(labels.par_iter_mut())
            .enumerate()
            .for_each(|(i, (image, label))| {
                let mut rng = stream_rng(self.seed, i as u64);
                let k = rng.random_range(0..self.components);
                *label = k as u32;
                for (v, m) in image.iter_mut().zip(&means[k]) {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    *v = (m + self.within * z) as f32;
                }
            });
        let names = (0..self.components)
            .map(|k| format!("component-{k}"))
            .collect();
        Ok(Dataset::new(
            format!(
                "gmm(components={}, spread={}, within={})",
                self.components, self.spread, self.within
            ),
            self.size,
            Pixels::F32(values),
            Some(labels),
        )?
        .with_class_names(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixture_matches_the_generated_data() {
        let c = GmmConfig {
            components: 3,
            size: [1, 2, 3],
            n: 3000,
            seed: 5,
            spread: 2.0,
            within: 0.3,
        };
        let mixture = c.mixture().unwrap();
        let data = c.generate().unwrap();
        assert_eq!(mixture.components(), 3);
        assert_eq!(mixture.dim(), 6);
        let values = data.to_f32();
        let labels = data.labels().unwrap();
        // Per component: the sample mean is within 6 standard errors of μ_k.
        for k in 0..3 {
            let rows: Vec<&[f32]> = values
                .chunks(6)
                .zip(labels)
                .filter(|(_, l)| **l as usize == k)
                .map(|(x, _)| x)
                .collect();
            assert!(rows.len() > 800, "component {k}: {} images", rows.len());
            let se = 0.3 / (rows.len() as f64).sqrt();
            for j in 0..6 {
                let mean = rows.iter().map(|x| x[j] as f64).sum::<f64>() / rows.len() as f64;
                assert!((mean - mixture.means()[k][j]).abs() < 6.0 * se);
            }
        }
        assert_eq!(mixture.covariances()[0][(1, 1)], 0.09);
    }

    #[test]
    fn images_do_not_depend_on_n() {
        let small = GmmConfig {
            n: 5,
            ..GmmConfig::default()
        };
        let a = small.generate().unwrap();
        let b = GmmConfig::default().generate().unwrap();
        assert_eq!(a.to_f32(), b.take(5).to_f32());
        assert_eq!(a.labels(), b.take(5).labels());
    }

    #[test]
    fn invalid_parameters_are_named() {
        let base = GmmConfig::default();
        let cases = [
            (
                GmmConfig {
                    components: 0,
                    ..base.clone()
                },
                "components",
            ),
            (
                GmmConfig {
                    within: 0.0,
                    ..base.clone()
                },
                "within",
            ),
            (
                GmmConfig {
                    spread: f64::NAN,
                    ..base.clone()
                },
                "spread",
            ),
            // Finite, but its images would overflow f32.
            (
                GmmConfig {
                    spread: 1e300,
                    ..base.clone()
                },
                "spread",
            ),
            (
                GmmConfig {
                    size: [3, 64, 64],
                    ..base.clone()
                },
                "size",
            ),
            (
                GmmConfig {
                    n: 0,
                    ..base.clone()
                },
                "n",
            ),
        ];
        for (config, name) in cases {
            match config.generate() {
                Err(DatasetError::InvalidParam { param, .. }) => assert_eq!(param, name),
                other => panic!("{name}: expected an InvalidParam error, got {other:?}"),
            }
        }
        let big = GmmConfig {
            components: 20,
            size: [3, 32, 32],
            ..base
        };
        assert!(big.generate().is_ok());
        match big.mixture() {
            Err(DatasetError::InvalidParam { param, .. }) => assert_eq!(param, "components"),
            other => panic!("expected an InvalidParam error, got {other:?}"),
        }
    }
}
