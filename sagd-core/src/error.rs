//! Typed errors of sagd-core.

use thiserror::Error;

/// An invalid spectrum parameter, configuration or spectrum evaluation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SpectrumError {
    /// A parameter has a value outside its valid domain.
    #[error("spectrum `{spectrum}`: `{param}` = {value} is invalid: expected {expected}")]
    InvalidParam {
        /// Spectrum name.
        spectrum: String,
        /// Parameter name.
        param: String,
        /// The offending value, as written.
        value: String,
        /// What was expected instead.
        expected: String,
    },
    /// A spectrum string or file that cannot be read: its syntax, an unknown name or an
    /// unknown parameter (the same words as dataset specs and transforms).
    #[error("spectrum {0}")]
    Spec(#[from] crate::spec::SpecError),
    /// A radius convention name that does not exist.
    #[error("unknown radius convention `{input}` (expected cycles, unit or nyquist)")]
    UnknownRadius {
        /// The name as written.
        input: String,
    },
    /// A band selects no frequency of the grid.
    #[error(
        "spectrum `{spectrum}`: band `{band}` selects no frequency on the {height}x{width} grid"
    )]
    EmptyBand {
        /// Spectrum name.
        spectrum: String,
        /// The band, e.g. `[0.1, 0.2] (unit)`.
        band: String,
        /// Grid height.
        height: usize,
        /// Grid width.
        width: usize,
    },
    /// The spectrum evaluated to a negative, NaN or infinite amplitude.
    #[error(
        "spectrum `{spectrum}` gave amplitude {value} at f = ({fy}, {fx}); amplitudes must be finite and >= 0"
    )]
    BadAmplitude {
        /// Spectrum name.
        spectrum: String,
        /// Frequency f_y.
        fy: f64,
        /// Frequency f_x.
        fx: f64,
        /// The amplitude.
        value: f64,
    },
    /// The spectrum is zero at every frequency of the grid.
    #[error("spectrum `{spectrum}` is zero at every frequency of the {height}x{width} grid")]
    ZeroSpectrum {
        /// Spectrum name.
        spectrum: String,
        /// Grid height.
        height: usize,
        /// Grid width.
        width: usize,
    },
    /// The spectrum is not symmetric, w(f) ≠ w(-f), so it does not define a real covariance.
    #[error("spectrum `{spectrum}` is not symmetric: w({fy}, {fx}) = {value} but w(-f) = {mirror}")]
    Asymmetric {
        /// Spectrum name.
        spectrum: String,
        /// Frequency f_y.
        fy: f64,
        /// Frequency f_x.
        fx: f64,
        /// w(f).
        value: f64,
        /// w(-f).
        mirror: f64,
    },
    /// The spectrum returned a table of the wrong length.
    #[error("spectrum `{spectrum}` returned {got} amplitudes for a {height}x{width} grid")]
    WrongTableSize {
        /// Spectrum name.
        spectrum: String,
        /// Number returned.
        got: usize,
        /// Grid height.
        height: usize,
        /// Grid width.
        width: usize,
    },
}

/// Errors of shapes, operators, schedules, parameterizations and densities.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// A spectrum problem.
    #[error(transparent)]
    Spectrum(#[from] SpectrumError),
    /// An image size that is empty or malformed.
    #[error("invalid image size `{input}`: {reason}")]
    InvalidSize {
        /// The size as written.
        input: String,
        /// What was expected.
        reason: String,
    },
    /// A buffer or tensor had the wrong length or shape.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Where.
        context: String,
        /// Expected shape or length.
        expected: String,
        /// Actual shape or length.
        got: String,
    },
    /// A numeric setting outside its domain.
    #[error("invalid {name} = {value}: {expected}")]
    InvalidValue {
        /// Setting name.
        name: String,
        /// Value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A matrix that should be positive definite is not.
    #[error("{what} is not positive definite")]
    NotPositiveDefinite {
        /// Which matrix.
        what: String,
    },
    /// The operation needs a full-support spectrum.
    #[error(
        "{operation} needs a full-support spectrum (w(f) > 0 everywhere); this one has rank {rank} of {dim}"
    )]
    RankDeficient {
        /// The operation.
        operation: String,
        /// Rank of Σ_w.
        rank: usize,
        /// Dimension.
        dim: usize,
    },
}

/// Convenience constructor for [`CoreError::InvalidValue`].
pub(crate) fn invalid_value(name: &str, value: impl ToString, expected: &str) -> CoreError {
    CoreError::InvalidValue {
        name: name.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}
