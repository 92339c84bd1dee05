//! `isotropic`: white noise, `w(f) = 1`.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamReader, SpectrumEntry};
use sagd_core::spectrum::pointwise_amplitudes;
use sagd_core::{FrequencyGrid, NoiseSpectrum, ParamMap, SpectrumError};
use serde::{Deserialize, Serialize};

/// White noise: `w(f) = 1` (standard diffusion).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isotropic {}

#[typetag::serde(name = "isotropic")]
impl NoiseSpectrum for Isotropic {
    fn name(&self) -> &'static str {
        "isotropic"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        Ok(())
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        pointwise_amplitudes(self.name(), grid, |_| 1.0)
    }
    fn params(&self) -> ParamMap {
        ParamMap::new()
    }
    fn clone_box(&self) -> Box<dyn NoiseSpectrum> {
        Box::new(self.clone())
    }
}

fn build(_: &ParamReader) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
    Ok(Box::new(Isotropic {}))
}

inventory::submit! {
    SpectrumEntry {
        name: "isotropic",
        doc: "white noise, w(f) = 1 (standard diffusion)",
        params: &[],
        build,
    }
}
