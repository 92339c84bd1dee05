//! `power-law`: `w(f) = (r + ε)^α`, its DC mode at the floor's value or at its neighbours'.

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
/// (α = -0.5 gives w(0)² = 1e10 before normalization), as in the papers. With
/// `dc = "neighbours"` the DC mode takes instead the power of its nearest modes, `(±1, 0)` and
/// `(0, ±1)` (the mean of their `w²`): the slope without the DC boost, the control that tells
/// the slope's effect from the mean image's noise (offset noise).
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
    /// The DC mode's level.
    #[serde(default)]
    pub dc: DcLevel,
}

/// Where a power-law puts its DC mode `w(0)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DcLevel {
    /// `w(0) = ε^α`, the formula at r = 0 (the papers' choice).
    #[default]
    Floor,
    /// `w(0)² =` the mean `w²` of the modes `(±1, 0)` and `(0, ±1)` (a 1×1 grid, which has
    /// none, keeps the floor's value).
    Neighbours,
}

impl DcLevel {
    /// Every name, as written in configs.
    pub const NAMES: [&'static str; 2] = ["floor", "neighbours"];

    /// The name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            DcLevel::Floor => "floor",
            DcLevel::Neighbours => "neighbours",
        }
    }
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
        if self.eps == 0.0 && self.alpha < 0.0 && self.dc == DcLevel::Floor {
            return Err(invalid(
                self.name(),
                "eps",
                self.eps,
                "a number > 0 when alpha < 0 and dc = floor (w(0) = 0^alpha would be infinite)",
            ));
        }
        Ok(())
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        let law = |r: f64| {
            let base = r + self.eps;
            if base == 0.0 && self.alpha <= 0.0 {
                // 0^0 = 1; 0^α for α < 0 is reached only at a DC mode replaced below.
                1.0
            } else {
                base.powf(self.alpha)
            }
        };
        let mut w = pointwise_amplitudes(self.name(), grid, |f| law(f.radius(self.radius)))?;
        if self.dc == DcLevel::Neighbours {
            // Index (k, l) is row-major in fftfreq order: DC at 0, its neighbours at
            // (0, 1), (0, W − 1), (1, 0) and (H − 1, 0) where the grid has them.
            let (h, wd) = (grid.height, grid.width);
            let mut neighbours = Vec::new();
            if wd > 1 {
                neighbours.extend([1, wd - 1]);
            }
            if h > 1 {
                neighbours.extend([wd, (h - 1) * wd]);
            }
            if !neighbours.is_empty() {
                let power =
                    neighbours.iter().map(|&i| w[i] * w[i]).sum::<f64>() / neighbours.len() as f64;
                w[0] = power.sqrt();
            }
        }
        Ok(w)
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("alpha".to_string(), ParamValue::Number(self.alpha)),
            ("eps".to_string(), ParamValue::Number(self.eps)),
            (
                "radius".to_string(),
                ParamValue::Text(self.radius.name().to_string()),
            ),
            (
                "dc".to_string(),
                ParamValue::Text(self.dc.name().to_string()),
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
        dc: match p.choice("dc", &DcLevel::NAMES)? {
            "neighbours" => DcLevel::Neighbours,
            _ => DcLevel::Floor,
        },
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
                doc: "DC floor eps >= 0 (> 0 keeps full support; must be > 0 when alpha < 0 and dc = floor)",
                kind: ParamKind::Number { default: 1e-10, sample: (1e-3, 1e-1), log_sample: true },
            },
            ParamSpec {
                name: "radius",
                doc: "radius convention of r",
                kind: ParamKind::Radius { default: RadiusConvention::Cycles },
            },
            ParamSpec {
                name: "dc",
                doc: "DC level: floor (w(0) = eps^alpha) or neighbours (the mean power of the 4 nearest modes)",
                kind: ParamKind::Choice { default: "floor", choices: &DcLevel::NAMES },
            },
        ],
        build,
    }
}
