//! `sagd theory predict`'s computation: the closed-form generated variance of 3072 modes on a
//! 200-point τ grid, their learning times and the exponent fits, on one thread (the theory
//! code is single-threaded). Two mode sets: 3072 distinct (λ, w) pairs (log-uniform λ in
//! [1e-3, 1e2], w in [0.1, 10]: no sharing), and a 3×32×32 `grf` under power-law noise, whose
//! mirror frequencies, channels and radial symmetry share work.
//!
//! Run with `cargo bench --bench theory`.

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sagd::core::theory::{TheoryConfig, predict, tau_grid};
use sagd::datasets::synthetic::grf::GrfConfig;
use sagd::prelude::*;

fn bench_theory(criterion: &mut Criterion) {
    let config = TheoryConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let distinct: (Vec<f64>, Vec<f64>) = (0..3072)
        .map(|_| {
            let l = 10f64.powf(rng.random_range(-3.0..2.0));
            let w = 10f64.powf(rng.random_range(-1.0..1.0));
            (l, w)
        })
        .unzip();
    let grf = GrfConfig::new([3, 32, 32], 1, 0).mode_variances().repeat(3);
    let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=0.05").expect("valid spectrum");
    let w = SpectralCovariance::new(spectrum.as_ref(), [3, 32, 32], Normalization::Energy)
        .expect("valid grid")
        .power()
        .repeat(3);
    let mut group = criterion.benchmark_group("theory_predict_3072_modes_200_tau");
    group.sample_size(10);
    for (name, (lambda, w)) in [("distinct", distinct), ("grf_3x32x32", (grf, w))] {
        let tau = tau_grid(&lambda, &w, &config, 200);
        group.bench_function(name, |b| {
            b.iter(|| predict(&lambda, &w, &config, &tau).expect("valid modes"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_theory);
criterion_main!(benches);
