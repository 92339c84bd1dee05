//! The run behind `sagd train`: a run config (or the run directory's own, to resume) with the
//! invocation's overrides, one trainer at a time in the run directory, and
//! [`sagd_models::train()`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use sagd_core::DeviceSpec;
use sagd_models::{Event, RunConfig, TrainOptions, TrainSummary};
use serde::Serialize;

use crate::error::RunError;
use crate::stages::Lock;

/// What `sagd train` is asked; the overrides are those of its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRequest {
    /// The run config; `None` with `resume`: the run directory's `config.toml`.
    pub config: Option<PathBuf>,
    /// The run directory: `config.toml`, `log.csv`, `checkpoints/`.
    pub out: PathBuf,
    /// Continue the run in `out` from its newest checkpoint.
    pub resume: bool,
    /// Overrides the config's `device`.
    pub device: Option<DeviceSpec>,
    /// Data-parallel devices: sets `devices` (and `device` to their kind); one `cpu` or
    /// `cuda:0` alone is the plain run on that device.
    pub devices: Option<Vec<DeviceSpec>>,
    /// Sets the run's length (`steps`).
    pub total_steps: Option<u64>,
    /// Ends this invocation after this step.
    pub stop_at: Option<u64>,
    /// Overrides `checkpoint_every`.
    pub checkpoint_every: Option<u64>,
    /// Overrides `seed`.
    pub seed: Option<u64>,
    /// Sets `allow_low_terminal_noise`.
    pub allow_low_terminal_noise: bool,
}

impl TrainRequest {
    /// A new run of `config` into `out`, without overrides.
    pub fn new(config: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            config: Some(config.into()),
            out: out.into(),
            resume: false,
            device: None,
            devices: None,
            total_steps: None,
            stop_at: None,
            checkpoint_every: None,
            seed: None,
            allow_low_terminal_noise: false,
        }
    }
}

/// What `sagd train --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainRunSummary {
    /// The run directory.
    pub out: PathBuf,
    /// The step reached.
    pub step: u64,
    /// The run's length.
    pub total_steps: u64,
    /// Whether the run has reached its length.
    pub complete: bool,
    /// Steps this invocation ran.
    pub ran_steps: u64,
    /// The last step's loss.
    pub last_loss: Option<f64>,
    /// The last checkpoint.
    pub checkpoint: PathBuf,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The devices trained on.
    pub devices: Vec<String>,
    /// Data-parallel replicas.
    pub replicas: usize,
}

/// The outcome of [`train_run`].
#[derive(Debug, Clone)]
pub struct TrainRun {
    /// The config the run was trained with (overrides applied).
    pub config: RunConfig,
    /// The trainer's summary.
    pub summary: TrainSummary,
    /// What `--json` prints.
    pub json: TrainRunSummary,
}

/// The config `req` trains: its file (or the run's own on a resume), overrides applied and
/// checked.
///
/// # Errors
/// [`RunError::Request`] when there is no config to read or `device` and `devices` disagree;
/// the config's own errors.
pub fn resolve_config(req: &TrainRequest) -> Result<RunConfig, RunError> {
    let path = match (&req.config, req.resume) {
        (Some(p), _) => p.clone(),
        (None, true) if !req.out.join("config.toml").exists() => {
            return Err(RunError::request(format!(
                "--resume: {} holds no run (no config.toml); start one with --config RUN.toml",
                req.out.display()
            )));
        }
        (None, true) => req.out.join("config.toml"),
        (None, false) => {
            return Err(RunError::request(
                "--config RUN.toml is required (or --resume on a run directory)",
            ));
        }
    };
    if !path.exists() {
        return Err(RunError::request(format!(
            "{}: no such config file",
            path.display()
        )));
    }
    let mut config = RunConfig::from_file(&path)?;
    apply_devices(req, &mut config)?;
    if let Some(s) = req.total_steps {
        config.steps = s;
    }
    if let Some(c) = req.checkpoint_every {
        config.checkpoint_every = c;
    }
    if let Some(s) = req.seed {
        config.seed = s;
    }
    if req.allow_low_terminal_noise {
        config.allow_low_terminal_noise = true;
    }
    config.validate()?;
    Ok(config)
}

/// `--device` sets the kind; `--devices` the list and the kind it shares (a mixed list is
/// refused by the config's checks); one `cpu` or `cuda:0` alone is the plain run there.
fn apply_devices(req: &TrainRequest, config: &mut RunConfig) -> Result<(), RunError> {
    if let Some(d) = req.device {
        config.device = d;
    }
    let Some(list) = &req.devices else {
        return Ok(());
    };
    if let Some(first) = list.first() {
        let kind = first.without_index();
        if let Some(d) = req.device
            && d != kind
        {
            let written: Vec<String> = list.iter().map(ToString::to_string).collect();
            return Err(RunError::request(format!(
                "--device {d} and --devices {}: the devices are {} devices; give one of the \
                 two (--devices sets the device kind)",
                written.join(","),
                kind.kind()
            )));
        }
        config.device = kind;
    }
    let plain = list.len() == 1 && (list[0].is_cpu() || list[0].gpu_index() == Some(0));
    config.devices = if plain { Vec::new() } else { list.clone() };
    Ok(())
}

/// Trains the run `req` asks for into `req.out`, one trainer at a time (`.train.lock`);
/// `observer` sees the trainer's events (a warning first when `checkpoint_at` writes more
/// checkpoints than `keep_checkpoints` keeps).
///
/// # Errors
/// Those of [`resolve_config`] and [`sagd_models::train()`]; [`RunError::Request`] while
/// another trainer works in `out`.
pub fn train_run(
    req: &TrainRequest,
    observer: &mut dyn FnMut(&Event),
) -> Result<TrainRun, RunError> {
    train_resolved(req, resolve_config(req)?, observer)
}

/// [`train_run`] with the config [`resolve_config`] gave for `req` (for a caller that shows
/// it before training starts).
///
/// # Errors
/// Those of [`sagd_models::train()`]; [`RunError::Request`] while another trainer works in
/// `req.out`.
pub fn train_resolved(
    req: &TrainRequest,
    config: RunConfig,
    observer: &mut dyn FnMut(&Event),
) -> Result<TrainRun, RunError> {
    warn_pruned_checkpoints(&config, observer);
    let started = Instant::now();
    let options = TrainOptions {
        resume: req.resume,
        stop_at: req.stop_at,
    };
    let summary = with_run_lock(&req.out, || {
        Ok(sagd_models::train(&config, &req.out, &options, observer)?)
    })?;
    let json = TrainRunSummary {
        out: req.out.clone(),
        step: summary.step,
        total_steps: summary.total,
        complete: summary.complete(),
        ran_steps: summary.ran,
        last_loss: summary.last_loss,
        checkpoint: summary.checkpoint.clone(),
        seconds: started.elapsed().as_secs_f64(),
        devices: if config.devices.is_empty() {
            vec![config.device.to_string()]
        } else {
            config.devices.iter().map(ToString::to_string).collect()
        },
        replicas: config.devices.len().max(1),
    };
    Ok(TrainRun {
        config,
        summary,
        json,
    })
}

/// Learning curves need the early checkpoints: warn when `keep_checkpoints` prunes some of
/// those `checkpoint_at` asks for.
fn warn_pruned_checkpoints(config: &RunConfig, observer: &mut dyn FnMut(&Event)) {
    let written = (1..=config.steps)
        .filter(|&step| config.checkpoint_due(step, config.steps))
        .count();
    if !config.checkpoint_at.is_empty() && written > config.keep_checkpoints {
        observer(&Event::Warning(format!(
            "this run writes {written} checkpoints (checkpoint_at, every checkpoint_every and \
             the last) but keep_checkpoints = {} keeps only the newest; raise keep_checkpoints \
             to keep them all",
            config.keep_checkpoints
        )));
    }
}

/// Runs `work` holding the run directory's lock: two trainers in one run would interleave
/// their checkpoints and logs. A folder made here for the lock is removed again if the work
/// fails before writing to it.
fn with_run_lock<T>(out: &Path, work: impl FnOnce() -> Result<T, RunError>) -> Result<T, RunError> {
    let made = !out.exists();
    if made {
        std::fs::create_dir_all(out).map_err(|source| RunError::Io {
            action: "create",
            path: out.to_path_buf(),
            source,
        })?;
    }
    // (A file named as `out` is refused by the trainer, naming it.)
    let lock = if out.is_dir() {
        Some(Lock::take(out, "train")?)
    } else {
        None
    };
    let result = work();
    drop(lock);
    if made && result.is_err() {
        let _ = std::fs::remove_dir(out);
    }
    result
}
