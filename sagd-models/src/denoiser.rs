//! [`Denoiser`]: a network bound to its schedule, parameterization and image shape — what a
//! sampler calls.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;
use sagd_core::{
    DynShape, ImageShape, Images, NoiseLevel, NoiseOperator, Parameterization, Parameterized,
    Schedule, ScoreParameterization, SpectralCovariance, SpectralNoise,
};

use crate::checkpoint::{Checkpoint, Group};
use crate::config::RunConfig;
use crate::error::{ModelError, WeightsCheck};
use crate::nets::{Conditioning, Net};
use crate::params;
use crate::range::OutputRange;

/// A denoiser for images of shape `S`: predicts, at level `t` of its schedule, the quantity of
/// its parameterization.
pub trait Denoiser<S: ImageShape> {
    /// The image shape.
    fn shape(&self) -> S;

    /// What [`Denoiser::predict`] returns.
    fn parameterization(&self) -> Parameterization;

    /// The noise levels `t = 0..T-1` it was trained on.
    fn levels(&self) -> &[NoiseLevel];

    /// The prediction for `x_t`, each image at its own level index `t[i]`.
    fn predict(&self, x_t: &Images<S>, t: &[usize]) -> Result<Images<S>, ModelError>;

    /// The noise operator of the process it was trained on: its covariance `Σ_w` is what the
    /// predictions refer to, and samplers draw their fresh noise from it. Shared, not copied.
    fn noise(&self) -> &SpectralNoise<S>;

    /// The noise covariance `Σ_w` the predictions refer to (the [`noise`](Self::noise)'s).
    fn covariance(&self) -> &SpectralCovariance {
        self.noise().covariance()
    }

    /// The prediction converted to the coloured noise `ε̂^(w)`, the whole batch at level `t`.
    ///
    /// For a rank-deficient `Σ_w` (band gaps) the result is projected onto its support,
    /// `Π_w ε̂`: `ε^(w)` lies in the support, so the exact posterior mean `E[ε^(w) | x_t]` does
    /// too, and the projection never moves a prediction away from it. Without it, whatever a
    /// learned network puts off the support is error that no later step corrects (the
    /// forward process never noises those modes, so the denoiser never learned to restore
    /// them) and that the samplers carry into the images amplified by `σ_t/√ᾱ_t` (up to about
    /// 150 at the top of the DDPM-linear schedule). With the matched prior, samples then stay
    /// exactly off the gap: selective omission. The projection is two real FFTs per image on
    /// the host.
    fn predict_eps(&self, x_t: &Images<S>, t: usize) -> Result<Images<S>, ModelError> {
        let level = *self.levels().get(t).ok_or_else(|| {
            ModelError::config(
                "t",
                t,
                format!("a level index below {}", self.levels().len()),
            )
        })?;
        let prediction = self.predict(x_t, &vec![t; x_t.count()])?;
        let bound = Parameterized::new(self.parameterization(), self.noise().covariance_arc());
        let eps = bound.to_coloured_eps(&prediction, x_t, level)?;
        if self.covariance().full_support() {
            return Ok(eps);
        }
        let mut host = eps.to_host();
        self.covariance().project(&mut host)?;
        Ok(Images::from_host(host, eps.shape(), &eps.device())?)
    }
}

/// A trained network ready for sampling.
#[derive(Debug, Clone)]
pub struct TrainedDenoiser<S: ImageShape> {
    net: Net,
    shape: S,
    levels: Vec<NoiseLevel>,
    parameterization: Parameterization,
    noise: SpectralNoise<S>,
    output_range: OutputRange,
    /// The run's config, as stored in the checkpoint.
    pub config: RunConfig,
}

impl<S: ImageShape> TrainedDenoiser<S> {
    /// Loads the weights (`ema` picks the EMA) of the checkpoint at `path` for images of
    /// `shape`, on `device`. A checkpoint trained on another shape is refused.
    pub fn load(path: &Path, ema: bool, shape: S, device: &Device) -> Result<Self, ModelError> {
        let (net, config, ckpt) = load_net(path, ema, device)?;
        let range = checkpoint_range(&ckpt, &config);
        Self::from_parts(path, net, config, ckpt.header.shape, shape, range)
    }

    /// Wraps a network built in code (for example one just trained in-process) with the
    /// run config it belongs to, for images of `shape` (its output range worked out from the
    /// config, as for a checkpoint that does not record it).
    pub fn new(net: Net, config: RunConfig, shape: S) -> Result<Self, ModelError> {
        let range = OutputRange::from_config(&config);
        Self::from_parts(
            Path::new("<in memory>"),
            net,
            config,
            shape.dims(),
            shape,
            range,
        )
    }

    fn from_parts(
        path: &Path,
        net: Net,
        config: RunConfig,
        trained: [usize; 3],
        shape: S,
        output_range: OutputRange,
    ) -> Result<Self, ModelError> {
        if trained != shape.dims() {
            return Err(ModelError::Shape {
                context: format!("checkpoint {}", path.display()),
                expected: format!("{:?} (the requested images)", shape.dims()),
                got: format!("{trained:?} (what it was trained on)"),
            });
        }
        let covariance = Arc::new(config.noise_covariance(shape.dims())?);
        Ok(Self {
            net,
            shape,
            levels: config.schedule.levels()?,
            parameterization: config.parameterization,
            noise: SpectralNoise::from_covariance(covariance, shape)?,
            output_range,
            config,
        })
    }

    /// How its outputs map back to its data's range.
    pub fn output_range(&self) -> OutputRange {
        self.output_range
    }

    /// The schedule it was trained with.
    pub fn schedule(&self) -> &Schedule {
        &self.config.schedule
    }

    /// The network.
    pub fn net(&self) -> &Net {
        &self.net
    }
}

impl TrainedDenoiser<DynShape> {
    /// Loads the checkpoint at `path` for the image shape it was trained on.
    pub fn load_any(path: &Path, ema: bool, device: &Device) -> Result<Self, ModelError> {
        let (net, config, ckpt) = load_net(path, ema, device)?;
        let [c, h, w] = ckpt.header.shape;
        let range = checkpoint_range(&ckpt, &config);
        Self::from_parts(
            path,
            net,
            config,
            ckpt.header.shape,
            DynShape::new(c, h, w),
            range,
        )
    }
}

impl<S: ImageShape> Denoiser<S> for TrainedDenoiser<S> {
    fn shape(&self) -> S {
        self.shape
    }
    fn parameterization(&self) -> Parameterization {
        self.parameterization
    }
    fn levels(&self) -> &[NoiseLevel] {
        &self.levels
    }
    fn noise(&self) -> &SpectralNoise<S> {
        &self.noise
    }
    fn predict(&self, x_t: &Images<S>, t: &[usize]) -> Result<Images<S>, ModelError> {
        if t.len() != x_t.count() {
            return Err(ModelError::Shape {
                context: "denoiser levels".to_string(),
                expected: format!("{} level indices", x_t.count()),
                got: format!("{}", t.len()),
            });
        }
        if let Some(&bad) = t.iter().find(|&&i| i >= self.levels.len()) {
            return Err(ModelError::config(
                "t",
                bad,
                format!("a level index below {}", self.levels.len()),
            ));
        }
        let cond = Conditioning::new(t.to_vec(), self.levels.len());
        let out = self.net.forward(x_t.tensor().clone(), &cond);
        Ok(Images::new(out, self.shape)?)
    }
}

/// The output range a checkpoint records, or for older checkpoints the one its config implies.
fn checkpoint_range(ckpt: &Checkpoint, config: &RunConfig) -> OutputRange {
    ckpt.header
        .output_range
        .unwrap_or_else(|| OutputRange::from_config(config))
}

/// Rebuilds a trained network from a checkpoint: the architecture from the config stored in
/// it, the weights from its `model` (or `ema`) tensors, on `device` without autodiff.
pub fn load_net(
    path: &Path,
    ema: bool,
    device: &Device,
) -> Result<(Net, RunConfig, Checkpoint), ModelError> {
    let ckpt = Checkpoint::read(path)?;
    let config = RunConfig::from_checkpoint(&ckpt.header.config, path)?;
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
    let values = ckpt.values_for(path, group, &infos)?;
    let keys = infos.iter().map(|i| group.key(&i.name));
    if let WeightsCheck::NonFinite { tensor, value } = WeightsCheck::of(keys.zip(values.clone())) {
        return Err(ModelError::checkpoint(
            path,
            format!(
                "its weights are not finite: `{tensor}` holds {value} (the first tensor with a \
                 non-finite value), so the network's outputs would not be either; the run had \
                 diverged before this checkpoint (step {}) was written: use an earlier one",
                ckpt.header.step
            ),
        ));
    }
    let owned: Vec<Vec<f32>> = values.into_iter().map(<[f32]>::to_vec).collect();
    let net = params::replace_params(net, &params::from_host(&owned, device), false);
    Ok((net, config, ckpt))
}
