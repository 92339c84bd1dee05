//! Flag values parsed into the library's types at the edge (clap value parsers): a bad value
//! is a usage error (exit 2) naming the flag and what was expected.

use sagd_core::{DeviceSpec, DynShape, Normalization, RadiusConvention, SpectrumSpec};

/// A spectrum: `NAME`, `NAME:key=value,…` or `@file.toml`.
pub fn spectrum(text: &str) -> Result<SpectrumSpec, String> {
    text.parse()
        .map_err(|e: sagd_core::SpectrumError| e.to_string())
}

/// An image size `CxHxW`.
pub fn size(text: &str) -> Result<DynShape, String> {
    text.parse()
        .map_err(|e: sagd_core::CoreError| e.to_string())
}

/// A radius convention: `cycles`, `unit` or `nyquist`.
pub fn radius(text: &str) -> Result<RadiusConvention, String> {
    text.parse()
        .map_err(|e: sagd_core::SpectrumError| e.to_string())
}

/// A normalization: `energy`, `none` or `per-sample-std`.
pub fn normalization(text: &str) -> Result<Normalization, String> {
    text.parse()
        .map_err(|e: sagd_core::CoreError| e.to_string())
}

/// A device: `cpu`, `cuda`, `cuda:N`, …
pub fn device(text: &str) -> Result<DeviceSpec, String> {
    text.parse()
        .map_err(|e: sagd_core::DeviceError| e.to_string())
}
