//! The sinusoidal time embedding of DDPM (Ho et al.), shared by the MLP and the U-Net.

use burn::tensor::{Device, Tensor, TensorData};

/// The embedding of each time in `times` (any real values, typically `[0, 1000)`): `dim`
/// features, the first half `sin(t·f_j)` and the second half `cos(t·f_j)` with frequencies
/// `f_j = 10000^(-j/(half-1))`. Computed on the host: it carries no parameters.
pub fn sinusoidal(times: &[f32], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let scale = if half > 1 {
        (10000f64).ln() / (half - 1) as f64
    } else {
        0.0
    };
    let mut values = Vec::with_capacity(times.len() * dim);
    for &t in times {
        let t = t as f64;
        for j in 0..half {
            values.push((t * (-(j as f64) * scale).exp()).sin() as f32);
        }
        for j in 0..half {
            values.push((t * (-(j as f64) * scale).exp()).cos() as f32);
        }
        // An odd `dim` gets one zero feature.
        values.extend(std::iter::repeat_n(0.0, dim - 2 * half));
    }
    Tensor::from_data(TensorData::new(values, [times.len(), dim]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula() {
        let device = Device::flex();
        let e = sinusoidal(&[0.0, 3.0], 8, &device)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        // t = 0: sin = 0, cos = 1.
        assert_eq!(&e[..8], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        // t = 3, j = 1: f = 10000^(-1/3).
        let f = 10000f64.powf(-1.0 / 3.0);
        assert!((e[8 + 1] as f64 - (3.0 * f).sin()).abs() < 1e-6);
        assert!((e[8 + 4 + 3] as f64 - (3.0f64 * 1e-4).cos()).abs() < 1e-6);
    }
}
