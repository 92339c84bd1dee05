//! The SAGD training loop.
//!
//! Each step draws a batch of images, a level `t` per image (uniform over the schedule), the
//! coloured noise `ε^(w) ~ N(0, Σ_w)` of the configured spectrum and normalization, forms
//! `x_t = √ᾱ_t x_0 + σ_t ε^(w)`, and regresses the network's output on the parameterization's
//! target with a mean squared error (default: the coloured noise itself, no reweighting).
//! AdamW (or plain gradient descent) with warm-up and cosine decay, clipping of the global
//! gradient norm, and an EMA of the weights follow.
//!
//! Every random draw of step `s` comes from a ChaCha8 stream keyed by the run's seed and `s`,
//! and the data order from a per-epoch permutation keyed by the seed and the epoch, so a run
//! resumed from the checkpoint of step `s` draws exactly what the uninterrupted run would have.
//! With `devices`, each step's batch is shared among data-parallel replicas
//! ([`crate::parallel`]); the draws stay the same.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sagd_core::device_noise::MultiplierTable;
use sagd_core::{DeviceNoise, NoiseLevel, Parameterization, SpectralCovariance};
use sagd_datasets::Dataset;
use sagd_datasets::transform::{Pipeline, Transform};

use crate::checkpoint::{self, Checkpoint, Group, Header, LogWindow, TensorEntry};
use crate::config::RunConfig;
use crate::error::ModelError;
use crate::nets::{Conditioning, Net};
use crate::optim::{Ema, OptimizerConfig, OptimizerState, apply_update, clip_factor, global_norm};
use crate::parallel::{DataParallel, replica_devices};
use crate::params::{self, ParamInfo};

/// One training batch, ready for the network.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The noisy images `x_t`.
    pub x_t: Tensor<4>,
    /// The regression target in the model's parameterization.
    pub target: Tensor<4>,
    /// The level of each image.
    pub cond: Conditioning,
}

/// The numbers one step produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutput {
    /// Mean squared error of the batch.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// A network with its optimizer state and EMA: everything a step changes.
#[derive(Debug, Clone)]
pub struct TrainState {
    /// The network, on an autodiff device.
    pub net: Net,
    /// The optimizer's state.
    pub optimizer: OptimizerState,
    /// The EMA of the weights.
    pub ema: Ema,
    /// The optimizer's settings.
    pub config: OptimizerConfig,
    /// The EMA's decay per step.
    pub ema_decay: f64,
}

impl TrainState {
    /// A fresh state for `net` (which must live on an autodiff device).
    pub fn new(net: Net, config: OptimizerConfig, ema_decay: f64) -> Self {
        let optimizer = OptimizerState::new(&net, config.kind);
        let ema = Ema::new(&net);
        Self {
            net,
            optimizer,
            ema,
            config,
            ema_decay,
        }
    }

    /// One update on `batch` at learning rate `lr`. A NaN or infinite loss or gradient leaves
    /// the state untouched and returns the offending value in `Err`.
    pub fn step(&mut self, batch: &Batch, lr: f64) -> Result<StepOutput, (&'static str, f64)> {
        let (loss, grads) = crate::parallel::batch_gradients(&self.net, batch);
        self.apply(loss, grads, lr)
    }

    /// The second half of [`step`](Self::step): given a batch's `loss` and the gradient of
    /// each parameter (visiting order, on this state's device), clips them by their global
    /// norm, takes the optimizer step and updates the EMA. A NaN or infinite loss or gradient
    /// leaves the state untouched and returns the offending value in `Err`.
    pub fn apply(
        &mut self,
        loss: f64,
        grads: Vec<Option<Tensor<1>>>,
        lr: f64,
    ) -> Result<StepOutput, (&'static str, f64)> {
        if !loss.is_finite() {
            return Err(("loss", loss));
        }
        let grad_norm = global_norm(&grads);
        if !grad_norm.is_finite() {
            return Err(("gradient norm", grad_norm));
        }
        let scale = clip_factor(grad_norm, self.config.clip());
        let net = self.net.clone();
        self.net = apply_update(net, grads, &self.config, &mut self.optimizer, lr, scale);
        self.ema.update(&self.net, self.ema_decay);
        Ok(StepOutput { loss, grad_norm })
    }

    /// The network with the EMA weights, off autodiff (for sampling).
    pub fn ema_net(&self) -> Net {
        self.ema.apply(self.net.valid())
    }

    /// A checkpoint of this state after `step` steps.
    pub fn to_checkpoint(
        &self,
        step: u64,
        seed: u64,
        shape: [usize; 3],
        config: String,
    ) -> Checkpoint {
        let infos = params::param_infos(&self.net);
        let mut tensors = Vec::new();
        let mut values = Vec::new();
        let mut push = |group: Group, data: Vec<Vec<f32>>| {
            for (info, v) in infos.iter().zip(data) {
                tensors.push(TensorEntry {
                    group,
                    info: info.clone(),
                });
                values.push(v);
            }
        };
        push(
            Group::Model,
            params::to_host(&params::flat_params(&self.net)),
        );
        if !self.optimizer.m.is_empty() {
            push(Group::AdamM, params::to_host(&self.optimizer.m));
            push(Group::AdamV, params::to_host(&self.optimizer.v));
        }
        push(Group::Ema, params::to_host(&self.ema.weights));
        Checkpoint {
            header: Header {
                step,
                optimizer_step: self.optimizer.step,
                seed,
                shape,
                config,
                tensors,
                last_loss: None,
                log_window: Default::default(),
            },
            values,
        }
    }

    /// Restores weights, optimizer state and EMA from `ckpt` (read from `path`), after checking
    /// that every tensor fits.
    pub fn load_checkpoint(&mut self, ckpt: &Checkpoint, path: &Path) -> Result<(), ModelError> {
        let infos = params::param_infos(&self.net);
        let device = params::flat_params(&self.net)
            .first()
            .map(|t| t.device())
            .unwrap_or_else(Device::flex);
        // Every group is checked before anything is replaced, so a refused file changes nothing.
        let model = ckpt.values_for(path, Group::Model, &infos)?;
        let ema = ckpt.values_for(path, Group::Ema, &infos)?;
        let moments = if self.optimizer.m.is_empty() {
            None
        } else {
            Some((
                ckpt.values_for(path, Group::AdamM, &infos)?,
                ckpt.values_for(path, Group::AdamV, &infos)?,
            ))
        };
        let load = |values: &[&[f32]]| -> Vec<Tensor<1>> {
            let owned: Vec<Vec<f32>> = values.iter().map(|v| v.to_vec()).collect();
            params::from_host(&owned, &device)
        };
        if let Some((m, v)) = moments {
            self.optimizer.m = load(&m);
            self.optimizer.v = load(&v);
        }
        self.optimizer.step = ckpt.header.optimizer_step;
        self.ema.weights = load(&ema);
        let net = self.net.clone();
        self.net = params::replace_params(net, &load(&model), true);
        Ok(())
    }
}

pub use crate::device::device_for;

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
    resident: Option<Resident>,
}

/// The device side of a [`BatchSource`] drawing on the device (`[noise] draw = "device"`).
struct Resident {
    /// Every image after the deterministic transforms, `(N, C, H, W)` on the device.
    images: Tensor<4>,
    /// The random transforms that follow, each with its band noise for `corrupt`.
    random: Vec<(Transform, Option<DeviceNoise>)>,
    /// The forward process's noise.
    noise: DeviceNoise,
    /// The multiplier the parameterization's target needs (`1/w` or `1/w²` on the support).
    target_table: Option<MultiplierTable>,
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
            resident: None,
        })
    }

    /// Moves the source onto `device`: the images after the deterministic transforms become
    /// one resident tensor, and every later batch is drawn there (see
    /// [`NoiseDraw::Device`](crate::config::NoiseDraw::Device)): only the batch's indices,
    /// flip decisions and levels are uploaded per step.
    ///
    /// # Errors
    /// [`ModelError::Config`] when a deterministic transform follows a random one (`hflip`,
    /// `corrupt`), which the device path cannot reorder.
    pub fn on_device(mut self, device: &Device) -> Result<Self, ModelError> {
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
        let [c, h, w] = prepared.shape();
        let images = Tensor::from_data(
            TensorData::new(prepared.to_f32(), [prepared.len(), c, h, w]),
            device,
        );
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
        let target_table = match self.parameterization {
            Parameterization::WhitenedEps => {
                Some(noise.multiplier(|w| if w > 0.0 { 1.0 / w } else { 0.0 })?)
            }
            Parameterization::Score => {
                Some(noise.multiplier(|w| if w > 0.0 { 1.0 / (w * w) } else { 0.0 })?)
            }
            _ => None,
        };
        self.resident = Some(Resident {
            images,
            random,
            noise,
            target_table,
        });
        Ok(self)
    }

    /// True when batches are drawn on the device.
    pub fn is_on_device(&self) -> bool {
        self.resident.is_some()
    }

    /// The image shape after the transforms.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
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
        if self.resident.is_some() {
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
            let level = self.levels[t];
            let (a, s) = (level.scale() as f32, level.sigma as f32);
            let range = b * dim..(b + 1) * dim;
            for i in range.clone() {
                x_t[i] = a * x0[i] + s * eps[i];
            }
            let t = &mut target[range.clone()];
            match self.parameterization {
                Parameterization::ColouredEps => t.copy_from_slice(&eps[range.clone()]),
                Parameterization::X0 => t.copy_from_slice(&x0[range.clone()]),
                Parameterization::V => {
                    for (k, i) in range.clone().enumerate() {
                        t[k] = a * eps[i] - s * x0[i];
                    }
                }
                Parameterization::WhitenedEps | Parameterization::Score => {
                    let converted = self.parameterization.from_coloured_eps(
                        &eps[range.clone()],
                        &x_t[range.clone()],
                        level,
                        &self.covariance,
                    )?;
                    t.copy_from_slice(&converted);
                }
            }
        }
        let [c, h, w] = self.shape;
        let tensor = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [batch, c, h, w]), device);
        Ok(Batch {
            x_t: tensor(x_t),
            target: tensor(target),
            cond: Conditioning::new(index, self.levels.len()),
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
        let Some(resident) = &self.resident else {
            unreachable!("device_batch is called for resident sources only");
        };
        let batch = indices.len();
        let per_image = |values: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values, [batch, 1, 1, 1]), device)
        };
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(
                indices.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [batch],
            ),
            device,
        );
        let mut x0 = resident.images.clone().select(0, index);
        for (transform, band) in &resident.random {
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
        let eps = resident.noise.sample(batch, rng.next_u64())?;
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
        let x_t = x0.clone() * scale.clone() + eps.clone() * sigma.clone();
        let target = match self.parameterization {
            Parameterization::ColouredEps => eps,
            Parameterization::X0 => x0,
            Parameterization::V => eps * scale - x0 * sigma,
            Parameterization::WhitenedEps | Parameterization::Score => {
                let table = resident
                    .target_table
                    .as_ref()
                    .expect("target table built for whitened-eps and score");
                let filtered = resident.noise.filter(eps, table)?;
                match self.parameterization {
                    Parameterization::Score => filtered.neg() / sigma,
                    _ => filtered,
                }
            }
        };
        Ok(Batch {
            x_t,
            target,
            cond: Conditioning::new(levels, self.levels.len()),
        })
    }
}

/// What the loop reports as it runs.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run is about to start (or resume) at `start`.
    Started {
        /// First step to run (0 for a fresh run).
        start: u64,
        /// The step this invocation stops after (`total` unless stopped early).
        end: u64,
        /// The run's length (`steps` of the config).
        total: u64,
        /// Trainable parameters.
        params: usize,
        /// Image shape.
        shape: [usize; 3],
        /// Data-parallel replicas (1 without `devices`).
        replicas: usize,
    },
    /// Something the user should know but that does not stop the run.
    Warning(String),
    /// A step finished.
    Step {
        /// Steps completed.
        step: u64,
        /// The batch loss.
        loss: f64,
        /// The learning rate used.
        lr: f64,
        /// Gradient norm before clipping.
        grad_norm: f64,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// Steps completed.
        step: u64,
        /// The file.
        path: PathBuf,
    },
}

/// Options of one invocation, which are not part of the run's config and never change its
/// trajectory.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in the output directory from its newest checkpoint.
    pub resume: bool,
    /// End this invocation after this step (1-based count of steps completed), leaving a
    /// checkpoint there, as an interruption would; the run's length and learning-rate
    /// schedule stay those of the config's `steps`. Must lie after the step the run starts
    /// from and at most at `steps`; `None` runs to the end.
    pub stop_at: Option<u64>,
}

/// The outcome of an invocation.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The step the run has reached (steps completed).
    pub step: u64,
    /// The run's length (`steps` of the config).
    pub total: u64,
    /// Steps this invocation ran (0 when a resumed run was already complete).
    pub ran: u64,
    /// The loss of the run's last step (`None` when no step has run).
    pub last_loss: Option<f64>,
    /// The last checkpoint.
    pub checkpoint: PathBuf,
}

impl TrainSummary {
    /// True when the run has reached its configured length.
    pub fn complete(&self) -> bool {
        self.step >= self.total
    }
}

/// The checkpoints directory of a run directory.
pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

fn write_atomic(path: &Path, text: &str) -> Result<(), ModelError> {
    sagd_core::files::write_atomic(path, text.as_bytes())
        .map_err(|e| ModelError::io(&e.path, e.source))
}

const LOG_HEADER: &str = "step,loss,lr,grad_norm,images_per_sec";

/// Keeps the rows of `log.csv` that an uninterrupted run has at `step`, creating the file
/// with its header if needed: rows after `step` go (a resumed run rewrites them), and so does
/// a row at `step` itself when `open_window` says it was written by an early stop between two
/// `log_every` boundaries (the uninterrupted run has no row there).
fn prepare_log(path: &Path, step: u64, open_window: bool) -> Result<(), ModelError> {
    let mut text = format!("{LOG_HEADER}\n");
    if let Ok(old) = fs::read_to_string(path) {
        for line in old.lines().skip(1) {
            let row_step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
            if row_step.is_some_and(|s| s < step || (s == step && !open_window)) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    write_atomic(path, &text)
}

/// The newest checkpoint of a run that is being resumed, and the config it was trained with.
struct ResumePoint {
    path: PathBuf,
    checkpoint: Checkpoint,
}

/// Checks a resume against the run in `out` and reads its newest checkpoint; nothing is
/// written. The run's own config is the one in its newest checkpoint (or `config.toml` when
/// it has none yet).
fn resume_point(
    config: &RunConfig,
    out: &Path,
    existing: &[(u64, PathBuf)],
) -> Result<Option<ResumePoint>, ModelError> {
    let point = match existing.last() {
        Some((step, path)) => {
            let checkpoint = Checkpoint::read(path)?;
            if checkpoint.header.step != *step {
                return Err(ModelError::checkpoint(
                    path,
                    format!(
                        "is named for step {step} but records step {}",
                        checkpoint.header.step
                    ),
                ));
            }
            let started = RunConfig::from_toml(&checkpoint.header.config, path)?;
            // A checkpoint copied in from another run: say so, rather than blame the config.
            let saved_config = out.join("config.toml");
            if saved_config.exists() {
                let run = RunConfig::from_file(&saved_config)?;
                if let Some(c) = run.resume_conflict(&started) {
                    return Err(ModelError::checkpoint(
                        path,
                        format!(
                            "does not belong to the run in {}: it records `{}` = {} where the \
                             run's config.toml has {}",
                            out.display(),
                            c.key,
                            c.requested,
                            c.started
                        ),
                    ));
                }
            }
            started.check_resume(config, out)?;
            Some(ResumePoint {
                path: path.clone(),
                checkpoint,
            })
        }
        None => None,
    };
    let saved_config = out.join("config.toml");
    if point.is_none() && saved_config.exists() {
        RunConfig::from_file(&saved_config)?.check_resume(config, out)?;
    }
    Ok(point)
}

/// Trains the run `config` into `out`: `config.toml`, `log.csv` and `checkpoints/`.
///
/// The trajectory (data order, levels, noise, learning rates) is a function of the config
/// and its seed only: a run stopped by [`TrainOptions::stop_at`] or killed, then resumed, ends
/// bit for bit where an uninterrupted run ends, with the same `log.csv` rows (but for the
/// measured `images_per_sec`).
///
/// Errors, all raised before anything in `out` is written: an invalid config; an existing
/// run without `resume`; a resume whose config differs in a key other than
/// [`RESUMABLE_KEYS`](crate::config::RESUMABLE_KEYS) (`steps` included); a `stop_at` at or
/// before the step the run starts from or beyond `steps`; an unreadable or mismatched
/// checkpoint; data that cannot be loaded. Resuming a run that is already complete writes
/// nothing and returns its summary with `ran = 0`.
pub fn train(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
    observer: &mut dyn FnMut(&Event),
) -> Result<TrainSummary, ModelError> {
    config.validate()?;
    let ckpt_dir = checkpoints_dir(out);
    let existing = checkpoint::list(&ckpt_dir)?;
    let resume = if options.resume {
        resume_point(config, out, &existing)?
    } else {
        let held = match existing.last() {
            Some((step, _)) => Some(format!("a run at step {step}")),
            None => ["config.toml", "log.csv"]
                .iter()
                .find(|f| out.join(f).exists())
                .map(|f| format!("a run with no checkpoint yet ({f})")),
        };
        if let Some(held) = held {
            return Err(ModelError::invocation(
                "--out",
                out.display(),
                format!(
                    "already holds {held}; pass --resume to continue it or choose another \
                     --out"
                ),
            ));
        }
        None
    };
    let start = resume.as_ref().map_or(0, |r| r.checkpoint.header.step);
    let total = config.steps;
    if resume.is_none() {
        config.validate_schedule()?;
    }
    match options.stop_at {
        Some(stop) if stop > total => {
            return Err(ModelError::invocation(
                "--stop-at",
                stop,
                format!(
                    "is past the run's last step (steps = {total}): expected a step at most \
                     {total}; the run's length is the config's `steps`"
                ),
            ));
        }
        Some(stop) if stop <= start && start >= total => {
            return Err(ModelError::invocation(
                "--stop-at",
                stop,
                format!(
                    "the run is already complete at step {start} of {total}: there is \
                     nothing to stop; start a new run to train longer"
                ),
            ));
        }
        Some(stop) if stop <= start => {
            let at = match &resume {
                Some(r) => format!("its checkpoint {} is at step {start}", r.path.display()),
                None => "a new run starts at step 0".to_string(),
            };
            return Err(ModelError::invocation(
                "--stop-at",
                stop,
                format!(
                    "expected a step after the one the run starts from ({at}), at most {total}"
                ),
            ));
        }
        _ => {}
    }
    let end = options.stop_at.unwrap_or(total);
    if let Some(r) = &resume
        && start >= total
    {
        // Complete already: nothing to run, nothing to write.
        return Ok(TrainSummary {
            step: start,
            total,
            ran: 0,
            last_loss: r.checkpoint.header.last_loss,
            checkpoint: r.path.clone(),
        });
    }

    let parallel = DataParallel::new(replica_devices(
        &config.device,
        &config.devices,
        config.batch,
    )?);
    let device = parallel.first().clone();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if config.devices.len() > cores && config.device == "cpu" {
        observer(&Event::Warning(format!(
            "{} CPU replicas on {cores} cores: replicas beyond the cores only add overhead \
             (each is a thread on the one CPU device)",
            config.devices.len()
        )));
    }
    let (dataset, pipeline) = config.data.load()?;
    let shape = pipeline.output_shape(dataset.shape())?;
    let covariance = Arc::new(config.noise_covariance(shape)?);
    let levels = config.schedule.levels()?;
    let mut source = BatchSource::new(
        dataset,
        pipeline,
        config.seed,
        levels.clone(),
        covariance.clone(),
        config.parameterization,
    )?;
    if config.noise.draw.on_device(&config.device) {
        source = source.on_device(&device)?;
    }

    // Pre-flight: the forward process must drown the data in every mode at t = T.
    if let Some(&terminal) = levels.last() {
        let preview = source.preview(2048)?;
        let signal = sagd_datasets::stats::second_moment_spectrum(&preview)?;
        let report = sagd_core::terminal::terminal_snr(&covariance, &signal, terminal)?;
        if report.signal_dominates() && !config.allow_low_terminal_noise {
            return Err(ModelError::TerminalSnr(format!(
                "terminal-SNR check failed: {}. Sampling from N(0, Σ_w) cannot recover those \
                 modes. Use a spectrum with more power there, or set \
                 allow_low_terminal_noise = true (--allow-low-terminal-noise) to train anyway.",
                report.summary()
            )));
        }
        if report.affected > 0 {
            observer(&Event::Warning(format!(
                "terminal SNR: {}",
                report.summary()
            )));
        }
    }

    let net = Net::build(
        &config.model,
        shape,
        levels.len(),
        config.seed,
        &device.clone().autodiff(),
    )?;
    let mut state = TrainState::new(net, config.optimizer.clone(), config.ema.decay);
    let mut window = LogWindow::default();
    let mut last_loss = None;
    match &resume {
        Some(r) => {
            let header = &r.checkpoint.header;
            if header.shape != shape {
                return Err(ModelError::checkpoint(
                    &r.path,
                    format!(
                        "was trained on {:?} images, the data gives {:?}",
                        header.shape, shape
                    ),
                ));
            }
            state.load_checkpoint(&r.checkpoint, &r.path)?;
            window = header.log_window;
            last_loss = header.last_loss;
        }
        None if options.resume => observer(&Event::Warning(format!(
            "--resume: {} holds no checkpoint yet; starting from step 0",
            ckpt_dir.display()
        ))),
        None => {}
    }

    // Every check has passed: from here on the run directory is written.
    fs::create_dir_all(&ckpt_dir).map_err(|e| ModelError::io(&ckpt_dir, e))?;
    // A kill during a checkpoint write leaves only its temporary file: clear it away.
    if let Ok(entries) = fs::read_dir(&ckpt_dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(&format!(".{}.tmp", checkpoint::EXTENSION))
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let config_text = config.to_toml();
    write_atomic(&out.join("config.toml"), &config_text)?;
    let log_path = out.join("log.csv");
    prepare_log(&log_path, start, window.steps > 0)?;
    let mut log = OpenOptions::new()
        .append(true)
        .open(&log_path)
        .map_err(|e| ModelError::io(&log_path, e))?;

    observer(&Event::Started {
        start,
        end,
        total,
        params: params::param_infos(&state.net)
            .iter()
            .map(ParamInfo::len)
            .sum(),
        shape,
        replicas: parallel.replicas(),
    });

    let mut last_checkpoint = resume.as_ref().map(|r| r.path.clone());
    // Images and wall time since the last row, for its images_per_sec.
    let mut timing = (Instant::now(), 0usize);
    let save = |state: &TrainState,
                step: u64,
                last_loss: Option<f64>,
                window: LogWindow|
     -> Result<PathBuf, ModelError> {
        let path = ckpt_dir.join(checkpoint::file_name(step));
        let mut ckpt = state.to_checkpoint(step, config.seed, shape, config_text.clone());
        ckpt.header.last_loss = last_loss;
        ckpt.header.log_window = window;
        // A checkpoint is only ever "the last good one" if every stored value is finite.
        if let Some(bad) = ckpt.values.iter().flatten().find(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                step,
                what: "weights",
                value: *bad as f64,
                last_checkpoint: checkpoint::list(&ckpt_dir)?
                    .last()
                    .map_or("none".to_string(), |(_, p)| p.display().to_string()),
            });
        }
        ckpt.write(&path)?;
        let all = checkpoint::list(&ckpt_dir)?;
        for (_, old) in all.iter().rev().skip(config.keep_checkpoints) {
            let _ = fs::remove_file(old);
        }
        Ok(path)
    };
    for step in start..end {
        let batch = source.batch(step, config.batch, &device)?;
        let lr = config.optimizer.lr_at(step, total);
        let output = parallel
            .step(&mut state, &batch, lr)
            .map_err(|(what, value)| ModelError::NonFinite {
                step: step + 1,
                what,
                value,
                last_checkpoint: last_checkpoint
                    .as_ref()
                    .map_or("none".to_string(), |p| p.display().to_string()),
            })?;
        let done = step + 1;
        last_loss = Some(output.loss);
        window.push(output.loss);
        timing.1 += config.batch;
        observer(&Event::Step {
            step: done,
            loss: output.loss,
            lr,
            grad_norm: output.grad_norm,
        });
        // Rows fall on `log_every` boundaries and the run's last step; an early stop between
        // them writes a row too, which a resume replaces (its window is kept open).
        let boundary = done % config.log_every == 0 || done == total;
        if boundary || done == end {
            let rate = timing.1 as f64 / timing.0.elapsed().as_secs_f64().max(1e-9);
            writeln!(
                log,
                "{done},{:.6e},{lr:.6e},{:.6e},{rate:.2}",
                window.mean(),
                output.grad_norm
            )
            .and_then(|()| log.flush())
            .map_err(|e| ModelError::io(&log_path, e))?;
            timing = (Instant::now(), 0);
            if boundary {
                window = LogWindow::default();
            }
        }
        if config.checkpoint_due(done, end) {
            let path = save(&state, done, last_loss, window)?;
            observer(&Event::Checkpoint {
                step: done,
                path: path.clone(),
            });
            last_checkpoint = Some(path);
        }
    }
    let checkpoint = match last_checkpoint {
        Some(p) => p,
        None => save(&state, start, last_loss, window)?,
    };
    Ok(TrainSummary {
        step: end,
        total,
        ran: end - start,
        last_loss,
        checkpoint,
    })
}

/// Rebuilds a trained network from a checkpoint: the architecture from the config stored in
/// it, the weights from its `model` (or `ema`) tensors, on `device` without autodiff.
pub fn load_net(
    path: &Path,
    ema: bool,
    device: &Device,
) -> Result<(Net, RunConfig, Checkpoint), ModelError> {
    let ckpt = Checkpoint::read(path)?;
    let config = RunConfig::from_toml(&ckpt.header.config, path)?;
    let levels = config.schedule.levels()?.len();
    let net = Net::build(
        &config.model,
        ckpt.header.shape,
        levels,
        config.seed,
        device,
    )?;
    let infos = params::param_infos(&net);
    let group = if ema { Group::Ema } else { Group::Model };
    let owned: Vec<Vec<f32>> = ckpt
        .values_for(path, group, &infos)?
        .into_iter()
        .map(<[f32]>::to_vec)
        .collect();
    let net = params::replace_params(net, &params::from_host(&owned, device), false);
    Ok((net, config, ckpt))
}
