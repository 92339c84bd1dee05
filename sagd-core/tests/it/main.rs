//! Integration tests of sagd-core: one binary, each file a module (one link, not one per file).

mod covariance;
mod device_noise;
