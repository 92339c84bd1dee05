//! The errors of evaluation.

use std::path::PathBuf;

use sagd_core::CoreError;
use sagd_datasets::DatasetError;
use sagd_datasets::npy::NpyError;
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
    /// No FID Inception weights were found; the message says where to get them.
    #[error("{0}")]
    NoWeights(String),
    /// From sagd-core.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl EvalError {
    /// True for errors in what the user gave (images that cannot be compared, a spec or
    /// transform, no weights), which the CLI reports with exit code 2.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Input { .. } | Self::NoWeights(_) => true,
            Self::Dataset(e) => e.is_usage(),
            _ => false,
        }
    }

    pub(crate) fn input(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input {
            what: what.into(),
            message: message.into(),
        }
    }
}
