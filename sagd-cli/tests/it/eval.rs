//! `sagd eval` as a user runs it.

use crate::common;
use common::*;

use std::path::Path;

/// No weights anywhere the command looks.
const NO_WEIGHTS: [(&str, Option<&str>); 2] = [("SAGD_INCEPTION", None), ("SAGD_MODELS_DIR", None)];

fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    sagd_datasets::npy::write_f32(path, shape, values).unwrap();
}

/// A safetensors file by hand: `(name, shape, values)` as float32.
fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let mut header = Vec::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.push(format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    }
    let header = format!("{{{}}}", header.join(","));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

fn assert_usage_error(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn without_weights_fid_is_refused_in_one_line_saying_where_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = sagd_env(
        &[
            "eval",
            "--samples",
            "shapes:n=20,size=1x16x16",
            "--reference",
            "shapes:n=20,size=1x16x16,split=test",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &NO_WEIGHTS,
    );
    assert_usage_error(&out, "--inception");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SAGD_INCEPTION") && stderr.contains("pytorch-fid"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing written");
}

#[test]
fn spectral_metrics_need_no_network_and_write_metrics_and_a_figure() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let v = serde_json::from_slice::<serde_json::Value>(
        &sagd_env(
            &[
                "eval",
                "--samples",
                "shapes:n=64,size=1x16x16,seed=3",
                "--reference",
                "shapes:n=64,size=1x16x16,split=test",
                "--transform",
                "corrupt:a=0.5,b=0.6,gamma=2",
                "--metrics",
                "spectral",
                "--out",
                out_dir.to_str().unwrap(),
                "--json",
            ],
            &NO_WEIGHTS,
        )
        .stdout,
    )
    .expect("JSON on stdout");
    assert_eq!(v["sample_count"], 64);
    assert_eq!(v["reference_count"], 64);
    assert!(v["fid"].is_null() && v["inception"].is_null());
    let spectral = &v["spectral"];
    assert!(
        spectral["log_spectral_distance"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
    let bands = spectral["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 10);
    // The reference was corrupted in [0.5, 0.6): clean samples hold less energy there.
    let corrupted = bands[5]["ratio"].as_f64().unwrap();
    assert!(corrupted < 0.5, "ratio in the corrupted band {corrupted}");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(on_disk["spectral"], v["spectral"]);
    let png = image_dims(&out_dir.join("spectra.png"));
    assert!(png.0 > 400 && png.1 > 200, "{png:?}");
    // A second run into the same folder needs --overwrite.
    let rerun = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--samples",
            "shapes:n=64,size=1x16x16,seed=3",
            "--reference",
            "shapes:n=64,size=1x16x16,split=test",
            "--metrics",
            "spectral",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sagd_env(&args, &NO_WEIGHTS)
    };
    assert_usage_error(&rerun(&[]), "--overwrite");
    // An --overwrite run that fails part-way (spectra.png cannot be written) leaves no
    // metrics.json of the earlier run beside its new outputs.
    std::fs::remove_file(out_dir.join("spectra.png")).unwrap();
    std::fs::create_dir_all(out_dir.join("spectra.png").join("in-the-way")).unwrap();
    let failed = rerun(&["--overwrite"]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(!out_dir.join("metrics.json").exists());
}

/// `--reference-count` compares the samples with more (or all) reference images than
/// samples; a count below 2 or a word other than `all` is a usage error.
#[test]
fn the_reference_count_may_differ_from_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let run = |count: &str, out: &str| {
        sagd_env(
            &[
                "eval",
                "--samples",
                "shapes:n=8,size=1x8x8,seed=3",
                "--reference",
                "shapes:n=30,size=1x8x8,split=test",
                "--count",
                "8",
                "--reference-count",
                count,
                "--metrics",
                "spectral",
                "--out",
                dir.path().join(out).to_str().unwrap(),
                "--json",
            ],
            &NO_WEIGHTS,
        )
    };
    for (count, expected) in [("all", 30), ("20", 20), ("100", 30)] {
        let o = run(count, count);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (v["sample_count"].as_u64(), v["reference_count"].as_u64()),
            (Some(8), Some(expected))
        );
    }
    for bad in ["1", "most", "-3"] {
        assert_usage_error(&run(bad, "bad"), "--reference-count");
    }
}

fn image_dims(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = out_dir.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["eval", "--out", out, "--metrics", "spectral"];
        all.extend_from_slice(args);
        sagd_env(&all, &NO_WEIGHTS)
    };
    // Shapes differ: the hint names --transform.
    let o = run(&[
        "--samples",
        "shapes:n=8,size=1x16x16",
        "--reference",
        "shapes:n=8,size=1x32x32",
    ]);
    assert_usage_error(&o, "--transform");
    // Channels differ.
    let o = run(&[
        "--samples",
        "shapes:n=8,size=1x16x16",
        "--reference",
        "shapes:n=8,size=3x16x16",
    ]);
    assert_usage_error(&o, "3x16x16");
    // One image.
    let o = run(&[
        "--samples",
        "shapes:n=1,size=1x16x16",
        "--reference",
        "shapes:n=8,size=1x16x16",
    ]);
    assert_usage_error(&o, "at least 2");
    // More than the samples hold.
    let o = run(&[
        "--samples",
        "shapes:n=8,size=1x16x16",
        "--reference",
        "shapes:n=8,size=1x16x16",
        "--count",
        "9",
    ]);
    assert_usage_error(&o, "--count 9");
    // An unknown metric.
    let o = sagd_env(
        &[
            "eval",
            "--out",
            out,
            "--samples",
            "shapes:n=8",
            "--reference",
            "shapes:n=8",
            "--metrics",
            "fid,is",
        ],
        &NO_WEIGHTS,
    );
    assert_usage_error(&o, "unknown metric `is`");
    // `scale` would compare [-1, 1] images.
    let o = run(&[
        "--samples",
        "shapes:n=8,size=1x16x16",
        "--reference",
        "shapes:n=8,size=1x16x16",
        "--transform",
        "scale",
    ]);
    assert_usage_error(&o, "scale");
    // A non-finite sample.
    let nan = dir.path().join("nan.npy");
    let mut values = vec![0.5f32; 4 * 16 * 16];
    values[300] = f32::NAN;
    write_npy(&nan, &[4, 1, 16, 16], &values);
    let o = run(&[
        "--samples",
        nan.to_str().unwrap(),
        "--reference",
        "shapes:n=8,size=1x16x16",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("NaN") || text(&o).contains("non-finite"),
        "{}",
        text(&o)
    );
    // A missing file is named as missing, not parsed as a spec.
    let o = run(&[
        "--samples",
        dir.path().join("missing.npy").to_str().unwrap(),
        "--reference",
        "shapes:n=8,size=1x16x16",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("missing.npy") && text(&o).contains("no such file"),
        "{}",
        text(&o)
    );
    // --out naming a file, --save-stats outside an existing folder, KID subsets of 0: refused
    // before any work.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = sagd_env(
        &[
            "eval",
            "--out",
            file.to_str().unwrap(),
            "--metrics",
            "spectral",
            "--samples",
            "shapes:n=8,size=1x16x16",
            "--reference",
            "shapes:n=8,size=1x16x16",
        ],
        &NO_WEIGHTS,
    );
    assert_usage_error(&o, "is a file");
    let o = run(&[
        "--samples",
        "shapes:n=8,size=1x16x16",
        "--reference",
        "shapes:n=8,size=1x16x16",
        "--save-stats",
        dir.path().join("no/such/folder/s.npz").to_str().unwrap(),
    ]);
    assert_usage_error(&o, "existing folder");
    let weights = dir.path().join("w.safetensors");
    write_safetensors(&weights, &[("x", vec![1], vec![0.0])]);
    let o = sagd_env(
        &[
            "eval",
            "--out",
            out,
            "--samples",
            "shapes:n=8,size=1x16x16",
            "--reference",
            "shapes:n=8,size=1x16x16",
            "--inception",
            weights.to_str().unwrap(),
            "--kid-subsets",
            "0",
        ],
        &NO_WEIGHTS,
    );
    assert_usage_error(&o, "0 subsets");
    // A missing required argument is named.
    let o = sagd_env(&["eval", "--samples", "x"], &NO_WEIGHTS);
    assert_usage_error(&o, "--reference");
    assert!(!out_dir.exists(), "nothing written");
}

#[test]
fn samples_outside_the_unit_range_are_refused_for_inception_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let signed = dir.path().join("signed.npy");
    let values: Vec<f32> = (0..4 * 16 * 16).map(|i| (i % 3) as f32 - 1.0).collect();
    write_npy(&signed, &[4, 1, 16, 16], &values);
    let weights = dir.path().join("w.safetensors");
    write_safetensors(&weights, &[("x", vec![1], vec![0.0])]);
    let out_dir = dir.path().join("out");
    let o = sagd_env(
        &[
            "eval",
            "--samples",
            signed.to_str().unwrap(),
            "--reference",
            "shapes:n=8,size=1x16x16",
            "--inception",
            weights.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &NO_WEIGHTS,
    );
    // The range is checked before the weights are even opened.
    assert_usage_error(&o, "outside [0, 1]");
    assert!(!out_dir.exists());
    // A weights file without the network's first tensor: named.
    let o = sagd_env(
        &[
            "eval",
            "--samples",
            "shapes:n=8,size=1x16x16",
            "--reference",
            "shapes:n=8,size=1x16x16",
            "--inception",
            weights.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &NO_WEIGHTS,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Conv2d_1a_3x3.conv.weight") && text(&o).contains("missing"),
        "{}",
        text(&o)
    );
    assert!(!out_dir.exists());
}

#[test]
fn a_weights_file_with_a_misshapen_or_foreign_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let weights = dir.path().join("w.safetensors");
    let run = |w: &Path| {
        sagd_env(
            &[
                "eval",
                "--samples",
                "shapes:n=8,size=1x16x16",
                "--reference",
                "shapes:n=8,size=1x16x16",
                "--inception",
                w.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &NO_WEIGHTS,
        )
    };
    write_safetensors(
        &weights,
        &[(
            "Conv2d_1a_3x3.conv.weight",
            vec![32, 3, 3, 2],
            vec![0.0; 576],
        )],
    );
    let o = run(&weights);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("Conv2d_1a_3x3.conv.weight") && t.contains("[32, 3, 3, 3]"),
        "{t}"
    );
    // torchvision's ImageNet weights share the names: refused for what they are.
    write_safetensors(&weights, &[("AuxLogits.fc.weight", vec![2], vec![0.0; 2])]);
    let o = run(&weights);
    assert!(text(&o).contains("torchvision"), "{}", text(&o));
    // Not a weights file at all, and a truncated one.
    std::fs::write(&weights, b"hello").unwrap();
    let o = run(&weights);
    assert!(
        text(&o).contains("neither a safetensors file"),
        "{}",
        text(&o)
    );
    write_safetensors(
        &weights,
        &[(
            "Conv2d_1a_3x3.conv.weight",
            vec![32, 3, 3, 3],
            vec![0.0; 864],
        )],
    );
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 10]).unwrap();
    let o = run(&weights);
    assert!(
        text(&o).contains("neither a safetensors file"),
        "{}",
        text(&o)
    );
    // A missing file.
    let o = run(&dir.path().join("absent.safetensors"));
    assert!(text(&o).contains("absent.safetensors"), "{}", text(&o));
    assert!(!out_dir.exists(), "nothing written");
}

#[test]
fn statistics_give_fid_only() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.npz");
    // Any .npz with mu and sigma is statistics; the refusal comes before any other work.
    write_npz_stats(&stats);
    let weights = dir.path().join("w.safetensors");
    write_safetensors(&weights, &[("x", vec![1], vec![0.0])]);
    let o = sagd_env(
        &[
            "eval",
            "--samples",
            "shapes:n=8,size=1x16x16",
            "--reference",
            stats.to_str().unwrap(),
            "--metrics",
            "spectral",
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ],
        &NO_WEIGHTS,
    );
    assert_usage_error(&o, "FID only");
}

/// An `.npz` with `mu` (2,) and `sigma` (2, 2), as pytorch-fid writes statistics.
fn write_npz_stats(path: &Path) {
    sagd_datasets::npz::write_npz_f64(
        path,
        &[
            ("mu", &[2], &[0.0, 1.0]),
            ("sigma", &[2, 2], &[1.0, 0.0, 0.0, 1.0]),
        ],
    )
    .unwrap();
}

/// The whole command on real data with the real weights (data-backed: `SAGD_DATA_DIR` and
/// `SAGD_MODELS_DIR`; `.ci/run` runs it): every metric is present and finite, the statistics
/// saved for the reference give the same FID when reused, and a PyTorch-format reader is not
/// needed for that round trip.
#[test]
#[ignore = "needs SAGD_DATA_DIR and SAGD_MODELS_DIR"]
fn mnist_train_against_test_with_the_real_weights() {
    let data = data_dir().join("mnist");
    let weights = models_dir()
        .join("fid-inception")
        .join("pt_inception-2015-12-05.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("test-stats.npz");
    let cache = dir.path().join("reference-features.npz");
    let reference = format!("mnist:{},split=test", data.display());
    let samples = format!("mnist:{}", data.display());
    let out1 = dir.path().join("full");
    let v = stdout_json(&[
        "eval",
        "--samples",
        &samples,
        "--reference",
        &reference,
        "--count",
        "20",
        "--kid-subset-size",
        "10",
        "--kid-subsets",
        "10",
        "--inception",
        weights.to_str().unwrap(),
        "--save-stats",
        stats.to_str().unwrap(),
        "--feature-cache",
        cache.to_str().unwrap(),
        "--bootstrap",
        "5",
        "--out",
        out1.to_str().unwrap(),
        "--json",
        "--quiet",
    ]);
    assert_eq!(v["feature_cache"]["used"], false);
    // FID's and KID's sampling noise over 5 resamples of the 20 samples: positive spreads
    // around values near the point estimates (resamples repeat images, which moves FID up).
    for key in ["fid_bootstrap", "kid_bootstrap"] {
        assert_eq!(v[key]["resamples"], 5, "{v}");
        let sd = v[key]["sd"].as_f64().unwrap();
        assert!(sd.is_finite() && sd > 0.0, "{key}: {v}");
    }
    let fid_mean = v["fid_bootstrap"]["mean"].as_f64().unwrap();
    assert!(fid_mean > 0.5 * v["fid"].as_f64().unwrap(), "{v}");
    let fid = v["fid"].as_f64().unwrap();
    // 20 MNIST digits against 20 others: far from 0 (N ≪ 2048 biases it up: about 92), far
    // from the hundreds that unrelated images give. (20 keeps the Inception passes of this
    // test, the slowest of the data-backed ones, short.)
    assert!(fid > 5.0 && fid < 150.0, "FID {fid}");
    let kid = v["kid"]["mean"].as_f64().unwrap();
    assert!(kid.is_finite() && kid.abs() < 0.1, "KID {kid}");
    assert_eq!(v["kid"]["subset_size"], 10);
    for key in ["precision", "recall"] {
        let x = v["precision_recall"][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{key} {x}");
    }
    assert!(v["spectral"]["log_spectral_distance"].as_f64().unwrap() < 0.5);
    assert_eq!(v["inception"]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("N = 20 < 2048"))
    );
    // The saved statistics reproduce the FID (float64 mu and sigma, pytorch-fid's layout).
    let out2 = dir.path().join("stats");
    let w = stdout_json(&[
        "eval",
        "--samples",
        &samples,
        "--reference",
        stats.to_str().unwrap(),
        "--count",
        "20",
        "--metrics",
        "fid",
        "--inception",
        weights.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--json",
        "--quiet",
    ]);
    assert!((w["fid"].as_f64().unwrap() - fid).abs() < 1e-9 * fid, "{w}");
    assert!(w["reference_count"].is_null());

    // The cached reference features give every metric exactly as extracted ones did; with
    // other reference images (--count 15: the first 15) the cache is recomputed and replaced,
    // with a warning.
    let with_cache = |count: &str, out: &str| {
        stdout_json(&[
            "eval",
            "--samples",
            &samples,
            "--reference",
            &reference,
            "--count",
            count,
            "--kid-subset-size",
            "10",
            "--kid-subsets",
            "10",
            "--inception",
            weights.to_str().unwrap(),
            "--feature-cache",
            cache.to_str().unwrap(),
            "--out",
            dir.path().join(out).to_str().unwrap(),
            "--json",
            "--quiet",
        ])
    };
    let c = with_cache("20", "cached");
    assert_eq!(c["feature_cache"]["used"], true, "{c}");
    for key in ["fid", "kid", "precision_recall", "spectral"] {
        assert_eq!(c[key], v[key], "{key}");
    }
    let d = with_cache("15", "other-subset");
    assert_eq!(d["feature_cache"]["used"], false, "{d}");
    assert!(
        d["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("other reference images")),
        "{d}"
    );
    assert_eq!(with_cache("15", "again")["feature_cache"]["used"], true);
}
