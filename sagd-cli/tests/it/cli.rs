//! The `sagd` binary as a user runs it.

use crate::common;
use common::*;

use std::path::Path;

/// Reads a float32 .npy written by `sagd noise`: (shape, values).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let inside = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = inside[..inside.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let values = bytes[10 + len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, values)
}

#[test]
fn spectra_list_names_every_builtin_with_parameters() {
    let list = stdout_json(&["spectra", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for name in [
        "isotropic",
        "power-law",
        "band-pass",
        "two-band",
        "exp-decay",
        "tabulated",
        "offset",
        "band-stop",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    let power_law = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "power-law")
        .unwrap();
    let params: Vec<&str> = power_law["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["alpha", "eps", "radius", "dc"]);
    assert_eq!(power_law["params"][1]["default"], 1e-10);
    // A choice lists its words.
    assert_eq!(power_law["params"][3]["default"], "floor");
    assert_eq!(
        power_law["params"][3]["choices"],
        serde_json::json!(["floor", "neighbours"])
    );
    assert_eq!(power_law["params"][3]["type"], "one of (floor|neighbours)");
    let text = sagd(&["spectra", "list"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("two-band"));
}

#[test]
fn spectra_show_reports_the_normalized_power_table_in_fftfreq_order() {
    let v = stdout_json(&[
        "spectra",
        "show",
        "power-law:alpha=1,eps=0.05",
        "--size",
        "2x5x6",
        "--json",
    ]);
    assert_eq!(v["size"], serde_json::json!([2, 5, 6]));
    assert_eq!(v["normalization"], "energy");
    assert_eq!(v["radius"], "cycles");
    assert_eq!(v["full_support"], true);
    assert_eq!(v["rank"], 60);
    // Independent: w = (r + 0.05)^1 on numpy's fftfreq grid, scaled so mean w² = 1.
    let fy = [0.0, 0.2, 0.4, -0.4, -0.2];
    let fx = [0.0, 1.0 / 6.0, 2.0 / 6.0, -0.5, -2.0 / 6.0, -1.0 / 6.0];
    let mut w2 = Vec::new();
    for y in fy {
        for x in fx {
            w2.push((f64::sqrt(x * x + y * y) + 0.05).powi(2));
        }
    }
    let mean = w2.iter().sum::<f64>() / 30.0;
    let power = v["power"].as_array().unwrap();
    assert_eq!(power.len(), 5);
    for (k, row) in power.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 6);
        for (l, p) in row.iter().enumerate() {
            let expected = w2[k * 6 + l] / mean;
            assert!((p.as_f64().unwrap() - expected).abs() < 1e-12, "({k},{l})");
        }
    }
    let band = stdout_json(&[
        "spectra",
        "show",
        "band-pass:a=0.3,b=0.7",
        "--size",
        "1x8x8",
        "--json",
        "--normalization",
        "none",
        "--radius",
        "unit",
    ]);
    assert_eq!(band["full_support"], false);
    assert_eq!(band["normalization"], "none");
    assert_eq!(band["radius"], "unit");
    let ones = band["power"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .filter(|p| p.as_f64() == Some(1.0))
        .count();
    assert_eq!(band["rank"], ones);
}

#[test]
fn spectra_show_writes_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("spectrum.png");
    let out = sagd(&[
        "spectra",
        "show",
        "two-band",
        "--size",
        "3x32x32",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h) = image::image_dimensions(&png).unwrap();
    assert!(w >= 512 && h >= 256, "{w}x{h}");
}

#[test]
fn noise_writes_reproducible_float32_npy() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.npy");
    let b = dir.path().join("b.npy");
    let c = dir.path().join("c.npy");
    for (path, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        let out = sagd(&[
            "noise",
            "power-law:alpha=-0.5",
            "--size",
            "3x8x6",
            "--count",
            "300",
            "--seed",
            seed,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (shape, values) = read_npy(&a);
    assert_eq!(shape, [300, 3, 8, 6]);
    assert_eq!(values.len(), 300 * 3 * 8 * 6);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    // Energy normalization: per-pixel variance 1 (43200 values; the DC-dominated power law
    // makes pixels strongly correlated within an image, so allow 10 %).
    let var = values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / values.len() as f64;
    assert!((var - 1.0).abs() < 0.1, "{var}");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("x.npy");
    let out = out_path.to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (
            &["spectra", "show", "pink", "--size", "1x4x4"],
            "known: band-pass",
        ),
        (
            &["spectra", "show", "power-law:alpha=nan", "--size", "1x4x4"],
            "alpha",
        ),
        (
            &[
                "spectra",
                "show",
                "band-pass:a=0.8,b=0.2",
                "--size",
                "1x4x4",
            ],
            "`a`",
        ),
        (&["spectra", "show", "isotropic", "--size", "4x4"], "--size"),
        (
            &[
                "spectra",
                "show",
                "isotropic",
                "--size",
                "1x4x4",
                "--normalization",
                "loud",
            ],
            "--normalization",
        ),
        (
            &[
                "noise",
                "two-band:gamma_l=-1",
                "--size",
                "1x8x8",
                "--count",
                "2",
                "--out",
                out,
            ],
            "gamma_l",
        ),
        (
            &[
                "noise",
                "isotropic",
                "--size",
                "1x8x8",
                "--count",
                "0",
                "--out",
                out,
            ],
            "--count",
        ),
        (&["verify", "band-pass:a=0.9,b=0.1"], "`a`"),
    ];
    for (args, needle) in cases {
        let o = sagd(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!out_path.exists(), "no file written on bad input");
    // A missing output directory is a runtime failure (1), not a usage error.
    let o = sagd(&[
        "noise",
        "isotropic",
        "--size",
        "1x4x4",
        "--count",
        "1",
        "--out",
        "/nonexistent-dir/x.npy",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn verify_runs_the_suite() {
    let v = stdout_json(&["verify", "power-law", "--cases", "8", "--json"]);
    assert_eq!(v["passed"], true);
    assert_eq!(v["properties"].as_array().unwrap().len(), 6);
    let text = sagd(&["verify", "band-pass", "--cases", "8"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("all properties hold"));
}

/// A negative number is a flag's value, not a flag: an out-of-range one gets the range error,
/// in every form a number takes (clap's own number test misses an exponent, a leading dot and
/// an infinity).
#[test]
fn negative_numbers_reach_the_range_checks() {
    let refused = |args: &[&str], needle: &str| {
        let o = sagd(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    };
    for (eta, shown) in [
        ("-0.5", "-0.5"),
        ("-1e-3", "-0.001"),
        ("-.5", "-0.5"),
        ("-inf", "-inf"),
    ] {
        refused(
            &[
                "sample",
                "--oracle",
                "grf:size=1x4x4",
                "--spectrum",
                "isotropic",
                "--sampler",
                "ddim",
                "--eta",
                eta,
                "--count",
                "1",
                "--out",
                "never",
            ],
            &format!("`eta` = {shown}: expected a number in [0, 1]"),
        );
    }
    refused(
        &[
            "noise",
            "isotropic",
            "--size",
            "1x4x4",
            "--count",
            "-3",
            "--out",
            "x.npy",
        ],
        "invalid value '-3' for '--count <COUNT>'",
    );
    assert!(!Path::new("never").exists() && !Path::new("x.npy").exists());
}
