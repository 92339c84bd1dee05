//! `sagd demo` as a user runs it: the README's first command, shortened with `--quick`.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// No weights anywhere the command looks.
const NO_WEIGHTS: [(&str, Option<&str>); 2] = [("SAGD_INCEPTION", None), ("SAGD_MODELS_DIR", None)];

/// The README's demo command (the quick start's first `cargo run` line), as arguments.
fn readme_demo_args() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let first = readme[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("cargo run --release -p sagd-cli -- "))
        .expect("a cargo run line in the quick start");
    let args: Vec<String> = first.split_whitespace().map(String::from).collect();
    assert_eq!(
        args[0], "demo",
        "the quick start's first command is the demo: {first}"
    );
    args
}

fn demo(args: &[String], out: &Path, env: &[(&str, Option<&str>)]) -> Output {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--quick", "--quiet", "--out", out.to_str().unwrap()]);
    sagd_env(&all, env)
}

fn finite(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite(), "{what} = {x}");
    x
}

fn is_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
}

/// Every figure the report links, relative to the demo's folder.
fn linked_figures(report: &str) -> Vec<PathBuf> {
    report
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|link| link.ends_with(".png"))
        .map(PathBuf::from)
        .collect()
}

/// The README's first command with `--quick`: a report with every figure and finite numbers,
/// a line saying how to enable FID without weights, commands that reproduce their stage,
/// refusal to overwrite, and a continuation after an interruption that gives the same report.
#[test]
fn readme_demo_quick_writes_a_report_with_finite_numbers() {
    let args = readme_demo_args();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = demo(&args, &out, &NO_WEIGHTS);
    assert!(o.status.success(), "{}", text(&o));
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.starts_with("demo: ") && line.trim().lines().count() == 1,
        "one summary line: {line}"
    );

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in [
        "## Setting",
        "## Data and samples",
        "## Spectra",
        "## Training",
        "## Metrics",
        "## What the numbers say",
        "## Reproduce",
        "To enable them",
        "--quick",
    ] {
        assert!(report.contains(section), "the report lacks `{section}`");
    }
    let figures = linked_figures(&report);
    assert_eq!(
        figures.len(),
        7,
        "clean, corrupted, 3 sample grids, spectra, loss: {figures:?}"
    );
    for f in &figures {
        is_png(&out.join(f));
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["fid"], false);
    assert!(
        finite(
            &summary["corrupted_data_band_ratio"],
            "corrupted data's band ratio"
        ) > 2.0
    );
    for model in ["untrained", "isotropic", "sagd"] {
        let m = &summary["models"][model];
        for key in [
            "log_spectral_distance_clean",
            "log_spectral_distance_corrupted",
            "mode_variance_log_rms_clean",
            "band_ratio_corrupted_band",
        ] {
            finite(&m[key], &format!("{model}.{key}"));
        }
        assert!(m["fid_clean"].is_null());
    }
    for key in ["isotropic", "sagd"] {
        assert!(summary["learned"][key].is_boolean());
    }
    assert!(summary["band_left_out"].is_boolean());
    let stages = summary["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 15);
    for stage in stages {
        finite(&stage["seconds"], "a stage's wall time");
        let command = stage["command"].as_str().unwrap();
        assert!(command.starts_with("sagd "), "{command}");
        assert!(report.contains(command), "the report lacks `{command}`");
    }

    // A report's command reproduces its part: the isotropic model's samples, bit for bit.
    let sample = stages
        .iter()
        .map(|s| s["command"].as_str().unwrap())
        .find(|c| c.starts_with("sagd sample") && c.contains("runs/isotropic --ema"))
        .unwrap();
    let again = dir.path().join("again");
    let mut words: Vec<String> = sample
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let at = words.iter().position(|w| w == "--out").unwrap();
    words[at + 1] = again.display().to_string();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let o = sagd(&[&words[..], &["--quiet"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read(again.join("samples.npy")).unwrap()
            == std::fs::read(out.join("samples/isotropic/samples.npy")).unwrap(),
        "`{sample}` did not reproduce the demo's samples"
    );

    // An existing report is not overwritten.
    let before = std::fs::read(out.join("report.md")).unwrap();
    let o = demo(&args, &out, &NO_WEIGHTS);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--overwrite"), "{}", text(&o));
    assert_eq!(std::fs::read(out.join("report.md")).unwrap(), before);

    // Interrupted before the report (here: the report and the last run's final checkpoint
    // gone): the demo continues the runs and writes the same numbers.
    std::fs::remove_file(out.join("report.md")).unwrap();
    std::fs::remove_file(out.join("runs/sagd/checkpoints/step-00000040.safetensors")).unwrap();
    let o = demo(&args, &out, &NO_WEIGHTS);
    assert!(o.status.success(), "{}", text(&o));
    let resumed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(resumed["models"], summary["models"]);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("earlier invocation"),
        "continued stages are marked"
    );
    assert!(
        report.contains("--stop-at 1`"),
        "the reproduction keeps the step-1 command"
    );

    // An unfinished demo continues only with its own settings: refused before any work.
    std::fs::remove_file(out.join("report.md")).unwrap();
    let configs = std::fs::read(out.join("configs/sagd.toml")).unwrap();
    let mut other = args.clone();
    other.extend(["--seed".to_string(), "1".to_string()]);
    let o = demo(&other, &out, &NO_WEIGHTS);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("seed = 0 there, 1 now"), "{}", text(&o));
    assert_eq!(
        std::fs::read(out.join("configs/sagd.toml")).unwrap(),
        configs
    );
}

/// Bad input is refused (exit 2, one line) before anything is written.
#[test]
fn bad_input_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--device", "gpu"], "gpu"),
        (
            &["--inception", junk.to_str().unwrap()],
            "neither a safetensors file",
        ),
        (
            &["--inception", "/no/such/weights.safetensors"],
            "no such file",
        ),
        (&["--seed", "x"], "--seed"),
        (&["--out", file.to_str().unwrap()], "is a file"),
    ];
    for (extra, needle) in cases {
        let mut all = vec!["demo", "--quick"];
        if !extra.contains(&"--out") {
            all.extend(["--out", out.to_str().unwrap()]);
        }
        all.extend_from_slice(extra);
        let o = sagd_env(&all, &NO_WEIGHTS);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(
            err.contains(needle),
            "{extra:?}: expected `{needle}` in {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!out.exists(), "{extra:?} left {}", out.display());
    }
}

/// With the FID weights (`SAGD_MODELS_DIR`), the report has FID and KID for both models.
#[test]
#[ignore = "needs SAGD_MODELS_DIR (the FID Inception weights)"]
fn demo_quick_with_inception_weights_reports_fid() {
    let models = models_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = demo(
        &["demo".to_string()],
        &out,
        &[
            ("SAGD_INCEPTION", None),
            ("SAGD_MODELS_DIR", Some(models.to_str().unwrap())),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["fid"], true);
    for model in ["isotropic", "sagd"] {
        assert!(finite(&summary["models"][model]["fid_clean"], "FID") > 0.0);
        finite(&summary["models"][model]["kid_clean"]["mean"], "KID");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!report.contains("To enable them"));
}
