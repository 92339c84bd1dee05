//! Checks of the loaders on the real MNIST and CIFAR-10 files. Every test is ignored by default:
//! run them with `SAGD_DATA_DIR=/path/to/shared/data cargo test -p sagd-datasets -- --ignored`
//! (the folder holds `mnist/*-ubyte.gz` and `cifar10/cifar10-jpg.tar.gz`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sagd_datasets::folder::{FolderOptions, load_image_folder};
use sagd_datasets::idx::load_mnist_dir;
use sagd_datasets::split::Split;
use sagd_datasets::{Dataset, Pixels};

/// `SAGD_DATA_DIR`; a relative path is tried from here, then from the workspace root.
fn data_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("SAGD_DATA_DIR") else {
        panic!(
            "SAGD_DATA_DIR is not set: point it at the shared data folder (holding mnist/ and \
             cifar10/), e.g. SAGD_DATA_DIR=/work/shared/data cargo test -p sagd-datasets -- \
             --ignored"
        );
    };
    let dir = PathBuf::from(dir);
    if dir.is_relative() && !dir.exists() {
        let from_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&dir);
        if from_root.exists() {
            return from_root;
        }
    }
    assert!(
        dir.is_dir(),
        "SAGD_DATA_DIR={} is not a folder",
        dir.display()
    );
    dir
}

fn mean_value(d: &Dataset) -> f64 {
    let Pixels::U8(p) = d.pixels() else {
        panic!("{} is not stored as u8", d.name())
    };
    p.iter().map(|&v| v as u64).sum::<u64>() as f64 / p.len() as f64 / 255.0
}

#[test]
#[ignore = "needs SAGD_DATA_DIR with the real MNIST files"]
fn mnist_train_matches_the_reference_statistics() {
    let start = Instant::now();
    let d = load_mnist_dir(&data_dir().join("mnist"), Split::Train).unwrap();
    eprintln!(
        "MNIST train loaded in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(d.len(), 60000);
    assert_eq!(d.shape(), [1, 28, 28]);
    assert_eq!(
        d.class_counts().unwrap(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let mean = mean_value(&d);
    eprintln!(
        "MNIST train mean pixel {mean:.6} ({:.4} / 255)",
        mean * 255.0
    );
    assert!((mean - 0.13066).abs() < 1e-4, "mean {mean}");
    let names: Vec<&str> = d
        .class_names()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
}

#[test]
#[ignore = "needs SAGD_DATA_DIR with the real MNIST files"]
fn mnist_test_matches_the_reference_counts() {
    let d = load_mnist_dir(&data_dir().join("mnist"), Split::Test).unwrap();
    assert_eq!(d.len(), 10000);
    assert_eq!(d.shape(), [1, 28, 28]);
    assert_eq!(
        d.class_counts().unwrap(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    eprintln!("MNIST test mean pixel {:.6}", mean_value(&d));
}

#[test]
#[ignore = "needs SAGD_DATA_DIR with the CIFAR-10 JPEG tarball"]
fn cifar10_jpeg_folder_loads_both_splits() {
    let tarball = data_dir().join("cifar10/cifar10-jpg.tar.gz");
    assert!(tarball.is_file(), "{} is missing", tarball.display());
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("cannot run tar");
    assert!(status.success(), "tar -xzf {} failed", tarball.display());
    let root = tmp.path().join("cifar10");
    let classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];
    for (split, count, per_class) in [(Split::Train, 50000, 5000), (Split::Test, 10000, 1000)] {
        let options = FolderOptions {
            split: Some(split),
            ..Default::default()
        };
        let start = Instant::now();
        let d = load_image_folder(&root, &options).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "CIFAR-10 JPEG {split}: {} images in {secs:.3} s ({:.0} images/s), mean {:.4}",
            d.len(),
            d.len() as f64 / secs,
            mean_value(&d)
        );
        assert_eq!(d.len(), count);
        assert_eq!(d.shape(), [3, 32, 32]);
        assert!(d.is_u8());
        assert_eq!(d.class_names().unwrap(), classes);
        assert_eq!(d.class_counts().unwrap(), vec![per_class; 10]);
        // Sorted by class, then by file name.
        let labels = d.labels().unwrap();
        assert!(labels.windows(2).all(|w| w[0] <= w[1]));
    }
}
