//! The optimizers (AdamW, plain gradient descent), the learning-rate schedule, gradient
//! clipping by global norm and the EMA of the weights.
//!
//! The state lives in flat tensors, one per parameter in [`crate::params`] order, so that a
//! checkpoint can store it as plain arrays and a resumed run continues bit for bit. AdamW
//! follows PyTorch's `torch.optim.AdamW` arithmetic exactly (decoupled weight decay applied
//! first, bias corrections folded into the step size and the denominator), so the PyTorch peer
//! benchmark runs the same update.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::params::{flat_params, replace_params};

fn default_lr() -> f64 {
    2e-4
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_clip() -> f64 {
    1.0
}

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// AdamW (the default).
    #[default]
    Adamw,
    /// Plain gradient descent `p ← p - lr·g` (the theory's full-batch gradient flow).
    Sgd,
}

/// How the learning rate decays after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Decay {
    /// Cosine from `lr` at the first step after the warm-up to exactly `min_lr` at the run's
    /// last step (the default).
    #[default]
    Cosine,
    /// Constant `lr`.
    Constant,
}

/// The `[optimizer]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// `adamw` or `sgd`.
    #[serde(default)]
    pub kind: OptimizerKind,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam's β₁, β₂.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Adam's ε.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Linear warm-up steps from 0 to `lr`.
    #[serde(default)]
    pub warmup: u64,
    /// Decay after the warm-up.
    #[serde(default)]
    pub decay: Decay,
    /// The learning rate the cosine decays to.
    #[serde(default)]
    pub min_lr: f64,
    /// Clip the global gradient norm to this value (`grad_clip = 0` turns clipping off).
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adamw,
            lr: default_lr(),
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: 0.0,
            warmup: 0,
            decay: Decay::Cosine,
            min_lr: 0.0,
            grad_clip: default_clip(),
        }
    }
}

impl OptimizerConfig {
    /// Checks every value; errors name the `optimizer.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ModelError::config(
                    format!("optimizer.{key}"),
                    v,
                    "a finite number > 0",
                ))
            }
        };
        let non_negative = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(ModelError::config(
                    format!("optimizer.{key}"),
                    v,
                    "a finite number ≥ 0",
                ))
            }
        };
        positive("lr", self.lr)?;
        positive("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("min_lr", self.min_lr)?;
        for b in self.betas {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return Err(ModelError::config(
                    "optimizer.betas",
                    format!("{:?}", self.betas),
                    "two numbers in [0, 1)",
                ));
            }
        }
        non_negative("grad_clip", self.grad_clip)?;
        Ok(())
    }

    /// The learning rate of step `step` (0-based) of a run of `total` steps.
    ///
    /// Warm-up: `lr·(step + 1)/warmup` for `step < warmup`, reaching `lr` at step
    /// `warmup − 1`. Cosine decay: `min_lr + ½(lr − min_lr)(1 + cos(π·p))` with
    /// `p = (step − warmup)/(total − 1 − warmup)`, i.e. `lr` at the first step after the warm-up
    /// and exactly `min_lr` at the last step (`total − 1`); a decay of a single step
    /// (`warmup = total − 1`) runs at `lr`. The schedule depends on `total` only, never on where
    /// an invocation stops.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        match self.decay {
            Decay::Constant => self.lr,
            Decay::Cosine => {
                let span = total.saturating_sub(1).saturating_sub(self.warmup);
                let progress = if span == 0 {
                    0.0
                } else {
                    ((step - self.warmup) as f64 / span as f64).min(1.0)
                };
                self.min_lr
                    + 0.5
                        * (self.lr - self.min_lr)
                        * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// The clipping threshold, if clipping is on.
    pub fn clip(&self) -> Option<f64> {
        (self.grad_clip > 0.0).then_some(self.grad_clip)
    }
}

/// The optimizer's state: step count and Adam's moments (empty for SGD), one flat tensor per
/// parameter.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    /// Updates applied so far.
    pub step: u64,
    /// First moments.
    pub m: Vec<Tensor<1>>,
    /// Second moments.
    pub v: Vec<Tensor<1>>,
}

impl OptimizerState {
    /// A fresh state for `module` under `kind`.
    pub fn new<M: Module>(module: &M, kind: OptimizerKind) -> Self {
        let zeros = |module: &M| -> Vec<Tensor<1>> {
            flat_params(module)
                .into_iter()
                .map(|p| p.zeros_like())
                .collect()
        };
        match kind {
            OptimizerKind::Adamw => Self {
                step: 0,
                m: zeros(module),
                v: zeros(module),
            },
            OptimizerKind::Sgd => Self {
                step: 0,
                m: Vec::new(),
                v: Vec::new(),
            },
        }
    }
}

struct GradCollector<'a> {
    grads: &'a Gradients,
    out: Vec<Option<Tensor<1>>>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param.val().grad(self.grads).map(|g| {
            let n = g.shape().num_elements();
            g.reshape([n])
        });
        self.out.push(grad);
    }
}

/// The gradient of every parameter of `module` (flattened, `None` where a parameter took no
/// part in the loss), in [`crate::params`] order.
pub fn collect_grads<M: Module>(module: &M, grads: &Gradients) -> Vec<Option<Tensor<1>>> {
    let mut c = GradCollector {
        grads,
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// The global ℓ2 norm of all gradients (one device read).
pub fn global_norm(grads: &[Option<Tensor<1>>]) -> f64 {
    let mut total: Option<Tensor<1>> = None;
    for g in grads.iter().flatten() {
        let s = g.clone().square().sum();
        total = Some(match total {
            Some(t) => t + s,
            None => s,
        });
    }
    total.map_or(0.0, |t| (t.into_scalar::<f32>() as f64).sqrt())
}

/// The step's loss (shape `[1]`) and the global ℓ2 norm of `grads`, read from the device
/// together: the one device→host transfer of a training step, which the non-finite check and
/// the clipping factor need.
pub fn loss_and_grad_norm(loss: Tensor<1>, grads: &[Option<Tensor<1>>]) -> (f64, f64) {
    let squares = grads
        .iter()
        .flatten()
        .map(|g| g.clone().square().sum())
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| loss.zeros_like());
    let both: Vec<f32> = Tensor::cat(vec![loss, squares], 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data after convert::<f32>()");
    (f64::from(both[0]), f64::from(both[1]).sqrt())
}

struct Updater<'a> {
    config: &'a OptimizerConfig,
    state: &'a mut OptimizerState,
    grads: Vec<Option<Tensor<1>>>,
    lr: f64,
    scale: f64,
    next: usize,
}

impl ModuleMapper for Updater<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let i = self.next;
        self.next += 1;
        let Some(grad) = self.grads[i].take() else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let n = grad.dims()[0];
        let p = tensor.inner().reshape([n]);
        let g = if self.scale != 1.0 {
            grad.mul_scalar(self.scale)
        } else {
            grad
        };
        let c = self.config;
        let p = match c.kind {
            OptimizerKind::Sgd => p - g.mul_scalar(self.lr),
            OptimizerKind::Adamw => {
                let t = self.state.step as i32;
                let [b1, b2] = c.betas;
                let p = if c.weight_decay > 0.0 {
                    p.mul_scalar(1.0 - self.lr * c.weight_decay)
                } else {
                    p
                };
                let m = self.state.m[i].clone().mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
                let v = self.state.v[i].clone().mul_scalar(b2) + g.square().mul_scalar(1.0 - b2);
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
                let p = p - (m.clone() / denom).mul_scalar(self.lr / bc1);
                self.state.m[i] = m;
                self.state.v[i] = v;
                p
            }
        };
        let value = Tensor::from_inner(p.reshape(dims)).require_grad();
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Applies one update to `module` from its gradients `grads` at learning rate `lr`, after
/// scaling every gradient by `scale` (the clipping factor). Advances `state.step`.
pub fn apply_update<M: Module>(
    module: M,
    grads: Vec<Option<Tensor<1>>>,
    config: &OptimizerConfig,
    state: &mut OptimizerState,
    lr: f64,
    scale: f64,
) -> M {
    state.step += 1;
    let mut updater = Updater {
        config,
        state,
        grads,
        lr,
        scale,
        next: 0,
    };
    module.map(&mut updater)
}

/// PyTorch's `clip_grad_norm_` factor: `min(1, max_norm / (norm + 1e-6))`.
pub fn clip_factor(norm: f64, max_norm: Option<f64>) -> f64 {
    match max_norm {
        Some(c) => (c / (norm + 1e-6)).min(1.0),
        None => 1.0,
    }
}

/// The `[ema]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// Decay per step (0 turns the EMA into a copy of the weights).
    #[serde(default = "default_ema_decay")]
    pub decay: f64,
}

fn default_ema_decay() -> f64 {
    0.999
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self {
            decay: default_ema_decay(),
        }
    }
}

impl EmaConfig {
    /// Checks `0 ≤ decay < 1`.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.decay.is_finite() && (0.0..1.0).contains(&self.decay) {
            Ok(())
        } else {
            Err(ModelError::config(
                "ema.decay",
                self.decay,
                "a number in [0, 1)",
            ))
        }
    }
}

/// An exponential moving average of a module's weights.
#[derive(Debug, Clone)]
pub struct Ema {
    /// The averaged parameters, flat, in [`crate::params`] order.
    pub weights: Vec<Tensor<1>>,
}

impl Ema {
    /// Starts at the current weights.
    pub fn new<M: Module>(module: &M) -> Self {
        Self {
            weights: flat_params(module),
        }
    }

    /// `ema ← decay·ema + (1 - decay)·weights`.
    pub fn update<M: Module>(&mut self, module: &M, decay: f64) {
        for (e, p) in self.weights.iter_mut().zip(flat_params(module)) {
            *e = e.clone().mul_scalar(decay) + p.mul_scalar(1.0 - decay);
        }
    }

    /// A copy of `module` carrying the averaged weights (not trainable).
    pub fn apply<M: Module>(&self, module: M) -> M {
        replace_params(module, &self.weights, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one read of a step against the norm by hand: √(3² + 4² + 12²) = 13, a parameter
    /// without a gradient skipped, no gradient at all a zero norm, a NaN passed through.
    #[test]
    fn loss_and_grad_norm_reads_both_at_once() {
        let device = burn::tensor::Device::flex();
        let t = |v: &[f32]| Tensor::<1>::from_data(burn::tensor::TensorData::from(v), &device);
        let grads = vec![Some(t(&[3.0, 4.0])), None, Some(t(&[12.0]))];
        assert_eq!(loss_and_grad_norm(t(&[2.5]), &grads), (2.5, 13.0));
        assert_eq!(loss_and_grad_norm(t(&[0.5]), &[None]), (0.5, 0.0));
        let (loss, norm) = loss_and_grad_norm(t(&[1.0]), &[Some(t(&[f32::NAN]))]);
        assert_eq!(loss, 1.0);
        assert!(norm.is_nan());
    }

    /// The schedule against its closed form at the first step, in the warm-up, at the end of
    /// the warm-up, in the middle of the decay and at the last step.
    #[test]
    fn warmup_then_cosine() {
        let c = OptimizerConfig {
            lr: 1.0,
            warmup: 10,
            min_lr: 0.1,
            ..OptimizerConfig::default()
        };
        let total = 111; // steps 0..=110; the decay runs over steps 10..=110.
        let close = |step: u64, expected: f64| {
            let got = c.lr_at(step, total);
            assert!(
                (got - expected).abs() < 1e-12,
                "step {step}: {got} vs {expected}"
            );
        };
        close(0, 0.1);
        close(4, 0.5);
        close(9, 1.0);
        close(10, 1.0);
        // A quarter into the decay: min + ½(lr − min)(1 + cos(π/4)).
        close(35, 0.1 + 0.45 * (1.0 + std::f64::consts::FRAC_1_SQRT_2));
        // Half-way: the midpoint of lr and min_lr.
        close(60, 0.55);
        // The last step is exactly min_lr, also with min_lr = 0.
        close(110, 0.1);
        let zero = OptimizerConfig {
            min_lr: 0.0,
            ..c.clone()
        };
        assert_eq!(zero.lr_at(110, total), 0.0);
        // The run of the issue: lr 1e-2, warm-up 2, 8 steps.
        let small = OptimizerConfig {
            lr: 1e-2,
            warmup: 2,
            ..OptimizerConfig::default()
        };
        let lrs: Vec<f64> = (0..8).map(|s| small.lr_at(s, 8)).collect();
        let expected: Vec<f64> = (0..8)
            .map(|s| match s {
                0 => 5e-3,
                1 => 1e-2,
                s => 0.5e-2 * (1.0 + (std::f64::consts::PI * (s - 2) as f64 / 5.0).cos()),
            })
            .collect();
        for (got, want) in lrs.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-15, "{lrs:?} vs {expected:?}");
        }
        assert_eq!(lrs[7], 0.0);
        // A single decay step runs at lr; no warm-up starts at lr.
        assert_eq!(small.lr_at(2, 3), 1e-2);
        let plain = OptimizerConfig {
            lr: 2.0,
            ..OptimizerConfig::default()
        };
        assert_eq!(plain.lr_at(0, 5), 2.0);
        assert_eq!(plain.lr_at(4, 5), 0.0);
        let constant = OptimizerConfig {
            decay: Decay::Constant,
            ..small
        };
        assert_eq!(constant.lr_at(7, 8), 1e-2);
    }

    #[test]
    fn clip_factor_is_torchs() {
        assert_eq!(clip_factor(0.5, Some(1.0)), 1.0);
        assert!((clip_factor(4.0, Some(1.0)) - 1.0 / (4.0 + 1e-6)).abs() < 1e-15);
        assert_eq!(clip_factor(4.0, None), 1.0);
    }
}
