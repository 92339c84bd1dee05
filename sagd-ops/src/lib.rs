//! # sagd-ops
//!
//! The built-in noise spectra, one file each, every one registered with the sagd registry
//! through `inventory` (so `sagd spectra list` and config strings find them) and serializable
//! through `typetag` (`kind = "power-law"`):
//!
//! | name | amplitude `w(f)` | parameters |
//! | --- | --- | --- |
//! | `isotropic` | 1 | – |
//! | `power-law` | `(r + ε)^α`; with `dc=neighbours` the DC mode at its 4 neighbours' power | `alpha`, `eps`, `radius`, `dc` |
//! | `band-pass` | `1[a ≤ r ≤ b]` | `a`, `b`, `radius` |
//! | `band-stop` | `1 − 1[a < r < b]`: the band omitted, every kept mode at one power | `a`, `b`, `radius` |
//! | `offset` | `√(1 + HW·offset²)` at DC, 1 elsewhere: diffusers' `noise_offset` | `offset` |
//! | `two-band` | `γ_l·band(a_l,b_l) + γ_h·band(a_h,b_h)`, each band at unit per-pixel variance | `gamma_l`, `gamma_h`, `a_l`, `b_l`, `a_h`, `b_h`, `radius` |
//! | `exp-decay` | `exp(-β r²)` | `beta`, `radius` |
//! | `tabulated` | piecewise-linear radial profile through `(r_i, w_i)` | `r`, `w`, `radius` |
//!
//! Linking this crate is enough to register them; [`link`] exists so that a binary that uses
//! nothing else from the crate can keep it linked.

#![warn(missing_docs)]

mod band;
pub mod band_pass;
pub mod band_stop;
pub mod exp_decay;
pub mod isotropic;
pub mod offset;
pub mod power_law;
pub mod tabulated;
pub mod two_band;

pub use band_pass::BandPass;
pub use band_stop::BandStop;
pub use exp_decay::ExpDecay;
pub use isotropic::Isotropic;
pub use offset::Offset;
pub use power_law::DcLevel;
pub use power_law::PowerLaw;
pub use tabulated::Tabulated;
pub use two_band::TwoBand;

/// Forces this crate to be linked (and so its spectra registered) in a binary that names no
/// other item of it.
pub fn link() {}

/// The names of the built-in spectra.
pub const BUILTIN: [&str; 8] = [
    "band-pass",
    "band-stop",
    "exp-decay",
    "isotropic",
    "offset",
    "power-law",
    "tabulated",
    "two-band",
];

use sagd_core::SpectrumError;

/// An [`SpectrumError::InvalidParam`] for spectrum `spectrum`.
pub(crate) fn invalid(
    spectrum: &str,
    param: &str,
    value: impl ToString,
    expected: &str,
) -> SpectrumError {
    SpectrumError::InvalidParam {
        spectrum: spectrum.to_string(),
        param: param.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// Checks that `value` is finite and `>= 0`.
pub(crate) fn non_negative(spectrum: &str, param: &str, value: f64) -> Result<(), SpectrumError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(spectrum, param, value, "a finite number >= 0"))
    }
}
