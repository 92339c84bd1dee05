//! The FID Inception network against pytorch-fid's features (data-backed: needs
//! `SAGD_MODELS_DIR`, ignored by default; `.ci/run` runs it).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use sagd_datasets::npy::NpyData;
use sagd_datasets::npz::{read_npz_array, read_npz_f64};
use sagd_datasets::{Dataset, Pixels};
use sagd_eval::FidInception;
use sagd_eval::features::extract;
use sagd_eval::inception::FEATURE_DIM;

/// `SAGD_MODELS_DIR/fid-inception`; a relative `SAGD_MODELS_DIR` is taken from the workspace
/// root (tests run in the crate's folder).
fn models_dir() -> PathBuf {
    let dir = std::env::var_os("SAGD_MODELS_DIR")
        .expect("set SAGD_MODELS_DIR to the shared models folder (with fid-inception/)");
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join("fid-inception")
}

/// `reference_pool3.npz` holds six 3×32×32 images and the pool3 features pytorch-fid 0.3.0
/// computes for them with these weights (its resize and normalisation included). Agreement to
/// 1e-4 absolute (features up to about 6) leaves room for float32 summation order only.
#[test]
#[ignore = "needs SAGD_MODELS_DIR (the FID Inception weights)"]
fn pool3_features_match_pytorch_fid() {
    let dir = models_dir();
    let reference = dir.join("reference_pool3.npz");
    let images = read_npz_array(&reference, "images_u8").expect("images_u8");
    assert_eq!(images.shape, vec![6, 3, 32, 32]);
    let NpyData::U8(bytes) = images.data else {
        panic!("images_u8 is not uint8");
    };
    let (shape, expected) = read_npz_f64(&reference, "pool3").expect("pool3");
    assert_eq!(shape, vec![6, FEATURE_DIM]);

    let data = Dataset::new("reference_pool3", [3, 32, 32], Pixels::U8(bytes), None).unwrap();
    check_weights(
        &dir.join("pt_inception-2015-12-05.safetensors"),
        &data,
        &expected,
    );
    // pytorch-fid's own file (pt_inception-2015-12-05-6726825d.pth), when a path to it is
    // given: the same features through the PyTorch reader.
    if let Some(pth) = std::env::var_os("SAGD_INCEPTION_PTH") {
        check_weights(Path::new(&pth), &data, &expected);
    }
}

fn check_weights(weights: &Path, data: &Dataset, expected: &[f64]) {
    let device = Device::default();
    let started = Instant::now();
    let model = FidInception::load(weights, &device).expect("weights load");
    eprintln!(
        "{}: loaded in {:.2} s ({})",
        weights.display(),
        started.elapsed().as_secs_f64(),
        model.info().format.name()
    );
    let started = Instant::now();
    let features = extract(&model, data, 4, &mut |_, _| {}).expect("features");
    eprintln!("6 images: {:.2} s", started.elapsed().as_secs_f64());
    let mut worst = 0.0f64;
    for (got, want) in features.values.iter().zip(expected) {
        worst = worst.max((f64::from(*got) - want).abs());
    }
    let largest = expected.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    eprintln!("largest |feature| {largest:.3}, worst difference {worst:.3e}");
    assert!(
        worst < 1e-4,
        "worst difference {worst:e} (largest feature {largest})"
    );
}
