//! Integration tests of the umbrella crate: one binary, each file a module (one link, not one per file).

mod pipeline;
mod properties;
#[cfg(feature = "cube-cpu")]
mod stand_in;
