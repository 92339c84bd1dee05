//! `sagd train` as a user runs it: a run, a kill and a resume, and the errors.

use crate::common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sagd_models::checkpoint::{self, Checkpoint, Group};

const CONFIG: &str = "seed = 3\nsteps = 12\nbatch = 4\ncheckpoint_every = 4\nlog_every = 2\n\
[data]\nspec = \"shapes:n=64,size=1x8x8,seed=1\"\n\
[noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
[model]\nkind = \"mlp\"\ndepth = 2\nwidth = 64\nembedding = 16\n\
[optimizer]\nlr = 1e-3\nwarmup = 2\n";

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn final_weights(out: &Path, step: u64) -> Vec<u32> {
    let c = Checkpoint::read(&out.join("checkpoints").join(checkpoint::file_name(step))).unwrap();
    c.group(Group::Model)
        .into_iter()
        .chain(c.group(Group::Ema))
        .flat_map(|v| v.iter().map(|f| f.to_bits()))
        .collect()
}

/// A run writes its config, log and checkpoints, keeps the newest three, and refuses a resume
/// that would change what it computes.
#[test]
fn train_writes_its_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let straight = dir.path().join("straight");
    let out = sagd(&[
        "train",
        "--config",
        &config,
        "--out",
        straight.to_str().unwrap(),
        "--quiet",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &summary["step"],
            &summary["total_steps"],
            &summary["complete"]
        ),
        (
            &serde_json::json!(12),
            &serde_json::json!(12),
            &serde_json::json!(true)
        )
    );
    for f in ["config.toml", "log.csv"] {
        assert!(straight.join(f).exists(), "{f}");
    }
    let log = std::fs::read_to_string(straight.join("log.csv")).unwrap();
    assert!(
        log.starts_with("step,loss,lr,grad_norm,images_per_sec\n"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 1 + 6);
    // keep_checkpoints = 3 (default): steps 4, 8, 12.
    let kept: Vec<u64> = checkpoint::list(&straight.join("checkpoints"))
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(kept, [4, 8, 12]);

    // Changing what the run computes is refused (exit 2) and names the key.
    let bad = write_config(dir.path(), &CONFIG.replace("lr = 1e-3", "lr = 2e-3"));
    let out = sagd(&[
        "train",
        "--config",
        &bad,
        "--out",
        straight.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("optimizer.lr"));
}

/// Killed at an arbitrary point and resumed, a run ends bit for bit where an uninterrupted run
/// of the same config ends.
#[test]
fn kill_and_resume_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let text = CONFIG
        .replace("steps = 12", "steps = 400")
        .replace("checkpoint_every = 4", "checkpoint_every = 8");
    let config = write_config(dir.path(), &text);
    let straight = dir.path().join("straight");
    assert!(
        sagd(&[
            "train",
            "--config",
            &config,
            "--out",
            straight.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );

    let killed = dir.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sagd"))
        .args([
            "train",
            "--config",
            &config,
            "--out",
            killed.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = killed.join("checkpoints").join(checkpoint::file_name(8));
    let start = Instant::now();
    while !first.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = checkpoint::list(&killed.join("checkpoints")).unwrap();
    let (last, _) = left.last().unwrap();
    assert!(*last < 400, "the kill came after the run had finished");
    let out = sagd(&[
        "train",
        "--out",
        killed.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(final_weights(&straight, 400), final_weights(&killed, 400));
    let log = std::fs::read_to_string(killed.join("log.csv")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=200).map(|k| 2 * k).collect::<Vec<_>>());
}

/// Config mistakes exit 2 with a message naming the key; a spectrum the terminal-SNR check
/// refuses exits 2 unless allowed.
#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    for (text, key) in [
        (format!("{CONFIG}bogus = 1\n"), "bogus"),
        (CONFIG.replace("batch = 4", "batch = \"four\""), "batch"),
        (CONFIG.replace("depth = 2", "depth = 0"), "model.depth"),
        (
            CONFIG.replace("kind = \"mlp\"", "kind = \"transformer\""),
            "transformer",
        ),
    ] {
        let config = write_config(dir.path(), &text);
        let out = sagd(&["train", "--config", &config, "--out", out_dir, "--quiet"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
    let out = sagd(&[
        "train",
        "--config",
        "/nonexistent/run.toml",
        "--out",
        out_dir,
    ]);
    assert_eq!(out.status.code(), Some(2));

    let papers = CONFIG.replace("eps=0.05", "eps=1e-10");
    let config = write_config(dir.path(), &papers);
    let out = sagd(&["train", "--config", &config, "--out", out_dir, "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("terminal-SNR") && err.contains("allow-low-terminal-noise"),
        "{err}"
    );
    let out = sagd(&[
        "train",
        "--config",
        &config,
        "--out",
        out_dir,
        "--quiet",
        "--stop-at",
        "2",
        "--allow-low-terminal-noise",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A U-Net whose GroupNorm groups hold one value at some level (widths [8, 8, 8] in 8 groups on
/// 1×4×4 images: 1×1 at level 2, pytorch#19250) is a config error: exit 2, naming the level,
/// before anything is written.
#[test]
fn a_unet_with_single_value_groupnorm_groups_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let unet = "[model]\nkind = \"unet\"\nwidths = [8, 8, 8]\ngroups = 8\nattention = []\n";
    let text = CONFIG.replace("size=1x8x8", "size=1x4x4").replace(
        "[model]\nkind = \"mlp\"\ndepth = 2\nwidth = 64\nembedding = 16\n",
        unet,
    );
    assert!(
        text.contains("groups = 8") && text.contains("1x4x4"),
        "{text}"
    );
    let config = write_config(dir.path(), &text);
    let out = sagd(&[
        "train",
        "--config",
        &config,
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("model.groups") && err.contains("U-Net level 2 is 1×1 with 8 channels"),
        "{err}"
    );
    assert!(!out_dir.exists(), "{}", out_dir.display());
}

/// `--device cuda` where it cannot run (a build without the feature, or no driver) exits 1
/// before any work with one line naming the fix, for `train` and `sample`, and writes nothing;
/// a bad `[noise] draw` names the key.
#[test]
fn an_unusable_device_is_one_line_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let run = dir.path().join("run");
    let samples = dir.path().join("samples");
    for args in [
        vec![
            "train",
            "--config",
            &config,
            "--out",
            run.to_str().unwrap(),
            "--device",
            "cuda",
        ],
        vec![
            "sample",
            "--oracle",
            "grf:beta=2,size=1x8x8",
            "--spectrum",
            "isotropic",
            "--count",
            "2",
            "--out",
            samples.to_str().unwrap(),
            "--device",
            "cuda",
        ],
    ] {
        let out = sagd(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // A cuda build on a machine with a GPU: nothing to check here.
            if !cfg!(feature = "cuda") {
                panic!("{args:?} ran on cuda in a build without it: {err}");
            }
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("`cuda` is not available"), "{err}");
        let fix = if cfg!(feature = "cuda") {
            "LD_LIBRARY_PATH"
        } else {
            "--features cuda"
        };
        assert!(err.contains(fix) && err.contains("--device cpu"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!run.exists() && !samples.exists(), "{args:?} wrote output");
    }
    let bad = CONFIG.replace(
        "spectrum = \"power-law:alpha=-0.5,eps=0.05\"",
        "spectrum = \"power-law:alpha=-0.5,eps=0.05\"\ndraw = \"gpu\"",
    );
    let config = write_config(dir.path(), &bad);
    let out = sagd(&["train", "--config", &config, "--out", run.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("draw") && err.contains("device"), "{err}");
}

/// `--devices cpu,cpu` trains data-parallel and says so; the run continues on one device; bad
/// lists are refused before any work, naming what was wrong.
#[test]
fn devices_flag_trains_data_parallel_and_refuses_bad_lists() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let out = sagd(&[
        "train",
        "--config",
        &config,
        "--out",
        run_s,
        "--devices",
        "cpu,cpu",
        "--stop-at",
        "4",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("data-parallel over 2 replicas [2 × cpu], 2 images each per step"),
        "{err}"
    );
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("devices = [\"cpu\", \"cpu\"]"), "{saved}");
    // Resumed on one device (the config given has no `devices`): it runs to the end.
    let out = sagd(&[
        "train", "--config", &config, "--out", run_s, "--resume", "--quiet", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["complete"], true, "{summary}");

    let fresh = dir.path().join("fresh");
    let fresh_s = fresh.to_str().unwrap();
    for (devices, code, parts) in [
        ("cpu,cpu,cpu", 2, vec!["batch", "multiple of the 3 devices"]),
        ("cpu,cpu:1", 2, vec!["cpu:1", "once per replica"]),
        ("cpu,gpu", 2, vec!["gpu", "cpu, cuda or cuda:N"]),
        ("cuda:0,cuda:0", 2, vec!["cuda:0 appears twice"]),
    ] {
        let out = sagd(&[
            "train",
            "--config",
            &config,
            "--out",
            fresh_s,
            "--devices",
            devices,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{devices}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{devices}: {err}");
        for part in parts {
            assert!(err.contains(part), "{devices}: `{part}` missing from {err}");
        }
        assert!(!fresh.exists(), "{devices}: wrote {fresh:?}");
    }
    // Two flags that disagree on the kind.
    let out = sagd(&[
        "train",
        "--config",
        &config,
        "--out",
        fresh_s,
        "--device",
        "cuda",
        "--devices",
        "cpu,cpu",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--device cuda and --devices cpu,cpu"), "{err}");
    assert!(!fresh.exists(), "wrote {fresh:?}");
    // GPUs this build (or machine) lacks: the device error, before any work.
    let out = sagd(&[
        "train",
        "--config",
        &config,
        "--out",
        fresh_s,
        "--devices",
        "cuda:0,cuda:1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    if !cfg!(feature = "cuda") {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("`cuda` is not available"), "{err}");
        assert!(!fresh.exists(), "wrote {fresh:?}");
    }
}

/// The ready configs of `experiments/` run as documented (two steps each; the MNIST one reads
/// `SAGD_DATA_DIR`).
#[test]
#[ignore = "needs SAGD_DATA_DIR (real MNIST) and trains U-Nets; run with --ignored"]
fn ready_configs_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data_dir = data_dir().to_str().expect("a UTF-8 data path").to_string();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "shapes-tiny-isotropic",
        "shapes-tiny-powerlaw",
        "mnist32-unet",
    ] {
        let text = std::fs::read_to_string(root.join("experiments").join(format!("{name}.toml")))
            .unwrap()
            .replace("../shared/data", &data_dir)
            .replace("batch = 64", "batch = 8");
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let out = dir.path().join(name);
        let run = sagd(&[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--stop-at",
            "2",
            "--quiet",
        ]);
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            out.join("checkpoints")
                .join(checkpoint::file_name(2))
                .exists(),
            "{name}"
        );
    }
}
