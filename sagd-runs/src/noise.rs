//! The run behind `sagd noise`: coloured noise `ε^(w) ~ N(0, Σ_w)` of a spectrum on a grid,
//! drawn into a float32 `.npy` of shape (N, C, H, W), atomically.

use std::path::{Path, PathBuf};

use sagd_core::{DynShape, ImageShape, Normalization, SpectralCovariance, SpectrumSpec, noise_rng};
use sagd_datasets::npy::NpyWriter;
use serde::Serialize;

use crate::error::RunError;

/// What `sagd noise` is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseRequest {
    /// The spectrum.
    pub spectrum: SpectrumSpec,
    /// The image shape.
    pub size: DynShape,
    /// The spectrum's normalization.
    pub normalization: Normalization,
    /// Images to draw.
    pub count: usize,
    /// The seed: the same seed gives the same file.
    pub seed: u64,
    /// The `.npy` file to write.
    pub out: PathBuf,
}

/// What [`noise_run`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseSummary {
    /// Images drawn.
    pub count: usize,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// The file.
    pub out: PathBuf,
}

/// `sagd noise`: draws `request.count` images into `request.out`; `progress(done)` follows the
/// images.
///
/// # Errors
/// [`RunError::Request`] for a count of 0; [`RunError::Core`] when the spectrum cannot be
/// evaluated on the grid; [`RunError::Npy`] when the file cannot be written.
pub fn noise_run(
    request: &NoiseRequest,
    progress: &mut dyn FnMut(usize),
) -> Result<NoiseSummary, RunError> {
    if request.count == 0 {
        return Err(RunError::request("--count: must be at least 1"));
    }
    let cov = SpectralCovariance::new(
        request.spectrum.spectrum(),
        request.size.dims(),
        request.normalization,
    )?;
    write_noise_npy(&cov, request.count, request.seed, &request.out, progress)?;
    Ok(NoiseSummary {
        count: request.count,
        shape: request.size.dims(),
        out: request.out.clone(),
    })
}

/// Draws `count` images of coloured noise `ε^(w) ~ N(0, Σ_w)` from `cov` into a float32
/// `.npy` of shape (N, C, H, W) at `out`, seeded by `seed` (the same seed gives the same file,
/// whatever the memory bound that splits the draw). `progress(done)` follows the images.
///
/// # Errors
/// [`RunError::Npy`] when the file cannot be written.
///
/// ```
/// use sagd_core::{Normalization, SpectralCovariance};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// sagd_ops::link(); // the built-in spectra
/// let spectrum = sagd_core::parse_spectrum("isotropic")?;
/// let cov = SpectralCovariance::new(spectrum.as_ref(), [1, 8, 8], Normalization::Energy)?;
/// let dir = tempfile::tempdir()?;
/// sagd_runs::noise::write_noise_npy(&cov, 10, 0, &dir.path().join("noise.npy"), &mut |_| {})?;
/// # Ok(())
/// # }
/// ```
pub fn write_noise_npy(
    cov: &SpectralCovariance,
    count: usize,
    seed: u64,
    out: &Path,
    progress: &mut dyn FnMut(usize),
) -> Result<(), RunError> {
    let [c, h, w] = cov.size();
    let mut writer = NpyWriter::create(out, &[count, c, h, w])?;
    let mut rng = noise_rng(seed);
    // Chunks bound memory; the per-image seeds come from `rng` in order, so the result is the
    // same as one big draw.
    let chunk = (1 << 22) / cov.dim().max(1) + 1;
    let mut done = 0;
    while done < count {
        let n = chunk.min(count - done);
        let values = cov.sample::<f32>(n, &mut rng);
        writer.write(&values)?;
        done += n;
        progress(done);
    }
    writer.finish()?;
    Ok(())
}
