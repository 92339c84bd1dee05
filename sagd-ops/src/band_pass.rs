//! `band-pass`: `w(f) = 1[a ≤ r ≤ b]`.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, RadiusConvention, SpectrumError,
};
use serde::{Deserialize, Serialize};

use crate::band::{check_edges, indicator};

/// Noise only on the annulus `a ≤ r ≤ b` (rank-deficient unless it covers every frequency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandPass {
    /// Inner edge.
    pub a: f64,
    /// Outer edge.
    pub b: f64,
    /// Radius convention of the edges (default `unit`: [0, 1] covers the spectrum).
    #[serde(default = "unit")]
    pub radius: RadiusConvention,
}

fn unit() -> RadiusConvention {
    RadiusConvention::Unit
}

#[typetag::serde(name = "band-pass")]
impl NoiseSpectrum for BandPass {
    fn name(&self) -> &'static str {
        "band-pass"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        check_edges(self.name(), ("a", self.a), ("b", self.b), self.radius)
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        indicator(self.name(), grid, self.a, self.b, self.radius)
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("a".to_string(), ParamValue::Number(self.a)),
            ("b".to_string(), ParamValue::Number(self.b)),
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
    Ok(Box::new(BandPass {
        a: p.number("a")?,
        b: p.number("b")?,
        radius: p.radius("radius")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "band-pass",
        doc: "w(f) = 1 on the band a <= r <= b, 0 elsewhere (rank-deficient)",
        params: &[
            ParamSpec {
                name: "a",
                doc: "inner band edge",
                kind: ParamKind::Number { default: 0.2, sample: (0.0, 0.5), log_sample: false },
            },
            ParamSpec {
                name: "b",
                doc: "outer band edge (>= a)",
                kind: ParamKind::Number { default: 0.6, sample: (0.5, 1.0), log_sample: false },
            },
            ParamSpec {
                name: "radius",
                doc: "radius convention of the edges",
                kind: ParamKind::Radius { default: RadiusConvention::Unit },
            },
        ],
        build,
    }
}
