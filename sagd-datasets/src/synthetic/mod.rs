//! Synthetic data, generated in memory from a seed (the same seed gives the same numbers on
//! any machine and for any number of threads):
//!
//! - [`GrfConfig`]: stationary Gaussian random fields with power spectrum `∝ 1/(r + r0)^β`,
//!   whose Fourier-mode variances (the eigenvalues of the data covariance) are known exactly;
//! - [`GmmConfig`]: Gaussian mixtures on small images, with the exact
//!   [`GaussianMixture`](sagd_core::density::GaussianMixture) they are drawn from;
//! - [`ShapesConfig`]: anti-aliased disks, squares and bars, the built-in demo data.
//!
//! Randomness: every image `i` draws from its own generator, derived from the master seed and
//! `i` alone (gmm and shapes: ChaCha8 stream `i` of the seed; grf: the `i`-th seed drawn from a
//! ChaCha8 generator by [`SpectralCovariance::sample`](sagd_core::SpectralCovariance::sample)),
//! so image `i` depends neither on the thread count nor on `n`.

pub mod gmm;
pub mod grf;
pub mod shapes;

pub use gmm::GmmConfig;
pub use grf::GrfConfig;
pub use shapes::{SHAPE_CLASSES, ShapesConfig};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::DatasetError;

/// The ChaCha8 generator of `seed`, on its stream `stream`.
pub(crate) fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Checks `size` (every dimension ≥ 1) and `n ≥ 1`, and that `n·C·H·W` values fit in memory
/// addressing; returns the number of values.
pub(crate) fn check_shape(
    context: &str,
    size: [usize; 3],
    n: usize,
) -> Result<usize, DatasetError> {
    if size.contains(&0) {
        return Err(DatasetError::param(
            context,
            "size",
            format!("{}x{}x{}", size[0], size[1], size[2]),
            "every dimension >= 1",
        ));
    }
    if n == 0 {
        return Err(DatasetError::param(context, "n", 0, "at least 1 image"));
    }
    size.iter()
        .try_fold(n, |acc, &s| acc.checked_mul(s))
        .filter(|&total| total <= isize::MAX as usize / 8)
        .ok_or_else(|| {
            DatasetError::param(
                context,
                "n",
                n,
                &format!(
                    "few enough {}x{}x{} images to address in memory",
                    size[0], size[1], size[2]
                ),
            )
        })
}

/// Checks that `value` is finite and above (or at least, when `inclusive`) `min`.
pub(crate) fn check_number(
    context: &str,
    param: &str,
    value: f64,
    min: f64,
    inclusive: bool,
) -> Result<(), DatasetError> {
    let ok = value.is_finite() && if inclusive { value >= min } else { value > min };
    if ok {
        Ok(())
    } else {
        let op = if inclusive { ">=" } else { ">" };
        Err(DatasetError::param(
            context,
            param,
            value,
            &format!("a finite number {op} {min}"),
        ))
    }
}

/// Largest standard deviation or spread a synthetic source accepts: far beyond any pixel
/// scale, and far enough below f32's range (3.4e38) that generated values stay finite.
pub(crate) const MAX_SCALE: f64 = 1e18;

/// [`check_number`] for a scale parameter (σ, spread), which must also be at most
/// [`MAX_SCALE`] so that the images, stored as f32, stay finite.
pub(crate) fn check_scale(
    context: &str,
    param: &str,
    value: f64,
    min: f64,
    inclusive: bool,
) -> Result<(), DatasetError> {
    check_number(context, param, value, min, inclusive)?;
    if value > MAX_SCALE {
        return Err(DatasetError::param(
            context,
            param,
            format!("{value:e}"),
            &format!("at most {MAX_SCALE:e} (images are stored as float32)"),
        ));
    }
    Ok(())
}
