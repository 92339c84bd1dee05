//! sagd-datasets
