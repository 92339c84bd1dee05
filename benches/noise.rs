//! Coloured-noise generation throughput (images/s) for (256, 3, 32, 32) and (16, 3, 256, 256)
//! batches of power-law (α = -0.5, ε = 1e-10, energy) noise: the direct Fourier-domain draw
//! that `NoiseOperator` uses, the two-FFT route (draw white noise, then colour it) for
//! comparison, and the draw onto a burn device. `benches/peers/noise_peer.py` times NumPy and
//! PyTorch on the same shapes and spectrum.
//!
//! Run with `cargo bench --bench noise`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sagd::prelude::*;

const SHAPES: [(usize, usize, usize, usize); 2] = [(256, 3, 32, 32), (16, 3, 256, 256)];

fn covariance(c: usize, h: usize, w: usize) -> SpectralCovariance {
    let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=1e-10").expect("valid spectrum");
    SpectralCovariance::new(spectrum.as_ref(), [c, h, w], Normalization::Energy)
        .expect("valid grid")
}

fn bench_noise(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("coloured_noise");
    group.sample_size(20);
    for (n, c, h, w) in SHAPES {
        let cov = covariance(c, h, w);
        let label = format!("{n}x{c}x{h}x{w}");
        group.throughput(Throughput::Elements(n as u64));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut out = vec![0f32; n * c * h * w];
        group.bench_function(BenchmarkId::new("fourier_draw", &label), |b| {
            b.iter(|| cov.sample_into(&mut out, &mut rng).expect("sized"))
        });
        // White noise drawn pixel by pixel, then coloured: one forward and one inverse FFT.
        group.bench_function(BenchmarkId::new("white_then_colour", &label), |b| {
            b.iter(|| {
                for v in out.iter_mut() {
                    *v = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
                }
                cov.colour(&mut out).expect("sized")
            })
        });
        let shape = DynShape::new(c, h, w);
        let operator =
            SpectralNoise::from_covariance(std::sync::Arc::new(covariance(c, h, w)), shape)
                .expect("shape");
        let device = Device::flex();
        let mut rng = noise_rng(0);
        group.bench_function(BenchmarkId::new("operator_to_flex_device", &label), |b| {
            b.iter(|| operator.sample(n, &mut rng, &device).expect("count > 0"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_noise);
criterion_main!(benches);
