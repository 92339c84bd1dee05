//! The demo's plan: the data, the corruption, the two models, the lengths and the run configs
//! of `sagd demo` (and of `--quick`).

use std::path::PathBuf;

use serde_json::Value;

/// The settings of a demo invocation that its report and summary record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSettings {
    /// The output folder.
    pub out: PathBuf,
    /// The seed of both runs, the samplers and the evaluation.
    pub seed: u64,
    /// The device name.
    pub device: String,
    /// The short version (`--quick`).
    pub quick: bool,
}

/// A model of the demo: its name in paths, its label in the report, its run's spectrum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// `isotropic` or `sagd`: the runs', samples' and evaluations' folder names.
    pub key: &'static str,
    /// Its label in the report.
    pub label: &'static str,
    /// Its spectrum string.
    pub spectrum: String,
}

/// One stage: a `sagd` subcommand, its wall time and what it printed as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// What it does, as the report names it.
    pub label: String,
    /// The command that reproduces the stage from scratch.
    pub command: String,
    /// Wall time in this invocation; `None` for a stage an earlier, interrupted invocation
    /// completed.
    pub seconds: Option<f64>,
    /// Its `--json` output (`Null` for stages without one).
    pub output: Value,
}

/// The demo's setting: data, corruption, models, training and sampling lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Training data (without the corruption).
    pub data: &'static str,
    /// Held-out data the samples are compared with.
    pub reference: &'static str,
    /// The corrupted band `[a, b]`, unit radius convention.
    pub band: (f64, f64),
    /// Amplitude γ of the band noise.
    pub gamma: f64,
    /// Training steps of each model.
    pub steps: u64,
    /// Steps of the linear warm-up.
    pub warmup: u64,
    /// Checkpoint interval.
    pub checkpoint_every: u64,
    /// Log interval.
    pub log_every: u64,
    /// Images per training batch.
    pub batch: usize,
    /// Samples per trained model (and reference images per comparison).
    pub samples: usize,
    /// Samples of the untrained model.
    pub untrained_samples: usize,
    /// DDIM steps.
    pub sampler_steps: usize,
    /// Samples (and clean test images) per FID/KID: the Inception network's 299×299 input
    /// makes it the slowest stage on a CPU (about 6 images/s).
    pub fid_count: usize,
}

impl Plan {
    /// The demo's plan; `quick`: the short version that checks every stage (40 steps per
    /// model, 32 samples, DDIM-20).
    pub fn new(quick: bool) -> Self {
        Self {
            data: "shapes:n=4096,size=1x16x16,seed=0",
            reference: "shapes:n=4096,size=1x16x16,seed=0,split=test",
            band: (0.3, 0.4),
            gamma: 1.0,
            steps: if quick { 40 } else { 600 },
            warmup: if quick { 10 } else { 50 },
            checkpoint_every: if quick { 20 } else { 100 },
            log_every: if quick { 5 } else { 10 },
            batch: 64,
            samples: if quick { 32 } else { 256 },
            untrained_samples: if quick { 16 } else { 64 },
            sampler_steps: if quick { 20 } else { 50 },
            fid_count: if quick { 32 } else { 100 },
        }
    }

    /// The corruption transform without its γ: `corrupt:a=…,b=…`.
    pub fn corrupt(&self) -> String {
        format!("corrupt:a={},b={}", self.band.0, self.band.1)
    }

    /// The two-band spectrum whose gap is exactly the corrupted band.
    pub fn sagd_spectrum(&self) -> String {
        format!(
            "two-band:a_l=0,b_l={},a_h={},b_h=1",
            self.band.0, self.band.1
        )
    }

    /// The index of the evaluation's unit-radius band `[i/10, (i+1)/10)` that is the corrupted
    /// band (the plan's band is one of them).
    pub fn eval_band(&self) -> usize {
        (self.band.0 * sagd_eval::spectral::BANDS as f64).round() as usize
    }

    /// The run config (TOML) of a model with `spectrum`, `what` naming it in the header.
    pub fn config(&self, seed: u64, spectrum: &str, what: &str) -> String {
        format!(
            "# sagd demo: {what}. Written by `sagd demo`; train it with\n\
             #   sagd train --config THIS_FILE --out RUN_DIR\n\
             seed = {seed}\n\
             steps = {steps}\n\
             batch = {batch}\n\
             checkpoint_every = {ckpt}\n\
             log_every = {log}\n\
             # keeps every checkpoint, the step-1 one (the untrained baseline) included\n\
             keep_checkpoints = {keep}\n\
             device = \"cpu\"\n\
             # v = √ᾱ ε^(w) − σ x0 (learns in few steps); samplers convert it to ε̂^(w)\n\
             parameterization = \"v\"\n\
             \n\
             [data]\n\
             spec = \"{data}\"\n\
             # band-limited white noise added on the fly, then `scale` to [-1, 1] (appended)\n\
             transforms = [\"{corrupt},gamma={gamma}\"]\n\
             \n\
             [noise]\n\
             spectrum = \"{spectrum}\"\n\
             normalization = \"energy\"\n\
             \n\
             [schedule]\n\
             kind = \"ddpm-linear\"\n\
             \n\
             [model]\n\
             kind = \"unet\"\n\
             widths = [16, 32, 32]\n\
             blocks = 1\n\
             attention = []\n\
             groups = 8\n\
             \n\
             [optimizer]\n\
             kind = \"adamw\"\n\
             lr = 2e-3\n\
             warmup = {warmup}\n\
             decay = \"cosine\"\n\
             min_lr = 0.0\n\
             grad_clip = 1.0\n\
             \n\
             [ema]\n\
             decay = 0.99\n",
            steps = self.steps,
            batch = self.batch,
            ckpt = self.checkpoint_every,
            log = self.log_every,
            keep = self.steps / self.checkpoint_every + 2,
            data = self.data,
            corrupt = self.corrupt(),
            gamma = self.gamma,
            warmup = self.warmup,
        )
    }
}
