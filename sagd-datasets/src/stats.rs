//! Dataset statistics: mean image, Fourier-mode variances (power spectra), radially averaged
//! power spectral densities and the PCA spectrum of the pixel covariance.
//!
//! Conventions, shared by every function here:
//! - pixels are read as [`Dataset::write_image`] reads them (`v / 255` for u8 sources), in f64;
//! - spectra use the **unitary** 2-D DFT per channel, `F_u x(k) = (HW)^{-1/2} Σ_n x(n)
//!   e^{-2πi⟨k,n⟩}`, tabulated H×W row-major in `fftfreq` order (see [`sagd_core::grid`]);
//! - second moments are taken **after subtracting the dataset mean image** and divided by N
//!   (the number of images): they are the eigenvalues of the empirical covariance
//!   `(1/N) Σ_i (x_i - x̄)(x_i - x̄)ᵀ`. The unbiased estimate is `N/(N-1)` times these. So
//!   [`mode_variances`] are the diagonal of that covariance in the Fourier basis and
//!   `Σ mode_variances = Σ pca_spectrum = tr` (Parseval);
//! - sums over images run over a partition into at most 64 fixed blocks that depends only on
//!   N, summed in order: the results are the same for any number of threads.

use std::ops::Range;
use std::sync::Arc;

use nalgebra::DMatrix;
use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use sagd_core::{FrequencyGrid, RadiusConvention};

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;

/// Largest image dimension `C·H·W` that [`pca_spectrum`] accepts (3×32×32).
pub const PCA_MAX_DIM: usize = 3072;

/// Number of blocks the images are split into for parallel sums (fixed, for reproducibility).
const BLOCKS: usize = 64;

/// Image `i` of `d` as f64 (u8 sources as `v / 255`) into `out`.
fn read_image(d: &Dataset, i: usize, out: &mut [f64]) {
    let n = d.image_len();
    match d.pixels() {
        Pixels::U8(v) => {
            for (o, b) in out.iter_mut().zip(&v[i * n..(i + 1) * n]) {
                *o = *b as f64 / 255.0;
            }
        }
        Pixels::F32(v) => {
            for (o, x) in out.iter_mut().zip(&v[i * n..(i + 1) * n]) {
                *o = *x as f64;
            }
        }
    }
}

/// The fixed partition of `0..n` into at most [`BLOCKS`] consecutive ranges.
fn blocks(n: usize) -> Vec<Range<usize>> {
    let size = n.div_ceil(BLOCKS).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Sums per-block accumulators of length `len` computed in parallel, in block order.
fn block_sum(
    n: usize,
    len: usize,
    per_block: impl Fn(Range<usize>, &mut [f64]) + Sync,
) -> Vec<f64> {
    let partial: Vec<Vec<f64>> = blocks(n)
        .into_par_iter()
        .map(|range| {
            let mut acc = vec![0.0; len];
            per_block(range, &mut acc);
            acc
        })
        .collect();
    let mut total = vec![0.0; len];
    for p in &partial {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// The mean image (C·H·W values, f64). An empty dataset gives NaN everywhere.
pub fn mean_image(d: &Dataset) -> Vec<f64> {
    let len = d.image_len();
    let n = d.len();
    let sum = block_sum(n, len, |range, acc| {
        let mut image = vec![0.0; len];
        for i in range {
            read_image(d, i, &mut image);
            for (a, v) in acc.iter_mut().zip(&image) {
                *a += v;
            }
        }
    });
    sum.into_iter().map(|s| s / n as f64).collect()
}

/// The mean of every pixel of every image and channel (NaN for an empty dataset).
pub fn mean_pixel(d: &Dataset) -> f64 {
    let m = mean_image(d);
    m.iter().sum::<f64>() / m.len() as f64
}

/// A real 2-D FFT of one H×W plane: `rfft` along rows, complex FFT along the `W/2 + 1`
/// columns. Reports the unitary power `|F_u x|²` on the half plane.
struct Fft2 {
    height: usize,
    width: usize,
    r2c: Arc<dyn RealToComplex<f64>>,
    columns: Arc<dyn Fft<f64>>,
}

/// Per-thread buffers of [`Fft2`].
struct Fft2Work {
    row: Vec<f64>,
    row_spectrum: Vec<Complex<f64>>,
    /// Half spectrum, column-major: `W/2 + 1` columns of length H.
    half: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl Fft2 {
    fn new(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            r2c: RealFftPlanner::<f64>::new().plan_fft_forward(width),
            columns: FftPlanner::<f64>::new().plan_fft_forward(height),
        }
    }

    fn half_width(&self) -> usize {
        self.width / 2 + 1
    }

    fn work(&self) -> Fft2Work {
        let wc = self.half_width();
        let scratch = self
            .r2c
            .get_scratch_len()
            .max(self.columns.get_inplace_scratch_len());
        Fft2Work {
            row: vec![0.0; self.width],
            row_spectrum: vec![Complex::default(); wc],
            half: vec![Complex::default(); self.height * wc],
            scratch: vec![Complex::default(); scratch],
        }
    }

    /// Adds `|F_u plane|²` on the half plane (H × (W/2+1), row-major) to `acc`.
    fn add_power(&self, ws: &mut Fft2Work, plane: &[f64], acc: &mut [f64]) {
        let (h, w, wc) = (self.height, self.width, self.half_width());
        for k in 0..h {
            ws.row.copy_from_slice(&plane[k * w..(k + 1) * w]);
            self.r2c
                .process_with_scratch(&mut ws.row, &mut ws.row_spectrum, &mut ws.scratch)
                .expect("buffer lengths match the plan");
            for l in 0..wc {
                ws.half[l * h + k] = ws.row_spectrum[l];
            }
        }
        self.columns
            .process_with_scratch(&mut ws.half, &mut ws.scratch);
        let unitary = 1.0 / (h * w) as f64;
        for k in 0..h {
            for l in 0..wc {
                acc[k * wc + l] += ws.half[l * h + k].norm_sqr() * unitary;
            }
        }
    }

    /// Expands a half-plane table to the full H×W grid using `P(-f) = P(f)`.
    fn expand(&self, half: &[f64]) -> Vec<f64> {
        let (h, w, wc) = (self.height, self.width, self.half_width());
        let grid = FrequencyGrid::new(h, w);
        let mut full = vec![0.0; h * w];
        for k in 0..h {
            for l in 0..w {
                let (hk, hl) = if l < wc { (k, l) } else { grid.mirror(k, l) };
                full[k * w + l] = half[hk * wc + hl];
            }
        }
        full
    }
}

/// Variance of every Fourier mode of every channel, `E|F_u (x - x̄)|²` over the images, C×H×W
/// in `fftfreq` order (see the module conventions: mean image subtracted, divided by N). An
/// empty dataset gives NaN everywhere.
pub fn mode_variances(d: &Dataset) -> Vec<f64> {
    let [c, h, w] = d.shape();
    let n = d.len();
    if n == 0 {
        return vec![f64::NAN; c * h * w];
    }
    let mean = mean_image(d);
    let fft = Fft2::new(h, w);
    let half_len = h * fft.half_width();
    let total = block_sum(n, c * half_len, |range, acc| {
        let mut ws = fft.work();
        let mut image = vec![0.0; c * h * w];
        for i in range {
            read_image(d, i, &mut image);
            for (v, m) in image.iter_mut().zip(&mean) {
                *v -= m;
            }
            for (plane, a) in image.chunks(h * w).zip(acc.chunks_mut(half_len)) {
                fft.add_power(&mut ws, plane, a);
            }
        }
    });
    total
        .chunks(half_len)
        .flat_map(|half| {
            let avg: Vec<f64> = half.iter().map(|v| v / n as f64).collect();
            fft.expand(&avg)
        })
        .collect()
}

/// The 2-D power spectrum: [`mode_variances`] averaged over channels, H×W in `fftfreq` order.
/// It is computed after subtracting the dataset mean image, so it is the variance of each
/// Fourier mode (the mean's own spectrum, mostly DC, is not in it).
pub fn power_spectrum(d: &Dataset) -> Vec<f64> {
    let [c, h, w] = d.shape();
    let per_channel = mode_variances(d);
    let mut out = vec![0.0; h * w];
    for plane in per_channel.chunks(h * w) {
        for (o, v) in out.iter_mut().zip(plane) {
            *o += v / c as f64;
        }
    }
    out
}

/// The second moment of each Fourier mode, `E|F x|²` per pixel-normalized mode, averaged over
/// channels (H×W in `fftfreq` order): the [`power_spectrum`] (variance) plus the mean image's own
/// power. This is the signal a forward process must drown: the terminal-SNR check compares it
/// with the noise power.
pub fn second_moment_spectrum(d: &Dataset) -> Result<Vec<f64>, DatasetError> {
    let mut moment = power_spectrum(d);
    // The mean image's power is the variance of the two-image dataset {m, -m}, whose mean is
    // zero: the same normalization as the variance above.
    let mean: Vec<f32> = mean_image(d).iter().map(|&v| v as f32).collect();
    let both: Vec<f32> = mean
        .iter()
        .copied()
        .chain(mean.iter().map(|v| -v))
        .collect();
    let pair = Dataset::new("mean image", d.shape(), Pixels::F32(both), None)?;
    for (s, m) in moment.iter_mut().zip(power_spectrum(&pair)) {
        *s += m;
    }
    Ok(moment)
}

/// One bin of a radially averaged spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadialBin {
    /// Radius of the bin centre, in the convention the spectrum was asked in.
    pub radius: f64,
    /// Mean of the power over the frequencies in the bin.
    pub power: f64,
    /// Number of grid frequencies in the bin (at least 1: empty bins are left out).
    pub count: usize,
}

/// The radially averaged power spectral density of `d` ([`power_spectrum`], centred), with
/// bins one frequency step wide: `Δ = 1 / max(H, W)` cycles per pixel, bin `i` covering radii
/// `[iΔ, (i+1)Δ)` in cycles per pixel (so the DC term is alone in bin 0 and an axis frequency
/// `k/max(H,W)` falls in bin `k`). `radius` of each bin is its centre `(i + ½)Δ` converted to
/// the `radius` convention. Bins without a frequency are left out.
pub fn radial_psd(d: &Dataset, radius: RadiusConvention) -> Vec<RadialBin> {
    let [_, h, w] = d.shape();
    radial_profile(&power_spectrum(d), h, w, radius)
}

/// The radial average of any H×W table in `fftfreq` order (a power spectrum, a spectrum's
/// `w(f)²`, mode variances) with the bins of [`radial_psd`]: one frequency step
/// `Δ = 1 / max(H, W)` wide, DC alone in bin 0, each bin's radius its centre in `radius`.
pub fn radial_profile(
    table: &[f64],
    height: usize,
    width: usize,
    radius: RadiusConvention,
) -> Vec<RadialBin> {
    let delta = 1.0 / height.max(width) as f64;
    let bins = (std::f64::consts::FRAC_1_SQRT_2 / delta).ceil() as usize;
    radial_bins(
        table,
        FrequencyGrid::new(height, width),
        radius,
        delta,
        bins,
    )
}

/// [`radial_psd`] with `bins` equal-width bins over `[0, radius.max_radius()]` (the whole
/// range of the convention, up to the corner `(½, ½)`). Bins without a frequency are left out.
/// `bins = 0` is an error.
pub fn radial_psd_bins(
    d: &Dataset,
    radius: RadiusConvention,
    bins: usize,
) -> Result<Vec<RadialBin>, DatasetError> {
    let [_, h, w] = d.shape();
    radial_average(&power_spectrum(d), h, w, radius, bins)
}

/// Radial average of any H×W table in `fftfreq` order (e.g.
/// [`GrfConfig::mode_variances`](crate::synthetic::GrfConfig::mode_variances) or a spectrum's
/// power), with `bins`
/// equal-width bins over `[0, radius.max_radius()]`; the same binning as [`radial_psd_bins`].
pub fn radial_average(
    table: &[f64],
    height: usize,
    width: usize,
    radius: RadiusConvention,
    bins: usize,
) -> Result<Vec<RadialBin>, DatasetError> {
    if bins == 0 {
        return Err(DatasetError::param(
            "radial average",
            "bins",
            0,
            "at least 1",
        ));
    }
    if table.len() != height * width {
        return Err(DatasetError::param(
            "radial average",
            "table",
            format!("{} values", table.len()),
            &format!("{height}x{width} = {} values", height * width),
        ));
    }
    let delta = std::f64::consts::FRAC_1_SQRT_2 / bins as f64;
    Ok(radial_bins(
        table,
        FrequencyGrid::new(height, width),
        radius,
        delta,
        bins,
    ))
}

/// Bins of width `delta` (cycles per pixel), `bins` of them, the last one closed.
fn radial_bins(
    table: &[f64],
    grid: FrequencyGrid,
    radius: RadiusConvention,
    delta: f64,
    bins: usize,
) -> Vec<RadialBin> {
    let mut sum = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    for (f, v) in grid.frequencies().zip(table) {
        // A tiny relative slack keeps radii that sit exactly on an edge (k·Δ, computed through
        // a square root) in the bin that starts there.
        let i = ((f.radius_cycles() / delta) * (1.0 + 1e-12)).floor() as usize;
        let i = i.min(bins - 1);
        sum[i] += v;
        count[i] += 1;
    }
    (0..bins)
        .filter(|&i| count[i] > 0)
        .map(|i| RadialBin {
            radius: radius.from_cycles((i as f64 + 0.5) * delta),
            power: sum[i] / count[i] as f64,
            count: count[i],
        })
        .collect()
}

/// Eigenvalues of the pixel covariance `(1/N) Σ_i (x_i - x̄)(x_i - x̄)ᵀ` of the first
/// `max_images` images (all when `None`), in descending order, `C·H·W` of them (zeros beyond
/// the rank). Dimensions above [`PCA_MAX_DIM`] are an error. When N < C·H·W the N×N Gram
/// matrix is diagonalized instead (same non-zero eigenvalues). Rounding can make the
/// eigenvalues of this positive semi-definite matrix slightly negative; they are clamped to 0.
///
/// Cost: `N·m²` for the product (m = min(N, C·H·W), parallel) plus a dense symmetric
/// eigensolver on m×m (nalgebra, single-threaded, roughly `m³` and memory-bound). Measured
/// on 2 cores: about 2 s for 1000 images of 3×32×32, about 30 s for the full 3072×3072
/// covariance. Pass `max_images` to bound it.
pub fn pca_spectrum(d: &Dataset, max_images: Option<usize>) -> Result<Vec<f64>, DatasetError> {
    let dim = d.image_len();
    let [c, h, w] = d.shape();
    if dim > PCA_MAX_DIM {
        return Err(DatasetError::param(
            "pca_spectrum",
            "image size",
            format!("{c}x{h}x{w} = {dim} values"),
            &format!("at most {PCA_MAX_DIM} values per image (3x32x32)"),
        ));
    }
    if max_images == Some(0) {
        return Err(DatasetError::param(
            "pca_spectrum",
            "max_images",
            0,
            "at least 1",
        ));
    }
    let n = max_images.map_or(d.len(), |m| m.min(d.len()));
    if n == 0 {
        return Err(DatasetError::Empty {
            path: d.name().into(),
            message: "no image to compute a PCA spectrum from".to_string(),
        });
    }
    let x = centred_matrix(d, n);
    let route = if n < dim {
        Route::Gram
    } else {
        Route::Covariance
    };
    Ok(eigenvalues(&x, route))
}

/// Which matrix [`eigenvalues`] diagonalizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `X Xᵀ / N`, d×d.
    Covariance,
    /// `Xᵀ X / N`, N×N.
    Gram,
}

/// The first `n` images as the columns of a d×n matrix, minus their mean.
fn centred_matrix(d: &Dataset, n: usize) -> DMatrix<f64> {
    let dim = d.image_len();
    let mut data = vec![0.0; dim * n];
    data.par_chunks_mut(dim)
        .enumerate()
        .for_each(|(i, col)| read_image(d, i, col));
    let mean = block_sum(n, dim, |range, acc| {
        for i in range {
            for (a, v) in acc.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                *a += v;
            }
        }
    });
    data.par_chunks_mut(dim).for_each(|col| {
        for (v, m) in col.iter_mut().zip(&mean) {
            *v -= m / n as f64;
        }
    });
    DMatrix::from_vec(dim, n, data)
}

/// Descending, clamped eigenvalues of `X Xᵀ / N` (padded with zeros to d when the Gram route
/// is taken). Only the lower triangle of the product is computed (it is all the symmetric
/// eigensolver reads), in parallel over a fixed partition into column blocks.
fn eigenvalues(x: &DMatrix<f64>, route: Route) -> Vec<f64> {
    let (dim, n) = x.shape();
    let m = match route {
        Route::Covariance => dim,
        Route::Gram => n,
    };
    let block = m.div_ceil(16).max(1);
    let starts: Vec<usize> = (0..m).step_by(block).collect();
    // Block j: rows j.. of columns j..j+b.
    let parts: Vec<DMatrix<f64>> = starts
        .par_iter()
        .map(|&j| {
            let b = block.min(m - j);
            match route {
                Route::Covariance => x.rows(j, m - j) * x.rows(j, b).transpose(),
                Route::Gram => x.columns(j, m - j).tr_mul(&x.columns(j, b)),
            }
        })
        .collect();
    let mut matrix = DMatrix::<f64>::zeros(m, m);
    for (&j, part) in starts.iter().zip(&parts) {
        matrix
            .view_mut((j, j), (part.nrows(), part.ncols()))
            .copy_from(part);
    }
    matrix.fill_upper_triangle_with_lower_triangle();
    matrix /= n as f64;
    let mut values: Vec<f64> = matrix
        .symmetric_eigenvalues()
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    values.resize(dim, 0.0);
    values.sort_by(|a, b| b.total_cmp(a));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(shape: [usize; 3], values: Vec<f32>) -> Dataset {
        Dataset::new("test", shape, Pixels::F32(values), None).unwrap()
    }

    /// A fixed pseudo-random dataset (no RNG crate needed).
    fn noise(shape: [usize; 3], n: usize) -> Dataset {
        let len = n * shape.iter().product::<usize>();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let values = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        dataset(shape, values)
    }

    #[test]
    fn gram_and_covariance_routes_agree() {
        let d = noise([1, 3, 4], 7); // N = 7 < d = 12: rank 6 after centring
        let x = centred_matrix(&d, 7);
        let gram = eigenvalues(&x, Route::Gram);
        let cov = eigenvalues(&x, Route::Covariance);
        assert_eq!(gram.len(), 12);
        assert_eq!(cov.len(), 12);
        for (g, c) in gram.iter().zip(&cov) {
            assert!((g - c).abs() < 1e-12, "{gram:?} vs {cov:?}");
        }
        // Centring removes one direction: the 7th eigenvalue on is zero.
        assert!(gram[5] > 1e-3);
        assert!(cov[6..].iter().all(|v| *v < 1e-12));
    }

    #[test]
    fn pca_trace_equals_total_mode_variance() {
        // Parseval: both are the trace of the same empirical covariance.
        let d = noise([2, 4, 5], 30);
        let pca: f64 = pca_spectrum(&d, None).unwrap().iter().sum();
        let modes: f64 = mode_variances(&d).iter().sum();
        assert!((pca - modes).abs() < 1e-10 * modes, "{pca} vs {modes}");
    }

    #[test]
    fn mean_image_of_u8_reads_v_over_255() {
        let d = Dataset::new("u8", [1, 1, 2], Pixels::U8(vec![0, 255, 255, 255]), None).unwrap();
        assert_eq!(mean_image(&d), vec![0.5, 1.0]);
        assert_eq!(mean_pixel(&d), 0.75);
    }

    #[test]
    fn blocks_partition_the_images() {
        for n in [0, 1, 5, 64, 65, 1000] {
            let b = blocks(n);
            assert!(b.len() <= BLOCKS);
            let covered: Vec<usize> = b.into_iter().flatten().collect();
            assert_eq!(covered, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn radial_average_rejects_zero_bins_and_wrong_tables() {
        assert!(radial_average(&[1.0; 4], 2, 2, RadiusConvention::Unit, 0).is_err());
        assert!(radial_average(&[1.0; 3], 2, 2, RadiusConvention::Unit, 3).is_err());
    }
}
