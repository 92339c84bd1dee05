//! [`Split`]: which half of a dataset with a fixed train/test partition to load.

use std::fmt;
use std::str::FromStr;

use crate::error::DatasetError;

/// The training or the test part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (MNIST: 60000, CIFAR-10: 50000).
    Train,
    /// The held-out test images (MNIST, CIFAR-10: 10000).
    Test,
}

impl Split {
    /// `"train"` or `"test"`, as in file and folder names.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = DatasetError;

    /// Parses `train` or `test` (case-insensitive, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            _ => Err(DatasetError::Spec(sagd_core::SpecError::invalid(
                s,
                "split",
                s,
                "train or test",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        assert_eq!("train".parse::<Split>().unwrap(), Split::Train);
        assert_eq!(" Test ".parse::<Split>().unwrap(), Split::Test);
        assert_eq!(Split::Train.to_string(), "train");
        assert_eq!(Split::Test.to_string(), "test");
        let err = "val".parse::<Split>().unwrap_err().to_string();
        assert!(err.contains("val") && err.contains("train"), "{err}");
    }
}
