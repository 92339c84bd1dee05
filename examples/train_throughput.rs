//! Training-step throughput of the U-Net presets on batches of 64 × 3 × 32 × 32 (coloured
//! noise, DDPM levels, AdamW with clipping and EMA: the whole `sagd train` step), with the
//! timing method of `benches/peers/train_peer.py`: 2 warm-up steps, then the median of at
//! least 5 timed steps. Prints one JSON line per preset with images/s and the process's peak
//! resident memory, for `benches/peers/compare_train.sh`.
//!
//! Run with `cargo run --release --example train_throughput [-- tiny|paper ...]`.
//! `SAGD_BENCH_DEVICE` picks the backend by its config name (`cpu` = flex, the default;
//! `ndarray` or `libtorch` with `--features ndarray` / `tch`; `cuda`; `cube-cpu`),
//! `SAGD_BENCH_STEPS` the timed steps (5), `SAGD_BENCH_WARMUP` the untimed ones before them (2;
//! a CubeCL runtime compiles and autotunes its kernels in the first), and `SAGD_BENCH_PHASES=1` first prints the median wall time of each phase
//! of the step (batch, forward and loss, backward, gradient norm, AdamW, EMA) on stderr.

use std::sync::Arc;
use std::time::Instant;

use sagd::datasets::spec::DataSpec;
use sagd::datasets::transform::Pipeline;
use sagd::models::nets::{ModelConfig, Net, UnetConfig, UnetPreset};
use sagd::models::optim::OptimizerConfig;
use sagd::models::{BatchSource, TrainState};
use sagd::prelude::*;

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sagd::ops::link();
    let presets: Vec<String> = std::env::args().skip(1).collect();
    let presets = if presets.is_empty() {
        vec!["tiny".to_string()]
    } else {
        presets
    };
    let batch = 64;
    let steps: usize = std::env::var("SAGD_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let warmup: usize = std::env::var("SAGD_BENCH_WARMUP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for name in presets {
        let preset = match name.as_str() {
            "tiny" => UnetPreset::Tiny,
            "paper" => UnetPreset::Paper,
            other => return Err(format!("unknown preset `{other}` (tiny or paper)").into()),
        };
        let device = std::env::var("SAGD_BENCH_DEVICE")
            .unwrap_or_else(|_| "cpu".to_string())
            .parse::<sagd::core::DeviceSpec>()?
            .open()?;
        let shape = [3, 32, 32];
        let levels = Schedule::ddpm_linear().levels()?;
        let config = ModelConfig::Unet(UnetConfig::preset(preset));
        let net = Net::build(&config, shape, levels.len(), 0, &device.clone().autodiff())?;
        let params: usize = sagd::models::params::param_infos(&net)
            .iter()
            .map(|i| i.len())
            .sum();
        let data = "shapes:n=1024,size=3x32x32,seed=0"
            .parse::<DataSpec>()?
            .load()?;
        let spectrum = parse_spectrum("power-law:alpha=-0.5,eps=0.05")?;
        let cov = Arc::new(SpectralCovariance::new(
            spectrum.as_ref(),
            shape,
            Normalization::Energy,
        )?);
        let mut source = BatchSource::new(
            data,
            Pipeline::default(),
            0,
            levels,
            cov,
            Parameterization::ColouredEps,
        )?;
        let mut state = TrainState::new(net, OptimizerConfig::default(), 0.999);
        if std::env::var_os("SAGD_BENCH_PHASES").is_some() {
            phases(&mut source, &mut state, batch, &device)?;
        }
        let mut times = Vec::new();
        for step in 0..(warmup + steps) as u64 {
            let t = Instant::now();
            let b = source.batch(step, batch, &device)?;
            state
                .step(&b, 2e-4)
                .map_err(|(what, v)| format!("{what} = {v}"))?;
            if step >= warmup as u64 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        println!(
            "{{\"impl\": \"sagd\", \"preset\": \"{name}\", \"params\": {params}, \"batch\": {batch}, \
             \"median_step_s\": {median}, \"images_per_s\": {}, \"peak_rss_mib\": {}, \"threads\": {}}}",
            batch as f64 / median,
            peak_rss_mib().unwrap_or(f64::NAN),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    Ok(())
}

/// Wall time of each phase of the step (batch, forward and loss, backward, gradient norm,
/// AdamW update, EMA), median over 3 steps after one warm-up, on stderr: the profile behind the
/// throughput. Each phase ends with a read of one value, so the backend has finished it.
fn phases(
    source: &mut BatchSource,
    state: &mut TrainState,
    batch: usize,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    use sagd::models::optim::{apply_update, clip_factor, collect_grads, global_norm};
    let names = [
        "batch",
        "forward+loss",
        "backward",
        "grad norm",
        "adamw",
        "ema",
    ];
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for step in 0..4u64 {
        let mut t = Instant::now();
        let mut lap = |i: usize, rows: &mut Vec<Vec<f64>>| {
            if step > 0 {
                rows[i].push(t.elapsed().as_secs_f64());
            }
            t = Instant::now();
        };
        let b = source.batch(step, batch, device)?;
        let _ = b.x_t.clone().sum().into_scalar::<f32>();
        lap(0, &mut rows);
        let prediction = state.net.forward(b.x_t.clone(), &b.cond);
        let loss = (prediction - b.target.clone()).square().mean();
        let _ = loss.clone().into_scalar::<f32>();
        lap(1, &mut rows);
        let grads = loss.backward();
        let grads = collect_grads(&state.net, &grads);
        lap(2, &mut rows);
        let norm = global_norm(&grads);
        lap(3, &mut rows);
        let net = state.net.clone();
        let scale = clip_factor(norm, state.config.clip());
        state.net = apply_update(net, grads, &state.config, &mut state.optimizer, 2e-4, scale);
        let _ = sagd::models::params::flat_params(&state.net)[0]
            .clone()
            .sum()
            .into_scalar::<f32>();
        lap(4, &mut rows);
        state.ema.update(&state.net, state.ema_decay);
        let _ = state.ema.weights[0].clone().sum().into_scalar::<f32>();
        lap(5, &mut rows);
    }
    for (name, mut times) in names.iter().zip(rows) {
        times.sort_by(|a, b| a.total_cmp(b));
        eprintln!("{name:>14}: {:8.1} ms", 1e3 * times[times.len() / 2]);
    }
    Ok(())
}
