//! Paired comparisons of an experiment's arms: per seed, the difference of a metric between two
//! arms that share the seed's initial weights, data order and noise; the mean difference, its
//! 95% t-interval (n − 1 degrees of freedom) and two-sided p-value, and Holm's adjustment of the
//! p-values over all the file's contrasts.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::file::{Better, Contrast, ContrastMetric};
use super::results::{ArmResults, JobResult};

/// The paired statistics of differences `d_s` (one per seed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedStats {
    /// Number of pairs.
    pub n: usize,
    /// Mean difference.
    pub mean: f64,
    /// Sample standard deviation of the differences (n − 1).
    pub sd: f64,
    /// The 95% t-interval of the mean: `mean ± t(0.975, n − 1)·sd/√n` (n ≥ 2).
    pub ci95: Option<[f64; 2]>,
    /// The t statistic `mean / (sd/√n)` (n ≥ 2; infinite when sd = 0 and mean ≠ 0).
    pub t: Option<f64>,
    /// Two-sided p-value of `mean = 0` under Student's t with n − 1 degrees of freedom.
    pub p: Option<f64>,
}

/// Mean, sd, 95% t-interval, t and p of paired differences. `None` for no differences; one
/// difference has no interval.
pub fn paired_stats(differences: &[f64]) -> Option<PairedStats> {
    let (mean, sd) = super::results::mean_sd(differences)?;
    let n = differences.len();
    if n < 2 {
        return Some(PairedStats {
            n,
            mean,
            sd,
            ci95: None,
            t: None,
            p: None,
        });
    }
    let df = (n - 1) as f64;
    // StudentsT::new fails only for a non-positive scale or df, excluded here.
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let se = sd / (n as f64).sqrt();
    let half = dist.inverse_cdf(0.975) * se;
    let (t, p) = if se > 0.0 {
        let t = mean / se;
        (t, 2.0 * (1.0 - dist.cdf(t.abs())))
    } else if mean == 0.0 {
        (0.0, 1.0)
    } else {
        // Identical non-zero differences: no spread, no doubt.
        (mean.signum() * f64::INFINITY, 0.0)
    };
    Some(PairedStats {
        n,
        mean,
        sd,
        ci95: Some([mean - half, mean + half]),
        t: Some(t),
        p: Some(p),
    })
}

/// Holm's step-down adjustment of `p` (family-wise error over all of them): the i-th smallest
/// becomes `max_{j ≤ i} min(1, (m − j + 1)·p_(j))`; the order of `p` is kept.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// What a contrast shows at the 5% level (Holm-adjusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The arm is better: the interval excludes 0 on its side and the adjusted p < 0.05.
    ArmBetter,
    /// The baseline is better.
    BaselineBetter,
    /// Neither: the interval holds 0, or the adjusted p ≥ 0.05.
    NotResolved,
    /// Fewer than two paired seeds: no interval.
    TooFewSeeds,
}

impl Verdict {
    /// In words, for the tables.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::ArmBetter => "arm better",
            Verdict::BaselineBetter => "baseline better",
            Verdict::NotResolved => "not resolved",
            Verdict::TooFewSeeds => "too few seeds",
        }
    }
}

/// One contrast's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContrastResult {
    /// The contrast as declared.
    pub contrast: Contrast,
    /// Per seed present in both arms: `(seed, metric(arm) − metric(baseline))`.
    pub differences: Vec<(u64, f64)>,
    /// Their statistics (`None`: no seed has both).
    pub stats: Option<PairedStats>,
    /// The p-value after Holm's adjustment over the file's contrasts.
    pub p_holm: Option<f64>,
    /// The verdict at the 5% level.
    pub verdict: Verdict,
}

/// The metric `metric` of one job.
pub fn metric_of(job: &JobResult, metric: ContrastMetric) -> Option<f64> {
    match metric {
        ContrastMetric::Fid => job.fid,
        ContrastMetric::Kid => job.kid,
        ContrastMetric::LogSpectralDistance => job.log_spectral_distance,
        ContrastMetric::BandRatio => job.band_ratio,
        ContrastMetric::RawLogSpectralDistance => job.raw_log_spectral_distance,
        ContrastMetric::RawBandRatio => job.raw_band_ratio,
    }
}

/// The paired differences of `contrast` over the seeds both arms have (in `seeds` order).
fn differences(contrast: &Contrast, results: &[ArmResults], seeds: &[u64]) -> Vec<(u64, f64)> {
    let find = |name: &str| results.iter().find(|r| r.arm.name == name);
    let (Some(arm), Some(base)) = (find(&contrast.arm), find(&contrast.baseline)) else {
        return Vec::new();
    };
    let value = |r: &ArmResults, seed: u64| {
        r.seeds
            .iter()
            .find(|j| j.seed == seed)
            .and_then(|j| metric_of(j, contrast.metric))
    };
    seeds
        .iter()
        .filter_map(|&s| Some((s, value(arm, s)? - value(base, s)?)))
        .collect()
}

fn verdict(stats: Option<&PairedStats>, p_holm: Option<f64>, better: Better) -> Verdict {
    let (Some(stats), Some(p)) = (stats, p_holm) else {
        return Verdict::TooFewSeeds;
    };
    let Some([lo, hi]) = stats.ci95 else {
        return Verdict::TooFewSeeds;
    };
    let excludes_zero = lo > 0.0 || hi < 0.0;
    if !excludes_zero || p >= 0.05 {
        return Verdict::NotResolved;
    }
    let arm_lower = hi < 0.0;
    match (better, arm_lower) {
        (Better::Lower, true) | (Better::Higher, false) => Verdict::ArmBetter,
        _ => Verdict::BaselineBetter,
    }
}

/// Every contrast of the file, with Holm's adjustment over those that have a p-value.
pub fn contrast_results(
    contrasts: &[Contrast],
    results: &[ArmResults],
    seeds: &[u64],
) -> Vec<ContrastResult> {
    // Per contrast: its (seed, difference) pairs and their statistics.
    type Partial = (Vec<(u64, f64)>, Option<PairedStats>);
    let partial: Vec<Partial> = contrasts
        .iter()
        .map(|c| {
            let d = differences(c, results, seeds);
            let values: Vec<f64> = d.iter().map(|(_, v)| *v).collect();
            let stats = paired_stats(&values);
            (d, stats)
        })
        .collect();
    let with_p: Vec<(usize, f64)> = partial
        .iter()
        .enumerate()
        .filter_map(|(i, (_, s))| Some((i, s.as_ref()?.p?)))
        .collect();
    let adjusted = holm(&with_p.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    let mut p_holm = vec![None; contrasts.len()];
    for ((i, _), p) in with_p.iter().zip(adjusted) {
        p_holm[*i] = Some(p);
    }
    contrasts
        .iter()
        .zip(partial)
        .zip(p_holm)
        .map(|((c, (differences, stats)), p_holm)| ContrastResult {
            verdict: verdict(stats.as_ref(), p_holm, c.better),
            contrast: c.clone(),
            differences,
            stats,
            p_holm,
        })
        .collect()
}

/// The contrasts' table (markdown): per contrast the per-seed differences, their mean, the
/// 95% t-interval, the raw and Holm-adjusted p and the verdict.
pub fn contrast_table(results: &[ContrastResult]) -> String {
    use std::fmt::Write as _;
    let mut t = String::from(
        "| contrast | metric (better) | paired seeds | difference per seed (arm − baseline) | mean | 95% t-interval | p | p (Holm) | verdict |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let c = &r.contrast;
        // KID is printed × 10³, as in the arms' table.
        let scale = if c.metric == ContrastMetric::Kid {
            1e3
        } else {
            1.0
        };
        let digits = match c.metric {
            ContrastMetric::Fid => 1,
            ContrastMetric::Kid => 1,
            _ => 3,
        };
        let num = |x: f64| format!("{:.digits$}", x * scale);
        let per_seed: Vec<String> = r.differences.iter().map(|(_, d)| num(*d)).collect();
        let label = c
            .label
            .clone()
            .unwrap_or_else(|| format!("{} − {}", c.arm, c.baseline));
        let metric = format!(
            "{}{} ({})",
            c.metric.name(),
            if scale != 1.0 { " × 10³" } else { "" },
            match c.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
            }
        );
        let stats = r.stats.as_ref();
        let _ = writeln!(
            t,
            "| {label} | {metric} | {} | {} | {} | {} | {} | {} | {} |",
            r.differences.len(),
            if per_seed.is_empty() {
                "–".into()
            } else {
                per_seed.join(", ")
            },
            stats.map_or("–".into(), |s| num(s.mean)),
            stats
                .and_then(|s| s.ci95)
                .map_or("–".into(), |[lo, hi]| format!(
                    "[{}, {}]",
                    num(lo),
                    num(hi)
                )),
            stats.and_then(|s| s.p).map_or("–".into(), p_value),
            r.p_holm.map_or("–".into(), p_value),
            r.verdict.words(),
        );
    }
    t
}

fn p_value(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Student's t CDF for 3 degrees of freedom in closed form:
    /// F(t) = 1/2 + (1/π)·(t/(√3(1 + t²/3)) + atan(t/√3)).
    fn t3_cdf(t: f64) -> f64 {
        let s = 3f64.sqrt();
        0.5 + (t / (s * (1.0 + t * t / 3.0)) + (t / s).atan()) / std::f64::consts::PI
    }

    #[test]
    fn t_interval_and_p_against_closed_forms() {
        // d = 1, 2, 3, 4: mean 2.5, sd √(5/3), se = sd/2; t(0.975, 3) = 3.182446305284263
        // (statistical tables).
        let s = paired_stats(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        let se = (5.0f64 / 3.0).sqrt() / 2.0;
        let half = 3.182_446_305_284_263 * se;
        let [lo, hi] = s.ci95.unwrap();
        assert!((lo - (2.5 - half)).abs() < 1e-9 && (hi - (2.5 + half)).abs() < 1e-9);
        let t = 2.5 / se;
        assert!((s.t.unwrap() - t).abs() < 1e-12);
        let p = 2.0 * (1.0 - t3_cdf(t));
        assert!((s.p.unwrap() - p).abs() < 1e-9, "{} vs {p}", s.p.unwrap());
        // The interval's edge is where p = 0.05: shift the data so the mean sits at `half`.
        let edge: Vec<f64> = [1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(|x| x - 2.5 + half)
            .collect();
        let p_edge = paired_stats(&edge).unwrap().p.unwrap();
        assert!((p_edge - 0.05).abs() < 1e-9, "{p_edge}");
        // Two pairs: t(0.975, 1) = 12.706204736174698.
        let s = paired_stats(&[-12.6, -19.0]).unwrap();
        let [lo, hi] = s.ci95.unwrap();
        let half = 12.706_204_736_174_698 * (3.2f64 * 2f64.sqrt()) / 2f64.sqrt();
        assert!((hi - lo - 2.0 * half).abs() < 1e-6, "{lo} {hi}");
        // One degree of freedom: F(t) = 1/2 + atan(t)/π.
        let t = s.t.unwrap();
        let p = 1.0 - 2.0 * t.abs().atan() / std::f64::consts::PI;
        assert!((s.p.unwrap() - p).abs() < 1e-9);
    }

    #[test]
    fn degenerate_differences() {
        assert_eq!(paired_stats(&[]), None);
        let one = paired_stats(&[3.0]).unwrap();
        assert_eq!((one.n, one.ci95, one.p), (1, None, None));
        let same = paired_stats(&[2.0, 2.0, 2.0]).unwrap();
        assert_eq!((same.ci95, same.p), (Some([2.0, 2.0]), Some(0.0)));
        let zero = paired_stats(&[0.0, 0.0]).unwrap();
        assert_eq!(zero.p, Some(1.0));
    }

    #[test]
    fn holm_against_its_definition() {
        // Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-15, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.6, 0.9]), vec![1.0, 1.0]);
        assert_eq!(holm(&[]), Vec::<f64>::new());
        // Brute force: every ordering of 5 p-values gives the same adjusted values per p.
        let p = [0.2, 0.001, 0.04, 0.011, 0.5];
        let brute: Vec<f64> = (0..5)
            .map(|i| {
                let mut sorted = p.to_vec();
                sorted.sort_by(f64::total_cmp);
                let rank = sorted.iter().position(|x| *x == p[i]).unwrap();
                (0..=rank)
                    .map(|j| ((5 - j) as f64 * sorted[j]).min(1.0))
                    .fold(0.0, f64::max)
            })
            .collect();
        assert_eq!(holm(&p), brute);
    }

    fn job(seed: u64, fid: f64) -> JobResult {
        JobResult {
            seed,
            fid: Some(fid),
            ..JobResult::default()
        }
    }

    fn arm(name: &str, fids: &[(u64, f64)]) -> ArmResults {
        ArmResults {
            arm: toml::from_str(&format!("name = \"{name}\"\nconfig = \"x.toml\"")).unwrap(),
            seeds: fids.iter().map(|&(s, f)| job(s, f)).collect(),
        }
    }

    #[test]
    fn contrasts_pair_by_seed_and_judge_by_direction() {
        let results = [
            arm("a", &[(0, 10.0), (1, 11.0), (2, 12.0), (3, 10.5)]),
            arm("b", &[(0, 20.0), (1, 21.5), (2, 21.0), (3, 19.0)]),
            // Seed 2 missing: three pairs.
            arm("c", &[(0, 10.2), (1, 10.8), (3, 10.4)]),
        ];
        let c = |arm: &str, base: &str, better: Better| Contrast {
            arm: arm.into(),
            baseline: base.into(),
            metric: ContrastMetric::Fid,
            better,
            label: None,
        };
        let contrasts = [
            c("a", "b", Better::Lower),
            c("a", "b", Better::Higher),
            c("c", "a", Better::Lower),
        ];
        let out = contrast_results(&contrasts, &results, &[0, 1, 2, 3]);
        assert_eq!(
            out[0].differences,
            vec![(0, -10.0), (1, -10.5), (2, -9.0), (3, -8.5)]
        );
        assert_eq!(out[0].verdict, Verdict::ArmBetter);
        assert_eq!(out[1].verdict, Verdict::BaselineBetter);
        assert_eq!(out[2].differences.len(), 3);
        assert_eq!(out[2].verdict, Verdict::NotResolved);
        let raw: Vec<f64> = out
            .iter()
            .map(|r| r.stats.as_ref().unwrap().p.unwrap())
            .collect();
        let adjusted: Vec<f64> = out.iter().map(|r| r.p_holm.unwrap()).collect();
        assert_eq!(adjusted, holm(&raw));
        let table = contrast_table(&out);
        assert!(
            table.contains("a − b") && table.contains("arm better"),
            "{table}"
        );
    }
}
