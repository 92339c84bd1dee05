//! The discrete frequency grid of an H×W image and the radius conventions.
//!
//! Frequencies follow NumPy's `fftfreq`: index `k` of a length-`n` axis has frequency `k/n`
//! folded to `[-1/2, 1/2)`. The radius `r = sqrt(f_x² + f_y²)` is in cycles per pixel and lies
//! in `[0, √2/2]`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::SpectrumError;

/// `fftfreq(n)[k]`: the frequency in cycles per sample of DFT index `k` of a length-`n` signal.
pub fn fftfreq(n: usize, k: usize) -> f64 {
    let k = k as i64;
    let n_i = n as i64;
    // Indices up to ceil(n/2) - 1 are non-negative, the rest negative (NumPy's convention).
    let folded = if k < (n_i + 1) / 2 { k } else { k - n_i };
    folded as f64 / n as f64
}

/// How a radius is measured. Spectra that take band edges state which one they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RadiusConvention {
    /// `r` in cycles per pixel, in `[0, √2/2]`.
    #[default]
    Cycles,
    /// `r / (√2/2)`, in `[0, 1]`: 1 is the corner of the spectrum.
    Unit,
    /// `r / (1/2)`, in `[0, √2]`: 1 is the Nyquist frequency on an axis.
    Nyquist,
}

impl RadiusConvention {
    /// All conventions, in a stable order.
    pub const ALL: [RadiusConvention; 3] = [Self::Cycles, Self::Unit, Self::Nyquist];

    /// Converts a radius in cycles per pixel to this convention.
    pub fn from_cycles(self, r: f64) -> f64 {
        match self {
            Self::Cycles => r,
            Self::Unit => r / std::f64::consts::FRAC_1_SQRT_2,
            Self::Nyquist => r / 0.5,
        }
    }

    /// The largest radius of the convention (the corner `f = (±1/2, ±1/2)`).
    pub fn max_radius(self) -> f64 {
        self.from_cycles(std::f64::consts::FRAC_1_SQRT_2)
    }

    /// The convention's name, as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cycles => "cycles",
            Self::Unit => "unit",
            Self::Nyquist => "nyquist",
        }
    }
}

impl fmt::Display for RadiusConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RadiusConvention {
    type Err = SpectrumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cycles" => Ok(Self::Cycles),
            "unit" => Ok(Self::Unit),
            "nyquist" => Ok(Self::Nyquist),
            other => Err(SpectrumError::UnknownRadius {
                input: other.to_string(),
            }),
        }
    }
}

/// One frequency of the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frequency {
    /// Vertical frequency, cycles per pixel, in `[-1/2, 1/2)`.
    pub fy: f64,
    /// Horizontal frequency, cycles per pixel, in `[-1/2, 1/2)`.
    pub fx: f64,
}

impl Frequency {
    /// Radius in cycles per pixel.
    pub fn radius_cycles(&self) -> f64 {
        (self.fx * self.fx + self.fy * self.fy).sqrt()
    }

    /// Radius in the given convention.
    pub fn radius(&self, convention: RadiusConvention) -> f64 {
        convention.from_cycles(self.radius_cycles())
    }
}

/// The H×W frequency grid of one image channel, in `fftfreq` order (row `k` ↔ `fftfreq(H)[k]`,
/// column `l` ↔ `fftfreq(W)[l]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyGrid {
    /// Number of rows (image height).
    pub height: usize,
    /// Number of columns (image width).
    pub width: usize,
}

impl FrequencyGrid {
    /// A grid for an image of `height × width` pixels.
    pub fn new(height: usize, width: usize) -> Self {
        Self { height, width }
    }

    /// Number of frequencies, `H·W`.
    pub fn len(&self) -> usize {
        self.height * self.width
    }

    /// True when the grid has no frequency.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frequency at row `k`, column `l`.
    pub fn frequency(&self, k: usize, l: usize) -> Frequency {
        Frequency {
            fy: fftfreq(self.height, k),
            fx: fftfreq(self.width, l),
        }
    }

    /// Every frequency, row-major.
    pub fn frequencies(&self) -> impl Iterator<Item = Frequency> + '_ {
        (0..self.height).flat_map(move |k| (0..self.width).map(move |l| self.frequency(k, l)))
    }

    /// Index of the frequency `-f` for the one at row `k`, column `l`.
    pub fn mirror(&self, k: usize, l: usize) -> (usize, usize) {
        (
            (self.height - k) % self.height,
            (self.width - l) % self.width,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fftfreq_matches_numpy_for_even_and_odd() {
        // numpy.fft.fftfreq(4) = [0, .25, -.5, -.25]; fftfreq(5) = [0, .2, .4, -.4, -.2]
        let even: Vec<f64> = (0..4).map(|k| fftfreq(4, k)).collect();
        assert_eq!(even, vec![0.0, 0.25, -0.5, -0.25]);
        let odd: Vec<f64> = (0..5).map(|k| fftfreq(5, k)).collect();
        assert_eq!(odd, vec![0.0, 0.2, 0.4, -0.4, -0.2]);
    }

    #[test]
    fn radius_conventions_map_corner_to_their_maximum() {
        let corner = Frequency { fy: -0.5, fx: -0.5 };
        assert!((corner.radius(RadiusConvention::Cycles) - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((corner.radius(RadiusConvention::Unit) - 1.0).abs() < 1e-15);
        assert!((corner.radius(RadiusConvention::Nyquist) - 2f64.sqrt()).abs() < 1e-15);
        let axis = Frequency { fy: 0.0, fx: -0.5 };
        assert!((axis.radius(RadiusConvention::Nyquist) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn mirror_is_an_involution() {
        let g = FrequencyGrid::new(5, 6);
        for k in 0..5 {
            for l in 0..6 {
                let (mk, ml) = g.mirror(k, l);
                assert_eq!(g.mirror(mk, ml), (k, l));
                let f = g.frequency(k, l);
                let m = g.frequency(mk, ml);
                assert!((f.radius_cycles() - m.radius_cycles()).abs() < 1e-15);
            }
        }
    }
}
