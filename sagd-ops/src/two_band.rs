//! `two-band`: `γ_l·band(a_l, b_l) + γ_h·band(a_h, b_h)`, each band scaled to unit per-pixel
//! variance on the grid.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, RadiusConvention, SpectrumError,
};
use serde::{Deserialize, Serialize};

use crate::band::{check_edges, indicator};
use crate::{invalid, non_negative};

/// Two bands of noise with a gap between them: the bpm-SAGD operator that never noises (and so
/// never asks the model to learn) a corrupted band `[b_l, a_h]`. Each band indicator is scaled
/// by `sqrt(HW / |band|)` so that it alone has per-pixel variance 1; γ weighs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoBand {
    /// Weight of the low band.
    pub gamma_l: f64,
    /// Weight of the high band.
    pub gamma_h: f64,
    /// Low band, inner edge.
    pub a_l: f64,
    /// Low band, outer edge.
    pub b_l: f64,
    /// High band, inner edge.
    pub a_h: f64,
    /// High band, outer edge.
    pub b_h: f64,
    /// Radius convention of the edges (default `unit`).
    #[serde(default = "unit")]
    pub radius: RadiusConvention,
}

fn unit() -> RadiusConvention {
    RadiusConvention::Unit
}

#[typetag::serde(name = "two-band")]
impl NoiseSpectrum for TwoBand {
    fn name(&self) -> &'static str {
        "two-band"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        non_negative(self.name(), "gamma_l", self.gamma_l)?;
        non_negative(self.name(), "gamma_h", self.gamma_h)?;
        if self.gamma_l == 0.0 && self.gamma_h == 0.0 {
            return Err(invalid(
                self.name(),
                "gamma_h",
                0,
                "gamma_l and gamma_h not both 0",
            ));
        }
        check_edges(
            self.name(),
            ("a_l", self.a_l),
            ("b_l", self.b_l),
            self.radius,
        )?;
        check_edges(
            self.name(),
            ("a_h", self.a_h),
            ("b_h", self.b_h),
            self.radius,
        )
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        let mut out = vec![0.0; grid.len()];
        for (gamma, a, b) in [
            (self.gamma_l, self.a_l, self.b_l),
            (self.gamma_h, self.a_h, self.b_h),
        ] {
            if gamma == 0.0 {
                continue;
            }
            let band = indicator(self.name(), grid, a, b, self.radius)?;
            let count = band.iter().filter(|&&m| m > 0.0).count();
            let scale = gamma * (grid.len() as f64 / count as f64).sqrt();
            out.iter_mut().zip(&band).for_each(|(o, m)| *o += scale * m);
        }
        Ok(out)
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("gamma_l".to_string(), ParamValue::Number(self.gamma_l)),
            ("gamma_h".to_string(), ParamValue::Number(self.gamma_h)),
            ("a_l".to_string(), ParamValue::Number(self.a_l)),
            ("b_l".to_string(), ParamValue::Number(self.b_l)),
            ("a_h".to_string(), ParamValue::Number(self.a_h)),
            ("b_h".to_string(), ParamValue::Number(self.b_h)),
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
    Ok(Box::new(TwoBand {
        gamma_l: p.number("gamma_l")?,
        gamma_h: p.number("gamma_h")?,
        a_l: p.number("a_l")?,
        b_l: p.number("b_l")?,
        a_h: p.number("a_h")?,
        b_h: p.number("b_h")?,
        radius: p.radius("radius")?,
    }))
}

const fn number(default: f64, lo: f64, hi: f64) -> ParamKind {
    ParamKind::Number {
        default,
        sample: (lo, hi),
        log_sample: false,
    }
}

inventory::submit! {
    SpectrumEntry {
        name: "two-band",
        doc: "gamma_l*band(a_l,b_l) + gamma_h*band(a_h,b_h), each band at unit per-pixel variance (bpm-SAGD)",
        params: &[
            ParamSpec { name: "gamma_l", doc: "weight of the low band (>= 0)", kind: number(1.0, 0.1, 2.0) },
            ParamSpec { name: "gamma_h", doc: "weight of the high band (>= 0)", kind: number(1.0, 0.1, 2.0) },
            ParamSpec { name: "a_l", doc: "low band inner edge", kind: number(0.0, 0.0, 0.2) },
            ParamSpec { name: "b_l", doc: "low band outer edge", kind: number(0.3, 0.25, 0.45) },
            ParamSpec { name: "a_h", doc: "high band inner edge", kind: number(0.4, 0.55, 0.75) },
            ParamSpec { name: "b_h", doc: "high band outer edge", kind: number(1.0, 0.8, 1.0) },
            ParamSpec {
                name: "radius",
                doc: "radius convention of the edges",
                kind: ParamKind::Radius { default: RadiusConvention::Unit },
            },
        ],
        build,
    }
}
