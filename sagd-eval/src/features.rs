//! Inception features of a set of images, quantised to 8 bits first the way saved images are.

use burn::tensor::{Tensor, TensorData};
use sagd_datasets::{Dataset, Pixels};

use crate::error::EvalError;
use crate::inception::{FEATURE_DIM, FidInception};

/// Features of N images, row-major `[N, dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Number of images (rows).
    pub count: usize,
    /// Dimension of one feature vector (columns).
    pub dim: usize,
    /// The values, row `i` at `[i·dim, (i+1)·dim)`.
    pub values: Vec<f32>,
}

impl Features {
    /// Wraps `values` (`count · dim` of them, row-major).
    ///
    /// # Errors
    /// [`EvalError::Input`] when the length is not `count · dim` or a value is not finite.
    pub fn new(count: usize, dim: usize, values: Vec<f32>) -> Result<Self, EvalError> {
        if values.len() != count * dim {
            return Err(EvalError::input(
                "features",
                format!(
                    "{} values for {count} rows of {dim} (expected {})",
                    values.len(),
                    count * dim
                ),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::input(
                "features",
                format!("non-finite value {} in row {}", values[i], i / dim.max(1)),
            ));
        }
        Ok(Self { count, dim, values })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Features {
        let mut values = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Features {
            count: indices.len(),
            dim: self.dim,
            values,
        }
    }
}

/// A value in `[0, 1]` as the byte an 8-bit image file stores: `⌊255·clamp(v, 0, 1) + ½⌋`
/// (round half up, as torchvision's `save_image` and PIL conversions of `x·255 + 0.5` do).
pub fn quantize_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as u8
}

/// How many values of `data` lie outside `[0, 1]` by more than half a quantisation step, and
/// the smallest and largest value. Byte images are always inside.
pub fn unit_range_violations(data: &Dataset) -> (usize, f32, f32) {
    match data.pixels() {
        Pixels::U8(_) => (0, 0.0, 1.0),
        Pixels::F32(values) => {
            let tolerance = 0.5 / 255.0;
            let mut outside = 0;
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &v in values {
                lo = lo.min(v);
                hi = hi.max(v);
                if v < -tolerance || v > 1.0 + tolerance {
                    outside += 1;
                }
            }
            (outside, lo, hi)
        }
    }
}

/// The pool3 features of every image of `data` (`[N, C, H, W]`, values in `[0, 1]`, C = 1
/// or 3), computed `batch` images at a time; `progress(done, total)` is called after each batch.
/// Float images are quantised with [`quantize_u8`] first, so that samples and 8-bit reference
/// images go through the same pipeline as pytorch-fid's image files do.
///
/// # Errors
/// [`EvalError::Input`] when C is not 1 or 3, or `batch` is 0.
pub fn extract(
    model: &FidInception,
    data: &Dataset,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Features, EvalError> {
    let [c, h, w] = data.shape();
    if c != 1 && c != 3 {
        return Err(EvalError::input(
            data.name(),
            format!("{c} channels; the Inception network takes grey (1) or RGB (3) images"),
        ));
    }
    if batch == 0 {
        return Err(EvalError::input(
            "batch",
            "0 images per batch; expected >= 1",
        ));
    }
    let per = c * h * w;
    let n = data.len();
    let mut values = Vec::with_capacity(n * FEATURE_DIM);
    let mut start = 0;
    while start < n {
        let count = batch.min(n - start);
        let pixels: Vec<f32> = match data.pixels() {
            Pixels::U8(bytes) => bytes[start * per..(start + count) * per]
                .iter()
                .map(|&b| f32::from(b) / 255.0)
                .collect(),
            Pixels::F32(floats) => floats[start * per..(start + count) * per]
                .iter()
                .map(|&v| f32::from(quantize_u8(v)) / 255.0)
                .collect(),
        };
        let images =
            Tensor::<4>::from_data(TensorData::new(pixels, [count, c, h, w]), model.device());
        let features = model.pool3(images).into_data();
        let features = features.try_into_vec::<f32>().map_err(|e| {
            EvalError::input(
                "features",
                format!("cannot read the network's output: {e:?}"),
            )
        })?;
        values.extend_from_slice(&features);
        start += count;
        progress(start, n);
    }
    Features::new(n, FEATURE_DIM, values)
}
