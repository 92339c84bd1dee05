//! Exact output statistics of a deterministic sampler driven by an affine denoiser (the
//! `linear` and `circulant` models): the whole sampler is then an affine map `x ↦ A x + c` of
//! its starting images, so the generated covariance is `A (σ_T² Σ_w) Aᵀ` exactly, with no
//! sampling error. It is computed by running the sampler itself on `σ_T Σ_w^{1/2} e_j` for
//! every unit vector `e_j` and on zero, which is what the theory checks compare with.

use burn::tensor::Device;
use sagd_core::{ImageShape, Images, noise_rng};
use sagd_datasets::{Dataset, Pixels, stats};
use sagd_models::Denoiser;

use crate::error::SamplerError;
use crate::sampler::Sampler;
use crate::timesteps::select;

/// Largest image dimension `C·H·W` (the sampler runs on `C·H·W + 1` images at once).
pub const MAX_DIM: usize = 4096;

/// The exact variance of every Fourier mode (unitary DFT, C×H×W in `fftfreq` order) of the
/// images `sampler` generates from the matched prior with the affine `denoiser`. The sampler
/// must be deterministic (DDIM with η = 0, Euler, Heun); the denoiser affine.
pub fn generated_mode_variances<S: ImageShape>(
    sampler: &dyn Sampler<S>,
    denoiser: &dyn Denoiser<S>,
    device: &Device,
) -> Result<Vec<f64>, SamplerError> {
    let shape = denoiser.shape();
    let d = shape.numel();
    if d > MAX_DIM {
        return Err(SamplerError::config(
            "image dimension",
            d,
            format!("at most {MAX_DIM} values per image for the exact covariance"),
        ));
    }
    let path = select(
        denoiser.levels(),
        sampler.common().steps,
        sampler.common().spacing,
    )?;
    let sigma_top = denoiser.levels()[path[0]].sigma;
    // Columns of σ_T Σ_w^{1/2}, then a zero image for the offset c.
    let mut basis = vec![0.0f64; (d + 1) * d];
    for j in 0..d {
        basis[j * d + j] = 1.0;
    }
    denoiser.covariance().colour(&mut basis)?;
    let values: Vec<f32> = basis.iter().map(|v| (v * sigma_top) as f32).collect();
    let x_top = Images::from_host(values, shape, device)?;
    let out = sampler
        .sample_from(denoiser, x_top, &mut noise_rng(0), &mut |_| {})?
        .to_host();
    let offset = &out[d * d..];
    // The columns A x_j and their negatives: a zero-mean set whose per-mode variance is
    // Σ_j |F A x_j|² / d.
    let mut pm = Vec::with_capacity(2 * d * d);
    for sign in [1.0f32, -1.0] {
        for col in out[..d * d].chunks(d) {
            pm.extend(col.iter().zip(offset).map(|(y, c)| sign * (y - c)));
        }
    }
    let set = Dataset::new("generated columns", shape.dims(), Pixels::F32(pm), None)?;
    Ok(stats::mode_variances(&set)
        .into_iter()
        .map(|v| v * d as f64)
        .collect())
}
