//! The terminal-SNR check: does the forward process actually reach `N(0, Σ_w)` at `t = T`?
//!
//! Per Fourier mode k, compare the noise power `σ_T² w_k²` (`w_k²` the normalized power of
//! the spectrum) with the signal left in the mode, `ᾱ_T S_k` (`S_k = E|F_u x_0|²_k`, the data's
//! second moment in the mode, mean included). Where the signal is not small against the noise,
//! sampling from the prior cannot recover the mode. Modes outside the support (`w_k = 0`) are
//! never noised by design (selective omission) and are reported apart.

use crate::covariance::SpectralCovariance;
use crate::error::CoreError;
use crate::grid::RadiusConvention;
use crate::schedule::NoiseLevel;

/// Signal-to-noise ratio above which a mode counts as affected (the signal is not ≪ the noise).
pub const AFFECTED_SNR: f64 = 0.01;

/// The outcome of [`terminal_snr`].
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalSnr {
    /// The terminal level.
    pub level: NoiseLevel,
    /// Per mode (H×W, `fftfreq` order): `ᾱ_T S_k / (σ_T² w_k²)`, infinite off the support.
    pub snr: Vec<f64>,
    /// Modes on the support with SNR above [`AFFECTED_SNR`].
    pub affected: usize,
    /// Modes on the support where the signal dominates (SNR > 1).
    pub dominated: usize,
    /// Modes off the support (never noised, by design).
    pub outside_support: usize,
    /// Radius range (unit convention) of the affected modes, if any.
    pub affected_band: Option<(f64, f64)>,
    /// The largest SNR on the support.
    pub worst_snr: f64,
}

impl TerminalSnr {
    /// True when some mode on the support keeps more signal than noise at `t = T`.
    pub fn signal_dominates(&self) -> bool {
        self.dominated > 0
    }

    /// A one-paragraph summary.
    pub fn summary(&self) -> String {
        let band = self
            .affected_band
            .map(|(a, b)| format!(" in the band r ∈ [{a:.3}, {b:.3}] (unit convention)"))
            .unwrap_or_default();
        format!(
            "terminal SNR at ᾱ_T = {:.3e}, σ_T = {:.4}: {} of {} modes affected (SNR > {AFFECTED_SNR}){band}, {} dominated by signal (SNR > 1), worst SNR {:.3e}; {} modes outside the support are never noised (by design)",
            self.level.alpha_bar,
            self.level.sigma,
            self.affected,
            self.snr.len() - self.outside_support,
            self.dominated,
            self.worst_snr,
            self.outside_support
        )
    }
}

/// Compares, per mode, the terminal noise power of `cov` with the data's remaining signal.
/// `signal_power` is `S_k` on the H×W grid of `cov` (channel-averaged), `terminal` the last
/// level of the schedule.
pub fn terminal_snr(
    cov: &SpectralCovariance,
    signal_power: &[f64],
    terminal: NoiseLevel,
) -> Result<TerminalSnr, CoreError> {
    let grid = cov.grid();
    if signal_power.len() != grid.len() {
        return Err(CoreError::ShapeMismatch {
            context: "terminal SNR signal power".to_string(),
            expected: format!("{} values ({}x{})", grid.len(), grid.height, grid.width),
            got: format!("{}", signal_power.len()),
        });
    }
    terminal.validate()?;
    let power = cov.power();
    let mut report = TerminalSnr {
        level: terminal,
        snr: Vec::with_capacity(grid.len()),
        affected: 0,
        dominated: 0,
        outside_support: 0,
        affected_band: None,
        worst_snr: 0.0,
    };
    for (i, f) in grid.frequencies().enumerate() {
        let noise = terminal.sigma * terminal.sigma * power[i];
        let signal = terminal.alpha_bar * signal_power[i];
        if power[i] == 0.0 {
            report.outside_support += 1;
            report.snr.push(f64::INFINITY);
            continue;
        }
        let snr = signal / noise;
        report.snr.push(snr);
        report.worst_snr = report.worst_snr.max(snr);
        if snr > AFFECTED_SNR {
            report.affected += 1;
            let r = f.radius(RadiusConvention::Unit);
            report.affected_band = Some(match report.affected_band {
                None => (r, r),
                Some((a, b)) => (a.min(r), b.max(r)),
            });
        }
        if snr > 1.0 {
            report.dominated += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::covariance::Normalization;
    use crate::schedule::Schedule;

    #[test]
    fn white_noise_erases_unit_signal_but_a_dc_heavy_spectrum_does_not() {
        let terminal = *Schedule::ddpm_linear().levels().unwrap().last().unwrap();
        let white = SpectralCovariance::from_amplitudes(
            "white",
            vec![1.0; 64],
            [1, 8, 8],
            Normalization::Energy,
        )
        .unwrap();
        let signal = vec![1.0; 64];
        let r = terminal_snr(&white, &signal, terminal).unwrap();
        assert_eq!((r.affected, r.dominated, r.outside_support), (0, 0, 0));
        // SNR = ᾱ_T / σ_T² per mode, written out.
        let expected = terminal.alpha_bar / (1.0 - terminal.alpha_bar);
        assert!(r.snr.iter().all(|s| (s - expected).abs() < 1e-15));
        // All the power at DC: every other mode gets w² ≈ 1e-9 of noise and keeps its signal.
        let mut dc = vec![1e-5; 64];
        dc[0] = 1.0;
        let heavy = SpectralCovariance::from_amplitudes("dc", dc, [1, 8, 8], Normalization::Energy)
            .unwrap();
        let r = terminal_snr(&heavy, &signal, terminal).unwrap();
        assert_eq!(r.dominated, 63);
        assert!(r.signal_dominates());
        let (a, b) = r.affected_band.unwrap();
        assert!(a > 0.0 && b <= 1.0 + 1e-12);
        // A band gap is reported apart, not refused.
        let mut gap = vec![1.0; 64];
        gap[1] = 0.0;
        gap[7] = 0.0;
        let gapped =
            SpectralCovariance::from_amplitudes("gap", gap, [1, 8, 8], Normalization::Energy)
                .unwrap();
        let r = terminal_snr(&gapped, &signal, terminal).unwrap();
        assert_eq!((r.outside_support, r.dominated), (2, 0));
        assert!(terminal_snr(&white, &signal[..3], terminal).is_err());
    }
}
