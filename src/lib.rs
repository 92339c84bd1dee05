//! sagd
