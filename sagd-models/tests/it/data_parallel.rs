//! Data-parallel training (`devices`): replicas with equal shares of the batch follow the
//! single-device run with the whole batch, a run moves between device counts on resume, and
//! bad device lists are refused before any work.

use std::path::Path;

use sagd_models::checkpoint::{self, Checkpoint, Group};
use sagd_models::{ModelError, RunConfig, TrainOptions, train};

/// A run of `steps` steps with a global batch of `batch` on the tiny U-Net (convolutions,
/// GroupNorm, attention, time embedding: every layer kind the nets use) or a small MLP, with
/// AdamW, warm-up, clipping (active: the first gradients are far above 0.05) and an EMA.
fn config(model: &str, batch: usize, steps: u64, devices: &[&str]) -> RunConfig {
    RunConfig::from_toml(
        &config_text(model, batch, steps, "cpu", devices),
        Path::new("test"),
    )
    .unwrap()
}

/// The text of [`config`]'s run on `device`.
fn config_text(model: &str, batch: usize, steps: u64, device: &str, devices: &[&str]) -> String {
    let model = match model {
        "unet" => "kind = \"unet\"\npreset = \"tiny\"",
        _ => "kind = \"mlp\"\ndepth = 2\nwidth = 32\nembedding = 16",
    };
    let devices = if devices.is_empty() {
        String::new()
    } else {
        format!(
            "devices = [{}]\n",
            devices
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "seed = 3\nsteps = {steps}\nbatch = {batch}\ncheckpoint_every = 1\nkeep_checkpoints = \
         100\nlog_every = 1\ndevice = \"{device}\"\n{devices}\
         [data]\nspec = \"shapes:n=64,size=3x16x16,seed=2\"\ntransforms = [\"hflip\"]\n\
         [noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
         [model]\n{model}\n\
         [optimizer]\nlr = 2e-3\nwarmup = 2\ngrad_clip = 0.05\n[ema]\ndecay = 0.9\n"
    )
}

fn run(config: &RunConfig, dir: &Path, resume: bool, stop_at: Option<u64>) {
    train(config, dir, &TrainOptions { resume, stop_at }, &mut |_| {}).unwrap();
}

fn checkpoint_at(dir: &Path, step: u64) -> Checkpoint {
    Checkpoint::read(&dir.join("checkpoints").join(checkpoint::file_name(step))).unwrap()
}

/// The largest `|a − b| / (1 + |b|)` over every value of every group (weights, Adam's two
/// moments, EMA) of two checkpoints.
fn distance(a: &Checkpoint, b: &Checkpoint) -> f64 {
    let mut worst = 0.0f64;
    for group in [Group::Model, Group::AdamM, Group::AdamV, Group::Ema] {
        let (u, v) = (a.group(group), b.group(group));
        assert!(!u.is_empty() && u.len() == v.len(), "{group:?}");
        for (p, q) in u.iter().zip(&v) {
            for (&s, &t) in p.iter().zip(q.iter()) {
                worst = worst.max((s as f64 - t as f64).abs() / (1.0 + (t as f64).abs()));
            }
        }
    }
    worst
}

/// The loss column of `log.csv`.
fn losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("log.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// Float tolerance of a data-parallel run against the single-device one. The two compute the
/// same sums in another order (the mean over a share, then over the shares), so each gradient
/// differs by a few f32 roundings, ~1e-7 relative. AdamW divides the first moment by the root
/// of the second; where a gradient is small against Adam's ε = 1e-8 that ratio can move by
/// more, so after 4 steps of lr 2e-3 a weight can move by at most ~4·lr·(relative error) for
/// ordinary gradients. 2e-5 relative leaves two orders of magnitude of headroom over that and
/// is still 100× below what a missing or wrong average does (checked in the test).
const TOLERANCE: f64 = 2e-5;

/// Two CPU replicas with 4 images each end, after 4 steps, where one device with the batch of
/// 8 ends: weights, Adam moments and EMA within [`TOLERANCE`], and the same loss per step. A
/// run that trained on one share only (what a replica without the gradient average would see)
/// is far outside it.
#[test]
fn two_replicas_follow_the_single_device_run() {
    sagd_ops::link();
    let tmp = tempfile::tempdir().unwrap();
    let (one, two, half) = (
        tmp.path().join("one"),
        tmp.path().join("two"),
        tmp.path().join("half"),
    );
    run(&config("unet", 8, 4, &[]), &one, false, None);
    run(&config("unet", 8, 4, &["cpu", "cpu"]), &two, false, None);
    let d = distance(&checkpoint_at(&two, 4), &checkpoint_at(&one, 4));
    eprintln!("2 replicas vs 1 device after 4 steps: {d:e}");
    assert!(d <= TOLERANCE, "2 replicas vs 1 device: {d:e}");
    for (a, b) in losses(&two).iter().zip(losses(&one)) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "loss {a} vs {b}");
    }
    assert_eq!(losses(&two).len(), 4);

    // What the replicas would reach without averaging: the first share's gradient alone. The
    // batch of 4 is the first half of the batch of 8 (the same stream), so this run sees
    // exactly replica 0's share.
    run(&config("unet", 4, 4, &[]), &half, false, None);
    let wrong = distance(&checkpoint_at(&half, 4), &checkpoint_at(&one, 4));
    eprintln!("one share alone vs the whole batch: {wrong:e}");
    assert!(
        wrong > 100.0 * TOLERANCE,
        "one share alone is only {wrong:e} from the whole batch: the test could not tell a \
         missing average"
    );
}

/// Four replicas (the batch of 8 in shares of 2) also follow the single-device run, on the
/// MLP; and a 4-replica run resumed on one device, and a 1-device run resumed on two, end
/// where the single-device run ends.
#[test]
fn a_run_moves_between_device_counts_on_resume() {
    sagd_ops::link();
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    run(&config("mlp", 8, 6, &[]), &dir("one"), false, None);
    let reference = checkpoint_at(&dir("one"), 6);

    run(
        &config("mlp", 8, 6, &["cpu", "cpu", "cpu", "cpu"]),
        &dir("four"),
        false,
        None,
    );
    let d = distance(&checkpoint_at(&dir("four"), 6), &reference);
    eprintln!("4 replicas vs 1 device: {d:e}");
    assert!(d <= TOLERANCE, "4 replicas vs 1 device: {d:e}");

    // 2 replicas to step 3, then one device to the end.
    run(
        &config("mlp", 8, 6, &["cpu", "cpu"]),
        &dir("two-then-one"),
        false,
        Some(3),
    );
    run(&config("mlp", 8, 6, &[]), &dir("two-then-one"), true, None);
    let d = distance(&checkpoint_at(&dir("two-then-one"), 6), &reference);
    eprintln!("2 replicas then 1 device: {d:e}");
    assert!(d <= TOLERANCE, "2 replicas then 1 device: {d:e}");
    // The run's config.toml records the devices of its last invocation.
    let saved = RunConfig::from_file(&dir("two-then-one").join("config.toml")).unwrap();
    assert!(saved.devices.is_empty(), "{:?}", saved.devices);

    // One device to step 3, then 2 replicas to the end.
    run(
        &config("mlp", 8, 6, &[]),
        &dir("one-then-two"),
        false,
        Some(3),
    );
    run(
        &config("mlp", 8, 6, &["cpu", "cpu"]),
        &dir("one-then-two"),
        true,
        None,
    );
    let d = distance(&checkpoint_at(&dir("one-then-two"), 6), &reference);
    eprintln!("1 device then 2 replicas: {d:e}");
    assert!(d <= TOLERANCE, "1 device then 2 replicas: {d:e}");
}

/// The error reading a config with `devices` (with `device` and `batch`) gives, or else the
/// error `train` returns for it, and that nothing was written: the refusal comes before any
/// work.
fn refused(device: &str, devices: &[&str], batch: usize) -> String {
    let text = config_text("mlp", batch, 4, device, devices);
    let c = match RunConfig::from_toml(&text, Path::new("test")) {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let err = train(&c, &out, &TrainOptions::default(), &mut |_| {}).unwrap_err();
    assert!(!out.exists(), "{out:?} was written before the error: {err}");
    err.to_string()
}

#[test]
fn bad_device_lists_are_refused_before_any_work() {
    // A batch the replicas cannot share equally.
    let e = refused("cpu", &["cpu", "cpu", "cpu"], 8);
    for part in [
        "batch",
        "8",
        "multiple of the 3 devices",
        "divides 8 (1, 2, 4, 8)",
        "batch = 6 or 9",
    ] {
        assert!(e.contains(part), "`{part}` missing from: {e}");
    }
    // Devices that do not exist: an indexed CPU, an unknown kind, a GPU index this build or
    // machine does not have.
    let e = refused("cpu", &["cpu", "cpu:1"], 8);
    assert!(e.contains("cpu:1") && e.contains("once per replica"), "{e}");
    let e = refused("cpu", &["cpu", "tpu:0"], 8);
    assert!(
        e.contains("tpu:0") && e.contains("cpu, cuda or cuda:N"),
        "{e}"
    );
    let e = refused("cpu", &["cuda:x", "cuda:1"], 8);
    assert!(e.contains("cuda:x") && e.contains("GPU index"), "{e}");
    let e = refused("cuda", &["cuda:0", "cuda:7"], 8);
    assert!(
        e.contains("cuda") && e.contains("is not available"),
        "a GPU this build or machine lacks: {e}"
    );
    // A list of another kind than `device`, and a GPU listed twice.
    let e = refused("cpu", &["cuda:0", "cuda:1"], 8);
    assert!(e.contains("device = \"cuda\""), "{e}");
    let e = refused("cpu", &["cpu", "cuda:0"], 8);
    assert!(e.contains("mixes cpu and cuda"), "{e}");
    // An empty entry is named by its place; fewer images than replicas.
    let e = refused("cpu", &["cpu", "", "cpu"], 9);
    assert!(
        e.contains("[cpu, , cpu]") && e.contains("entry 2 is empty"),
        "{e}"
    );
    let e = refused("cpu", &["cpu", "cpu", "cpu"], 2);
    assert!(
        e.contains("divides 2 (1, 2)") && e.contains("batch = 3"),
        "{e}"
    );
    assert!(!e.contains("3 or 3"), "{e}");
    let e = refused("cuda", &["cuda:1", "cuda:1"], 8);
    assert!(e.contains("cuda:1 appears twice"), "{e}");
}

/// A config file with `devices` is checked like every other key, and the key is left out of
/// the written config when empty (configs written before it existed read the same).
#[test]
fn the_devices_key_reads_and_writes() {
    let c = config("mlp", 8, 4, &["cpu", "cpu"]);
    assert_eq!(c.devices, [sagd_core::DeviceSpec::Cpu; 2]);
    let back = RunConfig::from_toml(&c.to_toml(), Path::new("test")).unwrap();
    assert_eq!(back.devices, c.devices);
    let plain = config("mlp", 8, 4, &[]);
    assert!(!plain.to_toml().contains("devices"), "{}", plain.to_toml());
    let bad = RunConfig::from_toml(
        "devices = \"cpu,cpu\"\n[data]\nspec = \"shapes\"\n",
        Path::new("run.toml"),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(
            bad,
            ModelError::Config { .. } | ModelError::ConfigFile { .. }
        ),
        "{bad:?}"
    );
    assert!(bad.to_string().contains("devices"), "{bad}");
}
