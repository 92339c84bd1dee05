//! [`Dataset`]: images (N, C, H, W) with optional labels, stored compactly (u8 where the source
//! is u8), with seeded shuffled batching and conversion to [`Images`] on a device.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sagd_core::{ImageShape, Images};

use crate::error::DatasetError;

/// Pixel storage, (N, C, H, W) row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Bytes in 0..=255, read as `v / 255` in [0, 1].
    U8(Vec<u8>),
    /// Floats, read as they are.
    F32(Vec<f32>),
}

/// The flat index and value of the first NaN or infinite value of `values`, if any.
pub(crate) fn first_non_finite(values: &[f32]) -> Option<(usize, f32)> {
    values
        .iter()
        .position(|v| !v.is_finite())
        .map(|i| (i, values[i]))
}

/// `flat` as a row-major multi-index over `shape`.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        *slot = flat % dim.max(1);
        flat /= dim.max(1);
    }
    index
}

impl Pixels {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::F32(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A set of images of one shape, with optional integer labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    name: String,
    shape: [usize; 3],
    pixels: Pixels,
    labels: Option<Vec<u32>>,
    class_names: Option<Vec<String>>,
}

impl Dataset {
    /// A dataset of `pixels` (N·C·H·W values) of images of `shape` = `[C, H, W]`, with one label
    /// per image if given. Errors name `name` and the count that disagrees; a NaN or infinite
    /// float value is refused with [`DatasetError::NonFinite`], naming its (N, C, H, W) index, so
    /// that no loader can hand training a non-finite pixel.
    pub fn new(
        name: impl Into<String>,
        shape: [usize; 3],
        pixels: Pixels,
        labels: Option<Vec<u32>>,
    ) -> Result<Self, DatasetError> {
        let name = name.into();
        if shape.contains(&0) {
            return Err(DatasetError::param(
                &name,
                "shape",
                format!("{shape:?}"),
                "every dimension >= 1",
            ));
        }
        let per = shape.iter().product::<usize>();
        if !pixels.len().is_multiple_of(per) {
            return Err(DatasetError::Mismatch {
                path: name.clone().into(),
                message: format!(
                    "{} values is not a whole number of {}x{}x{} images",
                    pixels.len(),
                    shape[0],
                    shape[1],
                    shape[2]
                ),
            });
        }
        if let Pixels::F32(values) = &pixels
            && let Some((flat, value)) = first_non_finite(values)
        {
            let count = pixels.len() / per;
            return Err(DatasetError::NonFinite {
                path: name.clone().into(),
                index: unravel(flat, &[count, shape[0], shape[1], shape[2]]),
                axes: "N, C, H, W".to_string(),
                value,
            });
        }
        let count = pixels.len() / per;
        if let Some(l) = &labels
            && l.len() != count
        {
            return Err(DatasetError::Mismatch {
                path: name.clone().into(),
                message: format!("{} labels for {count} images", l.len()),
            });
        }
        Ok(Self {
            name,
            shape,
            pixels,
            labels,
            class_names: None,
        })
    }

    /// Attaches class names (index = label).
    pub fn with_class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = Some(names);
        self
    }

    /// A name for messages (source and split).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The storage.
    pub fn pixels(&self) -> &Pixels {
        &self.pixels
    }

    /// Labels, one per image.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// Class names, if the source has them.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// True when stored as u8 (values read as `v / 255`).
    pub fn is_u8(&self) -> bool {
        matches!(self.pixels, Pixels::U8(_))
    }

    /// Image `i` as floats (u8 sources in [0, 1]) into `out` (length [`image_len`](Self::image_len)).
    pub fn write_image(&self, i: usize, out: &mut [f32]) {
        let n = self.image_len();
        match &self.pixels {
            Pixels::U8(v) => {
                for (o, b) in out.iter_mut().zip(&v[i * n..(i + 1) * n]) {
                    *o = *b as f32 / 255.0;
                }
            }
            Pixels::F32(v) => out.copy_from_slice(&v[i * n..(i + 1) * n]),
        }
    }

    /// The images at `indices` as floats, (len, C, H, W), appended to `out` (cleared first).
    pub fn gather(&self, indices: &[usize], out: &mut Vec<f32>) {
        let n = self.image_len();
        out.clear();
        out.resize(indices.len() * n, 0.0);
        for (chunk, &i) in out.chunks_mut(n).zip(indices) {
            self.write_image(i, chunk);
        }
    }

    /// All images as floats.
    pub fn to_f32(&self) -> Vec<f32> {
        let indices: Vec<usize> = (0..self.len()).collect();
        let mut out = Vec::new();
        self.gather(&indices, &mut out);
        out
    }

    /// The first `count` images (all if fewer).
    pub fn take(&self, count: usize) -> Dataset {
        let count = count.min(self.len());
        let n = self.image_len();
        let pixels = match &self.pixels {
            Pixels::U8(v) => Pixels::U8(v[..count * n].to_vec()),
            Pixels::F32(v) => Pixels::F32(v[..count * n].to_vec()),
        };
        Dataset {
            name: self.name.clone(),
            shape: self.shape,
            pixels,
            labels: self.labels.as_ref().map(|l| l[..count].to_vec()),
            class_names: self.class_names.clone(),
        }
    }

    /// The images at `indices`, in that order, as a new dataset (same storage type).
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let n = self.image_len();
        let pixels = match &self.pixels {
            Pixels::U8(v) => Pixels::U8(
                indices
                    .iter()
                    .flat_map(|&i| v[i * n..(i + 1) * n].iter().copied())
                    .collect(),
            ),
            Pixels::F32(v) => Pixels::F32(
                indices
                    .iter()
                    .flat_map(|&i| v[i * n..(i + 1) * n].iter().copied())
                    .collect(),
            ),
        };
        Dataset {
            name: self.name.clone(),
            shape: self.shape,
            pixels,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
        }
    }

    /// `count` images drawn without replacement with a seeded shuffle (all, shuffled, if fewer).
    pub fn sample(&self, count: usize, seed: u64) -> Dataset {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order.truncate(count);
        self.select(&order)
    }

    /// Images per label (index = label), when labelled.
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        let labels = self.labels.as_ref()?;
        let classes = self
            .class_names
            .as_ref()
            .map(|c| c.len())
            .unwrap_or(0)
            .max(labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0));
        let mut counts = vec![0; classes];
        for &l in labels {
            counts[l as usize] += 1;
        }
        Some(counts)
    }

    /// Seeded shuffled batches over one epoch. The last, smaller batch is kept unless
    /// `drop_last`. The iterator reuses one buffer, so a training loop does not reallocate.
    pub fn batches(
        &self,
        batch_size: usize,
        seed: u64,
        drop_last: bool,
    ) -> Result<Batches<'_>, DatasetError> {
        if batch_size == 0 {
            return Err(DatasetError::param(
                &self.name,
                "batch_size",
                0,
                "at least 1",
            ));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        Ok(Batches {
            dataset: self,
            order,
            position: 0,
            batch_size,
            drop_last,
            buffer: Vec::with_capacity(batch_size * self.image_len()),
        })
    }

    /// The images at `indices` as a batch on `device`, checking the shape type.
    pub fn to_images<S: ImageShape>(
        &self,
        indices: &[usize],
        device: &Device,
    ) -> Result<Images<S>, DatasetError> {
        let shape = S::from_dims(self.shape)?;
        let mut values = Vec::new();
        self.gather(indices, &mut values);
        Ok(Images::from_host(values, shape, device)?)
    }
}

/// One epoch of shuffled batches from [`Dataset::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    order: Vec<usize>,
    position: usize,
    batch_size: usize,
    drop_last: bool,
    buffer: Vec<f32>,
}

impl Batches<'_> {
    /// The next batch: its indices and values (C, H, W per image, floats), or `None` at the end
    /// of the epoch.
    #[allow(clippy::should_implement_trait)] // lends its buffer, which Iterator cannot
    pub fn next(&mut self) -> Option<(&[usize], &[f32])> {
        let remaining = self.order.len() - self.position;
        if remaining == 0 || (self.drop_last && remaining < self.batch_size) {
            return None;
        }
        let take = remaining.min(self.batch_size);
        let indices = &self.order[self.position..self.position + take];
        self.dataset.gather(indices, &mut self.buffer);
        self.position += take;
        Some((indices, &self.buffer))
    }

    /// Number of batches in the epoch.
    pub fn len(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// True when the epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        let pixels: Vec<u8> = (0..10 * 4).map(|i| i as u8).collect();
        Dataset::new(
            "tiny",
            [1, 2, 2],
            Pixels::U8(pixels),
            Some((0..10).map(|i| i % 3).collect()),
        )
        .unwrap()
    }

    /// Every float source goes through `Dataset::new`, which refuses a NaN or infinite value
    /// with its (N, C, H, W) index and the dataset's name.
    #[test]
    fn non_finite_floats_are_refused() {
        let mut v = vec![0.0f32; 2 * 3 * 2 * 2];
        v[2 * 2 * 3 + 2 * 2 + 3] = f32::INFINITY;
        let err = Dataset::new("made", [3, 2, 2], Pixels::F32(v), None).unwrap_err();
        assert!(
            matches!(&err, DatasetError::NonFinite { index, axes, .. }
                if index == &[1, 1, 1, 1] && axes == "N, C, H, W"),
            "{err}"
        );
        assert!(err.to_string().starts_with("made: value inf"), "{err}");
        assert_eq!(unravel(0, &[2, 3]), [0, 0]);
        assert_eq!(unravel(5, &[2, 3]), [1, 2]);
    }

    #[test]
    fn counts_and_reads_images() {
        let d = tiny();
        assert_eq!(d.len(), 10);
        assert_eq!(d.class_counts().unwrap(), vec![4, 3, 3]);
        let mut img = vec![0.0; 4];
        d.write_image(2, &mut img);
        assert_eq!(
            img,
            vec![8.0 / 255.0, 9.0 / 255.0, 10.0 / 255.0, 11.0 / 255.0]
        );
    }

    #[test]
    fn batches_cover_the_epoch_once_and_are_seeded() {
        let d = tiny();
        let collect = |seed| {
            let mut b = d.batches(3, seed, false).unwrap();
            assert_eq!(b.len(), 4);
            let mut seen = Vec::new();
            while let Some((idx, values)) = b.next() {
                assert_eq!(values.len(), idx.len() * 4);
                seen.extend_from_slice(idx);
            }
            seen
        };
        let a = collect(1);
        assert_eq!(a, collect(1));
        assert_ne!(a, collect(2));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let mut dropped = d.batches(3, 0, true).unwrap();
        let mut n = 0;
        while dropped.next().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn select_and_sample_keep_images_and_labels_together() {
        let d = tiny();
        let s = d.select(&[3, 1]);
        assert_eq!(s.labels().unwrap(), &[0, 1]);
        assert_eq!(s.to_f32()[..4], d.to_f32()[12..16]);
        let a = d.sample(4, 7);
        assert_eq!(a.len(), 4);
        assert_eq!(a.to_f32(), d.sample(4, 7).to_f32());
        assert_eq!(d.sample(100, 1).len(), 10);
    }

    #[test]
    fn mismatches_are_errors() {
        assert!(Dataset::new("x", [1, 2, 2], Pixels::U8(vec![0; 7]), None).is_err());
        assert!(Dataset::new("x", [1, 2, 2], Pixels::U8(vec![0; 8]), Some(vec![0])).is_err());
        assert!(tiny().batches(0, 0, false).is_err());
    }
}
