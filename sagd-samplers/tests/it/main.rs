//! Integration tests of sagd-samplers: one binary, each file a module (one link, not one per file).

mod oracle;
mod oracle_sampling;
