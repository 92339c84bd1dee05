//! The one error type of the runs: what each subcommand's library call returns.

use std::path::PathBuf;

use sagd_core::files::WriteError;
use sagd_core::{CoreError, DeviceError};
use sagd_datasets::DatasetError;
use sagd_datasets::npy::NpyError;
use sagd_eval::EvalError;
use sagd_models::ModelError;
use sagd_plot::PlotError;
use sagd_samplers::SamplerError;
use thiserror::Error;

use crate::theory::emergence::EmergenceError;

/// What can go wrong in a run. [`RunError::is_usage`] tells the user's mistakes (exit code 2
/// in the CLI) from failures while running (exit code 1).
#[derive(Debug, Error)]
pub enum RunError {
    /// The request is invalid or cannot be carried out as asked: the message names the
    /// request's field by the `sagd` flag that sets it (`--count` for `count`).
    #[error("{0}")]
    Request(String),
    /// An error about what a request's field names (`--samples X`, `--inception`): the field,
    /// then the cause.
    #[error("{arg}")]
    About {
        /// The field as its flag, with the value where useful.
        arg: String,
        /// The cause.
        #[source]
        source: Box<RunError>,
    },
    /// A folder could not be created, or a file read.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `create` (a folder) or `read` (a file).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Serialising a summary failed.
    #[error("cannot serialise the summary: {0}")]
    Json(#[from] serde_json::Error),
    /// A stage's output lacks what a report needs.
    #[error("{0}")]
    Report(String),
    /// A stage of the demo or of an experiment (a `sagd` child process) failed or could not
    /// be started.
    #[error("{0}")]
    Stage(String),
    /// Training diverged (a non-finite loss or gradient).
    #[error("training diverged: the {what} is {value}")]
    Diverged {
        /// `loss` or `gradient norm`.
        what: String,
        /// The value.
        value: f64,
    },
    /// A `sagd theory emergence` request or run directory is wrong.
    #[error(transparent)]
    Emergence(#[from] EmergenceError),
    /// From sagd-core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A device that breaks the rules or that this build or machine cannot run.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Reading data.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// Writing an array.
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// Building, training or reading a model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Sampling.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// Evaluating.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Drawing a figure.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

impl RunError {
    /// True for errors in what the user asked (a bad value, a file named that does not fit),
    /// which the CLI reports with exit code 2; failures while running are not.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Request(_) => true,
            Self::About { source, .. } => source.is_usage(),
            Self::Emergence(e) => e.is_usage(),
            Self::Device(e) => e.is_usage(),
            Self::Dataset(e) => e.is_usage(),
            Self::Model(e) => e.is_usage(),
            Self::Sampler(e) => e.is_usage(),
            Self::Eval(e) => e.is_usage(),
            _ => false,
        }
    }

    /// A [`RunError::Request`].
    pub fn request(message: impl Into<String>) -> Self {
        Self::Request(message.into())
    }

    /// `self` as the cause of a problem with what `arg` names.
    pub fn about(self, arg: impl Into<String>) -> Self {
        Self::About {
            arg: arg.into(),
            source: Box::new(self),
        }
    }
}
