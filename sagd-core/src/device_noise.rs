//! Coloured noise drawn and filtered on the training device.
//!
//! [`SpectralCovariance`] filters on the host with real FFTs. [`DeviceNoise`] applies the same
//! Fourier multipliers `x ↦ F⁻¹(m ⊙ F x)` to a `(N, C, H, W)` burn tensor where it lives, as
//! dense DFT matrix products: with `A = C − iS` the `n × n` DFT matrix (`C[k, j] = cos 2πkj/n`,
//! `S[k, j] = sin 2πkj/n`, both symmetric), `F x = A_H x A_W`, and for a real, even multiplier
//!
//! ```text
//! Re F x = C_H P − S_H Q,   Im F x = −(S_H P + C_H Q),        P = x C_W,  Q = x S_W
//! V = (C_H + iS_H)(m ⊙ F x) / (HW),   F⁻¹(m ⊙ F x) = Re V C_W − Im V S_W
//! ```
//!
//! twelve matrix products per batch, on any image size (burn 0.22 has no FFT op that takes
//! every size), so that a training step moves no images between host and device. The cost is
//! `O(HW(H + W))` per plane against the FFT's `O(HW log HW)`: for the 32×32 to 64×64 images
//! sagd trains on, a few MFLOP per plane.
//!
//! White noise comes from the device's own generator, seeded per draw ([`seeded_normal`]): the
//! same seed gives the same numbers on the same backend, whatever other threads and devices
//! draw meanwhile, but not the numbers of the host path, which draws in the Fourier domain from
//! a ChaCha8 stream. Both have the law `N(0, Σ_w)`.

use std::sync::{Arc, Mutex, PoisonError};

use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::covariance::{Normalization, SpectralCovariance};
use crate::error::CoreError;

/// The cosine and sine DFT matrices of an `H × W` plane, on one device.
#[derive(Debug, Clone)]
pub struct DftMatrices {
    height: usize,
    width: usize,
    cos_h: Tensor<2>,
    sin_h: Tensor<2>,
    cos_w: Tensor<2>,
    sin_w: Tensor<2>,
}

/// `cos 2πkj/n` and `sin 2πkj/n` as `n × n` row-major tables (the phase reduced modulo `n`
/// first, so large `n` keeps full f64 accuracy before the cast to f32).
fn cos_sin(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut cos = Vec::with_capacity(n * n);
    let mut sin = Vec::with_capacity(n * n);
    for k in 0..n {
        for j in 0..n {
            let phase = 2.0 * std::f64::consts::PI * ((k * j) % n) as f64 / n as f64;
            cos.push(phase.cos() as f32);
            sin.push(phase.sin() as f32);
        }
    }
    (cos, sin)
}

impl DftMatrices {
    /// The matrices of `height × width` planes on `device`.
    pub fn new(height: usize, width: usize, device: &Device) -> Self {
        let matrix = |v: Vec<f32>, n: usize| Tensor::from_data(TensorData::new(v, [n, n]), device);
        let (ch, sh) = cos_sin(height);
        let (cw, sw) = cos_sin(width);
        Self {
            height,
            width,
            cos_h: matrix(ch, height),
            sin_h: matrix(sh, height),
            cos_w: matrix(cw, width),
            sin_w: matrix(sw, width),
        }
    }

    /// A multiplier table for [`filter`](Self::filter): `m(f)` for the `H × W` frequencies,
    /// row-major in `fftfreq` order, even (`m(f) = m(−f)`, which makes the result real). The
    /// `1/(HW)` of the inverse DFT is folded in; the table is kept transposed, as the filter
    /// applies it.
    pub fn table(&self, multiplier: &[f64], device: &Device) -> Result<MultiplierTable, CoreError> {
        let (h, w) = (self.height, self.width);
        if multiplier.len() != h * w {
            return Err(CoreError::ShapeMismatch {
                context: "device multiplier table".to_string(),
                expected: format!("{h}x{w} = {} values", h * w),
                got: format!("{} values", multiplier.len()),
            });
        }
        let norm = 1.0 / (h * w) as f64;
        let mut transposed = vec![0.0f32; h * w];
        for k in 0..h {
            for l in 0..w {
                transposed[l * h + k] = (multiplier[k * w + l] * norm) as f32;
            }
        }
        Ok(MultiplierTable(Tensor::from_data(
            TensorData::new(transposed, [1, w, h]),
            device,
        )))
    }

    /// `x ↦ F⁻¹(m ⊙ F x)` for every plane of `x` (shape `(N, C, H, W)`).
    ///
    /// # Panics
    /// If `x`'s last two dims are not `(H, W)`; callers check shapes first.
    pub fn filter(&self, x: Tensor<4>, table: &MultiplierTable) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        assert_eq!(
            (h, w),
            (self.height, self.width),
            "DFT filter built for another plane size"
        );
        let planes = n * c;
        // Along W: P = x C_W, Q = x S_W (rows of length W).
        let rows = x.reshape([planes * h, w]);
        let p = rows.clone().matmul(self.cos_w.clone());
        let q = rows.matmul(self.sin_w.clone());
        // Transpose each plane so the H-side products are right products too.
        let transpose = |t: Tensor<2>, a: usize, b: usize| {
            t.reshape([planes, a, b])
                .swap_dims(1, 2)
                .reshape([planes * b, a])
        };
        let (pt, qt) = (transpose(p, h, w), transpose(q, h, w));
        // (Re F x)ᵀ and (Im F x)ᵀ, times the (transposed, 1/HW-scaled) multiplier.
        let scale =
            |t: Tensor<2>| (t.reshape([planes, w, h]) * table.0.clone()).reshape([planes * w, h]);
        let re =
            scale(pt.clone().matmul(self.cos_h.clone()) - qt.clone().matmul(self.sin_h.clone()));
        let im = scale((pt.matmul(self.sin_h.clone()) + qt.matmul(self.cos_h.clone())).neg());
        // Vᵀ = ((C_H + iS_H) Y)ᵀ.
        let vr = re.clone().matmul(self.cos_h.clone()) - im.clone().matmul(self.sin_h.clone());
        let vi = re.matmul(self.sin_h.clone()) + im.matmul(self.cos_h.clone());
        let (vr, vi) = (transpose(vr, w, h), transpose(vi, w, h));
        let out = vr.matmul(self.cos_w.clone()) - vi.matmul(self.sin_w.clone());
        out.reshape([n, c, h, w])
    }
}

/// A multiplier prepared by [`DftMatrices::table`] (transposed, `1/(HW)`-scaled, on the
/// device), shape `(1, W, H)`.
#[derive(Debug, Clone)]
pub struct MultiplierTable(Tensor<3>);

/// Draws `ε^(w) ~ N(0, Σ_w)` and applies `Σ_w`'s multipliers on a device.
#[derive(Debug, Clone)]
pub struct DeviceNoise {
    covariance: Arc<SpectralCovariance>,
    device: Device,
    dft: DftMatrices,
    colour: MultiplierTable,
}

impl DeviceNoise {
    /// The device side of `covariance` on `device` (uploads four `n × n` DFT matrices and the
    /// amplitude table).
    pub fn new(covariance: Arc<SpectralCovariance>, device: &Device) -> Result<Self, CoreError> {
        let [_, h, w] = covariance.size();
        let dft = DftMatrices::new(h, w, device);
        let colour = dft.table(covariance.amplitude(), device)?;
        Ok(Self {
            covariance,
            device: device.clone(),
            dft,
            colour,
        })
    }

    /// The covariance it draws from.
    pub fn covariance(&self) -> &SpectralCovariance {
        &self.covariance
    }

    /// The device it lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A table of the multiplier `m(w(f))` of each frequency's amplitude (as
    /// [`SpectralCovariance::apply_multiplier`] takes it), for [`filter`](Self::filter).
    pub fn multiplier(&self, m: impl Fn(f64) -> f64) -> Result<MultiplierTable, CoreError> {
        let values: Vec<f64> = self.covariance.amplitude().iter().map(|&w| m(w)).collect();
        self.dft.table(&values, &self.device)
    }

    /// `x ↦ F⁻¹(m ⊙ F x)` on every plane of `x` (shape `(N, C, H, W)` with `(C, H, W)` the
    /// covariance's size).
    pub fn filter(&self, x: Tensor<4>, table: &MultiplierTable) -> Result<Tensor<4>, CoreError> {
        let [_, c, h, w] = x.dims();
        if [c, h, w] != self.covariance.size() {
            return Err(CoreError::ShapeMismatch {
                context: "device noise filter".to_string(),
                expected: format!("(N, {:?})", self.covariance.size()),
                got: format!("{:?}", x.dims()),
            });
        }
        Ok(self.dft.filter(x, table))
    }

    /// `Σ_w^{1/2} z = F⁻¹(w ⊙ F z)`: colours white noise `z` (shape `(N, C, H, W)`), the
    /// device counterpart of [`SpectralCovariance::colour`].
    pub fn colour(&self, z: Tensor<4>) -> Result<Tensor<4>, CoreError> {
        self.filter(z, &self.colour)
    }

    /// `count` draws of `N(0, Σ_w)` (with `per-sample-std`, each plane divided by its own
    /// standard deviation, as the host path does), shape `(count, C, H, W)`, from the
    /// device's generator seeded with `seed`.
    pub fn sample(&self, count: usize, seed: u64) -> Result<Tensor<4>, CoreError> {
        if count == 0 {
            return Err(crate::error::invalid_value("count", 0, "at least 1 image"));
        }
        let [c, h, w] = self.covariance.size();
        let z = seeded_normal([count, c, h, w], seed, &self.device);
        let eps = self.colour(z)?;
        Ok(match self.covariance.normalization() {
            Normalization::PerSampleStd => divide_by_plane_std(eps),
            Normalization::None | Normalization::Energy => eps,
        })
    }
}

/// Held from seeding the device generator to the launch of the draw that uses it.
static DEVICE_GENERATOR: Mutex<()> = Mutex::new(());

/// `N(0, 1)` white noise of `shape` on `device`, a function of `seed` and the backend alone.
///
/// burn's generators are process-wide ([`Device::seed`] seeds every device of a CubeCL
/// backend at once), and a CubeCL kernel takes its seeds from the generator when it is
/// launched: under fusion, at the next drain of the recording thread's stream, not when
/// [`Tensor::random`] returns. So the seed, the draw and its launch happen under one
/// process-wide lock, the launch forced by a second [`Device::seed`] call (which drains the
/// stream before seeding; a host-side wait for the launch, not for the device to finish).
/// Two replicas or threads drawing at once then each get their own seed's numbers.
pub fn seeded_normal(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let _held = DEVICE_GENERATOR
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    device.seed(seed);
    let z = Tensor::random(shape, Distribution::Normal(0.0, 1.0), device);
    // Launches the draw with `seed`'s state; the new state is overwritten by the next draw.
    device.seed(seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
    z
}

/// Each `H × W` plane divided by its population standard deviation (planes with zero
/// variance left as they are), as the host's `per-sample-std` draws.
fn divide_by_plane_std(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let (var, _) = x.clone().reshape([n, c, h * w]).var_mean_bias(2);
    let std = var.sqrt().reshape([n, c, 1, 1]);
    let zero = std.clone().equal_elem(0.0);
    let std = std.mask_fill(zero, 1.0);
    x / std
}
