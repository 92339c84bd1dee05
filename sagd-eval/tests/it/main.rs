//! Integration tests of sagd-eval: one binary, each file a module (one link, not one per file).

mod inception_reference;
mod metrics;
mod sources;
mod weights;
