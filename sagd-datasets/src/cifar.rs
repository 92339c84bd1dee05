//! CIFAR-10 in its binary release: `data_batch_1.bin` … `data_batch_5.bin` (train) and
//! `test_batch.bin` (test), each a sequence of 3073-byte records: one label byte (0..=9) and
//! 3072 pixel bytes, the R, G and B planes of a 32×32 image, each row-major — which is already
//! the (C, H, W) layout of [`Dataset`].

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;
use crate::split::Split;

/// Class names of CIFAR-10 (index = label).
pub const CIFAR10_CLASSES: [&str; 10] = [
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

/// Pixel bytes per CIFAR-10 image (3 × 32 × 32).
pub const CIFAR10_IMAGE_LEN: usize = 3 * 32 * 32;

/// Bytes per CIFAR-10 record: the label byte and the pixels.
pub const CIFAR10_RECORD_LEN: usize = 1 + CIFAR10_IMAGE_LEN;

/// The sub-folder the official tarball unpacks to.
const TARBALL_FOLDER: &str = "cifar-10-batches-bin";

/// The records of one CIFAR-10 batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cifar10Batch {
    /// Pixels, (N, 3, 32, 32) row-major.
    pub pixels: Vec<u8>,
    /// Labels in 0..=9, one per image.
    pub labels: Vec<u32>,
}

impl Cifar10Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The batch file names of a split: `data_batch_1.bin` … `data_batch_5.bin` or `test_batch.bin`.
pub fn cifar10_batch_names(split: Split) -> Vec<&'static str> {
    match split {
        Split::Train => vec![
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
        Split::Test => vec!["test_batch.bin"],
    }
}

/// Reads one CIFAR-10 batch file. See [`parse_cifar10_batch`] for the errors.
pub fn read_cifar10_batch(path: &Path) -> Result<Cifar10Batch, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    parse_cifar10_batch(path, &bytes)
}

/// Parses the bytes of a CIFAR-10 batch file; `path` names the source in errors.
///
/// Errors: an empty file ([`DatasetError::Empty`]); a size that is not a whole number of
/// 3073-byte records ([`DatasetError::Format`] at the offset of the incomplete record); a label
/// byte above 9 ([`DatasetError::Format`] at the offset of that byte).
pub fn parse_cifar10_batch(path: &Path, bytes: &[u8]) -> Result<Cifar10Batch, DatasetError> {
    if bytes.is_empty() {
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
            message: "the CIFAR-10 batch file is empty".to_string(),
        });
    }
    let count = bytes.len() / CIFAR10_RECORD_LEN;
    let rest = bytes.len() % CIFAR10_RECORD_LEN;
    if rest != 0 {
        return Err(DatasetError::format(
            path,
            Some((count * CIFAR10_RECORD_LEN) as u64),
            format!(
                "a whole number of {CIFAR10_RECORD_LEN}-byte records (1 label byte + \
                 {CIFAR10_IMAGE_LEN} pixel bytes)"
            ),
            format!(
                "an incomplete record of {rest} bytes after {count} records ({} bytes in all)",
                bytes.len()
            ),
        ));
    }
    let records = bytes.chunks_exact(CIFAR10_RECORD_LEN);
    if let Some(i) = records.clone().position(|r| r[0] > 9) {
        return Err(DatasetError::format(
            path,
            Some((i * CIFAR10_RECORD_LEN) as u64),
            "a label byte in 0..=9",
            format!("label {} in record {i}", bytes[i * CIFAR10_RECORD_LEN]),
        ));
    }
    let mut pixels = Vec::with_capacity(count * CIFAR10_IMAGE_LEN);
    let mut labels = Vec::with_capacity(count);
    for record in records {
        labels.push(record[0] as u32);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(Cifar10Batch { pixels, labels })
}

/// The folder that holds the batch files: `dir`, or `dir/cifar-10-batches-bin` (the official
/// tarball unpacked into `dir`) when only that one has them.
fn batch_folder(dir: &Path, first: &str) -> PathBuf {
    let nested = dir.join(TARBALL_FOLDER);
    if !dir.join(first).is_file() && nested.join(first).is_file() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// Loads the CIFAR-10 binary release from `dir` (or `dir/cifar-10-batches-bin`): shape
/// `[3, 32, 32]`, u8 pixels, labels 0..=9 with [`CIFAR10_CLASSES`] as class names.
///
/// A missing batch file is a [`DatasetError::Io`] (not found) naming every file that is missing.
pub fn load_cifar10_dir(dir: &Path, split: Split) -> Result<Dataset, DatasetError> {
    let names = cifar10_batch_names(split);
    let folder = batch_folder(dir, names[0]);
    let paths: Vec<PathBuf> = names.iter().map(|n| folder.join(n)).collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&paths)
        .filter(|(_, p)| !p.is_file())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(DatasetError::io(
            &folder,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "missing CIFAR-10 {split} batch file(s): {}",
                    missing.join(", ")
                ),
            ),
        ));
    }
    // Read and check the batches in parallel; report the first failure in file order.
    let batches: Vec<Result<Cifar10Batch, DatasetError>> =
        paths.par_iter().map(|p| read_cifar10_batch(p)).collect();
    let batches = batches.into_iter().collect::<Result<Vec<_>, _>>()?;
    let total: usize = batches.iter().map(Cifar10Batch::len).sum();
    let mut pixels = Vec::with_capacity(total * CIFAR10_IMAGE_LEN);
    let mut labels = Vec::with_capacity(total);
    for batch in batches {
        pixels.extend_from_slice(&batch.pixels);
        labels.extend_from_slice(&batch.labels);
    }
    Ok(Dataset::new(
        format!("cifar10/{split}"),
        [3, 32, 32],
        Pixels::U8(pixels),
        Some(labels),
    )?
    .with_class_names(CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::idx::fuzz::{mutation, temp_file};

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..CIFAR10_IMAGE_LEN).map(|i| fill.wrapping_add((i / 1024) as u8)));
        r
    }

    fn batch(labels: &[u8]) -> Vec<u8> {
        labels
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| record(l, 10 * i as u8))
            .collect()
    }

    fn offset(err: &DatasetError) -> Option<u64> {
        match err {
            DatasetError::Format { offset, .. } => *offset,
            other => panic!("expected a Format error, got {other:?}"),
        }
    }

    #[test]
    fn parses_records_as_chw() {
        let b = parse_cifar10_batch(Path::new("b"), &batch(&[3, 9])).unwrap();
        assert_eq!(b.labels, vec![3, 9]);
        assert_eq!(b.len(), 2);
        assert_eq!(b.pixels.len(), 2 * CIFAR10_IMAGE_LEN);
        // Image 1: R plane = 10, G plane = 11, B plane = 12.
        assert_eq!(b.pixels[CIFAR10_IMAGE_LEN], 10);
        assert_eq!(b.pixels[CIFAR10_IMAGE_LEN + 1024], 11);
        assert_eq!(b.pixels[2 * CIFAR10_IMAGE_LEN - 1], 12);
    }

    #[test]
    fn bad_sizes_and_labels_give_offsets() {
        let mut bytes = batch(&[1, 2]);
        bytes.truncate(CIFAR10_RECORD_LEN + 100);
        let err = parse_cifar10_batch(Path::new("b"), &bytes).unwrap_err();
        assert_eq!(offset(&err), Some(CIFAR10_RECORD_LEN as u64));
        assert!(err.to_string().contains("100 bytes"), "{err}");
        let err = parse_cifar10_batch(Path::new("b"), &batch(&[1, 2, 10])).unwrap_err();
        assert_eq!(offset(&err), Some(2 * CIFAR10_RECORD_LEN as u64));
        assert!(err.to_string().contains("label 10"), "{err}");
        assert!(matches!(
            parse_cifar10_batch(Path::new("b"), &[]),
            Err(DatasetError::Empty { .. })
        ));
    }

    #[test]
    fn loads_a_directory_and_names_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join(TARBALL_FOLDER);
        std::fs::create_dir(&nested).unwrap();
        for (i, name) in cifar10_batch_names(Split::Train).iter().enumerate() {
            std::fs::write(nested.join(name), batch(&[i as u8, 9 - i as u8])).unwrap();
        }
        let train = load_cifar10_dir(dir.path(), Split::Train).unwrap();
        assert_eq!(train.len(), 10);
        assert_eq!(train.shape(), [3, 32, 32]);
        assert_eq!(train.labels().unwrap(), &[0, 9, 1, 8, 2, 7, 3, 6, 4, 5]);
        assert_eq!(train.class_names().unwrap()[0], "airplane");
        assert_eq!(train.name(), "cifar10/train");

        let err = load_cifar10_dir(dir.path(), Split::Test).unwrap_err();
        assert!(err.to_string().contains("test_batch.bin"), "{err}");
        std::fs::remove_file(nested.join("data_batch_3.bin")).unwrap();
        let err = load_cifar10_dir(&nested, Split::Train).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("missing") && text.contains("data_batch_3.bin"),
            "{text}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..8000)) {
            let (_dir, path) = temp_file("b.bin", &bytes);
            if let Ok(b) = read_cifar10_batch(&path) {
                prop_assert_eq!(b.pixels.len(), b.len() * CIFAR10_IMAGE_LEN);
            }
        }

        #[test]
        fn mutated_files_never_panic(m in mutation()) {
            let bytes = m.apply(&batch(&[0, 5, 9]));
            let (_dir, path) = temp_file("b.bin", &bytes);
            if let Ok(b) = read_cifar10_batch(&path) {
                prop_assert!(b.labels.iter().all(|&l| l <= 9));
                prop_assert_eq!(b.pixels.len(), b.len() * CIFAR10_IMAGE_LEN);
            }
        }
    }
}
