//! `offset`: white noise plus a per-channel constant, diffusers' `noise_offset`.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::{FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, SpectrumError};
use serde::{Deserialize, Serialize};

use crate::non_negative;

/// Offset noise: `ε = z + offset·c·1`, with `z` white (`N(0, I)` per channel) and one
/// `c ~ N(0, 1)` per sample and channel, as diffusers' `noise_offset`
/// (`randn(B, C, H, W) + offset · randn(B, C, 1, 1)`). Its covariance per channel is
/// `I + offset²·11ᵀ`; the constant image `1/√(HW)` is the DC eigenvector of the orthonormal
/// DFT, with eigenvalue `HW·offset²`, so
///
/// `w(0)² = 1 + H·W·offset²` and `w(f)² = 1` for every `f ≠ 0`.
///
/// Equal in distribution to diffusers' draws under `normalization = "none"`; under the
/// default `energy` normalization every mode is divided by `1 + offset²` (the per-pixel
/// variance), the same shape at unit per-pixel variance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offset {
    /// Standard deviation of the per-channel constant (diffusers' `noise_offset`).
    pub offset: f64,
}

#[typetag::serde(name = "offset")]
impl NoiseSpectrum for Offset {
    fn name(&self) -> &'static str {
        "offset"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        non_negative(self.name(), "offset", self.offset)
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        let mut w = vec![1.0; grid.len()];
        // fftfreq order: the DC mode is index 0.
        w[0] = (1.0 + grid.len() as f64 * self.offset * self.offset).sqrt();
        Ok(w)
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([("offset".to_string(), ParamValue::Number(self.offset))])
    }
    fn clone_box(&self) -> Box<dyn NoiseSpectrum> {
        Box::new(self.clone())
    }
}

fn build(p: &ParamReader) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
    Ok(Box::new(Offset {
        offset: p.number("offset")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "offset",
        doc: "white noise plus a per-channel constant of std offset (diffusers' noise_offset): w(0)^2 = 1 + HW offset^2, 1 elsewhere",
        params: &[ParamSpec {
            name: "offset",
            doc: "std of the per-channel constant (>= 0; diffusers' noise_offset, often 0.1)",
            kind: ParamKind::Number { default: 0.1, sample: (0.0, 1.0), log_sample: false },
        }],
        build,
    }
}
