//! Coloured-noise throughput with the timing method of `benches/peers/noise_peer.py` (warm-up,
//! then at least 2 s and 5 batches, median time per batch), printed as JSON so that
//! `benches/peers/compare_noise.sh` can put sagd and its peers side by side. The criterion
//! benchmark `cargo bench --bench noise` measures the same thing with statistics.
//!
//! Run with `cargo run --release --example noise_throughput`.

use std::time::{Duration, Instant};

use sagd::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=1e-10")?;
    let mut rows = Vec::new();
    for (n, c, h, w) in [(256usize, 3usize, 32usize, 32usize), (16, 3, 256, 256)] {
        let cov = SpectralCovariance::new(spectrum.as_ref(), [c, h, w], Normalization::Energy)?;
        let mut rng = noise_rng(0);
        let mut out = vec![0f32; n * c * h * w];
        cov.sample_into(&mut out, &mut rng)?;
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < 5 || start.elapsed() < Duration::from_secs(2) {
            let t = Instant::now();
            cov.sample_into(&mut out, &mut rng)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        rows.push(format!(
            "{{\"impl\": \"sagd\", \"shape\": [{n}, {c}, {h}, {w}], \"median_s\": {median}, \"images_per_s\": {}, \"threads\": {}}}",
            n as f64 / median,
            rayon::current_num_threads()
        ));
    }
    println!("[{}]", rows.join(", "));
    Ok(())
}
