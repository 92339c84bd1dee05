//! # sagd-samplers
//!
//! Samplers for spectrally anisotropic diffusion, exact for the anisotropic process: every
//! step that adds noise draws it through the denoiser's own
//! [`NoiseOperator`](sagd_core::NoiseOperator), so it is coloured by `Σ_w`, and no sampler
//! needs `Σ_w⁻¹`. Each sampler is its update rule ([`Sampler::update`]); the loop over the
//! visited levels is shared ([`Sampler::sample_from`]).
//!
//! - [`Ddim`] (η = 0 is the papers' sampler), [`Ddpm`] ancestral with posterior noise
//!   `N(0, β̃ Σ_w)`, and the probability-flow ODE ([`ProbabilityFlow`]) by Euler or Heun, in
//!   the VP or the EDM σ form;
//! - [`timesteps`]: uniform, quadratic and Karras (ρ = 7) spacings over a denoiser's levels;
//! - [`Prior`]: `matched` `N(0, σ_T² Σ_w)` (default) or `white` (ablation);
//! - [`affine::generated_mode_variances`]: the exact generated variance per Fourier mode of a
//!   deterministic sampler with an affine (`linear`, `circulant`) denoiser;
//! - [`OracleDenoiser`]: the exact posterior-mean denoiser of Gaussian, `grf` and `gmm` data
//!   under any spectrum, usable wherever a trained model is;
//!
//! ```no_run
//! use std::sync::Arc;
//! use sagd_core::prelude::*;
//! use sagd_samplers::{Method, OracleData, OracleDenoiser, SamplerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let shape = DynShape::new(1, 16, 16);
//! let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=0.05")?;
//! let noise = SpectralNoise::new(spectrum.as_ref(), shape, Normalization::Energy)?;
//! let power = vec![1.0; 256]; // white data, unit variance per mode
//! let oracle = OracleDenoiser::new(
//!     OracleData::stationary_gaussian(power, shape.dims()),
//!     noise,
//!     &Schedule::ddpm_linear(),
//! )?;
//! let sampler = SamplerConfig::new(Method::Ddim, 50).build()?;
//! let mut rng = noise_rng(0);
//! let images = sampler.sample(&oracle, 16, &mut rng, &Device::flex(), &mut |_| {})?;
//! assert_eq!(images.count(), 16);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod affine;
pub mod ddim;
pub mod ddpm;
pub mod error;
pub mod ode;
pub mod oracle;
pub mod sampler;
pub mod timesteps;

pub use ddim::Ddim;
pub use ddpm::Ddpm;
pub use error::SamplerError;
pub use ode::{ProbabilityFlow, Solver};
pub use oracle::{OracleData, OracleDenoiser};
pub use sampler::{Common, Method, OdeForm, Prior, Progress, Sampler, SamplerConfig, Step, lin};
pub use timesteps::Spacing;
