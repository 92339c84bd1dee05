//! # sagd
//!
//! Spectrally anisotropic Gaussian diffusion: diffusion models whose forward noise is shaped in
//! frequency, with the analytic theory of spectral bias and a verification suite. This umbrella
//! crate re-exports the workspace:
//!
//! - [`core`] (`sagd-core`): shapes, spectra → covariance, schedules, parameterizations,
//!   analytic densities, the registry and the property suite;
//! - [`ops`] (`sagd-ops`): the built-in spectra;
//! - [`models`], [`samplers`], [`datasets`]: denoisers and training, samplers, data;
//! - [`eval`] (`sagd-eval`): the FID Inception network, FID/KID/precision–recall and the
//!   spectral metrics;
//! - [`plot`] (`sagd-plot`): PNG figures (heat maps, line plots, image grids);
//! - [`runs`] (`sagd-runs`): what each `sagd` subcommand does.
//!
//! What the `sagd` commands do is library code with typed requests and results, so a Rust
//! pipeline runs it as the CLI does: [`runs::sample`] (`sagd sample`), [`runs::eval`]
//! (`sagd eval`), [`runs::train`] (`sagd train`), [`runs::theory`] (`sagd theory
//! predict|validate|emergence`), [`runs::spectra`] (`sagd spectra show`), [`runs::data`],
//! [`runs::noise`] and [`runs::verify`] (`sagd data`, `sagd noise`, `sagd verify --data`),
//! [`runs::demo`] and [`runs::experiment`]; `examples/library_runs.rs` calls the first and the
//! theory.
//!
//! ```
//! use sagd::prelude::*;
//!
//! let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=0.01").unwrap();
//! let noise = SpectralNoise::new(spectrum.as_ref(), ConstShape::<1, 8, 8>::default(), Normalization::Energy).unwrap();
//! let eps = noise.sample(4, &mut noise_rng(0), &Device::flex()).unwrap();
//! assert_eq!(eps.count(), 4);
//! ```

#![warn(missing_docs)]

pub use sagd_core as core;
pub use sagd_datasets as datasets;
pub use sagd_eval as eval;
pub use sagd_models as models;
pub use sagd_ops as ops;
pub use sagd_plot as plot;
pub use sagd_runs as runs;
pub use sagd_samplers as samplers;

/// The types most programs use (from `sagd-core`), with the built-in spectra linked in.
pub mod prelude {
    pub use sagd_core::prelude::*;
    pub use sagd_ops::{
        BandPass, BandStop, DcLevel, ExpDecay, Isotropic, Offset, PowerLaw, Tabulated, TwoBand,
    };
}
