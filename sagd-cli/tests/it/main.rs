//! Integration tests of sagd-cli: one binary, each file a module (one link, not one per file).

mod cli;
mod common;
mod data;
mod demo;
mod eval;
mod experiment;
mod interrupt;
mod lifecycle;
mod readme;
mod sample;
mod theory;
mod train;
