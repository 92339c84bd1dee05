//! The raw network output of a checkpoint on a fixed input, for the PyTorch round trip
//! (`benches/peers/compare_checkpoint.sh`): loads `CHECKPOINT` (a `.safetensors` file written
//! by `sagd train`), draws a seeded input `x ~ N(0, I)` of shape `[4, C, H, W]` and four levels
//! spread over the schedule, and writes into `OUT_DIR`:
//!
//! - `x.npy` (`[4, C, H, W]` float32), `time.npy` (`[4]`, the sinusoidal embedding's time
//!   `1000·index/levels`), and `out.npy` (`[4, C, H, W]`, the network's output).
//!
//! Run with `cargo run --release --example checkpoint_forward -- CHECKPOINT OUT_DIR [--ema]`.

use std::path::PathBuf;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use sagd::models::Conditioning;
use sagd::models::load_net;
use sagd::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ema = args.iter().any(|a| a == "--ema");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [checkpoint, out] = paths[..] else {
        return Err("usage: checkpoint_forward CHECKPOINT OUT_DIR [--ema]".into());
    };
    let (checkpoint, out) = (PathBuf::from(checkpoint), PathBuf::from(out));
    let device = Device::flex();
    let (net, config, ckpt) = load_net(&checkpoint, ema, &device)?;
    let [c, h, w] = ckpt.header.shape;
    let levels = config.schedule.levels()?.len();

    let batch = 4;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let x: Vec<f32> = (0..batch * c * h * w)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let index: Vec<usize> = (0..batch).map(|i| i * (levels - 1) / (batch - 1)).collect();
    let cond = Conditioning::new(index, levels);
    let input = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(x.clone(), [batch, c, h, w]),
        &device,
    );
    let output = net
        .forward(input, &cond)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;

    std::fs::create_dir_all(&out)?;
    let npy = sagd::datasets::npy::write_f32;
    npy(&out.join("x.npy"), &[batch, c, h, w], &x)?;
    npy(&out.join("time.npy"), &[batch], &cond.time)?;
    npy(&out.join("out.npy"), &[batch, c, h, w], &output)?;
    println!(
        "{}: {} weights, x {:?} at times {:?} → {}",
        checkpoint.display(),
        if ema { "EMA" } else { "network" },
        [batch, c, h, w],
        cond.time,
        out.join("out.npy").display()
    );
    Ok(())
}
