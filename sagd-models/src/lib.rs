//! # sagd-models
//!
//! Denoisers as burn modules and the SAGD training loop.
//!
//! - [`nets`]: the four networks, each in its file with its config (serde, `validate`,
//!   `init`) — [`LinearDenoiser`](nets::LinearDenoiser) (a full affine map per noise level,
//!   the linear theory's model), [`CirculantDenoiser`](nets::CirculantDenoiser) (a full-width
//!   circular convolution per level), [`MlpDenoiser`](nets::MlpDenoiser) (residual MLP with a
//!   sinusoidal time embedding) and [`UnetDenoiser`](nets::UnetDenoiser) (DDPM-style U-Net,
//!   presets `tiny` and `paper`) — behind one enum [`Net`] built from a [`ModelConfig`], the
//!   enum of their configs;
//! - [`batches`]: each step's batch from the run's deterministic streams, on the host or the
//!   device; [`loss`]: the training objective (targets of each parameterization, the weighted
//!   squared error);
//! - [`train()`]: the loop behind `sagd train` — AdamW with warm-up and cosine decay,
//!   global-norm clipping, EMA, atomic [`checkpoint`]s and an exact `--resume`; [`parallel`]
//!   spreads each step over several devices (data parallelism);
//! - [`Denoiser`]: a trained network bound to its schedule, parameterization, noise operator
//!   and image shape, as samplers use it; [`OutputRange`]: how its outputs map back to the
//!   data's range.
//!
//! Everything is seeded: the same config gives the same weights on CPU, and a run resumed
//! from a checkpoint continues bit for bit.

#![warn(missing_docs)]

pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod denoiser;
pub mod error;
pub mod fullbatch;
pub mod init;
pub mod loss;
pub mod nets;
pub mod optim;
pub mod parallel;
pub mod params;
pub mod range;
mod run_dir;
pub mod train;

pub use batches::{BatchSource, training_pipeline};
pub use config::{NoiseConfig, RunConfig};
pub use denoiser::{Denoiser, TrainedDenoiser, load_net};
pub use error::ModelError;
pub use loss::Batch;
pub use nets::{Conditioning, ModelConfig, Net, NetworkConfig, UnetArch};
pub use optim::{EmaConfig, OptimizerConfig, OptimizerKind};
pub use range::OutputRange;
pub use train::{Event, TrainOptions, TrainState, TrainSummary, train};
