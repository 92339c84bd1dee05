//! `Σ_w = F⁻¹ diag(w²) F` on a (C, H, W) image grid, and the operations the framework needs:
//! colour (`Σ^{1/2}`), whiten (`Σ^{-1/2}`, pseudo-inverse off the support), apply `Σ` and `Σ⁺`,
//! project onto the support, rank, log-determinant, and exact Gaussian draws.
//!
//! Every operator is diagonal in the Fourier basis, so each is one real 2-D FFT per channel:
//! `rfft` along rows, a complex FFT along the `W/2 + 1` columns, a multiplication, and back.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftNum, FftPlanner};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, SpectrumError, invalid_value};
use crate::grid::FrequencyGrid;
use crate::spectrum::NoiseSpectrum;

/// How the amplitudes of a spectrum are scaled on a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// Scale `w` so that `mean_f w(f)² = 1`: every pixel has variance 1 and `tr Σ_w = CHW`, as
    /// for white noise (the papers' Eq. 15). Exact Gaussian.
    #[default]
    Energy,
    /// Use `w` as given.
    None,
    /// Divide each drawn noise image (per sample and channel) by its own spatial standard
    /// deviation, as the papers' Appendix-E code does. The draws are then *not* Gaussian;
    /// `Σ_w` reported by the covariance is the `energy`-normalized one, which they approach for
    /// large images. Offered only to reproduce the papers.
    PerSampleStd,
}

impl Normalization {
    /// The name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Energy => "energy",
            Self::None => "none",
            Self::PerSampleStd => "per-sample-std",
        }
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Normalization {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "energy" => Ok(Self::Energy),
            "none" => Ok(Self::None),
            "per-sample-std" => Ok(Self::PerSampleStd),
            other => Err(crate::error::invalid_value(
                "normalization",
                other,
                "one of energy, none, per-sample-std",
            )),
        }
    }
}

/// The real float types the host operators run in (`f32` for noise, `f64` for verification).
pub trait Real: FftNum + rustfft::num_traits::Float + Default {
    /// Conversion from `f64` (rounding for `f32`).
    fn of(x: f64) -> Self;
    /// Conversion to `f64`.
    fn as_f64(self) -> f64;
    /// A standard normal draw.
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self;
    #[doc(hidden)]
    fn plan_cache(cache: &PlanCache) -> &OnceLock<Plans<Self>>;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        StandardNormal.sample(rng)
    }
    fn plan_cache(cache: &PlanCache) -> &OnceLock<Plans<Self>> {
        &cache.f32
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        StandardNormal.sample(rng)
    }
    fn plan_cache(cache: &PlanCache) -> &OnceLock<Plans<Self>> {
        &cache.f64
    }
}

/// FFT plans for one grid and one float type.
#[doc(hidden)]
pub struct Plans<T: FftNum> {
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    col_forward: Arc<dyn Fft<T>>,
    col_inverse: Arc<dyn Fft<T>>,
}

/// Lazily built FFT plans, one set per float type.
#[doc(hidden)]
#[derive(Default)]
pub struct PlanCache {
    f32: OnceLock<Plans<f32>>,
    f64: OnceLock<Plans<f64>>,
}

impl fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlanCache")
    }
}

impl Clone for PlanCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// The covariance `Σ_w` of a spectrum on a (C, H, W) grid: the same `w` for every channel,
/// channels independent.
#[derive(Debug, Clone)]
pub struct SpectralCovariance {
    channels: usize,
    grid: FrequencyGrid,
    normalization: Normalization,
    spectrum: String,
    amplitude: Vec<f64>,
    support: usize,
    plans: PlanCache,
}

/// Relative tolerance of the symmetry check `w(f) = w(-f)`.
const SYMMETRY_TOLERANCE: f64 = 1e-12;

impl SpectralCovariance {
    /// Evaluates `spectrum` on the grid of a `[C, H, W]` image and normalizes it.
    pub fn new(
        spectrum: &dyn NoiseSpectrum,
        size: [usize; 3],
        normalization: Normalization,
    ) -> Result<Self, CoreError> {
        spectrum.validate()?;
        check_size(size)?;
        let grid = FrequencyGrid::new(size[1], size[2]);
        let amplitude = spectrum.amplitudes(&grid)?;
        Self::from_amplitudes(spectrum.name(), amplitude, size, normalization)
    }

    /// Builds the covariance from an amplitude table (row-major, `fftfreq` order) directly.
    pub fn from_amplitudes(
        name: &str,
        amplitude: Vec<f64>,
        size: [usize; 3],
        normalization: Normalization,
    ) -> Result<Self, CoreError> {
        check_size(size)?;
        let grid = FrequencyGrid::new(size[1], size[2]);
        if amplitude.len() != grid.len() {
            return Err(SpectrumError::WrongTableSize {
                spectrum: name.to_string(),
                got: amplitude.len(),
                height: grid.height,
                width: grid.width,
            }
            .into());
        }
        for (i, &a) in amplitude.iter().enumerate() {
            if !(a.is_finite() && a >= 0.0) {
                let f = grid.frequency(i / grid.width, i % grid.width);
                return Err(SpectrumError::BadAmplitude {
                    spectrum: name.to_string(),
                    fy: f.fy,
                    fx: f.fx,
                    value: a,
                }
                .into());
            }
        }
        let max = amplitude.iter().cloned().fold(0.0, f64::max);
        if max == 0.0 {
            return Err(SpectrumError::ZeroSpectrum {
                spectrum: name.to_string(),
                height: grid.height,
                width: grid.width,
            }
            .into());
        }
        for k in 0..grid.height {
            for l in 0..grid.width {
                let (mk, ml) = grid.mirror(k, l);
                let a = amplitude[k * grid.width + l];
                let b = amplitude[mk * grid.width + ml];
                if (a - b).abs() > SYMMETRY_TOLERANCE * max {
                    let f = grid.frequency(k, l);
                    return Err(SpectrumError::Asymmetric {
                        spectrum: name.to_string(),
                        fy: f.fy,
                        fx: f.fx,
                        value: a,
                        mirror: b,
                    }
                    .into());
                }
            }
        }
        let scale = match normalization {
            Normalization::None => 1.0,
            Normalization::Energy | Normalization::PerSampleStd => {
                // Normalize relative to the maximum first so that w² cannot overflow.
                let mean_sq = amplitude.iter().map(|a| (a / max) * (a / max)).sum::<f64>()
                    / amplitude.len() as f64;
                1.0 / (max * mean_sq.sqrt())
            }
        };
        let amplitude: Vec<f64> = amplitude.iter().map(|a| a * scale).collect();
        let support = amplitude.iter().filter(|&&a| a > 0.0).count();
        Ok(Self {
            channels: size[0],
            grid,
            normalization,
            spectrum: name.to_string(),
            amplitude,
            support,
            plans: PlanCache::default(),
        })
    }

    /// `[C, H, W]`.
    pub fn size(&self) -> [usize; 3] {
        [self.channels, self.grid.height, self.grid.width]
    }

    /// The dimension `C·H·W`.
    pub fn dim(&self) -> usize {
        self.channels * self.grid.len()
    }

    /// The frequency grid of one channel.
    pub fn grid(&self) -> FrequencyGrid {
        self.grid
    }

    /// The normalization in use.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// The name of the spectrum it was built from.
    pub fn spectrum_name(&self) -> &str {
        &self.spectrum
    }

    /// Normalized amplitudes `w(f)`, H×W row-major in `fftfreq` order.
    pub fn amplitude(&self) -> &[f64] {
        &self.amplitude
    }

    /// Normalized power `w(f)²`, the eigenvalues of `Σ_w` (each repeated for every channel).
    pub fn power(&self) -> Vec<f64> {
        self.amplitude.iter().map(|a| a * a).collect()
    }

    /// True when `w(f) > 0` at every frequency, so `Σ_w` is invertible.
    pub fn full_support(&self) -> bool {
        self.support == self.grid.len()
    }

    /// Rank of `Σ_w`: `C ×` the number of frequencies with `w(f) > 0`.
    pub fn rank(&self) -> usize {
        self.channels * self.support
    }

    /// Mask of the support, H×W.
    pub fn support_mask(&self) -> Vec<bool> {
        self.amplitude.iter().map(|&a| a > 0.0).collect()
    }

    /// `log det` of `Σ_w` restricted to its support: `C · Σ_{w>0} ln w(f)²`.
    pub fn log_det_support(&self) -> f64 {
        self.channels as f64
            * self
                .amplitude
                .iter()
                .filter(|&&a| a > 0.0)
                .map(|a| 2.0 * a.ln())
                .sum::<f64>()
    }

    /// Condition number of `Σ_w` on its support: `max w² / min_{w>0} w²`.
    pub fn condition_number(&self) -> f64 {
        let max = self.amplitude.iter().cloned().fold(0.0, f64::max);
        let min = self
            .amplitude
            .iter()
            .cloned()
            .filter(|&a| a > 0.0)
            .fold(f64::INFINITY, f64::min);
        (max / min).powi(2)
    }

    /// Colours white noise in place: `x ← Σ_w^{1/2} x`. `data` holds whole (C, H, W) images.
    pub fn colour<T: Real>(&self, data: &mut [T]) -> Result<(), CoreError> {
        self.apply_multiplier(data, "colour", |w| w)
    }

    /// Whitens in place: `x ← (Σ_w^{1/2})⁺ x` (the inverse square root on the support, zero
    /// off it).
    pub fn whiten<T: Real>(&self, data: &mut [T]) -> Result<(), CoreError> {
        self.apply_multiplier(data, "whiten", |w| if w > 0.0 { 1.0 / w } else { 0.0 })
    }

    /// `x ← Σ_w x`.
    pub fn apply_cov<T: Real>(&self, data: &mut [T]) -> Result<(), CoreError> {
        self.apply_multiplier(data, "apply Σ", |w| w * w)
    }

    /// `x ← Σ_w⁺ x` (the pseudo-inverse; the inverse when the support is full).
    pub fn apply_pinv<T: Real>(&self, data: &mut [T]) -> Result<(), CoreError> {
        self.apply_multiplier(data, "apply Σ⁺", |w| {
            if w > 0.0 { 1.0 / (w * w) } else { 0.0 }
        })
    }

    /// `x ← Π_w x`, the orthogonal projection onto the support of `Σ_w`.
    pub fn project<T: Real>(&self, data: &mut [T]) -> Result<(), CoreError> {
        self.apply_multiplier(data, "project", |w| if w > 0.0 { 1.0 } else { 0.0 })
    }

    /// `x ← (I - Π_w) x`, the projection onto the complement of the support.
    pub fn project_complement<T: Real>(&self, data: &mut [T]) -> Result<(), CoreError> {
        self.apply_multiplier(
            data,
            "project complement",
            |w| if w > 0.0 { 0.0 } else { 1.0 },
        )
    }

    /// Applies the Fourier multiplier `m(w(f))` to every image and channel in `data`.
    pub fn apply_multiplier<T: Real>(
        &self,
        data: &mut [T],
        context: &str,
        multiplier: impl Fn(f64) -> f64,
    ) -> Result<(), CoreError> {
        self.check_len(data.len(), context)?;
        let hw = self.grid.len() as f64;
        let table = self.half_table(|w| multiplier(w) / hw);
        let plans = self.plans::<T>();
        let (h, w) = (self.grid.height, self.grid.width);
        data.par_chunks_mut(self.grid.len()).for_each_init(
            || Workspace::new(plans, h, w),
            |ws, plane| ws.filter_plane(plans, plane, &table),
        );
        Ok(())
    }

    /// Applies a stationary filter given by its per-frequency multiplier `m(f)` (a table of
    /// H×W values, row-major in `fftfreq` order, with `m(f) = m(-f)`) to every image and
    /// channel: `x ← F⁻¹ diag(m) F x`. Filters that are not functions of `w(f)` alone, such as
    /// the posterior means of stationary data, use this instead of
    /// [`apply_multiplier`](Self::apply_multiplier).
    pub fn apply_table<T: Real>(
        &self,
        data: &mut [T],
        context: &str,
        table: &[f64],
    ) -> Result<(), CoreError> {
        self.check_len(data.len(), context)?;
        let (h, w) = (self.grid.height, self.grid.width);
        if table.len() != h * w {
            return Err(CoreError::ShapeMismatch {
                context: format!("{context}: multiplier table"),
                expected: format!("{h}x{w} = {} values", h * w),
                got: format!("{} values", table.len()),
            });
        }
        if let Some(bad) = table.iter().find(|m| !m.is_finite()) {
            return Err(invalid_value(
                &format!("{context}: multiplier"),
                bad,
                "a finite number",
            ));
        }
        let hw = self.grid.len() as f64;
        let wc = w / 2 + 1;
        let half: Vec<T> = (0..h)
            .flat_map(|k| (0..wc).map(move |l| (k, l)))
            .map(|(k, l)| T::of(table[k * w + l] / hw))
            .collect();
        let plans = self.plans::<T>();
        data.par_chunks_mut(self.grid.len()).for_each_init(
            || Workspace::new(plans, h, w),
            |ws, plane| ws.filter_plane(plans, plane, &half),
        );
        Ok(())
    }

    /// Draws `count` independent images from `N(0, Σ_w)` (or, with `per-sample-std`, the
    /// papers' rescaled draws) into a new (count, C, H, W) buffer.
    ///
    /// The white noise is drawn directly in the Fourier domain (a Hermitian-symmetric complex
    /// Gaussian with unit variance per mode, which is exactly the law of the unitary DFT of
    /// real white noise), so one inverse FFT per channel suffices. Each image has its own
    /// Xoshiro256++ stream seeded from `rng`, so the result does not depend on the thread count.
    pub fn sample<T: Real>(&self, count: usize, rng: &mut dyn RngCore) -> Vec<T> {
        let mut out = vec![T::zero(); count * self.dim()];
        self.sample_into(&mut out, rng)
            .expect("buffer sized to whole images");
        out
    }

    /// [`sample`](Self::sample) into an existing buffer holding whole images.
    pub fn sample_into<T: Real>(
        &self,
        out: &mut [T],
        rng: &mut dyn RngCore,
    ) -> Result<(), CoreError> {
        self.check_len(out.len(), "sample")?;
        let count = out.len() / self.dim();
        let seeds: Vec<u64> = (0..count).map(|_| rng.next_u64()).collect();
        let hw = self.grid.len() as f64;
        let table = self.half_table(|w| w / hw.sqrt());
        let plans = self.plans::<T>();
        let (h, w) = (self.grid.height, self.grid.width);
        let per_sample_std = self.normalization == Normalization::PerSampleStd;
        out.par_chunks_mut(self.dim()).zip(seeds).for_each_init(
            || Workspace::new(plans, h, w),
            |ws, (image, seed)| {
                let mut stream = Xoshiro256PlusPlus::seed_from_u64(seed);
                for plane in image.chunks_mut(h * w) {
                    ws.draw_plane(plans, plane, &table, &mut stream);
                    if per_sample_std {
                        divide_by_std(plane);
                    }
                }
            },
        );
        Ok(())
    }

    /// The dense `d × d` matrix `Σ_w` (d = C·H·W), built by applying `Σ_w` to unit vectors.
    /// For verification on small grids.
    pub fn dense(&self) -> nalgebra::DMatrix<f64> {
        self.dense_of(|cov, x| cov.apply_cov(x))
    }

    /// The dense matrix of any of this covariance's linear operators, e.g.
    /// `cov.dense_of(|c, x| c.apply_pinv(x))`.
    pub fn dense_of(
        &self,
        op: impl Fn(&Self, &mut [f64]) -> Result<(), CoreError>,
    ) -> nalgebra::DMatrix<f64> {
        let d = self.dim();
        let mut m = nalgebra::DMatrix::<f64>::zeros(d, d);
        let hw = self.grid.len();
        // Channels are independent and identical: one channel's columns suffice.
        let mut column = vec![0.0; hw];
        let single = Self {
            channels: 1,
            ..self.clone()
        };
        for j in 0..hw {
            column.iter_mut().for_each(|v| *v = 0.0);
            column[j] = 1.0;
            op(&single, &mut column).expect("one plane");
            for c in 0..self.channels {
                for i in 0..hw {
                    m[(c * hw + i, c * hw + j)] = column[i];
                }
            }
        }
        m
    }

    fn check_len(&self, len: usize, context: &str) -> Result<(), CoreError> {
        if !len.is_multiple_of(self.dim()) {
            return Err(CoreError::ShapeMismatch {
                context: context.to_string(),
                expected: format!(
                    "a whole number of {}x{}x{} images ({} values each)",
                    self.channels,
                    self.grid.height,
                    self.grid.width,
                    self.dim()
                ),
                got: format!("{len} values"),
            });
        }
        Ok(())
    }

    /// `m(w)` on the half plane `H × (W/2 + 1)` that the real FFT keeps.
    fn half_table<T: Real>(&self, m: impl Fn(f64) -> f64) -> Vec<T> {
        let (h, w) = (self.grid.height, self.grid.width);
        let wc = w / 2 + 1;
        let mut table = Vec::with_capacity(h * wc);
        for k in 0..h {
            for l in 0..wc {
                table.push(T::of(m(self.amplitude[k * w + l])));
            }
        }
        table
    }

    fn plans<T: Real>(&self) -> &Plans<T> {
        T::plan_cache(&self.plans).get_or_init(|| {
            let (h, w) = (self.grid.height, self.grid.width);
            let mut real = RealFftPlanner::<T>::new();
            let mut complex = FftPlanner::<T>::new();
            Plans {
                r2c: real.plan_fft_forward(w),
                c2r: real.plan_fft_inverse(w),
                col_forward: complex.plan_fft_forward(h),
                col_inverse: complex.plan_fft_inverse(h),
            }
        })
    }
}

fn check_size(size: [usize; 3]) -> Result<(), CoreError> {
    if size.contains(&0) {
        return Err(CoreError::InvalidSize {
            input: format!("{}x{}x{}", size[0], size[1], size[2]),
            reason: "every dimension must be at least 1".to_string(),
        });
    }
    Ok(())
}

/// Divides a plane by its own (population) standard deviation around its mean.
fn divide_by_std<T: Real>(plane: &mut [T]) {
    let n = plane.len() as f64;
    let mean = plane.iter().map(|v| v.as_f64()).sum::<f64>() / n;
    let var = plane
        .iter()
        .map(|v| (v.as_f64() - mean).powi(2))
        .sum::<f64>()
        / n;
    if var > 0.0 {
        let inv = T::of(1.0 / var.sqrt());
        plane.iter_mut().for_each(|v| *v = *v * inv);
    }
}

/// Per-thread buffers for one plane: the half spectrum stored column-major (`W/2 + 1` columns
/// of length `H`), a row buffer and FFT scratch.
struct Workspace<T: FftNum> {
    height: usize,
    width: usize,
    columns: Vec<Complex<T>>,
    row_spectrum: Vec<Complex<T>>,
    row: Vec<T>,
    scratch: Vec<Complex<T>>,
}

impl<T: Real> Workspace<T> {
    fn new(plans: &Plans<T>, height: usize, width: usize) -> Self {
        let wc = width / 2 + 1;
        let scratch_len = plans
            .r2c
            .get_scratch_len()
            .max(plans.c2r.get_scratch_len())
            .max(plans.col_forward.get_inplace_scratch_len())
            .max(plans.col_inverse.get_inplace_scratch_len());
        Self {
            height,
            width,
            columns: vec![Complex::default(); height * wc],
            row_spectrum: vec![Complex::default(); wc],
            row: vec![T::zero(); width],
            scratch: vec![Complex::default(); scratch_len],
        }
    }

    /// Real rows → half spectrum (column-major in `self.columns`).
    fn forward_rows(&mut self, plans: &Plans<T>, plane: &[T]) {
        let (h, w) = (self.height, self.width);
        let wc = w / 2 + 1;
        for k in 0..h {
            self.row.copy_from_slice(&plane[k * w..(k + 1) * w]);
            plans
                .r2c
                .process_with_scratch(&mut self.row, &mut self.row_spectrum, &mut self.scratch)
                .expect("buffer lengths match the plan");
            for l in 0..wc {
                self.columns[l * h + k] = self.row_spectrum[l];
            }
        }
    }

    /// Half spectrum (column-major) → real rows.
    fn inverse_rows(&mut self, plans: &Plans<T>, plane: &mut [T]) {
        let (h, w) = (self.height, self.width);
        let wc = w / 2 + 1;
        for k in 0..h {
            for l in 0..wc {
                self.row_spectrum[l] = self.columns[l * h + k];
            }
            // The DC (and, for even W, Nyquist) bins of a real row are real; clear rounding.
            self.row_spectrum[0].im = T::zero();
            if w % 2 == 0 {
                self.row_spectrum[wc - 1].im = T::zero();
            }
            plans
                .c2r
                .process_with_scratch(
                    &mut self.row_spectrum,
                    &mut plane[k * w..(k + 1) * w],
                    &mut self.scratch,
                )
                .expect("buffer lengths match the plan");
        }
    }

    fn multiply_columns(&mut self, table: &[T]) {
        let (h, wc) = (self.height, self.width / 2 + 1);
        for l in 0..wc {
            for k in 0..h {
                let m = table[k * wc + l];
                let z = &mut self.columns[l * h + k];
                z.re = z.re * m;
                z.im = z.im * m;
            }
        }
    }

    fn filter_plane(&mut self, plans: &Plans<T>, plane: &mut [T], table: &[T]) {
        self.forward_rows(plans, plane);
        plans
            .col_forward
            .process_with_scratch(&mut self.columns, &mut self.scratch);
        self.multiply_columns(table);
        plans
            .col_inverse
            .process_with_scratch(&mut self.columns, &mut self.scratch);
        self.inverse_rows(plans, plane);
    }

    /// Fills the half spectrum with the unitary DFT of real white noise times the table, and
    /// transforms back.
    fn draw_plane(
        &mut self,
        plans: &Plans<T>,
        plane: &mut [T],
        table: &[T],
        rng: &mut Xoshiro256PlusPlus,
    ) {
        let (h, w) = (self.height, self.width);
        let wc = w / 2 + 1;
        let half = T::of(std::f64::consts::FRAC_1_SQRT_2);
        for l in 0..wc {
            let column = &mut self.columns[l * h..(l + 1) * h];
            let self_mirrored = l == 0 || (w % 2 == 0 && l == w / 2);
            if !self_mirrored {
                // The mirror (-k, -l) of every bin of this column lies in the discarded half.
                for (k, z) in column.iter_mut().enumerate() {
                    let m = table[k * wc + l] * half;
                    z.re = T::standard_normal(rng) * m;
                    z.im = T::standard_normal(rng) * m;
                }
            } else {
                // Hermitian along the column: X[-k] = conj X[k]; self-mirrored bins are real.
                for k in 0..h {
                    let mk = (h - k) % h;
                    let m = table[k * wc + l];
                    if mk == k {
                        column[k] = Complex::new(T::standard_normal(rng) * m, T::zero());
                    } else if k < mk {
                        // The table is symmetric, so one factor serves both bins.
                        let z = Complex::new(
                            T::standard_normal(rng) * half * m,
                            T::standard_normal(rng) * half * m,
                        );
                        column[k] = z;
                        column[mk] = z.conj();
                    }
                }
            }
        }
        plans
            .col_inverse
            .process_with_scratch(&mut self.columns, &mut self.scratch);
        self.inverse_rows(plans, plane);
    }
}
