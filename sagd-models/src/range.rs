//! How a model's outputs map back to its data's own range: decided when training starts
//! (from the loaded data and the transforms) and recorded in every checkpoint, so that sampling
//! needs neither the training data nor its spec.

use std::fmt;
use std::str::FromStr;

use sagd_datasets::Dataset;
use sagd_datasets::spec::{DataSpec, Source};
use sagd_datasets::transform::Pipeline;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;

/// The range a model's outputs are mapped back to (checkpoint metadata `output_range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputRange {
    /// 8-bit images read as `[0, 1]` and trained in `[-1, 1]` (`scale`, which training
    /// appends for them): samples are mapped by `x ↦ (x + 1)/2` and clamped to `[0, 1]`.
    EightBit,
    /// Float data trained through `scale`: samples are mapped by `x ↦ (x + 1)/2`, not clamped.
    Scaled,
    /// Data used as they are: samples are the model's outputs.
    Data,
}

impl OutputRange {
    /// The range of a model trained on `dataset` through `pipeline` (the training pipeline,
    /// `scale` appended for 8-bit data).
    pub fn of(dataset: &Dataset, pipeline: &Pipeline) -> Self {
        if dataset.is_u8() {
            Self::EightBit
        } else if pipeline.scales() {
            Self::Scaled
        } else {
            Self::Data
        }
    }

    /// The range of a checkpoint written before ranges were recorded, worked out from the
    /// run's config as sampling used to: image sources and `.npy`/`.npz` files of bytes are
    /// 8-bit (the file is read to tell), a `scale` transform maps back, anything else is
    /// used as it is.
    pub fn from_config(config: &RunConfig) -> Self {
        let eight_bit = config
            .data
            .spec
            .parse::<DataSpec>()
            .is_ok_and(|spec| match &spec.source {
                Source::Mnist(_)
                | Source::FashionMnist(_)
                | Source::Cifar10(_)
                | Source::Folder { .. }
                | Source::Shapes(_) => true,
                Source::Npy { .. } | Source::Npz { .. } => spec.load().is_ok_and(|d| d.is_u8()),
                Source::Grf(_) | Source::Gmm(_) => false,
            });
        let scales = Pipeline::parse(&config.data.transforms).is_ok_and(|p| p.scales());
        match (eight_bit, scales) {
            (true, _) => Self::EightBit,
            (false, true) => Self::Scaled,
            (false, false) => Self::Data,
        }
    }

    /// A model's output value mapped back to the data's scale, not clamped (for 8-bit data
    /// it may leave `[0, 1]`).
    pub fn unclamped(self, value: f32) -> f32 {
        if self == Self::Data {
            value
        } else {
            (value + 1.0) / 2.0
        }
    }

    /// Maps a model's output value back to the data's range; true when it was clamped.
    pub fn map(self, value: &mut f32) -> bool {
        *value = self.unclamped(*value);
        if self == Self::EightBit && !(0.0..=1.0).contains(value) {
            *value = value.clamp(0.0, 1.0);
            return true;
        }
        false
    }

    /// True when the mapped values lie in `[0, 1]` by construction or by the data's scale
    /// (images to draw as they are).
    pub fn unit_interval(self) -> bool {
        self != Self::Data
    }

    /// The metadata spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::EightBit => "eight-bit",
            Self::Scaled => "scaled",
            Self::Data => "data",
        }
    }
}

impl fmt::Display for OutputRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OutputRange {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "eight-bit" => Ok(Self::EightBit),
            "scaled" => Ok(Self::Scaled),
            "data" => Ok(Self::Data),
            other => Err(format!("`{other}`: expected eight-bit, scaled or data")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_back_as_the_range_says() {
        let mut v = 0.5f32;
        assert!(!OutputRange::Data.map(&mut v));
        assert_eq!(v, 0.5);
        assert!(!OutputRange::Scaled.map(&mut v));
        assert_eq!(v, 0.75);
        let mut v = 1.5f32;
        assert!(OutputRange::EightBit.map(&mut v));
        assert_eq!(v, 1.0);
        let mut v = 1.5f32;
        assert!(!OutputRange::Scaled.map(&mut v));
        assert_eq!(v, 1.25);
        for range in [
            OutputRange::EightBit,
            OutputRange::Scaled,
            OutputRange::Data,
        ] {
            assert_eq!(range.name().parse::<OutputRange>(), Ok(range));
        }
    }

    #[test]
    fn training_data_decide_the_range() {
        let shapes: DataSpec = "shapes:n=4,size=1x8x8".parse().unwrap();
        let data = shapes.load().unwrap();
        assert_eq!(
            OutputRange::of(&data, &Pipeline::default()),
            OutputRange::EightBit
        );
        let grf: DataSpec = "grf:n=4,size=1x8x8".parse().unwrap();
        let data = grf.load().unwrap();
        assert_eq!(
            OutputRange::of(&data, &Pipeline::default()),
            OutputRange::Data
        );
        let scale = Pipeline::parse(&["scale"]).unwrap();
        assert_eq!(OutputRange::of(&data, &scale), OutputRange::Scaled);
    }
}
