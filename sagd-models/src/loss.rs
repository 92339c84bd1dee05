//! The training objective, in one place (NVlabs/edm's `loss.py` is the model): the forward
//! process `x_t = √ᾱ_t x_0 + σ_t ε^(w)`, the regression target of each
//! [`Parameterization`], and the weighted squared error the single-device and the
//! data-parallel steps both minimise.
//!
//! Per image `i` the loss is `λ_i · mean_pixels (D_θ(x_t)_i − target_i)²`, averaged over the
//! batch; `λ_i = 1` (no reweighting, DESIGN.md §1) unless the batch carries weights.

use burn::tensor::Tensor;
use sagd_core::device_noise::MultiplierTable;
use sagd_core::{DeviceNoise, NoiseLevel, Parameterization, SpectralCovariance};

use crate::error::ModelError;
use crate::nets::{Conditioning, Net};
use crate::optim::collect_grads;

/// One training batch, ready for the network.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The noisy images `x_t`, `[B, C, H, W]`.
    pub x_t: Tensor<4>,
    /// The regression target in the model's parameterization, `[B, C, H, W]`.
    pub target: Tensor<4>,
    /// The level of each image.
    pub cond: Conditioning,
    /// The loss weight `λ_i` of each image, `[B]`; `None` weighs every image 1.
    pub weight: Option<Tensor<1>>,
}

impl Batch {
    /// The batch cut into `n` equal contiguous shares along the batch dimension (`n` divides
    /// the batch size; [`sagd_core::device::check_replicas`] makes sure of it).
    pub fn split(&self, n: usize) -> Vec<Batch> {
        let size = self.cond.index.len() / n;
        (0..n)
            .map(|r| {
                let rows = r * size..(r + 1) * size;
                Batch {
                    x_t: self.x_t.clone().narrow(0, rows.start, size),
                    target: self.target.clone().narrow(0, rows.start, size),
                    cond: Conditioning {
                        index: self.cond.index[rows.clone()].to_vec(),
                        time: self.cond.time[rows.clone()].to_vec(),
                    },
                    weight: self.weight.clone().map(|w| w.narrow(0, rows.start, size)),
                }
            })
            .collect()
    }

    /// The batch on `device`.
    pub fn to_device(self, device: &burn::tensor::Device) -> Batch {
        Batch {
            x_t: self.x_t.to_device(device),
            target: self.target.to_device(device),
            cond: self.cond,
            weight: self.weight.map(|w| w.to_device(device)),
        }
    }
}

/// `x_t = a·x_0 + σ·ε` and the target of `parameterization` for one image at `level`, on the
/// host: `x0`, `eps` and the two outputs are one image's values. `covariance` converts to the
/// whitened noise and the score (`Σ_w^{-1/2} ε`, `−Σ_w⁺ ε / σ`).
///
/// # Errors
/// A length mismatch from the whitened/score conversion.
pub fn host_target(
    parameterization: Parameterization,
    level: NoiseLevel,
    x0: &[f32],
    eps: &[f32],
    covariance: &SpectralCovariance,
    x_t: &mut [f32],
    target: &mut [f32],
) -> Result<(), ModelError> {
    let (a, s) = (level.scale() as f32, level.sigma as f32);
    for ((x, &x0), &e) in x_t.iter_mut().zip(x0).zip(eps) {
        *x = a * x0 + s * e;
    }
    match parameterization {
        Parameterization::ColouredEps => target.copy_from_slice(eps),
        Parameterization::X0 => target.copy_from_slice(x0),
        Parameterization::V => {
            for ((t, &x0), &e) in target.iter_mut().zip(x0).zip(eps) {
                *t = a * e - s * x0;
            }
        }
        Parameterization::WhitenedEps | Parameterization::Score => {
            let converted = parameterization.from_coloured_eps(eps, x_t, level, covariance)?;
            target.copy_from_slice(&converted);
        }
    }
    Ok(())
}

/// The device form of [`host_target`] for a whole batch: `scale` and `sigma` are each
/// image's `a` and `σ` as `[B, 1, 1, 1]`; `filter` is the noise operator on the device with
/// the multiplier of the whitened/score conversion (`1/w` or `1/w²` on the support), needed
/// by those two parameterizations only. Returns `(x_t, target)`.
///
/// # Errors
/// A whitened or score target without `filter`, or a failed filter.
pub fn device_target(
    parameterization: Parameterization,
    x0: Tensor<4>,
    eps: Tensor<4>,
    scale: Tensor<4>,
    sigma: Tensor<4>,
    filter: Option<(&DeviceNoise, &MultiplierTable)>,
) -> Result<(Tensor<4>, Tensor<4>), ModelError> {
    let x_t = x0.clone() * scale.clone() + eps.clone() * sigma.clone();
    let target = match parameterization {
        Parameterization::ColouredEps => eps,
        Parameterization::X0 => x0,
        Parameterization::V => eps * scale - x0 * sigma,
        Parameterization::WhitenedEps | Parameterization::Score => {
            let (noise, table) = filter.ok_or_else(|| {
                ModelError::config(
                    "parameterization",
                    parameterization,
                    "a multiplier table for the whitened-eps and score targets on the device",
                )
            })?;
            let filtered = noise.filter(eps, table)?;
            match parameterization {
                Parameterization::Score => filtered.neg() / sigma,
                _ => filtered,
            }
        }
    };
    Ok((x_t, target))
}

/// The multiplier of the device target of `parameterization` (`1/w` for whitened-eps, `1/w²`
/// for the score, 0 off the support), `None` for the others.
///
/// # Errors
/// What building the table on the device reports.
pub fn target_table(
    parameterization: Parameterization,
    noise: &DeviceNoise,
) -> Result<Option<MultiplierTable>, ModelError> {
    Ok(match parameterization {
        Parameterization::WhitenedEps => {
            Some(noise.multiplier(|w| if w > 0.0 { 1.0 / w } else { 0.0 })?)
        }
        Parameterization::Score => {
            Some(noise.multiplier(|w| if w > 0.0 { 1.0 / (w * w) } else { 0.0 })?)
        }
        _ => None,
    })
}

/// The weighted squared error of `prediction` against `batch`'s target: per image the mean
/// over its pixels times its weight, averaged over the batch (the plain mean squared error
/// when the batch has no weights). A scalar tensor, `[1]`.
pub fn squared_error(prediction: Tensor<4>, batch: &Batch) -> Tensor<1> {
    let error = (prediction - batch.target.clone()).square();
    match &batch.weight {
        None => error.mean(),
        Some(weight) => {
            let [b, c, h, w] = error.dims();
            let per_image = error.reshape([b, c * h * w]).mean_dim(1).reshape([b]);
            (per_image * weight.clone()).mean()
        }
    }
}

/// The loss of `net` on `batch` ([`squared_error`] of its prediction), shape `[1]` off the
/// autodiff graph and still on the device (the step reads it with the gradient norm, in one
/// transfer), and the gradient of every parameter (in visiting order; `None` for a parameter
/// the loss does not reach).
pub fn batch_gradients(net: &Net, batch: &Batch) -> (Tensor<1>, Vec<Option<Tensor<1>>>) {
    let prediction = net.forward(batch.x_t.clone(), &batch.cond);
    let loss = squared_error(prediction, batch);
    let grads = loss.backward();
    (loss.inner(), collect_grads(net, &grads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor4(values: Vec<f32>, dims: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, dims), &Device::flex())
    }

    fn batch(target: Vec<f32>, weight: Option<Vec<f32>>) -> Batch {
        let n = target.len() / 4;
        Batch {
            x_t: tensor4(vec![0.0; target.len()], [n, 1, 2, 2]),
            target: tensor4(target, [n, 1, 2, 2]),
            cond: Conditioning::new(vec![0; n], 1),
            weight: weight.map(|w| Tensor::from_data(TensorData::new(w, [n]), &Device::flex())),
        }
    }

    #[test]
    fn the_weighted_error_is_the_per_image_mean_times_its_weight() {
        // Image 0 misses by 1 on every pixel, image 1 by 2 on one pixel of four.
        let target = vec![1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0];
        let prediction = tensor4(vec![0.0; 8], [2, 1, 2, 2]);
        let plain = squared_error(prediction.clone(), &batch(target.clone(), None));
        assert_eq!(plain.into_scalar::<f32>(), (4.0 + 4.0) / 8.0);
        let weighted = squared_error(prediction, &batch(target, Some(vec![3.0, 0.5])));
        // (3·1 + 0.5·1) / 2
        assert_eq!(weighted.into_scalar::<f32>(), 1.75);
    }

    #[test]
    fn shares_keep_their_rows_and_weights() {
        let b = batch(
            (0..16).map(|v| v as f32).collect(),
            Some(vec![1.0, 2.0, 3.0, 4.0]),
        );
        let shares = b.split(2);
        assert_eq!(shares.len(), 2);
        let second = &shares[1];
        assert_eq!(second.cond.index.len(), 2);
        assert_eq!(
            second
                .target
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()[0],
            8.0
        );
        assert_eq!(
            second
                .weight
                .clone()
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
            vec![3.0, 4.0]
        );
    }

    #[test]
    fn host_targets_are_each_parameterizations_closed_form() {
        let level = NoiseLevel {
            alpha_bar: 0.64,
            sigma: 0.6,
        };
        let (x0, eps) = ([0.5f32, -1.0], [0.25f32, 2.0]);
        let cov = SpectralCovariance::from_amplitudes(
            "isotropic",
            vec![1.0, 1.0],
            [1, 1, 2],
            sagd_core::Normalization::None,
        )
        .unwrap();
        let mut x_t = [0.0f32; 2];
        let mut target = [0.0f32; 2];
        for (kind, expected) in [
            (Parameterization::ColouredEps, [0.25, 2.0]),
            (Parameterization::X0, [0.5, -1.0]),
            // a ε − σ x0 with a = 0.8
            (
                Parameterization::V,
                [0.8 * 0.25 - 0.6 * 0.5, 0.8 * 2.0 + 0.6],
            ),
            // white noise: the whitened ε is ε itself
            (Parameterization::WhitenedEps, [0.25, 2.0]),
        ] {
            host_target(kind, level, &x0, &eps, &cov, &mut x_t, &mut target).unwrap();
            assert_eq!(x_t, [0.8 * 0.5 + 0.6 * 0.25, -0.8 + 0.6 * 2.0]);
            for (t, e) in target.iter().zip(expected) {
                assert!((t - e).abs() < 1e-6, "{kind}: {target:?} vs {expected:?}");
            }
        }
    }
}
