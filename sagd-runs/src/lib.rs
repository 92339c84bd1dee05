//! # sagd-runs
//!
//! What each `sagd` subcommand does, as a library call: a typed request in, progress through a
//! callback, a typed error ([`RunError`]) or a serialisable result out, and the subcommand's
//! files written. The CLI parses flags into the request, calls one function and prints; a Rust
//! pipeline calls the same function.
//!
//! | subcommand | module |
//! | --- | --- |
//! | `sagd sample` | [`sample`] |
//! | `sagd eval` | [`eval`] |
//! | `sagd train` | [`train`] |
//! | `sagd data stats/preview/export` | [`data`] |
//! | `sagd noise`, `sagd verify` (with or without `--data`) | [`noise`], [`verify`] |
//! | `sagd spectra list/show` | [`spectra`] |
//! | `sagd theory predict/validate/emergence` | [`theory`], [`theory::emergence`] |
//! | `sagd demo` | [`demo`] |
//! | `sagd experiment` | [`experiment`] |
//!
//! [`output`] writes what several runs write (folders, JSON, image grids, spectra figures);
//! [`stages`] runs `sagd` subcommands as child processes for the demo and experiments.
//! This is the only crate below the CLI that draws figures (`sagd-plot`).

#![warn(missing_docs)]

pub mod data;
pub mod demo;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod noise;
pub mod output;
pub mod sample;
pub mod spectra;
pub mod stages;
pub mod theory;
pub mod train;
pub mod verify;

pub use error::RunError;
