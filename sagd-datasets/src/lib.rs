//! # sagd-datasets
//!
//! Data for sagd: the [`Dataset`] type (u8 or f32 images with optional labels, seeded
//! batching), loaders for real formats, synthetic data with known spectra, transforms and
//! statistics.
//!
//! Every dataset is named by a [`DataSpec`] (`mnist:DIR`, `shapes:n=64`, …, in the one
//! `NAME:key=value` syntax of [`sagd_core::spec`]); the `sagd data` commands built on them are
//! `sagd-runs`'.

#![warn(missing_docs)]

pub mod cifar;
pub mod dataset;
pub mod error;
pub mod folder;
pub mod idx;
pub mod npy;
pub mod npz;
pub mod spec;
pub mod split;
pub mod stats;
pub mod synthetic;
pub mod transform;

pub use dataset::{Batches, Dataset, Pixels};
pub use error::DatasetError;
pub use npy::Layout;
pub use spec::DataSpec;
pub use split::Split;
pub use transform::{Pipeline, Transform};
