//! Typed errors of sagd-datasets. Every error names the file (or spec) and what was expected;
//! errors in binary formats carry the byte offset.

use std::path::PathBuf;

use thiserror::Error;

/// An error while loading, generating or transforming data.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// An I/O failure on `path`.
    // The cause is part of the one-line message, not a `source`, so that a context chain does
    // not print it twice.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A file whose content does not match its format.
    #[error("{path}{}: expected {expected}, found {found}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Format {
        /// The file.
        path: PathBuf,
        /// Byte offset of the problem, for binary formats.
        offset: Option<u64>,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// Two files (or parts) that must agree do not.
    #[error("{path}: {message}")]
    Mismatch {
        /// The file or directory.
        path: PathBuf,
        /// What disagrees with what.
        message: String,
    },
    /// A directory or file with no data in it.
    #[error("{path}: {message}")]
    Empty {
        /// The file or directory.
        path: PathBuf,
        /// What was missing.
        message: String,
    },
    /// A float image value that is NaN or infinite: image data must be finite numbers.
    #[error(
        "{path}: value {value} at index {index:?} ({axes}) is not finite; image values must be finite numbers"
    )]
    NonFinite {
        /// The file (or dataset name) holding the value.
        path: PathBuf,
        /// The position of the first such value, one index per axis of `axes`.
        index: Vec<usize>,
        /// The axes `index` runs over, e.g. `N, C, H, W` (a file's own order).
        axes: String,
        /// The value (NaN, inf or -inf).
        value: f32,
    },
    /// A dataset spec that cannot be understood.
    #[error("dataset spec {0}")]
    Spec(sagd_core::SpecError),
    /// A transform that cannot be understood.
    #[error("transform {0}")]
    Transform(sagd_core::SpecError),
    /// A parameter outside its domain.
    #[error("{context}: `{param}` = {value} is invalid: expected {expected}")]
    InvalidParam {
        /// Which dataset, transform or statistic.
        context: String,
        /// The parameter name.
        param: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// An error from sagd-core (shapes, spectra).
    #[error(transparent)]
    Core(#[from] sagd_core::CoreError),
    /// Writing a `.npy` file failed.
    #[error(transparent)]
    Write(#[from] crate::npy::NpyError),
}

impl DatasetError {
    /// An [`DatasetError::Io`] error.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            cause,
        }
    }

    /// A [`DatasetError::Format`] error.
    pub fn format(
        path: impl Into<PathBuf>,
        offset: Option<u64>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::Format {
            path: path.into(),
            offset,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// True for errors in what the user wrote (a spec, a transform, a parameter), which the CLI
    /// reports with exit code 2; unreadable or malformed files are runtime failures (1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Spec(_) | Self::Transform(_) | Self::InvalidParam { .. }
        )
    }

    /// A [`DatasetError::InvalidParam`].
    pub fn param(context: &str, param: &str, value: impl ToString, expected: &str) -> Self {
        Self::InvalidParam {
            context: context.to_string(),
            param: param.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }
}
