//! Full-batch gradient descent for the per-level `linear` and `circulant` denoisers, the
//! setting of the linear theory (DESIGN.md §1, "Theory").
//!
//! At a VE level σ the x0-prediction loss of an affine map `D(x) = W x + b`, averaged over a
//! dataset `{x_i}` and *exactly* over the noise `ε ~ N(0, Σ_w)`, is
//!
//! ```text
//! L(W, b) = mean_i ‖(W - I) x_i + b‖² + σ² tr(W Σ_w Wᵀ)
//!         = tr((A - J) M (A - J)ᵀ) + σ² tr(W Σ_w Wᵀ),
//! ```
//!
//! with `A = [W | b]`, `J = [I | 0]` and `M = mean_i x̃_i x̃_iᵀ` the second moment of the
//! augmented data `x̃ = [x; 1]`. Gradient descent on it is full-batch gradient descent on the
//! data with the noise integrated out, at a cost independent of the dataset's size. Its optimum
//! in a mode `k` shared by the data covariance and `Σ_w` is `ψ_k* = λ_k / (λ_k + σ² w_k)`.

use burn::tensor::{Device, Tensor, TensorData};
use sagd_core::SpectralCovariance;

use crate::error::ModelError;
use crate::nets::Net;
use crate::nets::grouping::int_tensor;

/// The data and noise statistics of a full-batch problem.
#[derive(Debug, Clone)]
pub struct FullBatchProblem {
    /// `M`, `(D+1)×(D+1)`.
    pub moment: Tensor<2>,
    /// `Σ_w`, `D×D`.
    pub noise: Tensor<2>,
    /// `D = C·H·W`.
    pub dim: usize,
}

impl FullBatchProblem {
    /// The statistics of `count` images `data` (flattened, `count × D`) under the noise
    /// covariance `cov`, on `device`. `M` is accumulated in f64.
    pub fn new(
        data: &[f32],
        count: usize,
        cov: &SpectralCovariance,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let dim: usize = cov.size().iter().product();
        if count == 0 || data.len() != count * dim {
            return Err(ModelError::Shape {
                context: "full-batch data".to_string(),
                expected: format!("{count} images of {dim} values"),
                got: format!("{} values", data.len()),
            });
        }
        let n = dim + 1;
        let mut m = vec![0.0f64; n * n];
        let mut x = vec![0.0f64; n];
        for image in data.chunks_exact(dim) {
            for (xi, &v) in x.iter_mut().zip(image) {
                *xi = v as f64;
            }
            x[dim] = 1.0;
            for i in 0..n {
                let xi = x[i];
                let row = &mut m[i * n..(i + 1) * n];
                for (r, &xj) in row.iter_mut().zip(&x) {
                    *r += xi * xj;
                }
            }
        }
        let moment: Vec<f32> = m.iter().map(|v| (v / count as f64) as f32).collect();
        Ok(Self {
            moment: Tensor::from_data(TensorData::new(moment, [n, n]), device),
            noise: dense_tensor(cov, device),
            dim,
        })
    }

    /// The exact loss of `net`'s map at `level`, at noise scale `sigma`.
    pub fn loss(&self, net: &Net, level: usize, sigma: f64) -> Result<Tensor<1>, ModelError> {
        let (w, b) = affine_map(net, level, &self.moment.device())?;
        let d = self.dim;
        if w.dims() != [d, d] {
            return Err(ModelError::Shape {
                context: "full-batch map".to_string(),
                expected: format!("[{d}, {d}]"),
                got: format!("{:?}", w.dims()),
            });
        }
        let device = self.moment.device();
        let eye = Tensor::<2>::eye(d, &device);
        let a_minus_j = Tensor::cat(vec![w.clone() - eye, b.reshape([d, 1])], 1);
        let data_term = (a_minus_j.clone().matmul(self.moment.clone()) * a_minus_j).sum();
        let noise_term = (w.clone().matmul(self.noise.clone()) * w)
            .sum()
            .mul_scalar(sigma * sigma);
        Ok(data_term + noise_term)
    }
}

impl FullBatchProblem {
    /// The statistics of a zero-mean law with covariance `data` (a stationary covariance, e.g.
    /// a `grf`'s exact `F⁻¹ diag(λ) F`) under the noise covariance `noise`: full-batch gradient
    /// descent on the distribution itself (`M = [[Σ, 0], [0, 1]]`), with no sampling error.
    pub fn from_covariance(
        data: &SpectralCovariance,
        noise: &SpectralCovariance,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if data.size() != noise.size() {
            return Err(ModelError::Shape {
                context: "full-batch data covariance against the noise".to_string(),
                expected: format!("{:?}", noise.size()),
                got: format!("{:?}", data.size()),
            });
        }
        let dim = data.dim();
        let n = dim + 1;
        let sigma = data.dense();
        let mut m = vec![0.0f32; n * n];
        for i in 0..dim {
            for j in 0..dim {
                m[i * n + j] = sigma[(i, j)] as f32;
            }
        }
        m[n * n - 1] = 1.0;
        Ok(Self {
            moment: Tensor::from_data(TensorData::new(m, [n, n]), device),
            noise: dense_tensor(noise, device),
            dim,
        })
    }

    /// The summed exact losses of every level `l` at noise scale `sigmas[l]`, in one batched
    /// graph (the levels' parameters are independent, so its gradient is each level's own).
    pub fn loss_all_levels(&self, net: &Net, sigmas: &[f64]) -> Result<Tensor<1>, ModelError> {
        let device = self.moment.device();
        let d = self.dim;
        let n = d + 1;
        let levels = sigmas.len();
        let mut maps = Vec::with_capacity(levels);
        for level in 0..levels {
            let (w, b) = affine_map(net, level, &device)?;
            if w.dims() != [d, d] {
                return Err(ModelError::Shape {
                    context: "full-batch map".to_string(),
                    expected: format!("[{d}, {d}]"),
                    got: format!("{:?}", w.dims()),
                });
            }
            maps.push(Tensor::cat(vec![w, b.reshape([d, 1])], 1));
        }
        let a = Tensor::stack::<3>(maps, 0); // [L, D, D+1]
        let j = Tensor::cat(
            vec![Tensor::<2>::eye(d, &device), Tensor::zeros([d, 1], &device)],
            1,
        )
        .unsqueeze::<3>()
        .expand([levels, d, n]);
        let a_minus_j = a.clone() - j;
        let moment = self.moment.clone().unsqueeze::<3>().expand([levels, n, n]);
        let data_term = (a_minus_j.clone().matmul(moment) * a_minus_j).sum();
        let w = a.narrow(2, 0, d); // [L, D, D]
        let noise = self.noise.clone().unsqueeze::<3>().expand([levels, d, d]);
        let s2: Vec<f32> = sigmas.iter().map(|s| (s * s) as f32).collect();
        let s2 =
            Tensor::<1>::from_data(TensorData::new(s2, [levels]), &device).reshape([levels, 1, 1]);
        let noise_term = (w.clone().matmul(noise) * w * s2).sum();
        Ok(data_term + noise_term)
    }

    /// One full-batch gradient-descent step of size `lr` on every level of `net` (built on an
    /// autodiff device) at noise scales `sigmas`; returns the updated network and the summed
    /// loss before the step.
    pub fn gd_step(
        &self,
        net: Net,
        sigmas: &[f64],
        lr: f64,
        state: &mut crate::optim::OptimizerState,
    ) -> Result<(Net, f64), ModelError> {
        let loss = self.loss_all_levels(&net, sigmas)?;
        let value = loss.clone().into_scalar::<f32>() as f64;
        let grads = loss.backward();
        let g = crate::optim::collect_grads(&net, &grads);
        let config = crate::optim::OptimizerConfig {
            kind: crate::optim::OptimizerKind::Sgd,
            lr,
            grad_clip: 0.0,
            weight_decay: 0.0,
            ..crate::optim::OptimizerConfig::default()
        };
        Ok((
            crate::optim::apply_update(net, g, &config, state, lr, 1.0),
            value,
        ))
    }
}

/// `Σ_w` as a dense `D×D` f32 tensor.
fn dense_tensor(cov: &SpectralCovariance, device: &Device) -> Tensor<2> {
    let dim = cov.dim();
    let dense = cov.dense();
    let values: Vec<f32> = (0..dim * dim)
        .map(|k| dense[(k / dim, k % dim)] as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [dim, dim]), device)
}

/// The affine map `(W, b)` of a `linear` or `circulant` network at `level`, as `D×D` and `D`
/// tensors (for `circulant`, `W` is block-diagonal over channels).
pub fn affine_map(
    net: &Net,
    level: usize,
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1>), ModelError> {
    let sel = int_tensor(&[level], device);
    match net {
        Net::Linear(m) => {
            let [_, d, _] = m.weight.dims();
            let w = m.weight.val().select(0, sel.clone()).reshape([d, d]);
            let b = m.bias.val().select(0, sel).reshape([d]);
            Ok((w, b))
        }
        Net::Circulant(m) => {
            let [_, c, n] = m.kernel.dims();
            // W_c = P_cᵀ, with P_c the row-vector form the forward pass uses.
            let blocks = m.matrices(level, device).swap_dims(1, 2);
            let rows: Vec<Tensor<2>> = (0..c)
                .map(|ch| {
                    let block = blocks
                        .clone()
                        .select(0, int_tensor(&[ch], device))
                        .reshape([n, n]);
                    let mut parts = Vec::new();
                    if ch > 0 {
                        parts.push(Tensor::zeros([n, ch * n], device));
                    }
                    parts.push(block);
                    if ch + 1 < c {
                        parts.push(Tensor::zeros([n, (c - ch - 1) * n], device));
                    }
                    Tensor::cat(parts, 1)
                })
                .collect();
            let w = Tensor::cat(rows, 0);
            let bias = m.bias.val().select(0, sel).reshape([c, 1]).repeat_dim(1, n);
            Ok((w, bias.reshape([c * n])))
        }
        _ => Err(ModelError::config(
            "model.kind",
            "mlp/unet",
            "linear or circulant for full-batch training",
        )),
    }
}
