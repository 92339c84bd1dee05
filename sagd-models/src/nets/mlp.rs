//! The `mlp` denoiser: the flattened image through residual MLP blocks conditioned on a
//! sinusoidal time embedding (the spectral-bias paper's MLP denoiser).

use super::activation::silu;
use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

use super::Conditioning;
use super::embedding::sinusoidal;
use crate::init::ParamInit;

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
