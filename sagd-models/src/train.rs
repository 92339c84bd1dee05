//! The SAGD training loop.
//!
//! Each step draws a batch of images, a level `t` per image (uniform over the schedule) and
//! the coloured noise `ε^(w) ~ N(0, Σ_w)` of the configured spectrum and normalization
//! ([`batches`](crate::batches)), regresses the network's output on the parameterization's
//! target ([`loss`](crate::loss): default the coloured noise itself, no reweighting), and takes
//! an AdamW (or plain gradient descent) step with warm-up and cosine decay, clipping of the
//! global gradient norm, and an EMA of the weights.
//!
//! [`train`] is three parts: opening the run (the checks of this invocation against the run
//! directory, then the devices, the data and the state), one step, and the log rows and
//! checkpoints that follow a step. With `devices`, each step's batch is shared among
//! data-parallel replicas ([`crate::parallel`]); the draws stay the same.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use sagd_core::NoiseLevel;
use sagd_core::device::DeviceSpec;
use sagd_core::files::write_atomic;

use crate::batches::BatchSource;
use crate::checkpoint::{self, Checkpoint, Group, Header, LogWindow, TensorEntry};
use crate::config::RunConfig;
use crate::error::{ModelError, NonFiniteStop, WeightsCheck};
use crate::loss::Batch;
use crate::nets::Net;
use crate::optim::{
    Ema, OptimizerConfig, OptimizerState, apply_update, clip_factor, loss_and_grad_norm,
};
use crate::parallel::DataParallel;
use crate::params::{self, ParamInfo};
use crate::range::OutputRange;
use crate::run_dir::{
    ResumePoint, clear_temporary_checkpoints, prepare_log, refuse_existing_run, resume_point,
};

pub use crate::run_dir::checkpoints_dir;

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
        let (loss, grads) = crate::loss::batch_gradients(&self.net, batch);
        self.apply(loss, grads, lr)
    }

    /// The second half of [`step`](Self::step): given a batch's `loss` (shape `[1]`) and the
    /// gradient of each parameter (visiting order, both on this state's device), clips them by
    /// their global norm, takes the optimizer step and updates the EMA. A NaN or infinite loss
    /// or gradient leaves the state untouched and returns the offending value in `Err`. The
    /// loss and the norm are the step's one read from the device.
    pub fn apply(
        &mut self,
        loss: Tensor<1>,
        grads: Vec<Option<Tensor<1>>>,
        lr: f64,
    ) -> Result<StepOutput, (&'static str, f64)> {
        let (loss, grad_norm) = loss_and_grad_norm(loss, &grads);
        if !loss.is_finite() {
            return Err(("loss", loss));
        }
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
                output_range: None,
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

/// Where this invocation starts and stops, after its checks against the run directory.
struct Invocation {
    /// The checkpoint a resume continues from.
    resume: Option<ResumePoint>,
    /// The first step to run (0, or the resume checkpoint's step).
    start: u64,
    /// The step this invocation stops after.
    end: u64,
}

/// Checks this invocation against the run in `out` (an existing run needs `resume`; a resume
/// keeps the run's config; `stop_at` lies after the start and at most at `steps`), writing
/// nothing.
fn invocation(
    config: &RunConfig,
    out: &Path,
    options: &TrainOptions,
) -> Result<Invocation, ModelError> {
    let existing = checkpoint::list(&checkpoints_dir(out))?;
    let resume = if options.resume {
        resume_point(config, out, &existing)?
    } else {
        refuse_existing_run(out, &existing)?;
        None
    };
    let start = resume.as_ref().map_or(0, |r| r.checkpoint.header.step);
    if resume.is_none() {
        config.validate_schedule()?;
    }
    if let Some(stop) = options.stop_at {
        check_stop(stop, start, config.steps, resume.as_ref())?;
    }
    Ok(Invocation {
        end: options.stop_at.unwrap_or(config.steps),
        resume,
        start,
    })
}

/// Refuses a `--stop-at` past the run's end, or at or before the step it starts from.
fn check_stop(
    stop: u64,
    start: u64,
    total: u64,
    resume: Option<&ResumePoint>,
) -> Result<(), ModelError> {
    let refuse = |message: String| Err(ModelError::invocation("--stop-at", stop, message));
    if stop > total {
        return refuse(format!(
            "is past the run's last step (steps = {total}): expected a step at most {total}; \
             the run's length is the config's `steps`"
        ));
    }
    if stop <= start && start >= total {
        return refuse(format!(
            "the run is already complete at step {start} of {total}: there is nothing to stop; \
             start a new run to train longer"
        ));
    }
    if stop <= start {
        let at = match resume {
            Some(r) => format!("its checkpoint {} is at step {start}", r.path.display()),
            None => "a new run starts at step 0".to_string(),
        };
        return refuse(format!(
            "expected a step after the one the run starts from ({at}), at most {total}"
        ));
    }
    Ok(())
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
    let invocation = invocation(config, out, options)?;
    if let Some(r) = &invocation.resume
        && invocation.start >= config.steps
    {
        // Complete already: nothing to run, nothing to write.
        return Ok(TrainSummary {
            step: invocation.start,
            total: config.steps,
            ran: 0,
            last_loss: r.checkpoint.header.last_loss,
            checkpoint: r.path.clone(),
        });
    }
    let (start, end) = (invocation.start, invocation.end);
    let mut run = Run::open(config, out, invocation, options.resume, observer)?;
    for step in start..end {
        run.step(step, end, observer)?;
    }
    run.finish(start, end)
}

/// A run being trained: its devices, batches, state, log and checkpoints.
struct Run<'a> {
    config: &'a RunConfig,
    parallel: DataParallel,
    source: BatchSource,
    state: TrainState,
    shape: [usize; 3],
    output_range: OutputRange,
    config_text: String,
    checkpoints: PathBuf,
    log: File,
    log_path: PathBuf,
    /// Losses since the last `log_every` boundary.
    window: LogWindow,
    last_loss: Option<f64>,
    last_checkpoint: Option<PathBuf>,
    /// When the current log row's window started, and the images trained since.
    timing: (Instant, usize),
}

impl<'a> Run<'a> {
    /// Opens the devices, the data and the state (restored from the resume checkpoint), runs
    /// the pre-flight checks, then writes `config.toml` and prepares `log.csv`: every check
    /// happens before the first write.
    fn open(
        config: &'a RunConfig,
        out: &Path,
        invocation: Invocation,
        resuming: bool,
        observer: &mut dyn FnMut(&Event),
    ) -> Result<Self, ModelError> {
        let parallel = DataParallel::open(config.device, &config.devices, config.batch)?;
        warn_about_replicas(config, observer);
        let source = batch_source(config, parallel.first())?;
        let shape = source.shape();
        let levels = config.schedule.levels()?;
        // The network's checks against the data's shape come first: a config mistake.
        config.model.validate(shape, levels.len())?;
        preflight(config, &source, &levels, observer)?;
        let net = Net::build(
            &config.model,
            shape,
            levels.len(),
            config.seed,
            &parallel.first().clone().autodiff(),
        )?;
        let mut state = TrainState::new(net, config.optimizer.clone(), config.ema.decay);
        let (mut window, mut last_loss) = (LogWindow::default(), None);
        match &invocation.resume {
            Some(r) => {
                restore(&mut state, r, shape)?;
                window = r.checkpoint.header.log_window;
                last_loss = r.checkpoint.header.last_loss;
            }
            None if resuming => observer(&Event::Warning(format!(
                "--resume: {} holds no checkpoint yet; starting from step 0",
                checkpoints_dir(out).display()
            ))),
            None => {}
        }
        // Every check has passed: from here on the run directory is written.
        let checkpoints = checkpoints_dir(out);
        fs::create_dir_all(&checkpoints).map_err(|e| ModelError::io(&checkpoints, e))?;
        clear_temporary_checkpoints(&checkpoints);
        let config_text = config.to_toml();
        write_atomic(&out.join("config.toml"), config_text.as_bytes())?;
        let log_path = out.join("log.csv");
        prepare_log(&log_path, invocation.start, window.steps > 0)?;
        let log = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| ModelError::io(&log_path, e))?;
        observer(&Event::Started {
            start: invocation.start,
            end: invocation.end,
            total: config.steps,
            params: params::param_infos(&state.net)
                .iter()
                .map(ParamInfo::len)
                .sum(),
            shape,
            replicas: parallel.replicas(),
        });
        Ok(Self {
            config,
            output_range: source.output_range(),
            parallel,
            source,
            state,
            shape,
            config_text,
            checkpoints,
            log,
            log_path,
            window,
            last_loss,
            last_checkpoint: invocation.resume.map(|r| r.path),
            timing: (Instant::now(), 0),
        })
    }

    /// Step `step` (0-based) of an invocation that ends after step `end`: the update, then the
    /// log row and checkpoint due after it.
    fn step(
        &mut self,
        step: u64,
        end: u64,
        observer: &mut dyn FnMut(&Event),
    ) -> Result<(), ModelError> {
        let device = self.parallel.first().clone();
        let batch = self.source.batch(step, self.config.batch, &device)?;
        let lr = self.config.optimizer.lr_at(step, self.config.steps);
        let output = match self.parallel.step(&mut self.state, &batch, lr) {
            Ok(output) => output,
            Err((what, value)) => {
                let weights = self.weights_check();
                return Err(self.stopped(step + 1, what, value, weights));
            }
        };
        let done = step + 1;
        self.last_loss = Some(output.loss);
        self.window.push(output.loss);
        self.timing.1 += self.config.batch;
        observer(&Event::Step {
            step: done,
            loss: output.loss,
            lr,
            grad_norm: output.grad_norm,
        });
        self.log_row(done, end, lr, output.grad_norm)?;
        if self.config.checkpoint_due(done, end) {
            let path = self.save(done)?;
            observer(&Event::Checkpoint {
                step: done,
                path: path.clone(),
            });
            self.last_checkpoint = Some(path);
        }
        Ok(())
    }

    /// Appends the `log.csv` row due after step `done`: rows fall on `log_every` boundaries
    /// and the run's last step; an early stop between them writes a row too, which a resume
    /// replaces (its window is kept open).
    fn log_row(&mut self, done: u64, end: u64, lr: f64, grad_norm: f64) -> Result<(), ModelError> {
        let boundary = done.is_multiple_of(self.config.log_every) || done == self.config.steps;
        if !(boundary || done == end) {
            return Ok(());
        }
        let rate = self.timing.1 as f64 / self.timing.0.elapsed().as_secs_f64().max(1e-9);
        writeln!(
            self.log,
            "{done},{:.6e},{lr:.6e},{grad_norm:.6e},{rate:.2}",
            self.window.mean()
        )
        .and_then(|()| self.log.flush())
        .map_err(|e| ModelError::io(&self.log_path, e))?;
        self.timing = (Instant::now(), 0);
        if boundary {
            self.window = LogWindow::default();
        }
        Ok(())
    }

    /// Writes the checkpoint of step `step` and prunes all but the newest `keep_checkpoints`.
    fn save(&self, step: u64) -> Result<PathBuf, ModelError> {
        let path = self.checkpoints.join(checkpoint::file_name(step));
        let mut ckpt =
            self.state
                .to_checkpoint(step, self.config.seed, self.shape, self.config_text.clone());
        ckpt.header.last_loss = self.last_loss;
        ckpt.header.log_window = self.window;
        ckpt.header.output_range = Some(self.output_range);
        // A checkpoint is only ever "the last good one" if every stored value is finite.
        let keys = ckpt
            .header
            .tensors
            .iter()
            .map(|e| e.group.key(&e.info.name));
        let weights = WeightsCheck::of(keys.zip(ckpt.values.iter().map(Vec::as_slice)));
        if let WeightsCheck::NonFinite { value, .. } = weights {
            return Err(self.stopped(step, "weights", value as f64, weights));
        }
        ckpt.write(&path)?;
        let all = checkpoint::list(&self.checkpoints)?;
        for (_, old) in all.iter().rev().skip(self.config.keep_checkpoints) {
            let _ = fs::remove_file(old);
        }
        Ok(path)
    }

    /// The network's weights, checked for a non-finite value.
    fn weights_check(&self) -> WeightsCheck {
        let infos = params::param_infos(&self.state.net);
        let values = params::to_host(&params::flat_params(&self.state.net));
        WeightsCheck::of(
            infos
                .iter()
                .map(|i| i.name.clone())
                .zip(values.iter().map(Vec::as_slice)),
        )
    }

    /// The error for a non-finite `what` (`value`) at step `step`, the run's `weights`
    /// checked, with the newest checkpoint that is still good.
    fn stopped(
        &self,
        step: u64,
        what: &'static str,
        value: f64,
        weights: WeightsCheck,
    ) -> ModelError {
        let mut stop = NonFiniteStop {
            step,
            what,
            value,
            weights,
            last_good: None,
            lr: self.config.optimizer.lr,
        };
        stop.last_good = last_good_checkpoint(&self.checkpoints, stop.bad_weights_step());
        ModelError::NonFinite(Box::new(stop))
    }

    /// The summary of an invocation from `start` to `end`; a run that took no step still
    /// leaves a checkpoint.
    fn finish(self, start: u64, end: u64) -> Result<TrainSummary, ModelError> {
        let checkpoint = match &self.last_checkpoint {
            Some(p) => p.clone(),
            None => self.save(start)?,
        };
        Ok(TrainSummary {
            step: end,
            total: self.config.steps,
            ran: end - start,
            last_loss: self.last_loss,
            checkpoint,
        })
    }
}

/// The newest checkpoint in `dir` saved before step `bad` whose weights (and EMA) are all
/// finite.
fn last_good_checkpoint(dir: &Path, bad: u64) -> Option<(u64, PathBuf)> {
    let all = checkpoint::list(dir).ok()?;
    all.into_iter()
        .rev()
        .filter(|(step, _)| *step < bad)
        .find(|(_, path)| {
            Checkpoint::read(path).is_ok_and(|c| {
                [Group::Model, Group::Ema]
                    .iter()
                    .all(|&g| c.group(g).iter().all(|v| v.iter().all(|x| x.is_finite())))
            })
        })
}

/// Warns when CPU replicas outnumber the cores (each is a thread on the one CPU device).
fn warn_about_replicas(config: &RunConfig, observer: &mut dyn FnMut(&Event)) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let on_cpu = matches!(config.device, DeviceSpec::Cpu | DeviceSpec::CubeCpu);
    if config.devices.len() > cores && on_cpu {
        observer(&Event::Warning(format!(
            "{} CPU replicas on {cores} cores: replicas beyond the cores only add overhead \
             (each is a thread on the one CPU device)",
            config.devices.len()
        )));
    }
}

/// The run's batches: its data through its transforms, noised with its spectrum at its
/// schedule's levels, drawn on `device` when `[noise] draw` says so.
fn batch_source(config: &RunConfig, device: &Device) -> Result<BatchSource, ModelError> {
    let (dataset, pipeline) = config.data.load()?;
    let shape = pipeline.output_shape(dataset.shape())?;
    let source = BatchSource::new(
        dataset,
        pipeline,
        config.seed,
        config.schedule.levels()?,
        Arc::new(config.noise_covariance(shape)?),
        config.parameterization,
    )?;
    if config.noise.draw.on_device(config.device) {
        return source.on_device(device, config.noise.resident_mib.saturating_mul(1 << 20));
    }
    Ok(source)
}

/// The pre-flight checks on up to 2048 training images (after the transforms): a warning when
/// their scale is far from the one the noise schedule expects ([`data_scale_warning`]), then
/// the terminal-SNR check ([`check_terminal_snr`]).
fn preflight(
    config: &RunConfig,
    source: &BatchSource,
    levels: &[NoiseLevel],
    observer: &mut dyn FnMut(&Event),
) -> Result<(), ModelError> {
    let Some(&terminal) = levels.last() else {
        return Ok(());
    };
    let preview = source.preview(2048)?;
    let noise_rms = mean(&source.covariance().power()).sqrt();
    if let Some(warning) = data_scale_warning(&preview.to_f32(), noise_rms, levels) {
        observer(&Event::Warning(warning));
    }
    check_terminal_snr(config, source, &preview, terminal, observer)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// A warning when the training data are far outside the scale the noise schedule expects.
///
/// The rule: at level `t` the data's per-pixel RMS `r` (mean included) faces the noise's
/// `σ_t·n` (`n` the RMS of the spectrum's noise per pixel, 1 with `energy` normalization),
/// shrunk by `√ᾱ_t`: a signal-to-noise ratio `ᾱ_t r² / (σ_t n)²`. The schedule spans the
/// ratios a model learns from only when that ratio crosses 1 between its least and most noisy
/// levels, i.e. when `r` lies between `n·min σ_t/√ᾱ_t` and `n·max σ_t/√ᾱ_t` (0.01 and about
/// 157 for `ddpm-linear` with `energy`). Above, the data outweigh the noise at every level;
/// below, the noise hides them at every level.
pub fn data_scale_warning(data: &[f32], noise_rms: f64, levels: &[NoiseLevel]) -> Option<String> {
    let rms =
        (data.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / data.len().max(1) as f64).sqrt();
    let largest = data.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()));
    let ratios = levels.iter().map(|l| l.sigma / l.alpha_bar.sqrt());
    let (low, high) = ratios.fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
        (lo.min(r), hi.max(r))
    });
    let (low, high) = (low * noise_rms, high * noise_rms);
    // Which side is off: noise far from unit power per pixel points at the spectrum.
    let fix = if !(0.1..=10.0).contains(&noise_rms) {
        format!(
            "the noise's RMS per pixel is {noise_rms:.3e}, far from 1: normalize the spectrum \
             (noise.normalization = \"energy\") or choose a milder one"
        )
    } else {
        "the noise schedule expects data of about unit scale: rescale them (the `scale` \
         transform maps [0, 1] data to [-1, 1])"
            .to_string()
    };
    let consequence = if rms > high {
        "the data outweigh the noise at every level, so the model learns the noise only"
    } else if rms < low {
        "the noise hides the data at every level, so the model learns nothing of them"
    } else {
        return None;
    };
    Some(format!(
        "the training data have RMS {rms:.3e} per pixel (largest |x| = {largest:.3e}, after the \
         transforms), outside [{low:.3e}, {high:.3e}], the noise scales the schedule spans \
         (σ_t/√ᾱ_t times the noise's RMS per pixel): {consequence}; {fix}"
    ))
}

/// The terminal-SNR check on the `preview` images: the forward process must drown the data in
/// every mode at `t = T` (the `terminal` level). Refuses (unless `allow_low_terminal_noise`)
/// when the signal dominates some mode; warns when some mode keeps a noticeable SNR.
fn check_terminal_snr(
    config: &RunConfig,
    source: &BatchSource,
    preview: &sagd_datasets::Dataset,
    terminal: NoiseLevel,
    observer: &mut dyn FnMut(&Event),
) -> Result<(), ModelError> {
    let signal = sagd_datasets::stats::second_moment_spectrum(preview)?;
    let report = sagd_core::terminal::terminal_snr(source.covariance(), &signal, terminal)?;
    if report.signal_dominates() && !config.allow_low_terminal_noise {
        return Err(ModelError::TerminalSnr(format!(
            "terminal-SNR check failed: {}. Sampling from N(0, Σ_w) cannot recover those modes. \
             Use a spectrum with more power there, or set allow_low_terminal_noise = true \
             (--allow-low-terminal-noise) to train anyway.",
            report.summary()
        )));
    }
    if report.affected > 0 {
        observer(&Event::Warning(format!(
            "terminal SNR: {}",
            report.summary()
        )));
    }
    Ok(())
}

/// Restores `state` from the resume checkpoint, which must be of the data's image shape.
fn restore(
    state: &mut TrainState,
    resume: &ResumePoint,
    shape: [usize; 3],
) -> Result<(), ModelError> {
    let header = &resume.checkpoint.header;
    if header.shape != shape {
        return Err(ModelError::checkpoint(
            &resume.path,
            format!(
                "was trained on {:?} images, the data gives {shape:?}",
                header.shape
            ),
        ));
    }
    state.load_checkpoint(&resume.checkpoint, &resume.path)
}
