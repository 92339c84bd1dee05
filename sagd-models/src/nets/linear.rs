//! The `linear` denoiser: one full affine map `D_l(x) = W_l x + b_l` per noise level `l`, with
//! independent parameters per level, as in the linear theory of DESIGN.md §1.

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use super::Conditioning;
use super::grouping::{int_tensor, per_level};
use crate::init::ParamInit;

/// A full affine map per noise level on `C×H×W` images (`D = CHW` inputs and outputs).
#[derive(Module, Debug)]
pub struct LinearDenoiser {
    /// `W_l` for each level: `[L, D, D]`, rows are outputs.
    pub weight: Param<Tensor<3>>,
    /// `b_l` for each level: `[L, D]`.
    pub bias: Param<Tensor<2>>,
}

impl LinearDenoiser {
    /// `levels` maps of size `dim × dim`, each starting at `W = gain·I`, `b = 0` (the theory's
    /// aligned initialization `Q_k = gain`).
    pub fn new(levels: usize, dim: usize, gain: f64, init: &mut ParamInit) -> Self {
        let mut w = vec![0.0f32; levels * dim * dim];
        for l in 0..levels {
            for i in 0..dim {
                w[l * dim * dim + i * dim + i] = gain as f32;
            }
        }
        Self {
            weight: init.param(init.tensor(w, [levels, dim, dim])),
            bias: init.param(init.constant([levels, dim], 0.0)),
        }
    }

    /// Number of levels.
    pub fn levels(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The map of `x` (`[B, C, H, W]`) at each sample's level.
    pub fn forward(&self, x: Tensor<4>, cond: &Conditioning) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let dim = c * h * w;
        let device = x.device();
        let flat = x.reshape([b, dim]);
        let y = per_level(flat, &cond.index, |level, rows| {
            let sel = int_tensor(&[level], &device);
            let weight = self.weight.val().select(0, sel.clone()).reshape([dim, dim]);
            let bias = self.bias.val().select(0, sel);
            rows.matmul(weight.transpose()) + bias
        });
        y.reshape([b, c, h, w])
    }
}
