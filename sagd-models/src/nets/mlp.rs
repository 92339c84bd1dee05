//! The `mlp` denoiser: the flattened image through residual MLP blocks conditioned on a
//! sinusoidal time embedding (the spectral-bias paper's MLP denoiser).

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::activation::silu;
use super::embedding::sinusoidal;
use super::{Conditioning, NetworkConfig};
use crate::error::ModelError;
use crate::init::ParamInit;

/// The `[model]` table of `kind = "mlp"`: [`MlpDenoiser`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Residual blocks (default 4).
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Hidden width (default 512, at least 2: its LayerNorms normalise over it).
    #[serde(default = "default_width")]
    pub width: usize,
    /// Size of the sinusoidal time embedding (default 128, at least 2).
    #[serde(default = "default_embedding")]
    pub embedding: usize,
}

fn default_depth() -> usize {
    4
}
fn default_width() -> usize {
    512
}
fn default_embedding() -> usize {
    128
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            depth: default_depth(),
            width: default_width(),
            embedding: default_embedding(),
        }
    }
}

impl NetworkConfig for MlpConfig {
    type Network = MlpDenoiser;

    fn validate(&self, _shape: [usize; 3], _levels: usize) -> Result<(), ModelError> {
        for (key, value) in [
            ("depth", self.depth),
            ("width", self.width),
            ("embedding", self.embedding),
        ] {
            if value == 0 {
                return Err(ModelError::config(
                    format!("model.{key}"),
                    value,
                    "at least 1",
                ));
            }
        }
        if self.width < 2 {
            // LayerNorm over one feature normalises it to 0: every block and the output see
            // a constant, and the zero-initialised output layer never gets a gradient.
            return Err(ModelError::config(
                "model.width",
                self.width,
                "at least 2: each LayerNorm normalises the `width` hidden features, and a \
                 single feature is always normalised to 0, so the network learns nothing",
            ));
        }
        if self.embedding < 2 {
            return Err(ModelError::config(
                "model.embedding",
                self.embedding,
                "at least 2",
            ));
        }
        Ok(())
    }

    fn init(&self, [c, h, w]: [usize; 3], _levels: usize, init: &mut ParamInit) -> MlpDenoiser {
        MlpDenoiser::new(c * h * w, self.depth, self.width, self.embedding, init)
    }
}

/// One residual block: `h + fc2(silu(fc1(norm(h)) + time(e)))`.
#[derive(Module, Debug)]
pub struct MlpBlock {
    norm: LayerNorm,
    fc1: Linear,
    time: Linear,
    fc2: Linear,
}

impl MlpBlock {
    fn new(width: usize, init: &mut ParamInit) -> Self {
        Self {
            norm: init.layer_norm(width),
            fc1: init.linear(width, width, false),
            time: init.linear(width, width, false),
            fc2: init.linear(width, width, false),
        }
    }

    fn forward(&self, h: Tensor<2>, emb: Tensor<2>) -> Tensor<2> {
        let z = self.fc1.forward(self.norm.forward(h.clone())) + self.time.forward(emb);
        h + self.fc2.forward(silu(z))
    }
}

/// A residual MLP over `D = C·H·W` pixels.
#[derive(Module, Debug)]
pub struct MlpDenoiser {
    input: Linear,
    time1: Linear,
    time2: Linear,
    blocks: Vec<MlpBlock>,
    out_norm: LayerNorm,
    output: Linear,
    /// Size of the sinusoidal embedding.
    pub embedding: usize,
}

impl MlpDenoiser {
    /// `depth` blocks of `width` features; the output layer starts at zero.
    pub fn new(
        dim: usize,
        depth: usize,
        width: usize,
        embedding: usize,
        init: &mut ParamInit,
    ) -> Self {
        Self {
            input: init.linear(dim, width, false),
            time1: init.linear(embedding, width, false),
            time2: init.linear(width, width, false),
            blocks: (0..depth).map(|_| MlpBlock::new(width, init)).collect(),
            out_norm: init.layer_norm(width),
            output: init.linear(width, dim, true),
            embedding,
        }
    }

    /// The prediction for `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: Tensor<4>, cond: &Conditioning) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let emb = sinusoidal(&cond.time, self.embedding, &device);
        let emb = self.time2.forward(silu(self.time1.forward(emb)));
        let mut hidden = self.input.forward(x.reshape([b, c * h * w]));
        for block in &self.blocks {
            hidden = block.forward(hidden, emb.clone());
        }
        let out = self.output.forward(silu(self.out_norm.forward(hidden)));
        out.reshape([b, c, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LayerNorm over one feature normalises it to 0 (the U-Net's single-value GroupNorm
    /// groups, in the MLP): a width of 1 is refused naming the key; 2 is accepted.
    #[test]
    fn a_width_of_one_is_refused() {
        let config = |width| MlpConfig {
            width,
            ..MlpConfig::default()
        };
        let e = config(1).validate([1, 4, 4], 10).unwrap_err();
        assert!(e.is_usage());
        let e = e.to_string();
        assert!(
            e.contains("`model.width` = 1") && e.contains("at least 2"),
            "{e}"
        );
        assert!(config(2).validate([1, 4, 4], 10).is_ok());
    }
}
