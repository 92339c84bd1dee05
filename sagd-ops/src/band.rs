//! Band edges shared by `band-pass` and `two-band`.

use sagd_core::{FrequencyGrid, RadiusConvention, SpectrumError};

use crate::invalid;

/// Checks `0 ≤ a ≤ b ≤ max radius` of the convention, naming the wrong edge.
pub(crate) fn check_edges(
    spectrum: &str,
    (a_name, a): (&str, f64),
    (b_name, b): (&str, f64),
    radius: RadiusConvention,
) -> Result<(), SpectrumError> {
    let max = radius.max_radius();
    for (name, v) in [(a_name, a), (b_name, b)] {
        if !v.is_finite() || v < 0.0 || v > max + 1e-12 {
            return Err(invalid(
                spectrum,
                name,
                v,
                &format!("a radius in [0, {max:.4}] ({radius} convention)"),
            ));
        }
    }
    if a > b {
        return Err(invalid(
            spectrum,
            a_name,
            a,
            &format!("a value <= {b_name} = {b}"),
        ));
    }
    Ok(())
}

/// The indicator `1[a ≤ r ≤ b]` on the grid, erroring when it selects no frequency.
pub(crate) fn indicator(
    spectrum: &str,
    grid: &FrequencyGrid,
    a: f64,
    b: f64,
    radius: RadiusConvention,
) -> Result<Vec<f64>, SpectrumError> {
    // A small slack so that edges written in decimal include the frequencies they name.
    let slack = 1e-12;
    let mask: Vec<f64> = grid
        .frequencies()
        .map(|f| {
            let r = f.radius(radius);
            if r >= a - slack && r <= b + slack {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    if mask.iter().all(|&m| m == 0.0) {
        return Err(SpectrumError::EmptyBand {
            spectrum: spectrum.to_string(),
            band: format!("[{a}, {b}] ({radius})"),
            height: grid.height,
            width: grid.width,
        });
    }
    Ok(mask)
}
