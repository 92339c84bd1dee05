//! The `linear` denoiser: one full affine map `D_l(x) = W_l x + b_l` per noise level `l`, with
//! independent parameters per level, as in the linear theory of DESIGN.md §1.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::grouping::{int_tensor, per_level};
use super::{Conditioning, NetworkConfig};
use crate::error::ModelError;
use crate::init::ParamInit;

/// Largest number of weights the per-level `linear` model may have (1 GiB of f32): beyond it a
/// full map per level is a configuration mistake, not a model.
const LINEAR_MAX_WEIGHTS: usize = 1 << 28;

/// The `[model]` table of `kind = "linear"`: [`LinearDenoiser`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearConfig {
    /// `Q` in `W = Q·I` at the start, every mode's initial gain (default 0).
    #[serde(default)]
    pub init_gain: f64,
}

impl NetworkConfig for LinearConfig {
    type Network = LinearDenoiser;

    fn validate(&self, [c, h, w]: [usize; 3], levels: usize) -> Result<(), ModelError> {
        check_gain(self.init_gain)?;
        let dim = c * h * w;
        if levels.saturating_mul(dim).saturating_mul(dim) > LINEAR_MAX_WEIGHTS {
            return Err(ModelError::config(
                "model.kind",
                "linear",
                format!(
                    "a model that fits in memory: {levels} levels × ({dim})² weights is over \
                     2^28; use fewer levels (an edm schedule with few steps) or smaller images"
                ),
            ));
        }
        Ok(())
    }

    fn init(&self, [c, h, w]: [usize; 3], levels: usize, init: &mut ParamInit) -> LinearDenoiser {
        LinearDenoiser::new(levels, c * h * w, self.init_gain, init)
    }
}

/// An initial gain must be a finite number (`linear`, `circulant`).
pub(super) fn check_gain(gain: f64) -> Result<(), ModelError> {
    if gain.is_finite() {
        Ok(())
    } else {
        Err(ModelError::config(
            "model.init_gain",
            gain,
            "a finite number",
        ))
    }
}

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
