//! Typed errors of sagd-samplers.

use sagd_core::CoreError;
use std::path::PathBuf;

use sagd_datasets::DatasetError;
use sagd_datasets::npy::NpyError;
use sagd_models::ModelError;
use sagd_plot::PlotError;
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
    /// The noise operator and the denoiser disagree on the image shape or on `Σ_w`.
    #[error("the noise operator does not match the denoiser: {0}")]
    NoiseMismatch(String),
    /// The images turned NaN or infinite.
    #[error("sampling produced non-finite values ({what}) by step {step} of {steps}")]
    NonFinite {
        /// The last step taken.
        step: usize,
        /// The number of steps.
        steps: usize,
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
    /// A [sampling run](crate::run)'s request is invalid or cannot be carried out as asked (a
    /// count of 0, a shape other than the source's, samples already there): the message names
    /// the request's field by the `sagd sample` flag that sets it (`--count` for `count`).
    #[error("{0}")]
    Request(String),
    /// A folder or file could not be created or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `create` (a folder) or `write` (a file).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing `samples.npy` failed.
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// Drawing a figure failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Serialising a summary failed.
    #[error("cannot serialise the summary: {0}")]
    Json(serde_json::Error),
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
            Self::Config { .. } | Self::NoiseMismatch(_) | Self::NoOracle(_) | Self::Request(_) => {
                true
            }
            Self::Model(e) => e.is_usage(),
            Self::Core(_)
            | Self::Data(_)
            | Self::NonFinite { .. }
            | Self::Io { .. }
            | Self::Npy(_)
            | Self::Plot(_)
            | Self::Json(_) => false,
        }
    }
}
