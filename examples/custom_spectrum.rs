//! A noise spectrum defined outside the built-ins: a Gaussian ring around radius `r0` over a
//! white floor. The example registers it, serializes it, builds it from a config string, draws
//! noise with it, and runs the property suite on it, the way a downstream crate would.
//!
//! Run with `cargo run --release --example custom_spectrum`.

use sagd::core::plugin::{inventory, typetag};
use sagd::core::registry::{ParamKind, ParamReader, ParamSpec, SpectrumEntry};
use sagd::core::spectrum::{config_string, pointwise_amplitudes};
use sagd::core::verify::{VerifyConfig, verify_spectrum_string};
use sagd::core::{FrequencyGrid, ParamValue, SpectrumError};
use sagd::prelude::*;
use serde::{Deserialize, Serialize};

/// `w(f) = floor + exp(-(r - r0)² / (2 width²))`, r in the `unit` convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ring {
    r0: f64,
    width: f64,
    floor: f64,
}

#[typetag::serde(name = "ring")]
impl NoiseSpectrum for Ring {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn validate(&self) -> Result<(), SpectrumError> {
        let bad = |param: &str, value: f64, expected: &str| SpectrumError::InvalidParam {
            spectrum: "ring".into(),
            param: param.into(),
            value: value.to_string(),
            expected: expected.into(),
        };
        if !(self.r0.is_finite() && (0.0..=1.0).contains(&self.r0)) {
            return Err(bad("r0", self.r0, "a radius in [0, 1] (unit convention)"));
        }
        if !(self.width.is_finite() && self.width > 0.0) {
            return Err(bad("width", self.width, "a finite number > 0"));
        }
        if !(self.floor.is_finite() && self.floor >= 0.0) {
            return Err(bad("floor", self.floor, "a finite number >= 0"));
        }
        Ok(())
    }

    fn amplitudes(&self, grid: &FrequencyGrid) -> Result<Vec<f64>, SpectrumError> {
        self.validate()?;
        pointwise_amplitudes(self.name(), grid, |f| {
            let d = f.radius(RadiusConvention::Unit) - self.r0;
            self.floor + (-d * d / (2.0 * self.width * self.width)).exp()
        })
    }

    fn params(&self) -> ParamMap {
        ParamMap::from([
            ("r0".to_string(), ParamValue::Number(self.r0)),
            ("width".to_string(), ParamValue::Number(self.width)),
            ("floor".to_string(), ParamValue::Number(self.floor)),
        ])
    }

    fn clone_box(&self) -> Box<dyn NoiseSpectrum> {
        Box::new(self.clone())
    }
}

fn build(p: &ParamReader) -> Result<Box<dyn NoiseSpectrum>, SpectrumError> {
    Ok(Box::new(Ring {
        r0: p.number("r0")?,
        width: p.number("width")?,
        floor: p.number("floor")?,
    }))
}

inventory::submit! {
    SpectrumEntry {
        name: "ring",
        doc: "a Gaussian ring of noise around radius r0 (unit convention) over a white floor",
        params: &[
            ParamSpec {
                name: "r0",
                doc: "ring radius",
                kind: ParamKind::Number { default: 0.4, sample: (0.0, 1.0), log_sample: false },
            },
            ParamSpec {
                name: "width",
                doc: "ring width",
                kind: ParamKind::Number { default: 0.1, sample: (0.05, 0.5), log_sample: true },
            },
            ParamSpec {
                name: "floor",
                doc: "white floor (> 0 keeps full support)",
                kind: ParamKind::Number { default: 0.05, sample: (0.01, 0.5), log_sample: true },
            },
        ],
        build,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Registered next to the built-ins.
    let names: Vec<&str> = sagd::core::registry::entries()
        .iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"ring") && names.contains(&"power-law"));
    println!("registered spectra: {}", names.join(", "));

    // 2. Built from a config string, as the CLI and configs do.
    let spectrum = parse_spectrum("ring:r0=0.3,width=0.08")?;
    println!("built {}", config_string(spectrum.as_ref()));

    // 3. Serialized through typetag and read back.
    let json = serde_json::to_string(&spectrum)?;
    let back: Box<dyn NoiseSpectrum> = serde_json::from_str(&json)?;
    assert_eq!(
        config_string(back.as_ref()),
        config_string(spectrum.as_ref())
    );
    let toml_text = toml::to_string(&spectrum)?;
    println!("as TOML:\n{toml_text}");
    let from_toml: Box<dyn NoiseSpectrum> = toml::from_str(&toml_text)?;
    assert_eq!(
        config_string(from_toml.as_ref()),
        config_string(spectrum.as_ref())
    );

    // 4. Noise for 3×16×16 images, with the shape checked at compile time.
    let noise = SpectralNoise::new(
        spectrum.as_ref(),
        ConstShape::<3, 16, 16>::default(),
        Normalization::Energy,
    )?;
    let batch = noise.sample(8, &mut noise_rng(42), &Device::flex())?;
    let values = batch.to_host();
    let variance = values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / values.len() as f64;
    println!(
        "drew {} images; per-pixel variance {variance:.3} (energy normalization: ≈ 1)",
        batch.count()
    );

    // 5. The property suite, as a downstream crate's test would run it.
    let report = verify_spectrum_string("ring", &VerifyConfig::default())?;
    print!("{}", report.summary());
    if !report.passed() {
        return Err("the ring spectrum failed the property suite".into());
    }
    let fixed = verify_spectrum_string(
        "ring:floor=0.2",
        &VerifyConfig {
            cases: 16,
            ..VerifyConfig::default()
        },
    )?;
    fixed.assert_passed();
    println!("all properties hold");
    Ok(())
}
