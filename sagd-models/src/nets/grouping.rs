//! Applying a per-noise-level map to a batch whose samples sit at different levels.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Runs `apply(level, rows)` on the rows of `x` (first dimension) that share each level and
/// puts the results back in batch order. Levels are visited in increasing order, so the
/// arithmetic is the same on every run.
pub fn per_level<const D: usize>(
    x: Tensor<D>,
    index: &[usize],
    mut apply: impl FnMut(usize, Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let device = x.device();
    let mut levels: Vec<usize> = index.to_vec();
    levels.sort_unstable();
    levels.dedup();
    if levels.len() == 1 {
        return apply(levels[0], x);
    }
    let mut order = Vec::with_capacity(index.len());
    let mut parts = Vec::with_capacity(levels.len());
    for &level in &levels {
        let rows: Vec<usize> = (0..index.len()).filter(|&i| index[i] == level).collect();
        let part = apply(level, x.clone().select(0, int_tensor(&rows, &device)));
        order.extend_from_slice(&rows);
        parts.push(part);
    }
    // `order[k]` is the batch row of the k-th output row; invert it.
    let mut inverse = vec![0usize; order.len()];
    for (k, &row) in order.iter().enumerate() {
        inverse[row] = k;
    }
    Tensor::cat(parts, 0).select(0, int_tensor(&inverse, &device))
}

/// A 1-D integer tensor of indices.
pub fn int_tensor(values: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}
