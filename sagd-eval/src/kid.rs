//! The Kernel Inception Distance (Bińkowski et al. 2018) as torch-fidelity 0.4 computes it:
//! the polynomial kernel `k(x, y) = (xᵀy/d + 1)³`, the unbiased estimate of MMD² on subsets of
//! m feature vectors drawn without replacement from each set, the mean and the population
//! standard deviation (`np.std`) over the subsets.
//!
//! The unbiased MMD² of subsets X, Y of size m:
//! `(Σ_{i≠j} k(xᵢ,xⱼ) + Σ_{i≠j} k(yᵢ,yⱼ)) / (m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / m²`.
//! Subsets come from a seeded ChaCha8 stream (torch-fidelity draws them with NumPy's
//! `RandomState(2020)`: the same estimator, other draws).

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::EvalError;
use crate::features::Features;
use crate::gram::OnDevice;

/// The sets up to which every inner product is computed once (`N × N` floats each).
const FULL_GRAM_MAX: usize = 4096;

/// KID's settings (torch-fidelity's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KidOptions {
    /// Number of subsets (torch-fidelity: 100).
    pub subsets: usize,
    /// Feature vectors per subset (torch-fidelity: 1000).
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self {
            subsets: 100,
            subset_size: 1000,
            seed: 0,
        }
    }
}

/// A KID estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kid {
    /// Mean of the subsets' MMD².
    pub mean: f64,
    /// Population standard deviation of the subsets' MMD².
    pub std: f64,
    /// Number of subsets.
    pub subsets: usize,
    /// Feature vectors per subset.
    pub subset_size: usize,
}

/// The unbiased MMD² of one subset pair, from inner-product tables: `gxx[i·nx + j] = xᵢᵀxⱼ`,
/// `gyy` likewise, `gxy[i·ny + j] = xᵢᵀyⱼ`, restricted to the rows `ix` and `iy`.
#[allow(clippy::too_many_arguments)]
fn mmd2_unbiased(
    gxx: &[f32],
    gyy: &[f32],
    gxy: &[f32],
    nx: usize,
    ny: usize,
    ix: &[usize],
    iy: &[usize],
    dim: usize,
) -> f64 {
    let kernel = |g: f32| (f64::from(g) / dim as f64 + 1.0).powi(3);
    let m = ix.len() as f64;
    let within = |g: &[f32], n: usize, idx: &[usize]| -> f64 {
        let mut sum = 0.0;
        for (a, &i) in idx.iter().enumerate() {
            for (b, &j) in idx.iter().enumerate() {
                if a != b {
                    sum += kernel(g[i * n + j]);
                }
            }
        }
        sum
    };
    let mut cross = 0.0;
    for &i in ix {
        for &j in iy {
            cross += kernel(gxy[i * ny + j]);
        }
    }
    (within(gxx, nx, ix) + within(gyy, ny, iy)) / (m * (m - 1.0)) - 2.0 * cross / (m * m)
}

/// KID between `generated` and `real` features; `options.subset_size` must not exceed either
/// count (lower it for small sets, as torch-fidelity's `kid_subset_size`).
///
/// # Errors
/// [`EvalError::Input`] when the dimensions differ, a subset would be larger than a set or
/// smaller than 2, or no subset is asked for.
pub fn kid(
    generated: &Features,
    real: &Features,
    options: KidOptions,
    device: &Device,
) -> Result<Kid, EvalError> {
    if generated.dim != real.dim {
        return Err(EvalError::input(
            "features",
            format!("dimensions {} and {} differ", generated.dim, real.dim),
        ));
    }
    let m = options.subset_size;
    if m < 2 || m > generated.count || m > real.count {
        return Err(EvalError::input(
            "KID",
            format!(
                "subset size {m} needs 2 <= m <= both counts (generated {}, real {})",
                generated.count, real.count
            ),
        ));
    }
    if options.subsets == 0 {
        return Err(EvalError::input("KID", "0 subsets; expected at least 1"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..options.subsets)
        .map(|_| {
            (
                sample(&mut rng, generated.count, m).into_vec(),
                sample(&mut rng, real.count, m).into_vec(),
            )
        })
        .collect();
    let dim = generated.dim;
    let mmds: Vec<f64> = if generated.count <= FULL_GRAM_MAX && real.count <= FULL_GRAM_MAX {
        let x = OnDevice::new(generated, device);
        let y = OnDevice::new(real, device);
        let (gxx, gyy, gxy) = (x.gram(&x)?, y.gram(&y)?, x.gram(&y)?);
        draws
            .iter()
            .map(|(ix, iy)| mmd2_unbiased(&gxx, &gyy, &gxy, x.count, y.count, ix, iy, dim))
            .collect()
    } else {
        let identity: Vec<usize> = (0..m).collect();
        draws
            .iter()
            .map(|(ix, iy)| {
                let x = OnDevice::new(&generated.select(ix), device);
                let y = OnDevice::new(&real.select(iy), device);
                let (gxx, gyy, gxy) = (x.gram(&x)?, y.gram(&y)?, x.gram(&y)?);
                Ok(mmd2_unbiased(
                    &gxx, &gyy, &gxy, m, m, &identity, &identity, dim,
                ))
            })
            .collect::<Result<_, EvalError>>()?
    };
    let count = mmds.len() as f64;
    let mean = mmds.iter().sum::<f64>() / count;
    let std = (mmds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count).sqrt();
    Ok(Kid {
        mean,
        std,
        subsets: options.subsets,
        subset_size: m,
    })
}
