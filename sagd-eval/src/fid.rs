//! The Fréchet Inception Distance between two Gaussians fitted to features (Heusel et al.
//! 2017), computed as pytorch-fid does but with the matrix square root taken through symmetric
//! eigendecompositions:
//!
//! `FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}`.
//!
//! `(Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}` has the same trace as pytorch-fid's `sqrtm(Σ₁ Σ₂)` (the two
//! matrices are similar), but is symmetric positive semi-definite, so its eigenvalues are real
//! and the trace needs no complex arithmetic or regularising offset, also when N < d makes the
//! covariances singular. Statistics are f64; the covariance divides by N − 1 (`np.cov`).
//! Statistics files use pytorch-fid's `.npz` layout: `mu` (d,) and `sigma` (d, d), float64.

use std::path::Path;

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rayon::prelude::*;
use sagd_datasets::npz::{read_npz_f64, write_npz_f64};

use crate::error::EvalError;
use crate::features::Features;

/// The mean and covariance of a set of features.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianStats {
    /// The mean, `d` values.
    pub mu: Vec<f64>,
    /// The covariance with N − 1, `d × d` row-major.
    pub sigma: Vec<f64>,
    /// The number of feature vectors, when known (a statistics file does not store it).
    pub count: Option<usize>,
}

impl GaussianStats {
    /// The dimension `d`.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// Mean and covariance (with N − 1, as `np.cov`) of `features`, in f64.
    ///
    /// # Errors
    /// [`EvalError::Input`] for fewer than 2 feature vectors.
    pub fn from_features(features: &Features) -> Result<Self, EvalError> {
        let (n, d) = (features.count, features.dim);
        if n < 2 {
            return Err(EvalError::input(
                "features",
                format!("{n} feature vector(s); a covariance needs at least 2"),
            ));
        }
        let mut mu = vec![0.0f64; d];
        for i in 0..n {
            for (m, &v) in mu.iter_mut().zip(features.row(i)) {
                *m += f64::from(v);
            }
        }
        mu.iter_mut().for_each(|m| *m /= n as f64);
        // Centred features as an N×d matrix; Σ = XᵀX / (N − 1).
        let centred = DMatrix::from_fn(n, d, |i, j| f64::from(features.values[i * d + j]) - mu[j]);
        let sigma = centred.tr_mul(&centred) / (n as f64 - 1.0);
        Ok(Self {
            mu,
            sigma: row_major(&sigma),
            count: Some(n),
        })
    }

    /// Reads pytorch-fid statistics: `mu` (d,) and `sigma` (d, d) from an `.npz` file (float64
    /// read exactly, float32 widened).
    ///
    /// # Errors
    /// [`EvalError::Dataset`] when the file or an array cannot be read; [`EvalError::Stats`]
    /// when the shapes disagree, `sigma` is not symmetric, or a value is not finite.
    pub fn load_npz(path: &Path) -> Result<Self, EvalError> {
        let stats_err = |message: String| EvalError::Stats {
            path: path.to_path_buf(),
            message,
        };
        let (mu_shape, mu) = read_npz_f64(path, "mu")?;
        let (sigma_shape, sigma) = read_npz_f64(path, "sigma")?;
        let d = mu.len();
        if mu_shape.len() != 1 || sigma_shape != [d, d] {
            return Err(stats_err(format!(
                "`mu` has shape {mu_shape:?} and `sigma` {sigma_shape:?}; expected (d,) and (d, d)"
            )));
        }
        if d == 0 {
            return Err(stats_err("`mu` is empty".into()));
        }
        if let Some(i) = mu.iter().chain(&sigma).position(|v| !v.is_finite()) {
            return Err(stats_err(format!(
                "non-finite value in `{}`",
                if i < d { "mu" } else { "sigma" }
            )));
        }
        let scale = sigma.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
        for i in 0..d {
            for j in 0..i {
                if (sigma[i * d + j] - sigma[j * d + i]).abs() > 1e-6 * scale {
                    return Err(stats_err(format!(
                        "`sigma` is not symmetric (entries ({i}, {j}) and ({j}, {i}) differ)"
                    )));
                }
            }
        }
        Ok(Self {
            mu,
            sigma,
            count: None,
        })
    }

    /// Writes `mu` and `sigma` (float64) to an `.npz` file in pytorch-fid's layout, atomically.
    ///
    /// # Errors
    /// [`EvalError::Write`] when the file cannot be written.
    pub fn save_npz(&self, path: &Path) -> Result<(), EvalError> {
        let d = self.dim();
        write_npz_f64(
            path,
            &[("mu", &[d], &self.mu), ("sigma", &[d, d], &self.sigma)],
        )?;
        Ok(())
    }
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    // nalgebra stores columns; the transpose's column-major order is the row-major order.
    m.transpose().as_slice().to_vec()
}

/// Eigenvalues below this multiple of the largest are round-off of the symmetric solver (its
/// backward error is a few machine epsilons of the matrix norm, times the dimension): they are
/// zero. Without the cut, the square roots of N < d covariances' round-off eigenvalues (~1e-16)
/// would add ~1e-8 each to the trace.
pub(crate) fn zero_cut(eigenvalues: &DVector<f64>) -> f64 {
    let largest = eigenvalues.iter().fold(0.0f64, |a, l| a.max(l.abs()));
    largest * eigenvalues.len() as f64 * f64::EPSILON
}

/// The square root of a symmetric positive semi-definite matrix through its eigendecomposition,
/// `V diag(√λ) Vᵀ` with eigenvalues at round-off level (or negative by round-off) set to 0.
pub(crate) fn sqrt_psd(m: DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(m);
    let cut = zero_cut(&eigen.eigenvalues);
    let roots: Vec<f64> = eigen
        .eigenvalues
        .iter()
        .map(|&l| if l > cut { l.sqrt() } else { 0.0 })
        .collect();
    let v = &eigen.eigenvectors;
    let scaled = DMatrix::from_fn(v.nrows(), v.ncols(), |i, j| v[(i, j)] * roots[j]);
    &scaled * v.transpose()
}

/// `tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}` for two symmetric positive semi-definite `d × d`
/// matrices (row-major): the eigenvalues of the symmetric product, those at round-off level set
/// to 0, square-rooted and summed.
pub fn trace_sqrt_product(sigma1: &[f64], sigma2: &[f64], d: usize) -> f64 {
    let s1 = DMatrix::from_row_slice(d, d, sigma1);
    let s2 = DMatrix::from_row_slice(d, d, sigma2);
    let root = sqrt_psd(s1);
    let product = &root * s2 * &root;
    // Symmetrise away the round-off of the products before the symmetric solver.
    let product = (&product + product.transpose()) * 0.5;
    let eigenvalues = product.symmetric_eigenvalues();
    let cut = zero_cut(&eigenvalues);
    eigenvalues
        .iter()
        .filter(|&&l| l > cut)
        .map(|l| l.sqrt())
        .sum()
}

/// The Fréchet distance between two Gaussians (see the module doc); round-off below 0 is
/// returned as 0.
///
/// # Errors
/// [`EvalError::Input`] when the dimensions differ, or the distance comes out clearly negative
/// (a covariance that is not positive semi-definite).
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> Result<f64, EvalError> {
    let d = a.dim();
    if b.dim() != d || a.sigma.len() != d * d || b.sigma.len() != d * d {
        return Err(EvalError::input(
            "statistics",
            format!(
                "dimensions {} and {} differ (features of different networks?)",
                a.dim(),
                b.dim()
            ),
        ));
    }
    for (which, stats) in [("first", a), ("second", b)] {
        if let Some(i) = (0..d).find(|&i| stats.sigma[i * d + i] < 0.0) {
            return Err(EvalError::input(
                "statistics",
                format!(
                    "the {which} covariance has the negative variance {} at ({i}, {i}): not a \
                     covariance (corrupt statistics file?)",
                    stats.sigma[i * d + i]
                ),
            ));
        }
    }
    let mean_term: f64 = a.mu.iter().zip(&b.mu).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |s: &[f64]| (0..d).map(|i| s[i * d + i]).sum::<f64>();
    let cross = trace_sqrt_product(&a.sigma, &b.sigma, d);
    let (trace_a, trace_b) = (trace(&a.sigma), trace(&b.sigma));
    let fid = mean_term + trace_a + trace_b - 2.0 * cross;
    // FID ≥ 0 for covariances (positive semi-definite): round-off leaves ~1e-14 below 0, a
    // corrupt covariance (negative eigenvalues) much more.
    let scale = mean_term + trace_a.abs() + trace_b.abs();
    if fid < -1e-9 * scale.max(1.0) {
        return Err(EvalError::input(
            "statistics",
            format!(
                "FID comes out negative ({fid:e}): a covariance is not positive semi-definite \
                 (corrupt statistics file or weights?)"
            ),
        ));
    }
    Ok(fid.max(0.0))
}

/// FID between two sets of features: [`GaussianStats::from_features`] of each, then
/// [`frechet_distance`]. Runs the two covariances in parallel.
///
/// # Errors
/// Those of [`GaussianStats::from_features`] and [`frechet_distance`].
pub fn fid(a: &Features, b: &Features) -> Result<f64, EvalError> {
    let stats: Vec<Result<GaussianStats, EvalError>> = [a, b]
        .par_iter()
        .map(|f| GaussianStats::from_features(f))
        .collect();
    let mut stats = stats.into_iter();
    let (sa, sb) = (stats.next().expect("two")?, stats.next().expect("two")?);
    frechet_distance(&sa, &sb)
}
