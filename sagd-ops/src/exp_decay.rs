//! `exp-decay`: `w(f) = exp(-β r²)`.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::spectrum::pointwise_amplitudes;
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, RadiusConvention, SpectrumError,
};
use serde::{Deserialize, Serialize};

use crate::non_negative;

/// A Gaussian roll-off of the noise towards high frequencies, `w(f) = exp(-β r²)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpDecay {
    /// Decay rate β ≥ 0.
    pub beta: f64,
    /// Radius convention of r (default `cycles`).
    #[serde(default)]
    pub radius: RadiusConvention,
}

#[typetag::serde(name = "exp-decay")]
impl NoiseSpectrum for ExpDecay {
    fn name(&self) -> &'static str {
        "exp-decay"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        non_negative(self.name(), "beta", self.beta)
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        pointwise_amplitudes(self.name(), grid, |f| {
            (-self.beta * f.radius(self.radius).powi(2)).exp()
        })
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("beta".to_string(), ParamValue::Number(self.beta)),
            (
                "radius".to_string(),
                ParamValue::Text(self.radius.name().to_string()),
            ),
        ])
    }
    fn clone_box(&self) -> Box<dyn NoiseSpectrum> {
        Box::new(self.clone())
    }
}

fn build(p: &ParamReader) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
    Ok(Box::new(ExpDecay {
        beta: p.number("beta")?,
        radius: p.radius("radius")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "exp-decay",
        doc: "w(f) = exp(-beta r^2): less noise at high frequencies",
        params: &[
            ParamSpec {
                name: "beta",
                doc: "decay rate beta >= 0",
                kind: ParamKind::Number { default: 4.0, sample: (0.0, 10.0), log_sample: false },
            },
            ParamSpec {
                name: "radius",
                doc: "radius convention of r",
                kind: ParamKind::Radius { default: RadiusConvention::Cycles },
            },
        ],
        build,
    }
}
