//! # sagd-models
//!
//! Denoisers (linear, circulant, MLP, U-Net) and the SAGD training loop. This crate is filled
//! by the training issue; it has no public items yet.

#![warn(missing_docs)]
