//! Typed errors of sagd-models.

use std::path::PathBuf;

use sagd_core::CoreError;
use sagd_datasets::DatasetError;
use thiserror::Error;

/// What can go wrong building, training, saving or loading a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A configuration value is invalid.
    #[error("invalid configuration: `{field}` = {value}: expected {expected}")]
    Config {
        /// The key, as written in the config file (e.g. `model.widths`).
        field: String,
        /// The offending value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// An option of one invocation (not a config key) that cannot be honoured, such as a stop
    /// before the run's checkpoint or an output directory that already holds a run.
    #[error("{option} {value}: {message}")]
    Invocation {
        /// The option, as the CLI spells it (`--stop-at`).
        option: String,
        /// The value given.
        value: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A configuration file could not be parsed (unknown key, wrong type, bad TOML).
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A checkpoint file is missing, truncated, corrupted or does not fit the model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An I/O failure on `path`.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error, as text.
        cause: String,
    },
    /// Tensors of the wrong shape were passed to a model.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// Where.
        context: String,
        /// The expected shape.
        expected: String,
        /// The shape given.
        got: String,
    },
    /// The loss, the gradient or a weight became NaN or infinite.
    #[error(transparent)]
    NonFinite(Box<NonFiniteStop>),
    /// The pre-flight terminal-SNR check refused the spectrum.
    #[error("{0}")]
    TerminalSnr(String),
    /// A device that breaks the rules of device lists, or that this build or machine cannot
    /// run.
    #[error(transparent)]
    Device(#[from] sagd_core::DeviceError),
    /// Writing an output file failed.
    #[error(transparent)]
    Write(#[from] sagd_core::files::WriteError),
    /// An error from sagd-core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error from sagd-datasets.
    #[error(transparent)]
    Data(#[from] DatasetError),
}

/// What a stop for a non-finite value records: where training stopped and why, the first bad
/// step, and the last checkpoint that is still good.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFiniteStop {
    /// The step training stopped at (1-based: the step whose loss or gradient was not finite,
    /// or after whose update a stored value was not).
    pub step: u64,
    /// What was not finite: `loss`, `gradient norm` or `weights`.
    pub what: &'static str,
    /// That value (for `weights`, the first non-finite one).
    pub value: f64,
    /// The weights the failure is blamed on: those the loss and gradient of `step` were
    /// computed with (after step `step - 1`), or for `weights` those after step `step`.
    pub weights: WeightsCheck,
    /// The newest checkpoint that is good: finite weights, saved before the weights went bad
    /// (so before [`bad_weights_step`](Self::bad_weights_step)); `None` when there is none.
    pub last_good: Option<(u64, PathBuf)>,
    /// The run's learning rate (`optimizer.lr`), suggested lower when no checkpoint is good.
    pub lr: f64,
}

/// Whether the weights behind a [`NonFiniteStop`] are finite, and the tensor that shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsCheck {
    /// The first tensor (checkpoint key) holding a non-finite value, and that value.
    NonFinite {
        /// The tensor's key, e.g. `ema.conv_out.weight`.
        tensor: String,
        /// Its first non-finite value.
        value: f32,
    },
    /// Every value is finite; the tensor with the largest magnitude, and that magnitude.
    Finite {
        /// The tensor's key.
        tensor: String,
        /// The largest `|w|`.
        largest: f32,
    },
}

impl WeightsCheck {
    /// Checks `tensors` (key and values) in order: the first non-finite value, or else the
    /// largest magnitude.
    pub fn of<'a>(tensors: impl IntoIterator<Item = (String, &'a [f32])>) -> Self {
        let mut largest = (String::new(), 0.0f32);
        for (tensor, values) in tensors {
            if let Some(&value) = values.iter().find(|v| !v.is_finite()) {
                return Self::NonFinite { tensor, value };
            }
            let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max > largest.1 || largest.0.is_empty() {
                largest = (tensor, max);
            }
        }
        Self::Finite {
            tensor: largest.0,
            largest: largest.1,
        }
    }

    /// True when every value is finite.
    pub fn is_finite(&self) -> bool {
        matches!(self, Self::Finite { .. })
    }
}

impl NonFiniteStop {
    /// The step after which the weights were bad: those of `step - 1` gave the non-finite loss
    /// or gradient of `step`; for `weights`, those of `step`. A good checkpoint is older.
    pub fn bad_weights_step(&self) -> u64 {
        if self.what == "weights" {
            self.step
        } else {
            self.step.saturating_sub(1)
        }
    }

    /// The first bad step: the step at which a weight first became non-finite, or else the one
    /// whose loss or gradient first was.
    pub fn first_bad_step(&self) -> u64 {
        if self.weights.is_finite() {
            self.step
        } else {
            self.bad_weights_step()
        }
    }

    /// "the weights of step N" or "the initial weights".
    fn weights_of(&self) -> String {
        match self.bad_weights_step() {
            0 => "the initial weights".to_string(),
            k => format!("the weights of step {k}"),
        }
    }

    /// Why training stopped: the value, the weights behind it, the first bad step.
    fn cause(&self) -> String {
        let (what, value, weights) = (self.what, self.value, self.weights_of());
        let first = self.first_bad_step();
        match (&self.weights, what) {
            (WeightsCheck::NonFinite { tensor, value }, "weights") => format!(
                "its update left `{tensor}` holding {value} (the first tensor with a non-finite \
                 value), so step {first} is the first bad step"
            ),
            (WeightsCheck::NonFinite { tensor, value: v }, _) => format!(
                "the {what} is {value}, computed with {weights}, in which `{tensor}` holds {v} \
                 (the first tensor with a non-finite value): step {first} is the first bad step"
            ),
            (WeightsCheck::Finite { tensor, largest }, _) => format!(
                "the {what} is {value}, computed with {weights}, which are finite but reach \
                 |w| = {largest:.3e} (in `{tensor}`): step {first} is the first bad step"
            ),
        }
    }

    /// Why the weights of [`bad_weights_step`](Self::bad_weights_step) are not good.
    fn reason(&self) -> String {
        if self.what == "weights" || !self.weights.is_finite() {
            format!("{} hold a non-finite value", self.weights_of())
        } else {
            format!(
                "{} already give a {} of {}",
                self.weights_of(),
                self.what,
                self.value
            )
        }
    }

    /// The last good checkpoint, or that there is none and what to change.
    fn good(&self) -> String {
        let (k, reason, lr) = (self.bad_weights_step(), self.reason(), self.lr);
        match &self.last_good {
            Some((step, path)) => format!(
                "the last good checkpoint is {} (step {step}; {reason})",
                path.display()
            ),
            // No update has been applied: the learning rate cannot be the cause.
            None if k == 0 => format!(
                "there is no good checkpoint ({reason}); no update had been applied, so the \
                 learning rate is not the cause: look at the data (their scale: see the \
                 data-scale warning, if any) and the noise and model settings"
            ),
            None => format!(
                "there is no good checkpoint (none was saved before step {k}, and {reason}); \
                 try a lower learning rate than optimizer.lr = {lr:e}"
            ),
        }
    }
}

impl std::fmt::Display for NonFiniteStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training stopped at step {}: {}; {}",
            self.step,
            self.cause(),
            self.good()
        )
    }
}

impl std::error::Error for NonFiniteStop {}

impl ModelError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, cause: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            cause: cause.to_string(),
        }
    }

    /// An invalid configuration value.
    pub fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self::Config {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// An option of this invocation that cannot be honoured.
    pub fn invocation(
        option: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Self::Invocation {
            option: option.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }

    /// A checkpoint problem.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.into(),
            message: message.into(),
        }
    }

    /// True for errors caused by what the user wrote (config values, files named), which the
    /// CLI reports with exit code 2. A device this build or machine cannot run is not one
    /// (exit 1: the fix is in the build or the machine).
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Config { .. }
            | Self::Invocation { .. }
            | Self::ConfigFile { .. }
            | Self::TerminalSnr(_) => true,
            Self::Device(e) => e.is_usage(),
            Self::Data(e) => e.is_usage(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(step: u64, what: &'static str, value: f64, weights: WeightsCheck) -> NonFiniteStop {
        NonFiniteStop {
            step,
            what,
            value,
            weights,
            last_good: None,
            lr: 2e-4,
        }
    }

    fn nan_in(tensor: &str) -> WeightsCheck {
        WeightsCheck::NonFinite {
            tensor: tensor.into(),
            value: f32::NAN,
        }
    }

    /// The weights are checked in order: the first tensor with a non-finite value, or else the
    /// largest magnitude.
    #[test]
    fn the_first_non_finite_tensor_is_named() {
        let (a, b, c) = ([1.0, -3.0], [f32::INFINITY, f32::NAN], [f32::NAN]);
        let check = WeightsCheck::of([("a".into(), &a[..]), ("b".into(), &b), ("c".into(), &c)]);
        assert_eq!(
            check,
            WeightsCheck::NonFinite {
                tensor: "b".into(),
                value: f32::INFINITY
            }
        );
        let check = WeightsCheck::of([("a".into(), &a[..]), ("d".into(), &[2.0][..])]);
        assert_eq!(
            check,
            WeightsCheck::Finite {
                tensor: "a".into(),
                largest: 3.0
            }
        );
    }

    /// A NaN loss computed with weights that already hold a NaN: the first bad step is the one
    /// that made them, the tensor is named, and only an older checkpoint is good.
    #[test]
    fn a_nan_loss_from_nan_weights_names_the_tensor_and_the_earlier_step() {
        let mut s = stop(10, "loss", f64::NAN, nan_in("ema.conv_out.weight"));
        assert_eq!((s.first_bad_step(), s.bad_weights_step()), (9, 9));
        s.last_good = Some((
            8,
            PathBuf::from("run/checkpoints/step-00000008.safetensors"),
        ));
        assert_eq!(
            s.to_string(),
            "training stopped at step 10: the loss is NaN, computed with the weights of step 9, \
             in which `ema.conv_out.weight` holds NaN (the first tensor with a non-finite value): \
             step 9 is the first bad step; the last good checkpoint is \
             run/checkpoints/step-00000008.safetensors (step 8; the weights of step 9 hold a \
             non-finite value)"
        );
    }

    /// Non-finite weights found when a checkpoint is saved: that step is the first bad one.
    #[test]
    fn non_finite_weights_at_a_checkpoint_name_the_tensor() {
        let s = stop(5, "weights", f64::NAN, nan_in("optim.exp_avg_sq.fc.bias"));
        assert_eq!((s.first_bad_step(), s.bad_weights_step()), (5, 5));
        assert_eq!(
            s.to_string(),
            "training stopped at step 5: its update left `optim.exp_avg_sq.fc.bias` holding NaN \
             (the first tensor with a non-finite value), so step 5 is the first bad step; there \
             is no good checkpoint (none was saved before step 5, and the weights of step 5 hold \
             a non-finite value); try a lower learning rate than optimizer.lr = 2e-4"
        );
    }

    /// The first step's loss is already NaN: the initial weights are to blame, there is no
    /// good checkpoint.
    #[test]
    fn a_nan_first_step_blames_the_initial_weights() {
        let finite = WeightsCheck::Finite {
            tensor: "w".into(),
            largest: 0.5,
        };
        let s = stop(1, "gradient norm", f64::NAN, finite);
        assert_eq!((s.first_bad_step(), s.bad_weights_step()), (1, 0));
        let m = s.to_string();
        assert!(
            m.contains("computed with the initial weights")
                && m.contains("step 1 is the first bad step")
                && m.contains(
                    "there is no good checkpoint (the initial weights already give a gradient \
                     norm of NaN)"
                )
                && m.contains("the learning rate is not the cause")
                && !m.contains("lower learning rate"),
            "{m}"
        );
    }
}
