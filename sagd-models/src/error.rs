//! Typed errors of sagd-models.

use std::path::PathBuf;

use sagd_core::CoreError;
use sagd_datasets::DatasetError;
use thiserror::Error;

/// What can go wrong building, training, saving or loading a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A configuration value is invalid.
    #[error("invalid configuration: `{field}` = {value}: expected {expected}")]
    Config {
        /// The key, as written in the config file (e.g. `model.widths`).
        field: String,
        /// The offending value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// An option of one invocation (not a config key) that cannot be honoured, such as a stop
    /// before the run's checkpoint or an output directory that already holds a run.
    #[error("{option} {value}: {message}")]
    Invocation {
        /// The option, as the CLI spells it (`--stop-at`).
        option: String,
        /// The value given.
        value: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A configuration file could not be parsed (unknown key, wrong type, bad TOML).
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A checkpoint file is missing, truncated, corrupted or does not fit the model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An I/O failure on `path`.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error, as text.
        cause: String,
    },
    /// Tensors of the wrong shape were passed to a model.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// Where.
        context: String,
        /// The expected shape.
        expected: String,
        /// The shape given.
        got: String,
    },
    /// The loss or the gradient became NaN or infinite.
    #[error(
        "training stopped at step {step}: the {what} is {value}; the last good checkpoint is {last_checkpoint}"
    )]
    NonFinite {
        /// The step whose update was refused.
        step: u64,
        /// `loss`, `gradient norm` or `weights`.
        what: &'static str,
        /// The value (NaN or inf).
        value: f64,
        /// The newest checkpoint on disk, or `none`.
        last_checkpoint: String,
    },
    /// The pre-flight terminal-SNR check refused the spectrum.
    #[error("{0}")]
    TerminalSnr(String),
    /// A device that breaks the rules of device lists, or that this build or machine cannot
    /// run.
    #[error(transparent)]
    Device(#[from] sagd_core::DeviceError),
    /// Writing an output file failed.
    #[error(transparent)]
    Write(#[from] sagd_core::files::WriteError),
    /// An error from sagd-core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error from sagd-datasets.
    #[error(transparent)]
    Data(#[from] DatasetError),
}

impl ModelError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, cause: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            cause: cause.to_string(),
        }
    }

    /// An invalid configuration value.
    pub fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self::Config {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// An option of this invocation that cannot be honoured.
    pub fn invocation(
        option: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Self::Invocation {
            option: option.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }

    /// A checkpoint problem.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.into(),
            message: message.into(),
        }
    }

    /// True for errors caused by what the user wrote (config values, files named), which the
    /// CLI reports with exit code 2. A device this build or machine cannot run is not one
    /// (exit 1: the fix is in the build or the machine).
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Config { .. }
            | Self::Invocation { .. }
            | Self::ConfigFile { .. }
            | Self::TerminalSnr(_) => true,
            Self::Device(e) => e.is_usage(),
            Self::Data(e) => e.is_usage(),
            _ => false,
        }
    }
}
