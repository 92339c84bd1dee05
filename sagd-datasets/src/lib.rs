//! # sagd-datasets
//!
//! Data for sagd: the [`Dataset`] type (u8 or f32 images with optional labels, seeded
//! batching), loaders for real formats, synthetic data with known spectra, transforms and
//! statistics.
//!
//! [`run`] holds the work of the `sagd data` commands, of `sagd noise` (coloured noise into a
//! `.npy`: drawing is `sagd-core`'s, the file is this crate's) and of `sagd verify --data` (the
//! terminal-SNR check needs the data's spectrum), so a Rust pipeline calls them as the CLI
//! does; its figures go through `sagd-plot`.

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
