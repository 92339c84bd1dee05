//! Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
//! Metric for Assessing Generative Models", §2): each set's manifold is the union of balls
//! around its points, the radius of a point being the distance to its k-th nearest neighbour in
//! its own set (k = 3; the point itself is not a neighbour). Precision is the share of
//! **generated** points inside the **real** manifold, recall the share of real points inside
//! the generated manifold; "inside" is `distance ≤ radius`.

use burn::tensor::Device;
use serde::Serialize;

use crate::error::EvalError;
use crate::features::Features;
use crate::gram::OnDevice;

/// Rows of distances computed at once (a block is `ROWS × N` floats).
const ROWS: usize = 1024;

/// A precision–recall pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrecisionRecall {
    /// Share of generated points inside the real manifold.
    pub precision: f64,
    /// Share of real points inside the generated manifold.
    pub recall: f64,
    /// The neighbour whose distance is a point's radius.
    pub k: usize,
}

/// Squared norms of the rows, in f64.
fn squared_norms(f: &Features) -> Vec<f64> {
    (0..f.count)
        .map(|i| f.row(i).iter().map(|&v| f64::from(v).powi(2)).sum())
        .collect()
}

/// Squared distances of rows `start..start+len` of `a` to every row of `b`, from the Gram
/// block (`‖a‖² + ‖b‖² − 2aᵀb`, clamped at 0 against round-off).
fn distance_rows(
    a: &OnDevice,
    a_norms: &[f64],
    b: &OnDevice,
    b_norms: &[f64],
    start: usize,
    len: usize,
) -> Result<Vec<f64>, EvalError> {
    let gram = a.gram_rows(start, len, b)?;
    let n = b.count;
    Ok(gram
        .iter()
        .enumerate()
        .map(|(idx, &g)| {
            let (i, j) = (start + idx / n, idx % n);
            (a_norms[i] + b_norms[j] - 2.0 * f64::from(g)).max(0.0)
        })
        .collect())
}

/// The squared radius of every point of a set: its squared distance to its k-th nearest other
/// point (the (k+1)-th smallest distance of its row, the first being itself).
fn radii(set: &OnDevice, norms: &[f64], k: usize) -> Result<Vec<f64>, EvalError> {
    let mut radii = Vec::with_capacity(set.count);
    let mut start = 0;
    while start < set.count {
        let len = ROWS.min(set.count - start);
        let rows = distance_rows(set, norms, set, norms, start, len)?;
        for (r, row) in rows.chunks(set.count).enumerate() {
            let mut row = row.to_vec();
            // The point itself is at distance 0 exactly, whatever the round-off says.
            row[start + r] = 0.0;
            let (_, kth, _) = row.select_nth_unstable_by(k, f64::total_cmp);
            radii.push(*kth);
        }
        start += len;
    }
    Ok(radii)
}

/// The share of the points of `probe` within some ball of `manifold`.
fn coverage(
    probe: &OnDevice,
    probe_norms: &[f64],
    manifold: &OnDevice,
    manifold_norms: &[f64],
    manifold_radii: &[f64],
) -> Result<f64, EvalError> {
    let mut inside = 0usize;
    let mut start = 0;
    while start < probe.count {
        let len = ROWS.min(probe.count - start);
        let rows = distance_rows(probe, probe_norms, manifold, manifold_norms, start, len)?;
        inside += rows
            .chunks(manifold.count)
            .filter(|row| row.iter().zip(manifold_radii).any(|(d, r)| d <= r))
            .count();
        start += len;
    }
    Ok(inside as f64 / probe.count as f64)
}

/// Precision and recall of `generated` against `real` features, radii from the `k`-th nearest
/// neighbour.
///
/// # Errors
/// [`EvalError::Input`] when the dimensions differ, `k` is 0, or a set has `k` points or fewer
/// (a point needs k others).
pub fn precision_recall(
    generated: &Features,
    real: &Features,
    k: usize,
    device: &Device,
) -> Result<PrecisionRecall, EvalError> {
    if generated.dim != real.dim {
        return Err(EvalError::input(
            "features",
            format!("dimensions {} and {} differ", generated.dim, real.dim),
        ));
    }
    if k == 0 || generated.count <= k || real.count <= k {
        return Err(EvalError::input(
            "precision/recall",
            format!(
                "k = {k} needs k >= 1 and more than k points per set (generated {}, real {})",
                generated.count, real.count
            ),
        ));
    }
    let (g, r) = (
        OnDevice::new(generated, device),
        OnDevice::new(real, device),
    );
    let (g_norms, r_norms) = (squared_norms(generated), squared_norms(real));
    let r_radii = radii(&r, &r_norms, k)?;
    let g_radii = radii(&g, &g_norms, k)?;
    Ok(PrecisionRecall {
        precision: coverage(&g, &g_norms, &r, &r_norms, &r_radii)?,
        recall: coverage(&r, &r_norms, &g, &g_norms, &g_radii)?,
        k,
    })
}
