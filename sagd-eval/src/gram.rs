//! Inner products of feature vectors, `X Yᵀ`, computed on the device in float32 (the
//! precision torch-fidelity's KID and `torch.cdist` work in), returned to the host in row
//! blocks so that large sets never need an N×N matrix at once.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::EvalError;
use crate::features::Features;

/// Features on a device, `[N, d]`.
pub(crate) struct OnDevice {
    tensor: Tensor<2>,
    pub(crate) count: usize,
}

impl OnDevice {
    pub(crate) fn new(features: &Features, device: &Device) -> Self {
        Self {
            tensor: Tensor::from_data(
                TensorData::new(features.values.clone(), [features.count, features.dim]),
                device,
            ),
            count: features.count,
        }
    }

    /// Rows `start..start + len` of `self · otherᵀ`: `[len, other.count]` row-major.
    pub(crate) fn gram_rows(
        &self,
        start: usize,
        len: usize,
        other: &OnDevice,
    ) -> Result<Vec<f32>, EvalError> {
        let rows = self.tensor.clone().narrow(0, start, len);
        rows.matmul(other.tensor.clone().transpose())
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| EvalError::input("features", format!("cannot read a Gram block: {e:?}")))
    }

    /// The whole `self · otherᵀ`, `[N, M]` row-major.
    pub(crate) fn gram(&self, other: &OnDevice) -> Result<Vec<f32>, EvalError> {
        self.gram_rows(0, self.count, other)
    }
}
