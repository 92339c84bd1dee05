//! The `circulant` denoiser: per noise level, a full-width circular convolution of each
//! channel with its own `H×W` kernel, plus a per-channel bias. Its Fourier-mode gains are the
//! DFT of the kernel; gradient descent on the kernel moves each gain `N = HW` times faster than
//! on a free gain (DESIGN.md §1, "circulant").

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::grouping::{int_tensor, per_level};
use super::{Conditioning, NetworkConfig};
use crate::error::ModelError;
use crate::init::ParamInit;

/// The `[model]` table of `kind = "circulant"`: [`CirculantDenoiser`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculantConfig {
    /// Every Fourier mode's initial gain (default 0).
    #[serde(default)]
    pub init_gain: f64,
}

impl NetworkConfig for CirculantConfig {
    type Network = CirculantDenoiser;

    fn validate(&self, _shape: [usize; 3], _levels: usize) -> Result<(), ModelError> {
        super::linear::check_gain(self.init_gain)
    }

    fn init(&self, shape: [usize; 3], levels: usize, init: &mut ParamInit) -> CirculantDenoiser {
        CirculantDenoiser::new(levels, shape, self.init_gain, init)
    }
}

/// A circular convolution per channel and noise level.
#[derive(Module, Debug)]
pub struct CirculantDenoiser {
    /// The kernels `h_l[c]`: `[L, C, H·W]`, row-major over `(y, x)` offsets.
    pub kernel: Param<Tensor<3>>,
    /// The biases: `[L, C]`.
    pub bias: Param<Tensor<2>>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl CirculantDenoiser {
    /// Kernels `gain·δ` (every Fourier gain equal to `gain`) and zero biases.
    pub fn new(
        levels: usize,
        [channels, height, width]: [usize; 3],
        gain: f64,
        init: &mut ParamInit,
    ) -> Self {
        let n = height * width;
        let mut k = vec![0.0f32; levels * channels * n];
        for lc in 0..levels * channels {
            k[lc * n] = gain as f32;
        }
        Self {
            kernel: init.param(init.tensor(k, [levels, channels, n])),
            bias: init.param(init.constant([levels, channels], 0.0)),
            height,
            width,
        }
    }

    /// Index `j·N + i ↦ (i - j) mod (H, W)`: gathering the kernel with it gives the matrix
    /// `P[j][i] = h[i ⊖ j]`, so that the row vector `x·P` is the circular convolution `h ⊛ x`.
    fn circulant_index(&self, device: &Device) -> Tensor<1, Int> {
        let (h, w) = (self.height, self.width);
        let n = h * w;
        let mut idx = Vec::with_capacity(n * n);
        for j in 0..n {
            let (jy, jx) = (j / w, j % w);
            for i in 0..n {
                let (iy, ix) = (i / w, i % w);
                idx.push(((iy + h - jy) % h) * w + (ix + w - jx) % w);
            }
        }
        int_tensor(&idx, device)
    }

    /// The matrices `P_c` of level `level`, `[C, N, N]` with `P[j][i] = h[i ⊖ j]`: the row
    /// vector `x·P_c` is the circular convolution `h_c ⊛ x` (so `W_c = P_cᵀ` as a map on
    /// column vectors).
    pub fn matrices(&self, level: usize, device: &Device) -> Tensor<3> {
        self.matrices_with(level, &self.circulant_index(device), device)
    }

    /// [`Self::matrices`] with the gather index built once by the caller.
    fn matrices_with(&self, level: usize, index: &Tensor<1, Int>, device: &Device) -> Tensor<3> {
        let [_, c, n] = self.kernel.dims();
        let kernel = self
            .kernel
            .val()
            .select(0, int_tensor(&[level], device))
            .reshape([c, n]);
        kernel.select(1, index.clone()).reshape([c, n, n])
    }

    /// The convolution of `x` (`[B, C, H, W]`) at each sample's level.
    pub fn forward(&self, x: Tensor<4>, cond: &Conditioning) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let device = x.device();
        let index = self.circulant_index(&device);
        let flat = x.reshape([b, c, n]);
        let y = per_level(flat, &cond.index, |level, rows| {
            let count = rows.dims()[0];
            let matrix = self.matrices_with(level, &index, &device);
            let bias = self
                .bias
                .val()
                .select(0, int_tensor(&[level], &device))
                .reshape([1, c, 1]);
            // [count, C, N] → [C, count, N] · [C, N, N] → back.
            let out = rows.swap_dims(0, 1).matmul(matrix).swap_dims(0, 1);
            out + bias.expand([count, c, n])
        });
        y.reshape([b, c, h, w])
    }
}
