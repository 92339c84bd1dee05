//! `tabulated`: a piecewise-linear radial profile through `(r_i, w_i)`.

use sagd_core::plugin::{inventory, typetag};
use sagd_core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd_core::spectrum::pointwise_amplitudes;
use sagd_core::{
    FrequencyGrid, NoiseSpectrum, ParamMap, ParamValue, RadiusConvention, SpectrumError,
};
use serde::{Deserialize, Serialize};

use crate::invalid;

/// A radial profile given by points: linear between `(r_i, w_i)`, constant beyond the first
/// and last point. In a config string the lists are written `r=0;0.5;1,w=1;0.3;0.1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tabulated {
    /// Radii, strictly increasing, ≥ 0.
    pub r: Vec<f64>,
    /// Amplitudes at the radii, ≥ 0.
    pub w: Vec<f64>,
    /// Radius convention of `r` (default `unit`).
    #[serde(default = "unit")]
    pub radius: RadiusConvention,
}

fn unit() -> RadiusConvention {
    RadiusConvention::Unit
}

impl Tabulated {
    /// The profile at radius `x` (same convention as `r`).
    pub fn profile(&self, x: f64) -> f64 {
        let (r, w) = (&self.r, &self.w);
        if x <= r[0] {
            return w[0];
        }
        if x >= r[r.len() - 1] {
            return w[w.len() - 1];
        }
        let i = r.partition_point(|&ri| ri <= x) - 1;
        let t = (x - r[i]) / (r[i + 1] - r[i]);
        w[i] + t * (w[i + 1] - w[i])
    }
}

#[typetag::serde(name = "tabulated")]
impl NoiseSpectrum for Tabulated {
    fn name(&self) -> &'static str {
        "tabulated"
    }
    fn validate(&self) -> Result<(), SpectrumError> {
        let name = self.name();
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(";")
        };
        if self.r.is_empty() {
            return Err(invalid(name, "r", "", "at least one radius"));
        }
        if self.r.len() != self.w.len() {
            return Err(invalid(
                name,
                "w",
                show(&self.w),
                &format!("as many amplitudes as radii ({})", self.r.len()),
            ));
        }
        if self.r.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(invalid(name, "r", show(&self.r), "finite radii >= 0"));
        }
        if self.r.windows(2).any(|p| p[1] <= p[0]) {
            return Err(invalid(
                name,
                "r",
                show(&self.r),
                "strictly increasing radii",
            ));
        }
        if self.w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(invalid(name, "w", show(&self.w), "finite amplitudes >= 0"));
        }
        Ok(())
    }
    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        pointwise_amplitudes(self.name(), grid, |f| self.profile(f.radius(self.radius)))
    }
    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("r".to_string(), ParamValue::List(self.r.clone())),
            ("w".to_string(), ParamValue::List(self.w.clone())),
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
    Ok(Box::new(Tabulated {
        r: p.list("r")?,
        w: p.list("w")?,
        radius: p.radius("radius")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "tabulated",
        doc: "piecewise-linear radial profile through the points (r_i, w_i), constant outside",
        params: &[
            ParamSpec {
                name: "r",
                doc: "radii, strictly increasing (list, `;`-separated)",
                kind: ParamKind::List { default: &[0.0, 1.0], sample: (0.0, 1.0), sorted: true },
            },
            ParamSpec {
                name: "w",
                doc: "amplitudes at the radii, >= 0 (list, `;`-separated)",
                kind: ParamKind::List { default: &[1.0, 1.0], sample: (0.05, 2.0), sorted: false },
            },
            ParamSpec {
                name: "radius",
                doc: "radius convention of r",
                kind: ParamKind::Radius { default: RadiusConvention::Unit },
            },
        ],
        build,
    }
}
