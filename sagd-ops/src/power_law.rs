//! `power-law`: `w(f) = (r + ε)^α`.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::spectrum::pointwise_amplitudes;
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, RadiusConvention, SpectrumError,
};
use serde::{Deserialize, Serialize};

use crate::{invalid, non_negative};

/// `w(f) = (r + ε)^α`: α < 0 puts the noise power at low frequencies, α > 0 at high ones.
/// The DC floor ε > 0 keeps the support full; with ε = 1e-10 and α < 0 the DC power is huge
/// (α = -0.5 gives w(0)² = 1e10 before normalization), as in the papers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLaw {
    /// Exponent α.
    pub alpha: f64,
    /// DC floor ε.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Radius convention of r.
    #[serde(default)]
    pub radius: RadiusConvention,
}

fn default_eps() -> f64 {
    1e-10
}

#[typetag::serde(name = "power-law")]
impl NoiseSpectrum for PowerLaw {
    fn name(&self) -> &'static str {
        "power-law"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        if !self.alpha.is_finite() {
            return Err(invalid(self.name(), "alpha", self.alpha, "a finite number"));
        }
        non_negative(self.name(), "eps", self.eps)?;
        if self.eps == 0.0 && self.alpha < 0.0 {
            return Err(invalid(
                self.name(),
                "eps",
                self.eps,
                "a number > 0 when alpha < 0 (w(0) = 0^alpha would be infinite)",
            ));
        }
        Ok(())
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        pointwise_amplitudes(self.name(), grid, |f| {
            let base = f.radius(self.radius) + self.eps;
            if base == 0.0 && self.alpha == 0.0 {
                1.0
            } else {
                base.powf(self.alpha)
            }
        })
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("alpha".to_string(), ParamValue::Number(self.alpha)),
            ("eps".to_string(), ParamValue::Number(self.eps)),
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
    Ok(Box::new(PowerLaw {
        alpha: p.number("alpha")?,
        eps: p.number("eps")?,
        radius: p.radius("radius")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "power-law",
        doc: "w(f) = (r + eps)^alpha: alpha < 0 noises low frequencies more, alpha > 0 high ones",
        params: &[
            ParamSpec {
                name: "alpha",
                doc: "exponent alpha (0 is isotropic)",
                kind: ParamKind::Number { default: -0.5, sample: (-1.0, 1.0), log_sample: false },
            },
            ParamSpec {
                name: "eps",
                doc: "DC floor eps >= 0 (> 0 keeps full support; must be > 0 when alpha < 0)",
                kind: ParamKind::Number { default: 1e-10, sample: (1e-3, 1e-1), log_sample: true },
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
