//! The run configuration: one TOML file that fixes a training run.
//!
//! ```toml
//! seed = 0
//! steps = 20000
//! batch = 64
//! checkpoint_every = 1000
//! checkpoint_at = [1, 2, 5, 10, 20, 50, 100, 200, 500]   # extra checkpoint steps
//! log_every = 50
//! keep_checkpoints = 3
//! device = "cpu"                      # cpu | cuda | wgpu | ndarray | libtorch
//! devices = ["cpu", "cpu"]            # data-parallel replicas (optional; see `devices`)
//! parameterization = "coloured-eps"   # coloured-eps | whitened-eps | x0 | v | score
//! allow_low_terminal_noise = false
//!
//! [data]
//! spec = "shapes"
//! transforms = []
//!
//! [noise]
//! spectrum = "power-law:alpha=-0.5"
//! normalization = "energy"            # energy | none | per-sample-std
//! draw = "auto"                       # auto | host | device
//!
//! [schedule]
//! kind = "ddpm-linear"
//!
//! [model]
//! kind = "unet"
//! preset = "tiny"
//!
//! [optimizer]
//! kind = "adamw"
//! lr = 2e-4
//! warmup = 500
//! decay = "cosine"
//! grad_clip = 1.0
//!
//! [ema]
//! decay = 0.999
//! ```
//!
//! Unknown keys and values of the wrong type are errors that name the key.
//!
//! Checkpoints are written every `checkpoint_every` steps, at every step listed in
//! `checkpoint_at` (a set: order and repeats do not matter; each entry in `1..=steps`; empty by
//! default) and at the last step; `keep_checkpoints` then keeps the newest of them, so a run
//! that wants all of them (log-spaced checkpoints for learning curves, `sagd theory
//! emergence`) sets it high. Both are reporting keys: they may change on resume
//! ([`RESUMABLE_KEYS`]).

use std::path::Path;

use sagd_core::device::{DeviceSpec, check_replicas};
use sagd_core::{Normalization, Parameterization, Schedule, SpectrumSpec};
use sagd_datasets::spec::DataConfig;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::nets::ModelConfig;
use crate::optim::{EmaConfig, OptimizerConfig};

fn default_steps() -> u64 {
    10_000
}
fn default_batch() -> usize {
    64
}
fn default_checkpoint_every() -> u64 {
    1000
}
fn default_log_every() -> u64 {
    50
}
fn default_keep() -> usize {
    3
}
fn default_spectrum() -> SpectrumSpec {
    // Only a program that links no spectra at all (no `sagd_ops::link()`) gets here without
    // `isotropic`: a mistake in the program, not in a config.
    SpectrumSpec::isotropic().unwrap_or_else(|e| {
        panic!("the built-in spectra are not linked ({e}): call sagd_ops::link()")
    })
}

/// The `devices` list, each entry a [`DeviceSpec`]; errors name the whole list and the entry.
fn device_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<DeviceSpec>, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    sagd_core::device::parse_device_list(&entries).map_err(serde::de::Error::custom)
}

/// The `[noise]` table: the forward process's spectrum and its normalization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseConfig {
    /// The spectrum: `NAME`, `NAME:k=v,…` or `@file.toml`, parsed when the config is read.
    #[serde(default = "default_spectrum")]
    pub spectrum: SpectrumSpec,
    /// How the spectrum is scaled.
    #[serde(default)]
    pub normalization: Normalization,
    /// Where each step's noise and batch are drawn.
    #[serde(default)]
    pub draw: NoiseDraw,
    /// Drawing on the device, the training images (after the deterministic transforms, as
    /// f32) stay resident on the device up to this many MiB; a larger dataset stays on the
    /// host and each step uploads its batch's images (the same values).
    #[serde(default = "default_resident_mib")]
    pub resident_mib: u64,
}

fn default_resident_mib() -> u64 {
    // Under a quarter of a 4 GiB GPU: what one allocation may take on CUDA (cubecl's page
    // limit), and room left for the network. CIFAR-10's train split is 586 MiB.
    1024
}

/// Where a training step draws its noise (`[noise] draw`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseDraw {
    /// `device` on a GPU, `host` on the CPU (where both run on the same cores and the host
    /// path keeps the reference numbers).
    #[default]
    Auto,
    /// On the host: real FFTs from the step's ChaCha8 stream, images gathered on the host and
    /// uploaded each step. The reference path.
    Host,
    /// On the training device: the data resident there after the deterministic transforms,
    /// `hflip` and `corrupt` applied there, white noise from the device's generator coloured
    /// with DFT matrix products; only indices and per-image levels are uploaded. Needs the
    /// random transforms (`hflip`, `corrupt`) after the others.
    Device,
}

impl NoiseDraw {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            NoiseDraw::Auto => "auto",
            NoiseDraw::Host => "host",
            NoiseDraw::Device => "device",
        }
    }

    /// True when a run on `device` draws on the device.
    pub fn on_device(self, device: DeviceSpec) -> bool {
        match self {
            NoiseDraw::Auto => !device.is_cpu(),
            NoiseDraw::Host => false,
            NoiseDraw::Device => true,
        }
    }
}

impl Default for NoiseConfig {
    /// Isotropic noise with energy normalization, drawn where `auto` says.
    ///
    /// # Panics
    /// When no spectrum named `isotropic` is registered: the program did not link the built-in
    /// spectra (`sagd_ops::link()`).
    fn default() -> Self {
        Self {
            spectrum: default_spectrum(),
            normalization: Normalization::default(),
            draw: NoiseDraw::default(),
            resident_mib: default_resident_mib(),
        }
    }
}

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of everything random: weights, data order, levels and noise.
    #[serde(default)]
    pub seed: u64,
    /// The run's total length in steps. It fixes the learning-rate schedule (the cosine ends
    /// at the last step), so it is fixed when the run starts: a resume that changes it is
    /// refused. Where one invocation stops is not part of the config (see
    /// [`TrainOptions::stop_at`](crate::TrainOptions::stop_at)).
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Images per step.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Write a checkpoint every this many steps (and at the end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Extra steps at which a checkpoint is written, besides every `checkpoint_every` steps
    /// and the last step (e.g. log-spaced `[1, 2, 5, 10, …]` for learning curves). A set:
    /// order and repeats do not matter; every entry lies in `1..=steps`. Left out of the
    /// written config when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_at: Vec<u64>,
    /// Append to `log.csv` every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Keep this many newest checkpoints (at least 1).
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// The device kind: `cpu`, `cuda` (with the `cuda` feature), … (see [`DeviceSpec`]).
    #[serde(default)]
    pub device: DeviceSpec,
    /// Data-parallel replicas, one per entry, all of the kind `device` names: `cuda:N` (or
    /// `cuda`, device 0) for GPUs, each listed once; `cpu` repeated for CPU replicas, which
    /// share the one CPU device (burn's flex backend has a single device). Each replica
    /// computes the gradient of an equal, contiguous share of the step's batch, which must
    /// divide `batch`; the shares' gradients are averaged before clipping and the optimizer
    /// step. The trajectory is that of one device with the whole batch (to float rounding),
    /// so this key may change on resume. Empty (the default, left out of the written
    /// config): one replica on `device`. See [`crate::parallel`] and
    /// [`sagd_core::device::check_replicas`].
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "device_list"
    )]
    pub devices: Vec<DeviceSpec>,
    /// What the network predicts; the loss is ℓ2 on it.
    #[serde(default)]
    pub parameterization: Parameterization,
    /// Train even when the terminal-SNR check finds modes where the signal dominates.
    #[serde(default)]
    pub allow_low_terminal_noise: bool,
    /// The training data.
    pub data: DataConfig,
    /// The forward noise.
    #[serde(default)]
    pub noise: NoiseConfig,
    /// The noise schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// The network.
    #[serde(default)]
    pub model: ModelConfig,
    /// The optimizer.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The EMA of the weights.
    #[serde(default)]
    pub ema: EmaConfig,
}

/// The keys a resumed run may change (dotted for a table's key): how it reports, keeps
/// checkpoints, checks its spectrum before training, spreads a step over devices and keeps its
/// images on one, never what it computes. `steps` is not among them: the run's length shapes
/// its learning-rate schedule.
pub const RESUMABLE_KEYS: [&str; 7] = [
    "checkpoint_every",
    "checkpoint_at",
    "log_every",
    "keep_checkpoints",
    "allow_low_terminal_noise",
    "devices",
    "noise.resident_mib",
];

impl RunConfig {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ModelError> {
        let config: Self = toml::from_str(text).map_err(|e| ModelError::ConfigFile {
            path: origin.to_path_buf(),
            message: toml_error_line(text, &e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The run config a checkpoint records (its `config` metadata); `path` names the
    /// checkpoint.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] when the recorded text is not a valid run config: the file
    /// is at fault, not a config the user wrote.
    pub fn from_checkpoint(text: &str, path: &Path) -> Result<Self, ModelError> {
        Self::from_toml(text, Path::new("config")).map_err(|e| {
            ModelError::checkpoint(
                path,
                format!("its metadata `config` is not a valid run config: {e}"),
            )
        })
    }

    /// Reads and checks a config file.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot encode the config: {e}\n"))
    }

    /// Checks the values that do not need the data; errors name the key.
    pub fn validate(&self) -> Result<(), ModelError> {
        let at_least_one = |key: &str, v: u64| {
            if v == 0 {
                Err(ModelError::config(key, v, "at least 1"))
            } else {
                Ok(())
            }
        };
        at_least_one("steps", self.steps)?;
        at_least_one("batch", self.batch as u64)?;
        at_least_one("checkpoint_every", self.checkpoint_every)?;
        at_least_one("log_every", self.log_every)?;
        at_least_one("keep_checkpoints", self.keep_checkpoints as u64)?;
        if let Some(&bad) = self
            .checkpoint_at
            .iter()
            .find(|&&s| s == 0 || s > self.steps)
        {
            return Err(ModelError::config(
                "checkpoint_at",
                bad,
                format!("every entry in 1..={} (the run's `steps`)", self.steps),
            ));
        }
        check_replicas(self.device, &self.devices, self.batch)?;
        self.schedule.validate().map_err(|e| {
            ModelError::config("schedule", format!("{:?}", self.schedule), e.to_string())
        })?;
        self.optimizer.validate()?;
        self.ema.validate()?;
        Ok(())
    }

    /// Checks that the learning-rate schedule fits the run's length, for a run about to
    /// start (runs already trained, whose checkpoints store their config, are not refused):
    /// the warm-up ends before the last step, and a cosine decay has at least two steps, so
    /// that it starts at `lr` and ends at exactly `min_lr`.
    pub fn validate_schedule(&self) -> Result<(), ModelError> {
        use crate::optim::Decay;
        let (warmup, steps) = (self.optimizer.warmup, self.steps);
        let (fits, expected) = match self.optimizer.decay {
            Decay::Cosine => (
                warmup.saturating_add(2) <= steps,
                format!(
                    "at most steps − 2 = {} (steps = {steps}): the cosine decay needs two steps \
                     after the warm-up to run from lr to min_lr",
                    steps.saturating_sub(2)
                ),
            ),
            Decay::Constant => (
                warmup < steps,
                format!("fewer than the run's length (steps = {steps})"),
            ),
        };
        if fits {
            Ok(())
        } else {
            Err(ModelError::config("optimizer.warmup", warmup, expected))
        }
    }

    /// True when a checkpoint is written after step `step` of a run that ends (this
    /// invocation) at `end`: every `checkpoint_every` steps, at the steps of `checkpoint_at`
    /// and at `end`.
    pub fn checkpoint_due(&self, step: u64, end: u64) -> bool {
        step.is_multiple_of(self.checkpoint_every)
            || step == end
            || self.checkpoint_at.contains(&step)
    }

    /// The forward noise's covariance `Σ_w` on images of `shape`; errors name `noise.spectrum`.
    pub fn noise_covariance(
        &self,
        shape: [usize; 3],
    ) -> Result<sagd_core::SpectralCovariance, ModelError> {
        let spectrum = self.noise.spectrum.spectrum();
        sagd_core::SpectralCovariance::new(spectrum, shape, self.noise.normalization).map_err(|e| {
            ModelError::config(
                "noise.spectrum",
                &self.noise.spectrum,
                format!("a spectrum that can be evaluated on {shape:?} images ({e})"),
            )
        })
    }

    /// The first key (other than [`RESUMABLE_KEYS`]) where `self` and `other` differ.
    pub fn incompatible_key(&self, other: &Self) -> Option<String> {
        self.resume_conflict(other).map(|c| c.key)
    }

    /// The first key (other than [`RESUMABLE_KEYS`]) where `other` differs from `self`, the
    /// config a run was started with, with both values as TOML text.
    pub fn resume_conflict(&self, other: &Self) -> Option<ResumeConflict> {
        let a = toml::Value::try_from(self).ok()?;
        let b = toml::Value::try_from(other).ok()?;
        let key = first_difference(&a, &b, "")?;
        let show = |v: &toml::Value| {
            key.split('.')
                .try_fold(v, |v, k| v.get(k))
                .map_or("(absent)".to_string(), ToString::to_string)
        };
        Some(ResumeConflict {
            started: show(&a),
            requested: show(&b),
            key,
        })
    }

    /// The error for resuming the run in `out` (started with `self`) with `other`, if they
    /// conflict; the message names the key and both values.
    pub fn check_resume(&self, other: &Self, out: &Path) -> Result<(), ModelError> {
        let Some(conflict) = self.resume_conflict(other) else {
            return Ok(());
        };
        let expected = if conflict.key == "steps" {
            format!(
                "{}, the length the run in {} was started with: it fixes the learning-rate \
                 schedule, so it cannot change on --resume (to end this invocation earlier, \
                 stop at a step instead: --stop-at)",
                conflict.started,
                out.display()
            )
        } else {
            format!(
                "{}, the value the run in {} was started with (only {} may change on --resume)",
                conflict.started,
                out.display(),
                RESUMABLE_KEYS.join(", ")
            )
        };
        Err(ModelError::config(
            conflict.key,
            conflict.requested,
            expected,
        ))
    }
}

/// A key whose value a resumed run would change, and both values (TOML text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeConflict {
    /// The key, dotted (`optimizer.lr`).
    pub key: String,
    /// Its value in the run's config.
    pub started: String,
    /// The value asked for.
    pub requested: String,
}

/// A TOML error on one line: `line L, column C (`the line`): message` (the parser's own
/// rendering spans several lines with a caret). An error of a `[model]` key (`model.KEY: …`,
/// raised once the table's `kind` is known) points at that key's own line.
fn toml_error_line(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    let start = model_key_offset(text, &message).or(error.span().map(|s| s.start));
    match start {
        Some(start) => {
            let before = text.get(..start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // The line itself names the key at fault.
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}, column {column} (`{source}`): {message}")
        }
        None => message,
    }
}

/// The byte offset of the value of `KEY` in the `[model]` table of `text`, for a message
/// `model.KEY: …`.
fn model_key_offset(text: &str, message: &str) -> Option<usize> {
    let key = message.strip_prefix("model.")?.split(':').next()?;
    let mut offset = 0;
    let mut in_model = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_model = trimmed.trim_end().starts_with("[model]");
        } else if in_model
            && let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            let value = rest.trim_start()[1..].trim_start();
            return Some(offset + line.len() - value.len());
        }
        offset += line.len();
    }
    None
}

fn first_difference(a: &toml::Value, b: &toml::Value, path: &str) -> Option<String> {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if RESUMABLE_KEYS.contains(&key.as_str()) {
                    continue;
                }
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(x, y, &key) {
                            return Some(d);
                        }
                    }
                    _ => return Some(key),
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunConfig, ModelError> {
        sagd_ops::link();
        RunConfig::from_toml(text, Path::new("run.toml"))
    }

    #[test]
    fn minimal_config_takes_defaults_and_round_trips() {
        let c = parse("[data]\nspec = \"shapes\"\n").unwrap();
        assert_eq!(c.batch, 64);
        assert_eq!(c.model.kind(), "unet");
        let again = parse(&c.to_toml()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let e = parse("stepz = 3\n[data]\nspec = \"shapes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stepz"), "{e}");
        let e = parse("steps = \"many\"\n[data]\nspec = \"shapes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps"), "{e}");
        let e = parse("[data]\nspec = \"shapes\"\n[model]\nkind = \"unet\"\nwidth = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 5") && e.contains("model.width"), "{e}");
        let e = parse("[data]\nspec = \"shapes\"\n[model]\nkind = \"mlp\"\ndepth = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 5, column 9 (`depth = \"x\"`)") && e.contains("model.depth"),
            "{e}"
        );
        let e = parse("[data]\nspec = \"shapes\"\n[optimizer]\nlr = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.lr"), "{e}");
        // The spectrum is parsed when the config is read: the error names its line.
        let e = parse("[data]\nspec = \"shapes\"\n[noise]\nspectrum = \"pink-elephant\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4")
                && e.contains("spectrum = \"pink-elephant\"")
                && e.contains("unknown spectrum"),
            "{e}"
        );
        let e = parse("device = \"tpu\"\n[data]\nspec = \"shapes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("`device` = tpu"), "{e}");
        let e = parse("steps = 5\n").unwrap_err().to_string();
        assert!(e.contains("data"), "{e}");
        // Parser errors are one line with the position.
        let e = parse("[data]\nspec = \"shapes\"\ngarbage = [\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn only_reporting_keys_may_change_on_resume() {
        let a = parse("[data]\nspec = \"shapes\"\n").unwrap();
        let mut b = a.clone();
        b.log_every = 7;
        b.checkpoint_every = 3;
        b.keep_checkpoints = 9;
        b.checkpoint_at = vec![1, 2, 5];
        // Streaming the images instead of keeping them on the device draws the same batches.
        b.noise.resident_mib = 0;
        assert_eq!(a.incompatible_key(&b), None);
        let mut d = b.clone();
        d.noise.draw = crate::config::NoiseDraw::Device;
        assert_eq!(a.incompatible_key(&d).as_deref(), Some("noise.draw"));
        b.optimizer.lr = 1.0;
        assert_eq!(a.incompatible_key(&b).as_deref(), Some("optimizer.lr"));
        // The run's length shapes its schedule: a change is refused with both values.
        let mut c = a.clone();
        c.steps = 6;
        let conflict = a.resume_conflict(&c).unwrap();
        assert_eq!(
            (
                conflict.key.as_str(),
                conflict.started.as_str(),
                conflict.requested.as_str()
            ),
            ("steps", "10000", "6")
        );
        let e = a
            .check_resume(&c, Path::new("runs/a"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`steps` = 6") && e.contains("10000") && e.contains("--stop-at"),
            "{e}"
        );
    }

    #[test]
    fn checkpoint_at_is_checked_and_left_out_when_empty() {
        let c =
            parse("steps = 20\ncheckpoint_at = [20, 1, 1]\n[data]\nspec = \"shapes\"\n").unwrap();
        assert!(c.checkpoint_due(1, 20) && c.checkpoint_due(20, 20) && !c.checkpoint_due(2, 20));
        assert!(c.to_toml().contains("checkpoint_at = [20, 1, 1]"));
        // Configs without the key are written as they were before it existed.
        let plain = parse("[data]\nspec = \"shapes\"\n").unwrap();
        assert!(!plain.to_toml().contains("checkpoint_at"));
        let e = parse("steps = 20\ncheckpoint_at = [3, 21]\n[data]\nspec = \"shapes\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("checkpoint_at") && e.contains("21") && e.contains("1..=20"),
            "{e}"
        );
    }

    /// A checkpoint whose recorded config is broken (a duplicated key) is the file's fault:
    /// a checkpoint error naming it and the metadata, not a usage error about a config.
    #[test]
    fn a_bad_recorded_config_is_a_checkpoint_error() {
        let path = Path::new("runs/x/checkpoints/step-00000001.safetensors");
        let e = RunConfig::from_checkpoint("seed = 0\nseed = 0\n", path).unwrap_err();
        assert!(!e.is_usage());
        let text = e.to_string();
        assert!(
            text.contains("step-00000001.safetensors")
                && text.contains("metadata `config` is not a valid run config")
                && text.contains("duplicate key"),
            "{text}"
        );
    }

    #[test]
    fn the_schedule_fits_the_run() {
        let config = |warmup: u64, decay: &str| {
            parse(&format!(
                "steps = 10\n[data]\nspec = \"shapes\"\n[optimizer]\nwarmup = {warmup}\n\
                 decay = \"{decay}\"\n"
            ))
            .unwrap()
        };
        // Parsing accepts any warm-up (a trained run's checkpoint must stay readable)...
        let e = config(9, "cosine")
            .validate_schedule()
            .unwrap_err()
            .to_string();
        // ...a new run needs two cosine steps after it.
        assert!(
            e.contains("optimizer.warmup") && e.contains("steps = 10"),
            "{e}"
        );
        assert!(config(8, "cosine").validate_schedule().is_ok());
        assert!(config(9, "constant").validate_schedule().is_ok());
        assert!(config(10, "constant").validate_schedule().is_err());
    }
}
