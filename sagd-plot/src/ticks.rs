//! Tick positions and tick-label text for linear and logarithmic axes.
//!
//! plotters draws the ticks and labels; these functions only choose them, because its own
//! choice on log axes leaves a range inside one decade without a single tick and labels
//! every value with `Debug` formatting (`0.30000000000000004`).

/// A "nice" step (1, 2 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let mag = 10f64.powf(exp);
    let f = raw / mag;
    let nf = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nf * mag
}

/// Round linear ticks (multiples of a 1/2/5 step) inside `[lo, hi]`,
/// about `target` intervals. Returns `[lo]` for an empty range and nothing
/// for non-finite bounds.
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let span = hi - lo;
    if span <= 0.0 {
        return vec![lo + 0.0];
    }
    if !span.is_finite() {
        return vec![lo, hi];
    }
    let step = nice_step(span / target.max(1) as f64);
    if !(step > 0.0 && step.is_finite()) {
        return vec![lo, hi];
    }
    let k0 = (lo / step - 1e-9).ceil();
    let k1 = (hi / step + 1e-9).floor();
    if !(k0.is_finite() && k1.is_finite()) || k1 < k0 || k1 - k0 > 1000.0 {
        return vec![lo, hi];
    }
    // Dividing by an integer reciprocal gives exact-looking decimals (0.3, not 0.30000000000000004).
    let inv = (1.0 / step).round();
    let use_inv = step < 1.0 && (inv * step - 1.0).abs() < 1e-9;
    let count = (k1 - k0) as i64;
    (0..=count)
        .map(|i| {
            let k = k0 + i as f64;
            let v = if use_inv { k / inv } else { k * step };
            v + 0.0 // normalise -0.0
        })
        .filter(|v| *v >= lo - step * 1e-6 && *v <= hi + step * 1e-6)
        .collect()
}

/// `10^k`, exactly as the decimal literal `1ek` parses.
fn pow10(k: i64) -> f64 {
    format!("1e{k}").parse().unwrap_or(f64::NAN)
}

/// Ticks for a logarithmic axis over `[lo, hi]` (both positive): decades
/// (thinned to at most ~8) when the range holds three decade ticks or more;
/// otherwise 1/2/5 (then 1..9) multiples of decades, or round linear steps
/// when those cover more of the axis (a range inside a decade: 0.8, 0.9, 1, 1.1).
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi.is_finite() && lo.is_finite()) {
        return Vec::new();
    }
    if hi <= lo {
        return vec![lo];
    }
    let (k0, k1) = decade_span(lo, hi);
    let n = k1 - k0 + 1;
    if n >= 3 {
        let stride = decade_stride(n);
        return (k0..=k1)
            .filter(|k| k.rem_euclid(stride) == 0)
            .map(pow10)
            .filter(|v| *v > 0.0 && v.is_finite())
            .collect();
    }
    let tol_lo = lo * (1.0 - 1e-9);
    let tol_hi = hi * (1.0 + 1e-9);
    // Three labelled ticks at least where the range allows, so that the scale can be read.
    let mut mantissa_ticks = Vec::new();
    for mantissas in [&[1, 2, 5][..], &[1, 2, 3, 4, 5, 6, 7, 8, 9][..]] {
        let ticks: Vec<f64> = (k0 - 1..=k1 + 1)
            .flat_map(|k| {
                mantissas
                    .iter()
                    .map(move |m| format!("{m}e{k}").parse::<f64>().unwrap_or(f64::NAN))
            })
            .filter(|v| *v >= tol_lo && *v <= tol_hi)
            .collect();
        if ticks.len() >= 3 || (mantissa_ticks.is_empty() && ticks.len() == 2) {
            mantissa_ticks = ticks;
        }
        if mantissa_ticks.len() >= 3 {
            break;
        }
    }
    let linear: Vec<f64> = nice_ticks(lo, hi, 5)
        .into_iter()
        .filter(|v| *v > 0.0)
        .collect();
    // The share of the axis (in log units) between the first and the last tick.
    let cover = |t: &[f64]| match (t.first(), t.last()) {
        (Some(a), Some(b)) if t.len() >= 2 => (b / a).ln() / (hi / lo).ln(),
        _ => 0.0,
    };
    if mantissa_ticks.is_empty() || cover(&linear) > cover(&mantissa_ticks) + 0.1 {
        linear
    } else {
        mantissa_ticks
    }
}

/// First and last integer decade exponents inside `[lo, hi]`.
fn decade_span(lo: f64, hi: f64) -> (i64, i64) {
    let k0 = (lo.log10() - 1e-9).ceil() as i64;
    let k1 = (hi.log10() + 1e-9).floor() as i64;
    (k0, k1)
}

/// Decade stride so that `n` decades give at most about 8 ticks.
fn decade_stride(n: i64) -> i64 {
    [1, 2, 3, 5, 10, 20, 25, 50, 100, 200]
        .into_iter()
        .find(|s| n <= 8 * s)
        .unwrap_or(1000)
}

/// Minor ticks (2..9 times each decade, less the major ticks) for a log axis
/// over `[lo, hi]`; empty over more than five decades, where they would crowd.
pub(crate) fn log_minor_ticks(lo: f64, hi: f64, majors: &[f64]) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let (k0, k1) = decade_span(lo, hi);
    if k1 - k0 > 5 {
        return Vec::new();
    }
    let is_major = |v: f64| majors.iter().any(|m| (m / v - 1.0).abs() < 1e-9);
    let mut out = Vec::new();
    for k in (k0 - 1)..=k1 {
        for m in 2..=9 {
            let v: f64 = format!("{m}e{k}").parse().unwrap_or(f64::NAN);
            if v > lo && v < hi && !is_major(v) {
                out.push(v);
            }
        }
    }
    out
}

/// Strip trailing zeros (and a trailing '.') from the mantissa of a number string.
fn tidy_number(s: &str) -> String {
    let (mantissa, exponent) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let mantissa = if mantissa == "-0" { "0" } else { mantissa };
    format!("{mantissa}{exponent}")
}

/// Labels for linear ticks: fixed decimals matching the tick step, or
/// `2.5e-4` style when the magnitudes are very large or very small.
pub(crate) fn linear_labels(ticks: &[f64]) -> Vec<String> {
    let step = ticks
        .windows(2)
        .map(|p| (p[1] - p[0]).abs())
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let amax = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let step = if step.is_finite() {
        step
    } else if amax > 0.0 {
        amax
    } else {
        1.0
    };
    let step_exp = (step.log10() + 1e-9).floor();
    let scientific = amax >= 1e5 || (amax > 0.0 && amax < 1e-3);
    ticks
        .iter()
        .map(|&v| {
            if v == 0.0 {
                "0".to_string()
            } else if !v.is_finite() {
                format!("{v}")
            } else if scientific {
                let decimals = ((v.abs().log10() + 1e-9).floor() - step_exp).clamp(0.0, 6.0);
                tidy_number(&format!("{:.*e}", decimals as usize, v))
            } else {
                let decimals = (-step_exp).clamp(0.0, 10.0) as usize;
                tidy_number(&format!("{v:.decimals$}"))
            }
        })
        .collect()
}

/// Labels for log ticks: plain numbers when every tick lies in `[0.01, 1e4)`,
/// otherwise `1e-3` style.
///
/// Ticks that are not one-digit multiples of a power of ten (the linear fallback of
/// [`log_ticks`]) get linear labels, which carry as many decimals as the step needs.
pub(crate) fn log_labels(ticks: &[f64]) -> Vec<String> {
    let plain = ticks.iter().all(|v| *v >= 0.01 * (1.0 - 1e-9) && *v < 1e4);
    let labels: Vec<String> = ticks
        .iter()
        .map(|&v| {
            if plain {
                // The fewest decimals that still give the value back (1.5, not 2).
                let decimals = (0..=10)
                    .find(|d| {
                        format!("{v:.d$}")
                            .parse::<f64>()
                            .is_ok_and(|p| (p - v).abs() <= 1e-9 * v.abs())
                    })
                    .unwrap_or(10);
                tidy_number(&format!("{v:.decimals$}"))
            } else {
                tidy_number(&format!("{v:.3e}"))
            }
        })
        .collect();
    if labels.windows(2).any(|p| p[0] == p[1]) {
        return linear_labels(ticks);
    }
    labels
}

/// A number with about three significant digits.
pub(crate) fn format_sig(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (2.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
        tidy_number(&format!("{v:.decimals$}"))
    } else {
        tidy_number(&format!("{v:.2e}"))
    }
}

/// Widen an empty range so that it can be drawn.
pub(crate) fn widen_degenerate(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if hi > lo {
        return (lo, hi);
    }
    if log {
        (lo / 3.0, lo * 3.0)
    } else if lo == 0.0 {
        (-1.0, 1.0)
    } else {
        let d = lo.abs() * 0.1;
        (lo - d, lo + d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
    }

    fn contains(ticks: &[f64], v: f64) -> bool {
        ticks.iter().any(|&t| (t - v).abs() < 1e-12)
    }

    #[test]
    fn nice_ticks_zero_to_half() {
        let t = nice_ticks(0.0, 0.5, 5);
        for v in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] {
            assert!(contains(&t, v), "{v} missing from {t:?}");
        }
        assert!(t.iter().all(|&v| (0.0..=0.5).contains(&v)));
        assert_eq!(linear_labels(&t), ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
    }

    #[test]
    fn nice_ticks_are_round_and_inside() {
        let t = nice_ticks(-0.53, 0.53, 5);
        assert!(contains(&t, 0.0) && contains(&t, -0.4) && contains(&t, 0.4));
        assert!(t.iter().all(|&v| (-0.53..=0.53).contains(&v)));
        // Reversed bounds give the same ticks.
        assert_eq!(nice_ticks(0.53, -0.53, 5), t);
        let t = nice_ticks(3.0, 997.0, 5);
        assert!(contains(&t, 200.0) && contains(&t, 800.0), "{t:?}");
        // No negative zero.
        assert!(
            nice_ticks(-1.0, 1.0, 4)
                .iter()
                .all(|v| !(v.is_sign_negative() && *v == 0.0))
        );
    }

    #[test]
    fn nice_ticks_degenerate() {
        assert_eq!(nice_ticks(1.0, 1.0, 5), vec![1.0]);
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
        assert!(nice_ticks(0.0, f64::INFINITY, 5).is_empty());
        assert!(nice_ticks(-f64::MAX, f64::MAX, 5).len() <= 2);
        assert!(!nice_ticks(1e16, 1e16 + 4.0, 5).is_empty());
        assert!(!nice_ticks(1e-300, 2e-300, 5).is_empty());
    }

    #[test]
    fn log_ticks_are_decades() {
        let t = log_ticks(1e-3, 10.0);
        let expected = [1e-3, 1e-2, 1e-1, 1.0, 10.0];
        assert_eq!(t.len(), expected.len(), "{t:?}");
        for (a, b) in t.iter().zip(expected) {
            assert!(close(*a, b), "{t:?}");
        }
        assert_eq!(log_labels(&t), ["1e-3", "1e-2", "1e-1", "1e0", "1e1"]);
        assert_eq!(
            log_labels(&[0.1, 1.0, 10.0, 100.0]),
            ["0.1", "1", "10", "100"]
        );
        // Linear ticks inside one decade keep their decimals.
        assert_eq!(log_labels(&[2.8, 3.0, 3.2]), ["2.8", "3", "3.2"]);
        assert_eq!(
            log_labels(&[0.8, 1.0, 1.5, 2.5]),
            ["0.8", "1", "1.5", "2.5"]
        );
        assert_eq!(log_ticks(0.73, 1.3).len(), 6);
    }

    #[test]
    fn log_ticks_narrow_wide_and_invalid() {
        let t = log_ticks(2.0, 8.0);
        assert!(contains(&t, 2.0) && contains(&t, 5.0), "{t:?}");
        let t = log_ticks(1.1, 1.9);
        assert!(
            !t.is_empty() && t.iter().all(|&v| (1.1..=1.9).contains(&v)),
            "{t:?}"
        );
        let t = log_ticks(1e-300, 1e300);
        assert!((2..=9).contains(&t.len()), "{t:?}");
        assert!(t.iter().all(|v| v.log10().round() % 100.0 == 0.0), "{t:?}");
        assert!(log_ticks(0.0, 1.0).is_empty());
        assert!(log_ticks(-1.0, 1.0).is_empty());
        assert!(log_ticks(f64::NAN, 1.0).is_empty());
        assert_eq!(log_ticks(5.0, 5.0), vec![5.0]);
        let minor = log_minor_ticks(1.0, 100.0, &log_ticks(1.0, 100.0));
        assert_eq!(minor.len(), 16);
        // Only two decade ticks: 1-2-5 ticks, the other multiples are minor ticks.
        let major = log_ticks(1.0, 50.0);
        assert_eq!(major, [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        let minor = log_minor_ticks(1.0, 50.0, &major);
        assert_eq!(minor, [3.0, 4.0, 6.0, 7.0, 8.0, 9.0, 30.0, 40.0]);
        // Too many decades for each to be shown: no minor ticks.
        assert!(log_minor_ticks(1e-30, 1e30, &log_ticks(1e-30, 1e30)).is_empty());
    }

    #[test]
    fn number_formatting() {
        assert_eq!(linear_labels(&[0.0, 2e-5, 4e-5]), ["0", "2e-5", "4e-5"]);
        assert_eq!(linear_labels(&[1e5, 1.5e5, 2e5]), ["1e5", "1.5e5", "2e5"]);
        assert_eq!(linear_labels(&[-10.0, 0.0, 10.0]), ["-10", "0", "10"]);
        assert_eq!(format_sig(0.012345), "0.0123");
        assert_eq!(format_sig(123456.0), "1.23e5");
        assert_eq!(format_sig(2.5e-7), "2.5e-7");
        assert_eq!(format_sig(-3.0), "-3");
        assert_eq!(format_sig(0.0), "0");
    }
}
