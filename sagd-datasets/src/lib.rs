//! # sagd-datasets
//!
//! Data for sagd: the [`Dataset`] type (u8 or f32 images with optional labels, seeded
//! batching), loaders for real formats, synthetic data with known spectra, transforms and
//! statistics.

#![warn(missing_docs)]

pub mod dataset;
pub mod error;
pub mod npy;

pub use dataset::{Batches, Dataset, Pixels};
pub use error::DatasetError;
