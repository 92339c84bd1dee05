//! Integration tests of sagd-models: one binary, each file a module (one link, not one per file).

mod data_parallel;
mod device_batches;
mod run_checks;
mod training;
