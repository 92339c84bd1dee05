//! `sagd sample` as a user runs it: from the oracle and from a trained checkpoint, and the
//! errors.

use crate::common;
use common::*;

use std::path::Path;

/// The shape and values of a float32 .npy file written by sagd.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = sagd_datasets::npy::read_npy(path).unwrap();
    assert_eq!(a.descr, "<f4");
    match a.data {
        sagd_datasets::npy::NpyData::F32(v) => (a.shape, v),
        other => panic!("not float32: {other:?}"),
    }
}

#[test]
fn oracle_sampling_writes_samples_grid_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("oracle");
    let out_s = out.to_str().unwrap();
    let args = [
        "sample",
        "--oracle",
        "gmm:components=3,size=1x8x8,seed=4",
        "--spectrum",
        "power-law:alpha=-1,eps=0.05",
        "--sampler",
        "ddim",
        "--steps",
        "30",
        "--count",
        "40",
        "--batch",
        "16",
        "--seed",
        "7",
        "--out",
        out_s,
        "--json",
        "--quiet",
    ];
    let o = sagd(&args);
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["count"], 40);
    assert_eq!(summary["shape"], serde_json::json!([1, 8, 8]));
    // The data check sets the shares beside the mixture's weights, both normalized to sum 1.
    let as_vec = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let shares = as_vec(&summary["data_check"]["shares"]);
    let weights = as_vec(&summary["data_check"]["weights"]);
    assert_eq!((shares.len(), weights.len()), (3, 3));
    assert!(
        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-12,
        "{shares:?}"
    );
    assert!(
        weights.iter().all(|w| (w - 1.0 / 3.0).abs() < 1e-15),
        "{weights:?}"
    );
    let (shape, first) = read_npy(&out.join("samples.npy"));
    assert_eq!(shape, vec![40, 1, 8, 8]);
    assert!(first.iter().all(|v| v.is_finite()));
    assert!(out.join("grid.png").is_file() && out.join("summary.json").is_file());

    // Existing samples are not overwritten by accident; with --overwrite the same seed gives
    // the same file.
    let again = sagd(&args);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("--overwrite"));
    let mut with = args.to_vec();
    with.push("--overwrite");
    assert!(sagd(&with).status.success());
    let (_, second) = read_npy(&out.join("samples.npy"));
    assert!(
        first
            .iter()
            .zip(&second)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    // A run that stopped after samples.npy (a full disk before grid.png and summary.json) is
    // finished by the next one, without --overwrite, to the same files.
    std::fs::remove_file(out.join("grid.png")).unwrap();
    std::fs::remove_file(out.join("summary.json")).unwrap();
    let finish = sagd(&args);
    assert!(finish.status.success(), "{}", text(&finish));
    assert!(
        text(&finish).contains("no summary.json"),
        "{}",
        text(&finish)
    );
    assert!(out.join("grid.png").is_file() && out.join("summary.json").is_file());
    let (_, third) = read_npy(&out.join("samples.npy"));
    assert!(
        first
            .iter()
            .zip(&third)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    // An --overwrite run that fails part-way (grid.png cannot be written) leaves no
    // summary.json of the earlier run beside its new samples: the folder reads as unfinished.
    std::fs::remove_file(out.join("grid.png")).unwrap();
    std::fs::create_dir_all(out.join("grid.png").join("in-the-way")).unwrap();
    let failed = sagd(&with);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(!out.join("summary.json").exists());
    std::fs::remove_dir_all(out.join("grid.png")).unwrap();
    let finish = sagd(&args);
    assert!(finish.status.success(), "{}", text(&finish));
    assert!(out.join("grid.png").is_file() && out.join("summary.json").is_file());
}

#[test]
fn bad_requests_exit_2_and_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out_s = out.to_str().unwrap();
    let base = |extra: &[&str]| {
        let mut a = vec![
            "sample",
            "--oracle",
            "grf:size=1x8x8",
            "--spectrum",
            "isotropic",
            "--count",
            "2",
            "--out",
            out_s,
            "--quiet",
        ];
        a.extend_from_slice(extra);
        sagd(&a)
    };
    for (extra, needle) in [
        (&["--sampler", "plms"][..], "ddim, ddpm, euler or heun"),
        (&["--steps", "2000"][..], "steps"),
        (&["--sampler", "heun", "--eta", "0.5"][..], "--eta"),
        (&["--spacing", "cubic"][..], "spacing"),
        (&["--shape", "3x32x32"][..], "1x8x8"),
        (
            &["--sampler", "heun", "--form", "vp", "--schedule", "edm"][..],
            "vp",
        ),
        (&["--sampler", "ddim", "--form", "vp"][..], "--form"),
        (&["--normalization", "per-sample-std"][..], "not Gaussian"),
        (&["--levels", "1"][..], "--levels"),
    ] {
        let o = base(extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{extra:?}: {}", text(&o));
    }
    let o = sagd(&[
        "sample",
        "--oracle",
        "mnist:/nowhere",
        "--spectrum",
        "isotropic",
        "--out",
        out_s,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("grf"), "{}", text(&o));
    let o = sagd(&["sample", "--spectrum", "isotropic", "--out", out_s]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Refused requests leave nothing behind, not even the directory.
    assert!(!out.exists());
}

#[test]
fn sampling_from_a_trained_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        "seed = 3\nsteps = 6\nbatch = 4\ncheckpoint_every = 3\nlog_every = 2\n\
         [data]\nspec = \"shapes:n=32,size=1x8x8,seed=1\"\n\
         [noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
         [model]\nkind = \"mlp\"\ndepth = 1\nwidth = 32\nembedding = 8\n\
         [optimizer]\nlr = 1e-3\nwarmup = 2\n",
    )
    .unwrap();
    let o = sagd(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("samples");
    let o = sagd(&[
        "sample",
        "--checkpoint",
        run.to_str().unwrap(),
        "--ema",
        "--sampler",
        "ddpm",
        "--steps",
        "20",
        "--count",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        summary["source"]["checkpoint"]
            .as_str()
            .unwrap()
            .ends_with("step-00000006.safetensors")
    );
    let (shape, values) = read_npy(&out.join("samples.npy"));
    assert_eq!(shape, vec![5, 1, 8, 8]);
    // `shapes` is 8-bit: trained in [-1, 1], written back in its own range [0, 1].
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    let clipped = summary["clipped_fraction"].as_f64().unwrap();
    // Beside them, the same images before the clamp: equal where in range, clamped elsewhere.
    let (raw_shape, raw) = read_npy(&out.join("samples-raw.npy"));
    assert_eq!(raw_shape, shape);
    let mut changed = 0;
    for (r, v) in raw.iter().zip(&values) {
        assert_eq!(r.clamp(0.0, 1.0), *v);
        changed += usize::from(r != v);
    }
    assert_eq!(changed as f64 / values.len() as f64, clipped);
    assert!(
        summary["raw_samples"]
            .as_str()
            .unwrap()
            .ends_with("samples-raw.npy")
    );
    // `sagd eval` of the folder reports the spectral metrics of both and the clamped share.
    let eval_out = dir.path().join("eval");
    let o = sagd(&[
        "eval",
        "--samples",
        out.to_str().unwrap(),
        "--reference",
        "shapes:n=5,size=1x8x8,seed=9",
        "--metrics",
        "spectral",
        "--out",
        eval_out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval_out.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["clamped_fraction"].as_f64(), Some(clipped));
    let raw_lsd = metrics["spectral_raw"]["log_spectral_distance"].as_f64();
    assert!(raw_lsd.is_some_and(f64::is_finite), "{metrics}");
    if changed == 0 {
        assert_eq!(metrics["spectral_raw"], metrics["spectral"]);
    }

    // A request for another shape is refused, naming both.
    let o = sagd(&[
        "sample",
        "--checkpoint",
        run.to_str().unwrap(),
        "--shape",
        "1x16x16",
        "--out",
        dir.path().join("other").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("1x16x16") && text(&o).contains("1x8x8"),
        "{}",
        text(&o)
    );
    // Oracle-only flags do not mix with a checkpoint.
    let o = sagd(&[
        "sample",
        "--checkpoint",
        run.to_str().unwrap(),
        "--spectrum",
        "isotropic",
        "--out",
        dir.path().join("other").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A truncated checkpoint is a clear error naming the file.
    let ckpt = run.join("checkpoints").join("step-00000006.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = sagd(&[
        "sample",
        "--checkpoint",
        cut.to_str().unwrap(),
        "--out",
        dir.path().join("other").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("cut.safetensors"), "{}", text(&o));
}

/// The oracle knows its data: a spectrum whose start level leaves a mode to the signal
/// (blue noise starving DC) gets a warning and the counts in the summary.
#[test]
fn the_oracle_checks_the_terminal_snr() {
    let dir = tempfile::tempdir().unwrap();
    let run = |spectrum: &str, out: &str| {
        sagd(&[
            "sample",
            "--oracle",
            "grf:size=1x8x8,beta=2",
            "--spectrum",
            spectrum,
            "--steps",
            "5",
            "--count",
            "4",
            "--out",
            dir.path().join(out).to_str().unwrap(),
            "--json",
            "--quiet",
        ])
    };
    let o = run("power-law:alpha=1,eps=0.0001", "blue");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["terminal_snr"]["dominated"].as_u64().unwrap() >= 1, "{v}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning"));
    let o = run("isotropic", "white");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["terminal_snr"]["affected"], 0, "{v}");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("warning"));
}

/// Samples that look like a diverged model's are flagged: mostly clamped, or far beyond any
/// data scale; ordinary samples are not.
#[test]
fn diverged_looking_samples_draw_a_warning() {
    use sagd_runs::sample::divergence_warning;
    assert_eq!(divergence_warning(0.01, 0.0, 1.3), None);
    assert_eq!(divergence_warning(0.5, 0.5, 9e3), None);
    // A healthy MNIST model: half its values (the background) clamped from just outside.
    assert_eq!(divergence_warning(0.52, 0.0, 1.2), None);
    let clamped = divergence_warning(0.9, 0.8, 3.1e33).unwrap();
    assert!(
        clamped.contains("90% of the sampled values")
            && clamped.contains("80% of them more than the range's width")
            && clamped.contains("3.100e33"),
        "{clamped}"
    );
    let huge = divergence_warning(0.0, 0.0, 2e5).unwrap();
    assert!(
        huge.contains("|x| = 2.000e5") && huge.contains("diverged"),
        "{huge}"
    );
}
