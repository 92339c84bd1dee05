//! sagd-samplers
