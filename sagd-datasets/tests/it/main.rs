//! Integration tests of sagd-datasets: one binary, each file a module (one link, not one per file).

mod real_data;
mod spec;
mod synthetic;
