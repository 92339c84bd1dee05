//! Noise schedules: discrete VP (DDPM-linear, cosine) and the continuous VE/EDM σ ladder.
//!
//! Every schedule is a list of [`NoiseLevel`]s indexed `t = 1..=T` with noise increasing in
//! `t`; a level is `(ᾱ_t, σ_t)` with `x_t = √ᾱ_t x_0 + σ_t ε^(w)` (VP: `σ_t² = 1 - ᾱ_t`; VE:
//! `ᾱ = 1`).

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, invalid_value};

/// One noise level of the forward process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseLevel {
    /// `ᾱ_t`, the signal power kept (1 for VE).
    pub alpha_bar: f64,
    /// `σ_t`, the noise scale.
    pub sigma: f64,
}

impl NoiseLevel {
    /// A variance-preserving level from `ᾱ` (`σ = √(1 - ᾱ)`).
    pub fn vp(alpha_bar: f64) -> Self {
        Self {
            alpha_bar,
            sigma: (1.0 - alpha_bar).max(0.0).sqrt(),
        }
    }

    /// A variance-exploding level (`ᾱ = 1`).
    pub fn ve(sigma: f64) -> Self {
        Self {
            alpha_bar: 1.0,
            sigma,
        }
    }

    /// `√ᾱ`, the signal scale.
    pub fn scale(&self) -> f64 {
        self.alpha_bar.sqrt()
    }

    /// Checks `0 < ᾱ ≤ 1` and `σ > 0`, both finite.
    pub fn validate(&self) -> Result<(), CoreError> {
        if !(self.alpha_bar.is_finite() && self.alpha_bar > 0.0 && self.alpha_bar <= 1.0) {
            return Err(invalid_value(
                "alpha_bar",
                self.alpha_bar,
                "a number in (0, 1]",
            ));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(invalid_value("sigma", self.sigma, "a finite number > 0"));
        }
        Ok(())
    }
}

/// A noise schedule, serializable with `kind = "ddpm-linear" | "cosine" | "edm"`.
///
/// In TOML it is one flat table, `kind` plus that kind's keys (missing keys take the defaults
/// below); it is read through [`RawSchedule`] so that a wrong type is reported at its own key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSchedule", into = "RawSchedule")]
pub enum Schedule {
    /// DDPM: `β_t` linear from `beta_start` to `beta_end` over `steps`, `ᾱ_t = Π_{s≤t}(1-β_s)`.
    DdpmLinear {
        /// β at t = 1.
        beta_start: f64,
        /// β at t = T.
        beta_end: f64,
        /// T.
        steps: usize,
    },
    /// Nichol & Dhariwal: `ᾱ(t) = f(t)/f(0)`, `f(t) = cos²((t/T + s)/(1 + s)·π/2)`, with each
    /// `β_t = 1 - ᾱ_t/ᾱ_{t-1}` clipped to `max_beta`.
    Cosine {
        /// T.
        steps: usize,
        /// The offset s.
        offset: f64,
        /// Largest β.
        max_beta: f64,
    },
    /// EDM/VE: `steps` noise levels `σ_i = (σ_min^{1/ρ} + i/(N-1)(σ_max^{1/ρ} - σ_min^{1/ρ}))^ρ`.
    Edm {
        /// Smallest σ.
        sigma_min: f64,
        /// Largest σ.
        sigma_max: f64,
        /// ρ.
        rho: f64,
        /// N.
        steps: usize,
    },
}

/// The schedule table as written: `kind` and every key any kind takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// `ddpm-linear`, `cosine` or `edm`.
    pub kind: String,
    /// ddpm-linear: β at t = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_start: Option<f64>,
    /// ddpm-linear: β at t = T.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_end: Option<f64>,
    /// Number of levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// cosine: the offset s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// cosine: largest β.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_beta: Option<f64>,
    /// edm: smallest σ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    /// edm: largest σ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    /// edm: ρ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
}

impl TryFrom<RawSchedule> for Schedule {
    type Error = String;

    fn try_from(r: RawSchedule) -> Result<Self, String> {
        let given = [
            ("beta_start", r.beta_start.is_some()),
            ("beta_end", r.beta_end.is_some()),
            ("steps", r.steps.is_some()),
            ("offset", r.offset.is_some()),
            ("max_beta", r.max_beta.is_some()),
            ("sigma_min", r.sigma_min.is_some()),
            ("sigma_max", r.sigma_max.is_some()),
            ("rho", r.rho.is_some()),
        ];
        let allowed: &[&str] = match r.kind.as_str() {
            "ddpm-linear" => &["beta_start", "beta_end", "steps"],
            "cosine" => &["steps", "offset", "max_beta"],
            "edm" => &["sigma_min", "sigma_max", "rho", "steps"],
            other => {
                return Err(format!(
                    "schedule kind `{other}`: expected one of ddpm-linear, cosine, edm"
                ));
            }
        };
        if let Some((key, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(format!(
                "`{key}` is not a key of schedule kind `{}` (its keys: kind, {})",
                r.kind,
                allowed.join(", ")
            ));
        }
        Ok(match r.kind.as_str() {
            "ddpm-linear" => Self::DdpmLinear {
                beta_start: r.beta_start.unwrap_or_else(default_beta_start),
                beta_end: r.beta_end.unwrap_or_else(default_beta_end),
                steps: r.steps.unwrap_or_else(default_steps),
            },
            "cosine" => Self::Cosine {
                steps: r.steps.unwrap_or_else(default_steps),
                offset: r.offset.unwrap_or_else(default_cosine_offset),
                max_beta: r.max_beta.unwrap_or_else(default_max_beta),
            },
            _ => Self::Edm {
                sigma_min: r.sigma_min.unwrap_or_else(default_sigma_min),
                sigma_max: r.sigma_max.unwrap_or_else(default_sigma_max),
                rho: r.rho.unwrap_or_else(default_rho),
                steps: r.steps.unwrap_or_else(default_edm_steps),
            },
        })
    }
}

impl From<Schedule> for RawSchedule {
    fn from(s: Schedule) -> Self {
        match s {
            Schedule::DdpmLinear {
                beta_start,
                beta_end,
                steps,
            } => Self {
                kind: "ddpm-linear".into(),
                beta_start: Some(beta_start),
                beta_end: Some(beta_end),
                steps: Some(steps),
                ..Self::default()
            },
            Schedule::Cosine {
                steps,
                offset,
                max_beta,
            } => Self {
                kind: "cosine".into(),
                steps: Some(steps),
                offset: Some(offset),
                max_beta: Some(max_beta),
                ..Self::default()
            },
            Schedule::Edm {
                sigma_min,
                sigma_max,
                rho,
                steps,
            } => Self {
                kind: "edm".into(),
                sigma_min: Some(sigma_min),
                sigma_max: Some(sigma_max),
                rho: Some(rho),
                steps: Some(steps),
                ..Self::default()
            },
        }
    }
}

fn default_beta_start() -> f64 {
    1e-4
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_steps() -> usize {
    1000
}
fn default_cosine_offset() -> f64 {
    0.008
}
fn default_max_beta() -> f64 {
    0.999
}
fn default_sigma_min() -> f64 {
    0.002
}
fn default_sigma_max() -> f64 {
    80.0
}
fn default_rho() -> f64 {
    7.0
}
fn default_edm_steps() -> usize {
    18
}

impl Default for Schedule {
    fn default() -> Self {
        Self::ddpm_linear()
    }
}

impl Schedule {
    /// The standard DDPM schedule (β 1e-4 → 0.02, T = 1000), the papers' setting.
    pub fn ddpm_linear() -> Self {
        Self::DdpmLinear {
            beta_start: default_beta_start(),
            beta_end: default_beta_end(),
            steps: default_steps(),
        }
    }

    /// The cosine schedule with T = 1000.
    pub fn cosine() -> Self {
        Self::Cosine {
            steps: default_steps(),
            offset: default_cosine_offset(),
            max_beta: default_max_beta(),
        }
    }

    /// EDM's σ ladder (0.002 → 80, ρ = 7) with `steps` levels.
    pub fn edm(steps: usize) -> Self {
        Self::Edm {
            sigma_min: default_sigma_min(),
            sigma_max: default_sigma_max(),
            rho: default_rho(),
            steps,
        }
    }

    /// Checks the parameters; the error names the wrong one.
    pub fn validate(&self) -> Result<(), CoreError> {
        let finite_pos = |name: &str, x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(invalid_value(name, x, "a finite number > 0"))
            }
        };
        match *self {
            Self::DdpmLinear {
                beta_start,
                beta_end,
                steps,
            } => {
                finite_pos("beta_start", beta_start)?;
                finite_pos("beta_end", beta_end)?;
                if beta_end >= 1.0 {
                    return Err(invalid_value("beta_end", beta_end, "a number < 1"));
                }
                if beta_start > beta_end {
                    return Err(invalid_value(
                        "beta_start",
                        beta_start,
                        "a number <= beta_end",
                    ));
                }
                if steps < 1 {
                    return Err(invalid_value("steps", steps, "at least 1"));
                }
            }
            Self::Cosine {
                steps,
                offset,
                max_beta,
            } => {
                finite_pos("offset", offset)?;
                finite_pos("max_beta", max_beta)?;
                if max_beta >= 1.0 {
                    return Err(invalid_value("max_beta", max_beta, "a number < 1"));
                }
                if steps < 1 {
                    return Err(invalid_value("steps", steps, "at least 1"));
                }
            }
            Self::Edm {
                sigma_min,
                sigma_max,
                rho,
                steps,
            } => {
                finite_pos("sigma_min", sigma_min)?;
                finite_pos("sigma_max", sigma_max)?;
                finite_pos("rho", rho)?;
                if sigma_min >= sigma_max {
                    return Err(invalid_value(
                        "sigma_min",
                        sigma_min,
                        "a number < sigma_max",
                    ));
                }
                if steps < 2 {
                    return Err(invalid_value("steps", steps, "at least 2"));
                }
            }
        }
        Ok(())
    }

    /// Number of levels T.
    pub fn steps(&self) -> usize {
        match *self {
            Self::DdpmLinear { steps, .. }
            | Self::Cosine { steps, .. }
            | Self::Edm { steps, .. } => steps,
        }
    }

    /// True for the variance-exploding (EDM) form.
    pub fn is_ve(&self) -> bool {
        matches!(self, Self::Edm { .. })
    }

    /// The levels for `t = 1..=T` (index `t - 1`), noise increasing.
    pub fn levels(&self) -> Result<Vec<NoiseLevel>, CoreError> {
        self.validate()?;
        Ok(match *self {
            Self::DdpmLinear {
                beta_start,
                beta_end,
                steps,
            } => {
                let mut alpha_bar = 1.0;
                (0..steps)
                    .map(|i| {
                        let frac = if steps == 1 {
                            0.0
                        } else {
                            i as f64 / (steps - 1) as f64
                        };
                        let beta = beta_start + frac * (beta_end - beta_start);
                        alpha_bar *= 1.0 - beta;
                        NoiseLevel::vp(alpha_bar)
                    })
                    .collect()
            }
            Self::Cosine {
                steps,
                offset,
                max_beta,
            } => {
                let f = |t: f64| {
                    let x =
                        (t / steps as f64 + offset) / (1.0 + offset) * std::f64::consts::FRAC_PI_2;
                    x.cos().powi(2)
                };
                let mut alpha_bar = 1.0;
                (1..=steps)
                    .map(|t| {
                        let beta = (1.0 - f(t as f64) / f((t - 1) as f64)).min(max_beta);
                        alpha_bar *= 1.0 - beta;
                        NoiseLevel::vp(alpha_bar)
                    })
                    .collect()
            }
            Self::Edm {
                sigma_min,
                sigma_max,
                rho,
                steps,
            } => {
                let (lo, hi) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
                (0..steps)
                    .map(|i| {
                        let frac = i as f64 / (steps - 1) as f64;
                        NoiseLevel::ve((lo + frac * (hi - lo)).powf(rho))
                    })
                    .collect()
            }
        })
    }

    /// The level at `t` in `1..=T`.
    pub fn level(&self, t: usize) -> Result<NoiseLevel, CoreError> {
        let levels = self.levels()?;
        if t == 0 || t > levels.len() {
            return Err(invalid_value(
                "t",
                t,
                &format!("an integer in 1..={}", levels.len()),
            ));
        }
        Ok(levels[t - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddpm_linear_matches_the_log_sum_of_its_betas() {
        // Independent route: ᾱ_T = exp(Σ ln(1 - β_t)) with β_t written out in closed form.
        let levels = Schedule::ddpm_linear().levels().unwrap();
        let log_sum: f64 = (0..1000)
            .map(|i| (1.0 - (1e-4 + i as f64 / 999.0 * (0.02 - 1e-4))).ln())
            .sum();
        let last = levels.last().unwrap();
        assert!((last.alpha_bar - log_sum.exp()).abs() < 1e-12 * log_sum.exp().max(1e-300) + 1e-15);
        // The well-known value for this schedule: ᾱ_1000 ≈ 4.04e-5.
        assert!(
            (last.alpha_bar - 4.036e-5).abs() < 0.01e-5,
            "{}",
            last.alpha_bar
        );
        assert!((levels[0].alpha_bar - (1.0 - 1e-4)).abs() < 1e-15);
        for l in &levels {
            assert!((l.alpha_bar + l.sigma * l.sigma - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn cosine_follows_its_closed_form_until_clipping() {
        let levels = Schedule::cosine().levels().unwrap();
        let f = |t: f64| {
            ((t / 1000.0 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for t in [1usize, 10, 500, 900] {
            let exact = f(t as f64) / f(0.0);
            assert!((levels[t - 1].alpha_bar - exact).abs() < 1e-12, "t = {t}");
        }
        assert!(levels.windows(2).all(|w| w[1].alpha_bar < w[0].alpha_bar));
    }

    #[test]
    fn edm_ladder_has_its_endpoints_and_rho_spacing() {
        let levels = Schedule::edm(18).levels().unwrap();
        assert!((levels[0].sigma - 0.002).abs() < 1e-15);
        assert!((levels[17].sigma - 80.0).abs() < 1e-12);
        let roots: Vec<f64> = levels.iter().map(|l| l.sigma.powf(1.0 / 7.0)).collect();
        let step = roots[1] - roots[0];
        assert!(
            roots
                .windows(2)
                .all(|w| ((w[1] - w[0]) - step).abs() < 1e-12)
        );
        assert!(levels.iter().all(|l| l.alpha_bar == 1.0));
    }

    #[test]
    fn invalid_schedules_name_the_parameter() {
        let bad = Schedule::DdpmLinear {
            beta_start: f64::NAN,
            beta_end: 0.02,
            steps: 10,
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("beta_start")
        );
        let bad = Schedule::Edm {
            sigma_min: 1.0,
            sigma_max: 0.5,
            rho: 7.0,
            steps: 10,
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("sigma_min")
        );
        let parsed: Result<Schedule, _> = toml::from_str("kind = \"cosine\"\nstepz = 3");
        assert!(parsed.unwrap_err().to_string().contains("stepz"));
    }
}
