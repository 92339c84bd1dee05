//! Sampling throughput of the U-Net presets with DDIM (η = 0) over the DDPM-linear schedule,
//! on batches of 3 × 32 × 32 images with power-law noise, with the timing method of
//! `benches/peers/sample_peer.py`: one untimed short warm-up, then the median of `repeats`
//! whole sampling runs. Prints one JSON line per preset with images/s and the process's peak
//! resident memory, for `benches/peers/compare_sample.sh`.
//!
//! Run with `cargo run --release --example sample_throughput [-- tiny|paper ...]`; the batch,
//! step count and repeats come from `SAGD_BENCH_BATCH` (64), `SAGD_BENCH_STEPS` (50) and
//! `SAGD_BENCH_REPEATS` (3), the backend from `SAGD_BENCH_DEVICE` (`cpu` = flex, the default;
//! `ndarray`, `libtorch` or `cuda` in builds with those features).

use std::time::Instant;

use sagd::models::{Net, RunConfig, TrainedDenoiser};
use sagd::prelude::*;
use sagd::samplers::{Method, SamplerConfig};

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sagd::ops::link();
    let presets: Vec<String> = std::env::args().skip(1).collect();
    let presets = if presets.is_empty() {
        vec!["tiny".to_string()]
    } else {
        presets
    };
    let (batch, steps, repeats) = (
        env("SAGD_BENCH_BATCH", 64),
        env("SAGD_BENCH_STEPS", 50),
        env("SAGD_BENCH_REPEATS", 3).max(1),
    );
    let device = std::env::var("SAGD_BENCH_DEVICE")
        .unwrap_or_else(|_| "cpu".to_string())
        .parse::<sagd::core::DeviceSpec>()?
        .open()?;
    let shape = DynShape::new(3, 32, 32);
    for name in presets {
        if name != "tiny" && name != "paper" {
            return Err(format!("unknown preset `{name}` (tiny or paper)").into());
        }
        let config = RunConfig::from_toml(
            &format!(
                "[data]\nspec = \"shapes:n=64,size=3x32x32\"\n\
                 [noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
                 [model]\nkind = \"unet\"\npreset = \"{name}\"\n"
            ),
            std::path::Path::new("<sample_throughput>"),
        )?;
        let levels = config.schedule.levels()?.len();
        let net = Net::build(&config.model, shape.dims(), levels, 0, &device)?;
        let params: usize = sagd::models::params::param_infos(&net)
            .iter()
            .map(|i| i.len())
            .sum();
        let denoiser = TrainedDenoiser::new(net, config, shape)?;
        let run = |steps: usize, seed: u64| -> Result<f64, Box<dyn std::error::Error>> {
            let sampler = SamplerConfig::new(Method::Ddim, steps).build::<DynShape>()?;
            let t = Instant::now();
            let images =
                sampler.sample(&denoiser, batch, &mut noise_rng(seed), &device, &mut |_| {})?;
            let _ = images.to_host();
            Ok(t.elapsed().as_secs_f64())
        };
        run(2, 99)?;
        let mut times = (0..repeats)
            .map(|r| run(steps, r as u64))
            .collect::<Result<Vec<f64>, _>>()?;
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        println!(
            "{{\"impl\": \"sagd\", \"preset\": \"{name}\", \"params\": {params}, \"batch\": {batch}, \
             \"steps\": {steps}, \"median_run_s\": {median}, \"images_per_s\": {}, \
             \"peak_rss_mib\": {}, \"threads\": {}}}",
            batch as f64 / median,
            peak_rss_mib().unwrap_or(f64::NAN),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    Ok(())
}
