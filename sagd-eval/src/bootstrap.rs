//! How much a metric moves with the sample images alone: FID and KID recomputed on resamples
//! (with replacement) of the samples' features, the reference held fixed, so that an
//! experiment can tell the metric's own sampling noise from the noise between seeds.
//!
//! FID on a resample `X*` (n rows) uses `tr (Σ_r^{1/2} Σ* Σ_r^{1/2})^{1/2}` through the n × n
//! Gram matrix: with `A = Σ_r^{1/2}` computed once and `Z = F A` for every feature row,
//! `Σ_r^{1/2} Σ* Σ_r^{1/2} = Yᵀ Y / (n − 1)` for `Y = Z* − mean(Z*)`, whose non-zero
//! eigenvalues are those of `Y Yᵀ / (n − 1)`: an n × n eigenproblem per resample instead of a
//! d × d one. KID on a resample is the full-set unbiased MMD² (polynomial kernel
//! `(xᵀy/d + 1)³`, as [`mod@crate::kid`]) with the pairs of a resample that repeat one image left
//! out of the within-samples term (a repeated image is not a second draw).

use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::EvalError;
use crate::features::Features;
use crate::fid::{GaussianStats, sqrt_psd, zero_cut};

/// The reference rows over which KID's within-reference term is averaged, at most.
pub const WITHIN_REFERENCE_MAX: usize = 2048;

/// Resamples and their seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootstrap {
    /// Number of resamples (at least 2).
    pub resamples: usize,
    /// Seed of the resamples.
    pub seed: u64,
}

/// A metric over the resamples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Number of resamples.
    pub resamples: usize,
    /// Mean over the resamples.
    pub mean: f64,
    /// Sample standard deviation over the resamples (n − 1): the metric's sampling noise.
    pub sd: f64,
}

fn spread(values: &[f64]) -> Spread {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Spread {
        resamples: values.len(),
        mean,
        sd: var.sqrt(),
    }
}

/// The resamples' row indices: `resamples` lists of `n` draws with replacement from `0..n`.
pub fn resample_indices(n: usize, options: Bootstrap) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    (0..options.resamples)
        .map(|_| (0..n).map(|_| rng.random_range(0..n)).collect())
        .collect()
}

fn check(samples: &Features, dim: usize, options: Bootstrap) -> Result<(), EvalError> {
    if options.resamples < 2 {
        return Err(EvalError::input(
            "bootstrap",
            format!("{} resamples; expected at least 2", options.resamples),
        ));
    }
    if samples.count < 2 {
        return Err(EvalError::input(
            "bootstrap",
            format!("{} samples; expected at least 2", samples.count),
        ));
    }
    if samples.dim != dim {
        return Err(EvalError::input(
            "bootstrap",
            format!("dimensions {} and {dim} differ", samples.dim),
        ));
    }
    Ok(())
}

/// FID of the resampled samples against `reference` (see the module doc).
///
/// # Errors
/// [`EvalError::Input`] for fewer than 2 resamples or samples, or differing dimensions.
pub fn fid_spread(
    samples: &Features,
    reference: &GaussianStats,
    options: Bootstrap,
) -> Result<Spread, EvalError> {
    let d = reference.dim();
    check(samples, d, options)?;
    let n = samples.count;
    let f = DMatrix::from_fn(n, d, |i, j| f64::from(samples.values[i * d + j]));
    let root = sqrt_psd(DMatrix::from_row_slice(d, d, &reference.sigma));
    let z = &f * &root;
    let trace_reference: f64 = (0..d).map(|i| reference.sigma[i * d + i]).sum();
    let values: Vec<f64> = resample_indices(n, options)
        .iter()
        .map(|idx| {
            let pick = |m: &DMatrix<f64>| DMatrix::from_fn(n, d, |i, j| m[(idx[i], j)]);
            let (fx, zx) = (pick(&f), pick(&z));
            let mu = fx.row_mean();
            let mean_term: f64 = mu
                .iter()
                .zip(&reference.mu)
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            let centred = DMatrix::from_fn(n, d, |i, j| fx[(i, j)] - mu[j]);
            let trace_samples = centred.norm_squared() / (n as f64 - 1.0);
            let zmu = zx.row_mean();
            let y = DMatrix::from_fn(n, d, |i, j| zx[(i, j)] - zmu[j]);
            let gram = (&y * y.transpose()) / (n as f64 - 1.0);
            let gram = (&gram + gram.transpose()) * 0.5;
            let eigenvalues = gram.symmetric_eigenvalues();
            let cut = zero_cut(&eigenvalues);
            let cross: f64 = eigenvalues
                .iter()
                .filter(|&&l| l > cut)
                .map(|l| l.sqrt())
                .sum();
            (mean_term + trace_samples + trace_reference - 2.0 * cross).max(0.0)
        })
        .collect();
    Ok(spread(&values))
}

/// KID (the full-set unbiased MMD², see the module doc) of the resampled samples against the
/// reference's features; the reference's within term over at most [`WITHIN_REFERENCE_MAX`]
/// of its rows (a seeded subset).
///
/// # Errors
/// [`EvalError::Input`] for fewer than 2 resamples, samples or reference rows, or differing
/// dimensions.
pub fn kid_spread(
    samples: &Features,
    reference: &Features,
    options: Bootstrap,
) -> Result<Spread, EvalError> {
    let d = reference.dim;
    check(samples, d, options)?;
    if reference.count < 2 {
        return Err(EvalError::input(
            "bootstrap",
            format!("{} reference rows; expected at least 2", reference.count),
        ));
    }
    let matrix = |f: &Features, rows: &[usize]| {
        DMatrix::from_fn(rows.len(), d, |i, j| f64::from(f.values[rows[i] * d + j]))
    };
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    let (x, y) = (
        matrix(samples, &all(samples.count)),
        matrix(reference, &all(reference.count)),
    );
    let kernel = |g: &DMatrix<f64>| g.map(|v| (v / d as f64 + 1.0).powi(3));
    let kxx = kernel(&(&x * x.transpose()));
    let kxy = kernel(&(&x * y.transpose()));
    // The reference's own term is the same for every resample (it moves the mean, not the
    // spread): over a seeded subset of at most WITHIN_REFERENCE_MAX rows, an unbiased
    // estimate of the same expectation, so that a whole test split costs no m × m table.
    let rows = if reference.count > WITHIN_REFERENCE_MAX {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5eed);
        rand::seq::index::sample(&mut rng, reference.count, WITHIN_REFERENCE_MAX).into_vec()
    } else {
        all(reference.count)
    };
    let ys = matrix(reference, &rows);
    let kyy = kernel(&(&ys * ys.transpose()));
    let r = rows.len() as f64;
    let within_reference = (kyy.sum() - kyy.trace()) / (r * (r - 1.0));
    let m = reference.count as f64;
    // Each sample row's summed kernel against the reference: a resample's cross term adds them.
    let cross_rows: Vec<f64> = (0..samples.count).map(|i| kxy.row(i).sum()).collect();
    let values: Vec<f64> = resample_indices(samples.count, options)
        .iter()
        .map(|idx| {
            let (mut within, mut pairs) = (0.0, 0usize);
            for &a in idx {
                for &b in idx {
                    if a != b {
                        within += kxx[(a, b)];
                        pairs += 1;
                    }
                }
            }
            let cross: f64 = idx.iter().map(|&a| cross_rows[a]).sum::<f64>();
            within / pairs.max(1) as f64 + within_reference - 2.0 * cross / (idx.len() as f64 * m)
        })
        .collect();
    Ok(spread(&values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fid::frechet_distance;

    fn features(count: usize, dim: usize, seed: u64, shift: f32) -> Features {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values = (0..count * dim)
            .map(|i| rng.random_range(-1.0f32..1.0) * (1.0 + (i % dim) as f32 / dim as f32) + shift)
            .collect();
        Features::new(count, dim, values).unwrap()
    }

    fn rows(f: &Features, idx: &[usize]) -> Features {
        let values = idx.iter().flat_map(|&i| f.row(i).iter().copied()).collect();
        Features::new(idx.len(), f.dim, values).unwrap()
    }

    /// Each resample's FID through the Gram trick equals FID recomputed by brute force
    /// (statistics of the resampled rows, then the d × d Fréchet distance), for N below and
    /// above d.
    #[test]
    fn fid_resamples_match_brute_force() {
        for (n, d) in [(12, 20), (40, 8)] {
            let samples = features(n, d, 1, 0.3);
            let reference = GaussianStats::from_features(&features(30, d, 2, 0.0)).unwrap();
            let options = Bootstrap {
                resamples: 6,
                seed: 5,
            };
            let brute: Vec<f64> = resample_indices(n, options)
                .iter()
                .map(|idx| {
                    let stats = GaussianStats::from_features(&rows(&samples, idx)).unwrap();
                    frechet_distance(&stats, &reference).unwrap()
                })
                .collect();
            let got = fid_spread(&samples, &reference, options).unwrap();
            let want = spread(&brute);
            assert!(
                (got.mean - want.mean).abs() < 1e-9 * want.mean
                    && (got.sd - want.sd).abs() < 1e-7 * want.mean,
                "{n}x{d}: {got:?} vs {want:?}"
            );
        }
    }

    /// KID on each resample against the unbiased MMD² written out pair by pair (repeats of one
    /// image left out of the within term).
    #[test]
    fn kid_resamples_match_brute_force() {
        let (n, m, d) = (9, 7, 5);
        let samples = features(n, d, 3, 0.2);
        let reference = features(m, d, 4, 0.0);
        let options = Bootstrap {
            resamples: 5,
            seed: 9,
        };
        let k = |a: &[f32], b: &[f32]| {
            let dot: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            (dot / d as f64 + 1.0).powi(3)
        };
        let brute: Vec<f64> = resample_indices(n, options)
            .iter()
            .map(|idx| {
                let (mut xx, mut pairs) = (0.0, 0.0);
                for &a in idx {
                    for &b in idx {
                        if a != b {
                            xx += k(samples.row(a), samples.row(b));
                            pairs += 1.0;
                        }
                    }
                }
                let mut yy = 0.0;
                for a in 0..m {
                    for b in 0..m {
                        if a != b {
                            yy += k(reference.row(a), reference.row(b));
                        }
                    }
                }
                let mut xy = 0.0;
                for &a in idx {
                    for b in 0..m {
                        xy += k(samples.row(a), reference.row(b));
                    }
                }
                xx / pairs + yy / (m * (m - 1)) as f64 - 2.0 * xy / (n * m) as f64
            })
            .collect();
        let got = kid_spread(&samples, &reference, options).unwrap();
        let want = spread(&brute);
        assert!((got.mean - want.mean).abs() < 1e-10 && (got.sd - want.sd).abs() < 1e-10);
        assert!(got.sd > 0.0);
    }

    #[test]
    fn bad_requests_are_errors() {
        let samples = features(5, 3, 1, 0.0);
        let reference = GaussianStats::from_features(&features(5, 4, 1, 0.0)).unwrap();
        let ok = Bootstrap {
            resamples: 3,
            seed: 0,
        };
        assert!(fid_spread(&samples, &reference, ok).is_err(), "dimensions");
        let one = Bootstrap {
            resamples: 1,
            seed: 0,
        };
        assert!(kid_spread(&samples, &samples, one).is_err(), "resamples");
    }
}
