//! Which of a denoiser's noise levels a sampler visits: uniform, quadratic or Karras spacing.
//!
//! A sampler with `n` steps visits `n` level indices of the denoiser's schedule, from the
//! noisiest (`T - 1`) down to the least noisy (`0`), and then takes one last step to the clean
//! image (`σ = 0`). Spacings are defined on the schedule's index (uniform, quadratic) or on the
//! noise-to-signal ratio `σ̃ = σ/√ᾱ` (Karras); a target that falls between levels is rounded
//! to the nearest one, and indices are kept distinct.

use std::fmt;
use std::str::FromStr;

use sagd_core::NoiseLevel;
use serde::{Deserialize, Serialize};

use crate::error::SamplerError;

/// How the visited levels are spread over the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Spacing {
    /// Evenly spaced indices `round(i (T-1)/(n-1))`.
    #[default]
    Uniform,
    /// Indices `round((i/(n-1))² (T-1))`: dense at low noise (DDIM's quadratic spacing).
    Quadratic,
    /// EDM's `σ̃_i = (σ̃_min^{1/ρ} + i/(n-1) (σ̃_max^{1/ρ} - σ̃_min^{1/ρ}))^ρ` over the
    /// schedule's `σ̃` range, each rounded to the nearest level in `ln σ̃`.
    Karras {
        /// ρ (7 in EDM).
        rho: f64,
    },
}

impl Spacing {
    /// Karras spacing with EDM's ρ = 7.
    pub const KARRAS: Spacing = Spacing::Karras { rho: 7.0 };
}

impl fmt::Display for Spacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uniform => write!(f, "uniform"),
            Self::Quadratic => write!(f, "quadratic"),
            Self::Karras { rho } => write!(f, "karras:rho={rho}"),
        }
    }
}

impl FromStr for Spacing {
    type Err = SamplerError;

    /// `uniform`, `quadratic`, `karras` (ρ = 7) or `karras:rho=R`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "uniform, quadratic, karras or karras:rho=R";
        match s {
            "uniform" => Ok(Self::Uniform),
            "quadratic" => Ok(Self::Quadratic),
            "karras" => Ok(Self::KARRAS),
            other => {
                let rho = other
                    .strip_prefix("karras:rho=")
                    .ok_or_else(|| SamplerError::config("spacing", other, expected))?;
                let rho: f64 = rho
                    .parse()
                    .map_err(|_| SamplerError::config("spacing", other, expected))?;
                if !(rho.is_finite() && rho > 0.0) {
                    return Err(SamplerError::config("rho", rho, "a finite number > 0"));
                }
                Ok(Self::Karras { rho })
            }
        }
    }
}

/// The `steps` level indices a sampler visits, noisiest first (`T - 1` first, `0` last), for a
/// schedule of `levels` (noise increasing with the index).
pub fn select(
    levels: &[NoiseLevel],
    steps: usize,
    spacing: Spacing,
) -> Result<Vec<usize>, SamplerError> {
    let t = levels.len();
    if t == 0 {
        return Err(SamplerError::config(
            "levels",
            0,
            "a schedule with at least one level",
        ));
    }
    if steps == 0 || steps > t {
        return Err(SamplerError::config(
            "steps",
            steps,
            format!("between 1 and the schedule's {t} levels"),
        ));
    }
    if steps == 1 {
        return Ok(vec![t - 1]);
    }
    let last = (t - 1) as f64;
    let frac = |i: usize| i as f64 / (steps - 1) as f64;
    let raw: Vec<usize> = match spacing {
        Spacing::Uniform => (0..steps)
            .map(|i| (frac(i) * last).round() as usize)
            .collect(),
        Spacing::Quadratic => (0..steps)
            .map(|i| (frac(i).powi(2) * last).round() as usize)
            .collect(),
        Spacing::Karras { rho } => {
            if !(rho.is_finite() && rho > 0.0) {
                return Err(SamplerError::config("rho", rho, "a finite number > 0"));
            }
            let log_ratio: Vec<f64> = levels.iter().map(|l| (l.sigma / l.scale()).ln()).collect();
            if log_ratio
                .windows(2)
                .any(|w| w[1] <= w[0] || !w[1].is_finite())
            {
                return Err(SamplerError::config(
                    "spacing",
                    spacing,
                    "a schedule whose noise-to-signal ratio increases strictly",
                ));
            }
            let (lo, hi) = (
                log_ratio[0].exp().powf(1.0 / rho),
                log_ratio[t - 1].exp().powf(1.0 / rho),
            );
            (0..steps)
                .map(|i| {
                    let target = (rho * (lo + frac(i) * (hi - lo)).ln())
                        .clamp(log_ratio[0], log_ratio[t - 1]);
                    let above = log_ratio.partition_point(|&v| v < target).min(t - 1);
                    if above > 0 && target - log_ratio[above - 1] < log_ratio[above] - target {
                        above - 1
                    } else {
                        above
                    }
                })
                .collect()
        }
    };
    // Keep the indices distinct: push up from the bottom, then down from the top (T - 1).
    let mut idx = raw;
    for i in 1..steps {
        idx[i] = idx[i].max(idx[i - 1] + 1);
    }
    idx[steps - 1] = t - 1;
    for i in (0..steps - 1).rev() {
        idx[i] = idx[i].min(idx[i + 1] - 1);
    }
    idx.reverse();
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagd_core::Schedule;

    #[test]
    fn uniform_spans_the_schedule_and_quadratic_is_dense_at_low_noise() {
        let levels = Schedule::ddpm_linear().levels().unwrap();
        let u = select(&levels, 100, Spacing::Uniform).unwrap();
        assert_eq!((u[0], u[99], u.len()), (999, 0, 100));
        assert!(u.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(u[98], 10); // round(999/99) = round(10.09)
        let q = select(&levels, 100, Spacing::Quadratic).unwrap();
        assert_eq!((q[0], q[99]), (999, 0));
        assert!(q.windows(2).all(|w| w[0] > w[1]));
        // The low end is dense: the first ten indices are 0..9 after de-duplication.
        assert_eq!(&q[90..], &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(
            select(&levels, 1000, Spacing::Quadratic).unwrap().len(),
            1000
        );
        assert_eq!(select(&levels, 1, Spacing::Uniform).unwrap(), vec![999]);
    }

    #[test]
    fn karras_on_a_matching_edm_ladder_picks_every_ninth_level() {
        // The EDM ladder with 10·9 + 1 levels holds the 11-step Karras ladder exactly.
        let levels = Schedule::edm(91).levels().unwrap();
        let k = select(&levels, 11, Spacing::KARRAS).unwrap();
        let expected: Vec<usize> = (0..11).rev().map(|i| 9 * i).collect();
        assert_eq!(k, expected);
    }

    #[test]
    fn bad_requests_name_the_setting() {
        let levels = Schedule::ddpm_linear().levels().unwrap();
        let e = select(&levels, 1001, Spacing::Uniform).unwrap_err();
        assert!(e.to_string().contains("steps"), "{e}");
        let e = select(&levels, 0, Spacing::Uniform).unwrap_err();
        assert!(e.to_string().contains("steps"), "{e}");
        assert!("karras:rho=-1".parse::<Spacing>().is_err());
        assert!(
            "linear"
                .parse::<Spacing>()
                .unwrap_err()
                .to_string()
                .contains("spacing")
        );
        assert_eq!(
            "karras:rho=5".parse::<Spacing>().unwrap(),
            Spacing::Karras { rho: 5.0 }
        );
    }
}
