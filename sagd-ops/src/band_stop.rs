//! `band-stop`: `w(f) = 1` outside the open band `a < r < b`, 0 inside.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, RadiusConvention, SpectrumError,
};
use serde::{Deserialize, Serialize};

use crate::band::check_edges;

/// Every mode but those of the band `a < r < b` at the same power: the control for
/// `two-band`, which omits the same band (`two-band:a_l=0,b_l=a,a_h=b,b_h=<max>` has the same
/// support) but scales each of its bands to unit per-pixel variance and so also reweights the
/// modes it keeps. Modes on the edges (`r = a`, `r = b`) are kept, as `two-band` keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandStop {
    /// Inner edge of the stopped band.
    pub a: f64,
    /// Outer edge of the stopped band.
    pub b: f64,
    /// Radius convention of the edges (default `unit`: [0, 1] covers the spectrum).
    #[serde(default = "unit")]
    pub radius: RadiusConvention,
}

fn unit() -> RadiusConvention {
    RadiusConvention::Unit
}

#[typetag::serde(name = "band-stop")]
impl NoiseSpectrum for BandStop {
    fn name(&self) -> &'static str {
        "band-stop"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        check_edges(self.name(), ("a", self.a), ("b", self.b), self.radius)
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        // The slack of the bands' indicator, so that an edge written in decimal keeps the
        // frequencies on it, as the bands of `two-band` do.
        let slack = 1e-12;
        // The DC mode (r = 0 ≤ a) is always kept: the support is never empty.
        Ok(grid
            .frequencies()
            .map(|f| {
                let r = f.radius(self.radius);
                if r > self.a + slack && r < self.b - slack {
                    0.0
                } else {
                    1.0
                }
            })
            .collect())
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
    Ok(Box::new(BandStop {
        a: p.number("a")?,
        b: p.number("b")?,
        radius: p.radius("radius")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "band-stop",
        doc: "1 outside the band a < r < b, 0 inside: every kept mode at the same power (two-band's control)",
        params: &[
            ParamSpec {
                name: "a",
                doc: "inner edge of the stopped band",
                kind: ParamKind::Number { default: 0.4, sample: (0.0, 0.45), log_sample: false },
            },
            ParamSpec {
                name: "b",
                doc: "outer edge of the stopped band",
                kind: ParamKind::Number { default: 0.5, sample: (0.55, 1.0), log_sample: false },
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
