//! # sagd-datasets
//!
//! Data for sagd. So far: the `.npy` format ([`npy`]), written atomically. Loaders (IDX,
//! CIFAR-10, image folders), synthetic data, transforms and statistics come with the dataset
//! issue.

#![warn(missing_docs)]

pub mod npy;
