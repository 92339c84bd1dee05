//! # sagd-core
//!
//! The mathematics of spectrally anisotropic Gaussian diffusion, shared by every sagd crate:
//!
//! - [`shape`]: image shapes with compile-time ([`Const`]) or run-time dims, and [`Images`],
//!   a batch over a burn tensor that carries its shape type;
//! - [`grid`]: the `fftfreq` frequency grid and the three radius conventions;
//! - [`spectrum`] and [`registry`]: the [`NoiseSpectrum`] plugin trait, the `inventory`
//!   registry that config strings such as `power-law:alpha=-0.5` resolve through, and
//!   [`SpectrumSpec`], such a string parsed once;
//! - [`covariance`]: `Σ_w = F⁻¹ diag(w²) F` with colour, whiten, `Σ`, `Σ⁺`, projection, rank,
//!   log-determinant and exact draws;
//! - [`noise`]: the [`NoiseOperator`] trait and the forward process;
//! - [`device_noise`]: the same draws and filters on the training device, as DFT matrix
//!   products;
//! - [`schedule`] and [`parameterization`]: noise schedules and exact conversions between
//!   coloured ε, whitened ε, x0, v and score;
//! - [`density`]: Gaussian and Gaussian-mixture data with exact noisy scores and posteriors;
//! - [`theory`]: the analytic theory of spectral bias (learning speed per mode) under
//!   anisotropic noise;
//! - [`verify`]: the property suite any spectrum can be run through;
//! - [`spec`]: the one `NAME:key=value` syntax of spectra, dataset specs and transforms;
//! - [`device`]: devices by name ([`DeviceSpec`]), the rules of device lists and the CUDA
//!   driver probe;
//! - [`files`]: atomic writes of output files.
//!
//! The built-in spectra live in `sagd-ops`.

#![warn(missing_docs)]

pub mod covariance;
pub mod density;
pub mod device;
pub mod device_noise;
pub mod error;
pub mod files;
pub mod grid;
pub mod noise;
pub mod parameterization;
pub mod registry;
pub mod schedule;
pub mod shape;
pub mod spec;
pub mod spectrum;
pub mod terminal;
pub mod theory;
pub mod verify;

pub use covariance::{Normalization, SpectralCovariance};
pub use device::{DeviceError, DeviceSpec};
pub use device_noise::DeviceNoise;
pub use error::{CoreError, SpectrumError};
pub use grid::{Frequency, FrequencyGrid, RadiusConvention};
pub use noise::{NoiseOperator, NoiseRng, SpectralNoise, add_noise, noise_rng};
pub use parameterization::{Parameterization, Parameterized, ScoreParameterization};
pub use registry::{
    ParamKind, ParamMap, ParamReader, ParamSpec, ParamValue, SpectrumEntry, SpectrumSpec,
    parse_spectrum,
};
pub use schedule::{NoiseLevel, Schedule};
pub use shape::{Const, ConstShape, Dim, DynShape, ImageShape, Images, Shape3};
pub use spec::{SpecError, SpecText};
pub use spectrum::NoiseSpectrum;

/// Re-exports for plugin authors: what a crate needs to define and register a spectrum.
pub mod plugin {
    pub use inventory;
    pub use serde;
    pub use typetag;
}

/// The types most programs use.
pub mod prelude {
    pub use crate::covariance::{Normalization, SpectralCovariance};
    pub use crate::grid::{Frequency, FrequencyGrid, RadiusConvention};
    pub use crate::noise::{NoiseOperator, NoiseRng, SpectralNoise, add_noise, noise_rng};
    pub use crate::parameterization::{Parameterization, Parameterized, ScoreParameterization};
    pub use crate::registry::{ParamMap, ParamValue, parse_spectrum};
    pub use crate::schedule::{NoiseLevel, Schedule};
    pub use crate::shape::{Const, ConstShape, DynShape, ImageShape, Images};
    pub use crate::spectrum::NoiseSpectrum;
    pub use burn::tensor::Device;
}
