//! Typed errors of sagd-samplers.

use sagd_core::CoreError;
use sagd_datasets::DatasetError;
use sagd_models::ModelError;
use thiserror::Error;

/// What can go wrong setting up or running a sampler or an oracle.
#[derive(Debug, Error)]
pub enum SamplerError {
    /// A sampler or oracle setting is invalid.
    #[error("invalid sampler setting: `{field}` = {value}: expected {expected}")]
    Config {
        /// The setting's name (`steps`, `eta`, `spacing`, …).
        field: String,
        /// The offending value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// The images turned NaN or infinite.
    #[error(
        "sampling produced non-finite values ({what}), first after step {step} of {steps} (from \
         σ = {sigma:.4}): the denoiser's output or the step's arithmetic overflowed there"
    )]
    NonFinite {
        /// The first step after which the images were not finite (1-based).
        step: usize,
        /// The number of steps.
        steps: usize,
        /// The noise level that step started from.
        sigma: f64,
        /// What was non-finite.
        what: String,
    },
    /// The oracle cannot represent this data.
    #[error("no oracle for {0}")]
    NoOracle(String),
    /// From the denoiser.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// From sagd-core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// From the dataset layer.
    #[error(transparent)]
    Data(#[from] DatasetError),
}

impl SamplerError {
    /// A [`SamplerError::Config`].
    pub fn config(field: &str, value: impl ToString, expected: impl Into<String>) -> Self {
        Self::Config {
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// True for errors in what the user asked for (exit code 2 in the CLI) rather than
    /// failures while running.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Config { .. } | Self::NoOracle(_) => true,
            Self::Model(e) => e.is_usage(),
            Self::Data(e) => e.is_usage(),
            Self::Core(_) | Self::NonFinite { .. } => false,
        }
    }
}
