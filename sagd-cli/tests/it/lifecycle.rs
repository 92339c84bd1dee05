//! The run lifecycle as a user meets it: a run stopped early and resumed is the uninterrupted
//! run, requests that would change a run are refused without touching it, non-finite data are
//! refused at load, and the README's quick start runs as written.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};

/// The run of the lifecycle issue: 8 steps, warm-up 2, cosine to 0, a row per step.
const CONFIG: &str = "seed = 7\nsteps = 8\nbatch = 8\ncheckpoint_every = 2\nlog_every = 1\n\
keep_checkpoints = 10\n\
[data]\nspec = \"gmm:components=2,size=1x4x4,n=64\"\n\
[noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
[model]\nkind = \"mlp\"\ndepth = 1\nwidth = 32\nembedding = 16\n\
[optimizer]\nlr = 1e-2\nwarmup = 2\ndecay = \"cosine\"\n\
[ema]\ndecay = 0.9\n";

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// `log.csv` without the measured images/s column.
fn log_rows(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("log.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn ok(args: &[&str]) -> String {
    let o = sagd(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Input 1 and 3 of the issue: 8 steps straight against a stop after step 4 and a resume.
/// The learning rates, losses, gradient norms and the step-8 checkpoint agree exactly, and
/// the cosine's last step runs at min_lr = 0.
#[test]
fn a_stopped_and_resumed_run_is_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let (a, b) = (dir.path().join("A"), dir.path().join("B"));
    let text_a = ok(&["train", "--config", s(&config), "--out", s(&a), "--quiet"]);
    assert!(text_a.starts_with("trained to step 8 of 8"), "{text_a}");
    let stop = ok(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&b),
        "--stop-at",
        "4",
        "--quiet",
    ]);
    assert!(
        stop.starts_with("stopped at step 4 of 8") && stop.contains("--resume"),
        "{stop}"
    );
    ok(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&b),
        "--resume",
        "--quiet",
    ]);
    let rows = log_rows(&a);
    assert_eq!(rows.len(), 9);
    assert_eq!(rows, log_rows(&b));
    let ckpt =
        |run: &Path| std::fs::read(run.join("checkpoints/step-00000008.safetensors")).unwrap();
    assert!(ckpt(&a) == ckpt(&b), "the step-8 checkpoints differ");
    // lr 1e-2, warm-up 2: 5e-3, 1e-2, then ½·1e-2·(1 + cos(π(s − 2)/5)) down to 0 at step 8.
    let lr: Vec<f64> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    for (s, got) in lr.iter().enumerate() {
        let want = match s {
            0 => 5e-3,
            1 => 1e-2,
            s => 0.5e-2 * (1.0 + (std::f64::consts::PI * (s - 2) as f64 / 5.0).cos()),
        };
        assert!(
            (got - want).abs() <= 1e-6 * want.max(1e-9),
            "step {}: {got} vs {want}",
            s + 1
        );
    }
    assert_eq!(lr[7], 0.0);
}

/// Input 2 of the issue and its kind: a stop at or before the checkpoint, a new length or a
/// stop past the end are refused (exit 2, naming the option or key) with every file of the
/// run unchanged; the removed `--steps` says what replaced it; resuming a complete run exits
/// 0 and changes nothing.
#[test]
fn refused_requests_leave_the_run_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let a = dir.path().join("A");
    ok(&["train", "--config", s(&config), "--out", s(&a), "--quiet"]);
    let before = snapshot(&a);
    for (extra, needle) in [
        (&["--resume", "--stop-at", "6", "--json"][..], "--stop-at 6"),
        (&["--resume", "--stop-at", "8"], "step 8"),
        (&["--resume", "--stop-at", "9"], "steps = 8"),
        (&["--resume", "--total-steps", "6"], "`steps` = 6"),
        (&["--resume", "--total-steps", "12"], "--stop-at"),
        (&["--steps", "6"], "--total-steps"),
        (&["--resume", "--steps", "6"], "--stop-at"),
        (&[], "--resume"),
    ] {
        let mut args = vec!["train", "--config", s(&config), "--out", s(&a), "--quiet"];
        args.extend_from_slice(extra);
        let o = sagd(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty(), "{extra:?}");
        assert!(
            snapshot(&a) == before,
            "{extra:?} changed the run directory"
        );
    }
    let out = ok(&["train", "--out", s(&a), "--resume"]);
    assert!(out.contains("already complete at step 8 of 8"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["train", "--out", s(&a), "--resume", "--json"])).unwrap();
    assert_eq!(json["ran_steps"], 0);
    assert_eq!(json["complete"], true);
    assert!(
        json["last_loss"].as_f64().is_some_and(f64::is_finite),
        "{json}"
    );
    assert!(snapshot(&a) == before, "resuming a complete run changed it");
    // A new run whose stop is impossible leaves no directory behind.
    let c = dir.path().join("C");
    let o = sagd(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&c),
        "--stop-at",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!c.exists());
}

/// Input 4 of the issue: a float32 `.npy` with one NaN pixel is refused by `data stats` and
/// by `train` at load, naming the file and the index; nothing is trained or written.
#[test]
fn non_finite_pixels_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("images.npy");
    let mut values = vec![0.25f32; 4 * 16];
    values[37] = f32::NAN;
    sagd_datasets::npy::write_f32(&file, &[4, 1, 4, 4], &values).unwrap();
    let spec = format!("npy:{}", file.display());
    let o = sagd(&["data", "stats", &spec, "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains("images.npy") && err.contains("[2, 0, 1, 1]") && err.contains("NaN"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        CONFIG.replace("gmm:components=2,size=1x4x4,n=64", &spec),
    )
    .unwrap();
    let run = dir.path().join("run");
    let o = sagd(&["train", "--config", s(&config), "--out", s(&run), "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains("images.npy") && err.contains("[2, 0, 1, 1]"),
        "{err}"
    );
    assert!(!run.exists(), "a refused run left {}", run.display());
}

/// The quick start's `sagd` commands but the demo, as the README writes them, run in order from the
/// repository root, shortened for a test: stops at 300 and 600 become 2 and 3, and sampling
/// draws 2 images in 3 steps (which the evaluation then compares); run directories go to a
/// temporary folder.
#[test]
fn readme_quick_start_commands_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let prefix = "cargo run --release -p sagd-cli -- ";
    let commands: Vec<&str> = section
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        // The demo (the first command) has its own test, tests/demo.rs.
        .filter(|c| !c.starts_with("demo"))
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("train ") && c.contains("--stop-at"))
            && commands.iter().any(|c| c.contains("--resume"))
            && commands.iter().any(|c| c.starts_with("sample ")),
        "the quick start should train, resume and sample: {commands:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let runs = format!("{}/runs/", dir.path().display());
    for command in commands {
        let args: Vec<String> = command
            .split_whitespace()
            .map(|a| a.replace("runs/", &runs))
            .collect();
        let mut shortened = args.clone();
        for i in 1..args.len() {
            shortened[i] = match (args[i - 1].as_str(), args[i].as_str()) {
                ("--stop-at", "300") => "2",
                ("--stop-at", "600") => "3",
                ("--count", _) => "2",
                ("--steps", _) if args[0] == "sample" => "3",
                _ => continue,
            }
            .to_string();
        }
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sagd"))
            .args(&shortened)
            .arg("--quiet")
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(o.status.success(), "{command}: {}", text(&o));
    }
    let run = dir.path().join("runs/shapes-powerlaw");
    assert!(run.join("checkpoints/step-00000003.safetensors").is_file());
    assert!(run.join("samples/samples.npy").is_file());
    assert!(run.join("eval/metrics.json").is_file());
}

/// A directory with a run but no checkpoint yet (a kill before the first one) is refused
/// without --resume; with --resume it starts over from step 0 and says so, --quiet or not.
/// Argument and TOML errors are one line.
#[test]
fn half_started_runs_warnings_and_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let run = dir.path().join("R");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("config.toml"), CONFIG).unwrap();
    let before = snapshot(&run);
    let o = sagd(&["train", "--config", s(&config), "--out", s(&run), "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err.contains("no checkpoint yet") && err.contains("--resume"),
        "{err}"
    );
    assert!(snapshot(&run) == before);
    let o = sagd(&[
        "train",
        "--out",
        s(&run),
        "--resume",
        "--quiet",
        "--stop-at",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: --resume"),
        "{}",
        text(&o)
    );
    for args in [
        &["train", "--out", s(&run), "--resume", "--stop-at", "abc"][..],
        &["train", "--out", s(&run), "--resume", "--stop-at", "-1"],
        &["train", "--out", s(&run), "--resum"],
        &["train", "--out", s(&dir.path().join("none")), "--resume"],
    ] {
        let o = sagd(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    std::fs::write(run.join("config.toml"), format!("{CONFIG}garbage = [\n")).unwrap();
    let o = sagd(&["train", "--out", s(&run), "--resume"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("config.toml") && err.contains("line"), "{err}");
}
