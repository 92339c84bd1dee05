//! The data side of training: each step's batch (images, levels, noise) drawn from the run's
//! deterministic streams, on the host or on the training device, and handed to the
//! [`crate::loss`] module for its target.
//!
//! Every random draw of step `s` comes from a ChaCha8 stream keyed by the run's seed and `s`,
//! and the data order from a per-epoch permutation keyed by the seed and the epoch, so a run
//! resumed from the checkpoint of step `s` draws exactly what the uninterrupted run would have.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sagd_core::device_noise::MultiplierTable;
use sagd_core::{DeviceNoise, NoiseLevel, Parameterization, SpectralCovariance};
use sagd_datasets::Dataset;
use sagd_datasets::transform::{Pipeline, Transform};

use crate::error::ModelError;
use crate::loss::{self, Batch};
use crate::nets::Conditioning;
use crate::range::OutputRange;

/// The data side of a run: the source images, the transforms, and the epoch order.
pub struct BatchSource {
    dataset: Dataset,
    pipeline: Pipeline,
    shape: [usize; 3],
    seed: u64,
    levels: Vec<NoiseLevel>,
    covariance: Arc<SpectralCovariance>,
    parameterization: Parameterization,
    epoch: Option<(u64, Vec<usize>)>,
    on_device: Option<OnDevice>,
}

/// The device side of a [`BatchSource`] drawing on the device (`[noise] draw = "device"`).
struct OnDevice {
    /// The images after the deterministic transforms.
    images: DeviceImages,
    /// The random transforms that follow, each with its band noise for `corrupt`.
    random: Vec<(Transform, Option<DeviceNoise>)>,
    /// The forward process's noise.
    noise: DeviceNoise,
    /// The multiplier the parameterization's target needs (`1/w` or `1/w²` on the support).
    target_table: Option<MultiplierTable>,
}

/// Where the images of a source drawing on the device live.
enum DeviceImages {
    /// Every image, `(N, C, H, W)`, resident on the device.
    Resident(Tensor<4>),
    /// Larger than the resident limit: on the host, each step's images uploaded.
    Streamed(Dataset),
}

impl DeviceImages {
    /// The images at `indices`, `(len, C, H, W)` on `device`: the same values either way.
    fn gather(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        match self {
            Self::Resident(images) => {
                let index = Tensor::<1, Int>::from_data(
                    TensorData::new(
                        indices.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                        [indices.len()],
                    ),
                    device,
                );
                images.clone().select(0, index)
            }
            Self::Streamed(images) => {
                let mut values = Vec::new();
                images.gather(indices, &mut values);
                let [c, h, w] = images.shape();
                Tensor::from_data(TensorData::new(values, [indices.len(), c, h, w]), device)
            }
        }
    }
}

/// The stream of step `step`'s draws.
fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step.wrapping_add(1));
    rng
}

/// The transforms training applies to `dataset`: `pipeline`, with `scale` (to the models'
/// range [-1, 1]) appended for 8-bit sources that lack it.
pub fn training_pipeline(dataset: &Dataset, mut pipeline: Pipeline) -> Pipeline {
    if dataset.is_u8() && !pipeline.scales() {
        pipeline.transforms.push(Transform::Scale);
    }
    pipeline
}

impl BatchSource {
    /// Batches from `dataset` through `pipeline` (a `scale` to [-1, 1] is appended for 8-bit
    /// sources without one), noised at `levels` with `covariance`.
    pub fn new(
        dataset: Dataset,
        pipeline: Pipeline,
        seed: u64,
        levels: Vec<NoiseLevel>,
        covariance: Arc<SpectralCovariance>,
        parameterization: Parameterization,
    ) -> Result<Self, ModelError> {
        if dataset.is_empty() {
            return Err(ModelError::config(
                "data.spec",
                dataset.name(),
                "a dataset with at least one image",
            ));
        }
        let pipeline = training_pipeline(&dataset, pipeline);
        let shape = pipeline.output_shape(dataset.shape())?;
        if covariance.size() != shape {
            return Err(ModelError::Shape {
                context: "noise covariance against the data".to_string(),
                expected: format!("{shape:?}"),
                got: format!("{:?}", covariance.size()),
            });
        }
        Ok(Self {
            dataset,
            pipeline,
            shape,
            seed,
            levels,
            covariance,
            parameterization,
            epoch: None,
            on_device: None,
        })
    }

    /// Moves the source onto `device`: every later batch is drawn there (see
    /// [`NoiseDraw::Device`](crate::config::NoiseDraw::Device)). The images after the
    /// deterministic transforms become one resident tensor when they take at most
    /// `resident_limit` bytes (as f32), and only the batch's indices, flip decisions and levels
    /// are uploaded per step; a larger dataset stays on the host and each step uploads its
    /// batch's images, the same values (`[noise] resident_mib`).
    ///
    /// # Errors
    /// [`ModelError::Config`] when a deterministic transform follows a random one (`hflip`,
    /// `corrupt`), which the device path cannot reorder.
    pub fn on_device(mut self, device: &Device, resident_limit: u64) -> Result<Self, ModelError> {
        // The deterministic transforms run once on the host; the random ones (hflip, corrupt)
        // run per batch on the device, so they must come last. `scale` (x ↦ 2x − 1, appended
        // for 8-bit data) may follow them: it commutes with a flip, and moving it ahead of
        // `corrupt` doubles the band noise's γ.
        let mut prefix = Pipeline::default();
        let mut random: Vec<Transform> = Vec::new();
        for t in &self.pipeline.transforms {
            if t.is_random() {
                random.push(t.clone());
            } else if random.is_empty() {
                prefix.transforms.push(t.clone());
            } else if *t == Transform::Scale {
                prefix.transforms.push(Transform::Scale);
                for r in &mut random {
                    if let Transform::Corrupt { gamma, .. } = r {
                        *gamma *= 2.0;
                    }
                }
            } else {
                return Err(ModelError::config(
                    "noise.draw",
                    "device",
                    format!(
                        "random transforms (hflip, corrupt) after all others but scale, while \
                         `{t}` follows `{}`; reorder data.transforms or use draw = \"host\"",
                        random[0]
                    ),
                ));
            }
        }
        let prepared = prefix.apply_to(&self.dataset, self.dataset.len(), self.seed)?;
        let bytes = (prepared.len() * prepared.shape().iter().product::<usize>() * 4) as u64;
        let images = if bytes <= resident_limit {
            let [c, h, w] = prepared.shape();
            DeviceImages::Resident(Tensor::from_data(
                TensorData::new(prepared.to_f32(), [prepared.len(), c, h, w]),
                device,
            ))
        } else {
            DeviceImages::Streamed(prepared)
        };
        let random = random
            .into_iter()
            .map(|t| {
                let band = match t.band_noise(self.shape)? {
                    Some(cov) => Some(DeviceNoise::new(Arc::new(cov), device)?),
                    None => None,
                };
                Ok((t, band))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let noise = DeviceNoise::new(self.covariance.clone(), device)?;
        let target_table = loss::target_table(self.parameterization, &noise)?;
        self.on_device = Some(OnDevice {
            images,
            random,
            noise,
            target_table,
        });
        Ok(self)
    }

    /// True when batches are drawn on the device.
    pub fn is_on_device(&self) -> bool {
        self.on_device.is_some()
    }

    /// True when batches are drawn on the device from images resident there (false when they
    /// are drawn on the host, or streamed to the device per step).
    pub fn is_resident(&self) -> bool {
        matches!(
            self.on_device,
            Some(OnDevice {
                images: DeviceImages::Resident(_),
                ..
            })
        )
    }

    /// The image shape after the transforms.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The forward noise's covariance `Σ_w` on the batch's images.
    pub fn covariance(&self) -> &SpectralCovariance {
        &self.covariance
    }

    /// How the model's outputs map back to the data's range, recorded in its checkpoints.
    pub fn output_range(&self) -> OutputRange {
        OutputRange::of(&self.dataset, &self.pipeline)
    }

    /// Up to `count` transformed images (for statistics such as the terminal-SNR check).
    pub fn preview(&self, count: usize) -> Result<Dataset, ModelError> {
        Ok(self.pipeline.apply_to(&self.dataset, count, self.seed)?)
    }

    fn indices(&mut self, step: u64, batch: usize) -> Vec<usize> {
        let n = self.dataset.len() as u64;
        (0..batch as u64)
            .map(|j| {
                let global = step * batch as u64 + j;
                let (epoch, pos) = (global / n, (global % n) as usize);
                if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
                    let mut perm: Vec<usize> = (0..n as usize).collect();
                    let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed_da7a);
                    rng.set_stream(epoch);
                    perm.shuffle(&mut rng);
                    self.epoch = Some((epoch, perm));
                }
                self.epoch.as_ref().map_or(pos, |(_, perm)| perm[pos])
            })
            .collect()
    }

    /// The batch of step `step`: images, levels and noise from the step's own stream (on the
    /// device after [`on_device`](Self::on_device), where `device` must be the one given there).
    pub fn batch(&mut self, step: u64, batch: usize, device: &Device) -> Result<Batch, ModelError> {
        let indices = self.indices(step, batch);
        let mut rng = step_rng(self.seed, step);
        if self.on_device.is_some() {
            return self.device_batch(indices, &mut rng, device);
        }
        let mut raw = Vec::new();
        self.dataset.gather(&indices, &mut raw);
        let (x0, _) = self.pipeline.apply(raw, self.dataset.shape(), &mut rng)?;
        let index: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.levels.len()))
            .collect();
        let eps: Vec<f32> = self.covariance.sample::<f32>(batch, &mut rng);
        let dim: usize = self.shape.iter().product();
        let mut x_t = vec![0.0f32; batch * dim];
        let mut target = vec![0.0f32; batch * dim];
        for (b, &t) in index.iter().enumerate() {
            let range = b * dim..(b + 1) * dim;
            loss::host_target(
                self.parameterization,
                self.levels[t],
                &x0[range.clone()],
                &eps[range.clone()],
                &self.covariance,
                &mut x_t[range.clone()],
                &mut target[range],
            )?;
        }
        let [c, h, w] = self.shape;
        let tensor = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [batch, c, h, w]), device);
        Ok(Batch {
            x_t: tensor(x_t),
            target: tensor(target),
            cond: Conditioning::new(index, self.levels.len()),
            weight: None,
        })
    }
}

impl BatchSource {
    /// The device path of [`batch`](Self::batch): the same recipe as the host path, every
    /// image-sized tensor made on the device. The step's stream draws the flip decisions, the
    /// levels and the seeds of the device generator, in that order.
    fn device_batch(
        &self,
        indices: Vec<usize>,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Batch, ModelError> {
        let Some(drawn) = &self.on_device else {
            unreachable!("device_batch is called for sources on the device only");
        };
        let batch = indices.len();
        let per_image = |values: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values, [batch, 1, 1, 1]), device)
        };
        let mut x0 = drawn.images.gather(&indices, device);
        for (transform, band) in &drawn.random {
            match (transform, band) {
                (Transform::HFlip { p }, _) => {
                    let flip: Vec<f32> = (0..batch)
                        .map(|_| if rng.random_bool(*p) { 1.0 } else { 0.0 })
                        .collect();
                    let flip = per_image(flip);
                    let flipped = x0.clone().flip([3]);
                    x0 = x0.clone() + (flipped - x0) * flip;
                }
                (Transform::Corrupt { gamma, .. }, Some(band)) => {
                    let noise = band.sample(batch, rng.next_u64())?;
                    x0 = x0 + noise.mul_scalar(*gamma);
                }
                (other, _) => unreachable!("`{other}` is not a random transform"),
            }
        }
        let levels: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.levels.len()))
            .collect();
        let eps = drawn.noise.sample(batch, rng.next_u64())?;
        let scale = per_image(
            levels
                .iter()
                .map(|&t| self.levels[t].scale() as f32)
                .collect(),
        );
        let sigma = per_image(
            levels
                .iter()
                .map(|&t| self.levels[t].sigma as f32)
                .collect(),
        );
        let filter = drawn
            .target_table
            .as_ref()
            .map(|table| (&drawn.noise, table));
        let (x_t, target) =
            loss::device_target(self.parameterization, x0, eps, scale, sigma, filter)?;
        Ok(Batch {
            x_t,
            target,
            cond: Conditioning::new(levels, self.levels.len()),
            weight: None,
        })
    }
}
