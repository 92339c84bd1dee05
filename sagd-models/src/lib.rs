//! # sagd-models
//!
//! Denoisers as burn modules and the SAGD training loop.
//!
//! - [`nets`]: the four networks — [`LinearDenoiser`](nets::LinearDenoiser) (a full affine
//!   map per noise level, the linear theory's model), [`CirculantDenoiser`](nets::CirculantDenoiser)
//!   (a full-width circular convolution per level), [`MlpDenoiser`](nets::MlpDenoiser)
//!   (residual MLP with a sinusoidal time embedding) and [`UnetDenoiser`](nets::UnetDenoiser)
//!   (DDPM-style U-Net, presets `tiny` and `paper`) — behind one enum [`Net`] built from a
//!   [`ModelConfig`].
//! - [`train()`]: the loop behind `sagd train` — seeded batches of coloured noise, AdamW with
//!   warm-up and cosine decay, global-norm clipping, EMA, atomic [`checkpoint`]s and an exact
//!   `--resume`; [`parallel`] spreads each step over several devices (data parallelism).
//! - [`Denoiser`]: a trained network bound to its schedule, parameterization and image
//!   shape, as samplers use it.
//!
//! Everything is seeded: the same config gives the same weights on CPU, and a run resumed
//! from a checkpoint continues bit for bit.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod denoiser;
pub mod device;
pub mod error;
pub mod fullbatch;
pub mod init;
pub mod nets;
pub mod optim;
pub mod parallel;
pub mod params;
pub mod train;

pub use config::{NoiseConfig, RunConfig};
pub use denoiser::{Denoiser, TrainedDenoiser};
pub use error::ModelError;
pub use nets::{Conditioning, ModelConfig, Net, UnetArch};
pub use optim::{EmaConfig, OptimizerConfig, OptimizerKind};
pub use train::{Batch, Event, TrainOptions, TrainState, TrainSummary, train};
