//! # sagd-samplers
//!
//! DDIM, DDPM ancestral and probability-flow ODE samplers with coloured noise. This crate is
//! filled by the sampler issue; it has no public items yet.

#![warn(missing_docs)]
