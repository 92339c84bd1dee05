//! `sagd data` as a user runs it.

use crate::common;
use common::*;

#[test]
fn stats_of_synthetic_data() {
    let v = stdout_json(&[
        "data",
        "stats",
        "shapes:n=300,size=3x32x32,seed=1",
        "--json",
        "--radius",
        "unit",
    ]);
    assert_eq!(v["count"], 300);
    assert_eq!(v["shape"], serde_json::json!([3, 32, 32]));
    assert_eq!(v["radius"], "unit");
    let classes = v["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 3);
    assert_eq!(
        classes
            .iter()
            .map(|c| c["count"].as_u64().unwrap())
            .sum::<u64>(),
        300
    );
    let mean = v["mean"].as_f64().unwrap();
    assert!(mean > 0.0 && mean < 0.5);
    let psd = v["radial_psd"].as_array().unwrap();
    let freqs: u64 = psd.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(freqs, 32 * 32, "every frequency in exactly one bin");
    let grf = stdout_json(&[
        "data",
        "stats",
        "grf:beta=2,size=1x16x16,n=50",
        "--json",
        "--pca",
    ]);
    assert!(grf["classes"].is_null());
    assert_eq!(grf["pca_eigenvalues"].as_array().unwrap().len(), 256);
}

#[test]
fn preview_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("grid.png");
    let out = sagd(&[
        "data",
        "preview",
        "shapes:n=100",
        "--count",
        "16",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h) = image::image_dimensions(&png).unwrap();
    assert!(w > 100 && h > 100);
    let npy = dir.path().join("x.npy");
    let out = sagd(&[
        "data",
        "export",
        "shapes:n=40,size=1x28x28",
        "--transform",
        "pad:2",
        "--count",
        "10",
        "--out",
        npy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&npy).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'shape': (10, 1, 32, 32)"), "{header}");
    let values: Vec<f32> = bytes[10 + header_len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), 10 * 32 * 32);
    // u8 sources are exported in the models' range [-1, 1]; padding is background (-1).
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(values[0], -1.0);
    assert!(values.iter().any(|v| *v > 0.0));
}

#[test]
fn bad_specs_exit_2_and_bad_files_exit_1() {
    for (args, needle) in [
        (vec!["data", "stats", "pictures:x"], "unknown kind"),
        (vec!["data", "stats", "shapes:n=abc"], "`n`"),
        (
            vec!["data", "stats", "shapes:n=5", "--transform", "blur:2"],
            "unknown transform",
        ),
        (
            vec!["data", "stats", "shapes:n=5", "--transform", "crop:64x64"],
            "crop",
        ),
    ] {
        let o = sagd(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    // A truncated IDX image file: header says 10 images, data holds 3.
    let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28];
    bytes.extend(vec![0u8; 3 * 784]);
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), &bytes).unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    )
    .unwrap();
    let spec = format!("mnist:{}", dir.path().display());
    let o = sagd(&["data", "stats", &spec]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("byte"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let o = sagd(&["data", "stats", "mnist:/nonexistent-sagd-data"]);
    assert_eq!(o.status.code(), Some(1));
}

/// Real MNIST, as the README documents it (needs SAGD_DATA_DIR).
#[test]
#[ignore = "needs SAGD_DATA_DIR"]
fn mnist_stats_on_real_data() {
    let data = data_dir().join("mnist");
    let v = stdout_json(&[
        "data",
        "stats",
        &format!("mnist:{}", data.display()),
        "--json",
    ]);
    assert_eq!(v["count"], 60000);
    assert_eq!(v["shape"], serde_json::json!([1, 28, 28]));
    assert!((v["mean"].as_f64().unwrap() - 33.318 / 255.0).abs() < 1e-4);
    let counts: Vec<u64> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .collect();
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
}

#[test]
fn verify_with_data_runs_the_terminal_snr_check() {
    let ok = sagd(&["verify", "isotropic", "--data", "shapes:n=200", "--json"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["dominated"], 0);
    assert_eq!(v["modes"], 32 * 32);
    // The papers' power law leaves almost no noise outside DC: refused, unless allowed.
    let refused = sagd(&["verify", "power-law:alpha=-0.5", "--data", "shapes:n=200"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--allow-low-terminal-noise") && err.contains("modes"),
        "{err}"
    );
    let allowed = sagd(&[
        "verify",
        "power-law:alpha=-0.5",
        "--data",
        "shapes:n=200",
        "--allow-low-terminal-noise",
    ]);
    assert!(allowed.status.success());
    // A band gap is never noised by design: reported, not refused.
    let gap = sagd(&[
        "verify",
        "two-band",
        "--data",
        "shapes:n=200,size=1x32x32",
        "--json",
    ]);
    assert!(
        gap.status.success(),
        "{}",
        String::from_utf8_lossy(&gap.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&gap.stdout).unwrap();
    assert!(v["outside_support"].as_u64().unwrap() > 0);
    let bad = sagd(&[
        "verify",
        "isotropic",
        "--data",
        "shapes:n=5",
        "--schedule",
        "edm",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}
