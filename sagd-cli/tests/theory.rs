//! `sagd theory predict` as a user runs it.

use std::process::{Command, Output};

fn sagd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagd"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn predict_prints_the_documented_json_and_draws_its_plot() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("theory.png");
    let o = sagd(&[
        "theory",
        "predict",
        "--data",
        "grf:size=1x8x8,beta=2",
        "--spectrum",
        "isotropic",
        "--tau-points",
        "50",
        "--json",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["eta", "sigma_min", "sigma_max", "tau", "modes", "exponent"] {
        assert!(v.get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(v["tau"].as_array().unwrap().len(), 50);
    let modes = v["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 64);
    for key in ["lambda", "w", "q", "variance", "tau_star"] {
        assert!(modes[0].get(key).is_some(), "mode is missing `{key}`");
    }
    assert_eq!(modes[0]["variance"].as_array().unwrap().len(), 50);
    // The paper's inverse-variance law under isotropic noise.
    let alpha = v["exponent"]["alpha"].as_f64().unwrap();
    assert!((0.95..=1.10).contains(&alpha), "α = {alpha}");
    assert!(v["exponent"]["r2"].as_f64().unwrap() > 0.99);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
}

#[test]
fn bad_settings_exit_2_naming_them() {
    let base = [
        "theory",
        "predict",
        "--data",
        "grf:size=1x8x8",
        "--spectrum",
        "isotropic",
    ];
    for (extra, needle) in [
        (&["--model", "deep"][..], "--model"),
        (&["--eta", "nan"][..], "eta"),
        (&["--model", "two-layer"][..], "q"),
        (&["--sigma-min", "100"][..], "sigma_min"),
        (&["--crossing", "median"][..], "--crossing"),
        (&["--exclude", "0.5"][..], "exclude"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let o = sagd(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{extra:?}: {}", text(&o));
    }
    let o = sagd(&[
        "theory",
        "predict",
        "--data",
        "mnist:/nowhere",
        "--spectrum",
        "isotropic",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nowhere"), "{}", text(&o));
}
