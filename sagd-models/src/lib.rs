//! sagd-models
