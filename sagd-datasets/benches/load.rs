//! Load + decode throughput (images/s) of the real-data loaders: MNIST train from its gzip IDX
//! files (read, gunzip, parse, check labels) and the CIFAR-10 JPEG export as an image folder
//! (list, read and decode 50000 JPEGs in parallel, to CHW u8). The data come from
//! `SAGD_DATA_DIR` (default `../shared/data` from the workspace root); missing files are
//! reported and their benchmark skipped. The CIFAR-10 tarball is unpacked once into a temporary
//! folder, outside the timing.
//!
//! Run with `cargo bench -p sagd-datasets --bench load`.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sagd_datasets::folder::{FolderOptions, load_image_folder};
use sagd_datasets::idx::load_mnist_dir;
use sagd_datasets::split::Split;

/// `SAGD_DATA_DIR` or `../shared/data`; relative paths are taken from the workspace root when
/// they do not exist from the working directory.
fn data_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("SAGD_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    if dir.is_relative() && !dir.exists() {
        root.join(dir)
    } else {
        dir
    }
}

fn bench_mnist(c: &mut Criterion) {
    let dir = data_dir().join("mnist");
    if !dir.join("train-images-idx3-ubyte.gz").is_file()
        && !dir.join("train-images-idx3-ubyte").is_file()
    {
        eprintln!(
            "skipping MNIST: no train-images-idx3-ubyte[.gz] in {} (set SAGD_DATA_DIR)",
            dir.display()
        );
        return;
    }
    let n = load_mnist_dir(&dir, Split::Train)
        .expect("MNIST train loads")
        .len();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(8));
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("mnist_idx_gz_train", |b| {
        b.iter(|| load_mnist_dir(&dir, Split::Train).expect("MNIST train loads"))
    });
    group.finish();
}

fn bench_cifar_folder(c: &mut Criterion) {
    let tarball = data_dir().join("cifar10/cifar10-jpg.tar.gz");
    if !tarball.is_file() {
        eprintln!(
            "skipping CIFAR-10 JPEG folder: {} is missing (set SAGD_DATA_DIR)",
            tarball.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("cannot run tar");
    assert!(status.success(), "tar -xzf {} failed", tarball.display());
    let root = tmp.path().join("cifar10");
    let options = FolderOptions {
        split: Some(Split::Train),
        ..Default::default()
    };
    let n = load_image_folder(&root, &options)
        .expect("CIFAR-10 train loads")
        .len();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(20));
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("cifar10_jpeg_folder_train", |b| {
        b.iter(|| load_image_folder(&root, &options).expect("CIFAR-10 train loads"))
    });
    group.finish();
}

criterion_group!(benches, bench_mnist, bench_cifar_folder);
criterion_main!(benches);
