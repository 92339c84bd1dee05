//! The errors of evaluation.

use std::path::PathBuf;

use sagd_core::CoreError;
use sagd_datasets::DatasetError;
use sagd_datasets::npy::NpyError;
use sagd_models::ModelError;
use sagd_plot::PlotError;
use sagd_samplers::SamplerError;
use thiserror::Error;

/// What can go wrong while evaluating samples.
#[derive(Debug, Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A weights file is neither a safetensors file nor a PyTorch state dict, or holds the wrong
    /// network.
    #[error("{path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A tensor of the weights file is missing, misshapen or of a type that cannot be read.
    #[error("{path}: tensor `{name}`: {message}")]
    Tensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor's key (pytorch-fid's module path, e.g. `Mixed_5b.branch1x1.conv.weight`).
        name: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The images or features handed to a metric cannot be compared: a shape or channel
    /// mismatch, too few images, values outside the expected range.
    #[error("{what}: {message}")]
    Input {
        /// Which input (`samples`, `reference`, `features`, …).
        what: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A statistics file (`mu`, `sigma`) is malformed.
    #[error("{path}: {message}")]
    Stats {
        /// The file.
        path: PathBuf,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Reading images or arrays failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// Writing an array failed.
    #[error(transparent)]
    Write(#[from] NpyError),
    /// A [theory](crate::theory) or [evaluation](crate::run) run's request is invalid: the
    /// message names the request's field by the `sagd` flag that sets it (`--levels` for
    /// `levels`).
    #[error("{0}")]
    Request(String),
    /// An output folder or file could not be created or written.
    #[error("cannot {action} {}", path.display())]
    Output {
        /// `create` (a folder) or `write` (a file).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serialising a summary failed.
    #[error("cannot serialise the summary: {0}")]
    Json(serde_json::Error),
    /// Drawing a figure failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Building, training or reading a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Sampling failed.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// From sagd-core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error reading or writing what a request's field names (`--samples X`,
    /// `--inception`): the field, then the cause.
    #[error("{arg}")]
    About {
        /// The field as its flag, with the value where useful.
        arg: String,
        /// The cause.
        #[source]
        source: Box<EvalError>,
    },
    /// A stage's output lacks what the [demo](crate::demo)'s report needs.
    #[error("{0}")]
    Report(String),
    /// A [`sagd theory emergence`](crate::emergence) run's request or run directory is wrong.
    #[error(transparent)]
    Emergence(#[from] crate::emergence::EmergenceError),
    /// Training produced a non-finite loss or gradient.
    #[error("training diverged: the {what} is {value}")]
    Diverged {
        /// `loss` or `gradient norm`.
        what: String,
        /// The value.
        value: f64,
    },
}

impl EvalError {
    pub(crate) fn input(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input {
            what: what.into(),
            message: message.into(),
        }
    }
}
