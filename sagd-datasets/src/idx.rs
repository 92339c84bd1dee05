//! IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a 4-byte big-endian magic number `0x0000TTDD` (`TT` = element type, `DD` = number
//! of dimensions), `DD` big-endian u32 dimensions, then the elements in row-major order. This
//! module reads the two layouts those datasets use: `0x00000801` (1-D unsigned bytes: labels) and
//! `0x00000803` (3-D unsigned bytes: images). Files may be gzip-compressed; compression is
//! detected from the gzip magic bytes `1f 8b`, not from the file name.
//!
//! Every check that bounds an allocation (header dimensions against the bytes that can actually
//! be there) runs before the allocation, so a corrupt header cannot ask for absurd memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;
use crate::split::Split;

/// Magic number of a 1-D unsigned-byte IDX file (labels).
pub const IDX_MAGIC_LABELS: u32 = 0x0000_0801;
/// Magic number of a 3-D unsigned-byte IDX file (images).
pub const IDX_MAGIC_IMAGES: u32 = 0x0000_0803;

/// Class names of MNIST (index = label).
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Class names of Fashion-MNIST (index = label).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The two magic bytes that open a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Upper bound of DEFLATE's expansion ratio (about 1032:1), used to bound what a gzip file of a
/// given size can decompress to.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// The content of an IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header (1 for labels, 3 for images: count, rows, columns).
    pub dims: Vec<usize>,
    /// The elements, row-major; `dims` multiply to its length.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The magic number of this array's layout (`0x00000801` or `0x00000803`).
    pub fn magic(&self) -> u32 {
        0x0800 | self.dims.len() as u32
    }
}

/// Reads an IDX file of unsigned bytes (magic `0x00000801` or `0x00000803`), gzip-compressed or
/// raw.
///
/// Errors are [`DatasetError::Format`] with the byte offset (in the decompressed stream for
/// gzip files): a wrong magic number (offset 0), an element type other than unsigned byte
/// (offset 2), a header or data that ends early (offset where the file ended), bytes after the
/// data (offset where the data should have ended), and corrupt gzip data.
pub fn read_idx(path: &Path) -> Result<IdxArray, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    parse_idx(path, &bytes)
}

/// Parses the bytes of an IDX file (see [`read_idx`]); `path` names the source in errors.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DatasetError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let bound = (bytes.len() as u64)
            .saturating_mul(DEFLATE_MAX_RATIO)
            .saturating_add(1024);
        parse_stream(path, MultiGzDecoder::new(bytes), bound, true)
    } else {
        parse_stream(path, bytes, bytes.len() as u64, false)
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill<R: Read>(path: &Path, r: &mut R, buf: &mut [u8], done: u64) -> Result<usize, DatasetError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(gzip_error(path, done + n as u64, &e)),
        }
    }
    Ok(n)
}

/// Reading from memory only fails while decompressing: the gzip data is corrupt.
fn gzip_error(path: &Path, decompressed: u64, e: &std::io::Error) -> DatasetError {
    DatasetError::format(
        path,
        None,
        "a valid gzip stream",
        format!("corrupt gzip data after {decompressed} decompressed bytes: {e}"),
    )
}

fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => "not an IDX type",
    }
}

/// Parses an IDX stream; `bound` is the most bytes the stream can hold (exact for raw files).
fn parse_stream<R: Read>(
    path: &Path,
    mut r: R,
    bound: u64,
    gz: bool,
) -> Result<IdxArray, DatasetError> {
    let note = if gz {
        " (offsets count decompressed bytes)"
    } else {
        ""
    };
    let mut magic = [0u8; 4];
    let n = fill(path, &mut r, &mut magic, 0)?;
    if n < 4 {
        return Err(DatasetError::format(
            path,
            Some(n as u64),
            "a 4-byte IDX magic number",
            format!("end of file after {n} bytes{note}"),
        ));
    }
    let found = u32::from_be_bytes(magic);
    let expected_magic = "IDX magic 0x00000801 (u8 labels, 1-D) or 0x00000803 (u8 images, 3-D)";
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DatasetError::format(
            path,
            Some(0),
            expected_magic,
            format!("0x{found:08X}{note}"),
        ));
    }
    if magic[2] != 0x08 {
        return Err(DatasetError::format(
            path,
            Some(2),
            "IDX type code 0x08 (unsigned byte)",
            format!(
                "unsupported type code 0x{:02X} ({}) in magic 0x{found:08X}",
                magic[2],
                type_name(magic[2])
            ),
        ));
    }
    let ndims = magic[3] as usize;
    if ndims != 1 && ndims != 3 {
        return Err(DatasetError::format(
            path,
            Some(0),
            expected_magic,
            format!("0x{found:08X} ({ndims}-D)"),
        ));
    }
    let header_len = 4 + 4 * ndims;
    let mut raw_dims = [0u8; 12];
    let n = fill(path, &mut r, &mut raw_dims[..4 * ndims], 4)?;
    if n < 4 * ndims {
        return Err(DatasetError::format(
            path,
            Some(4 + n as u64),
            format!("a {header_len}-byte header ({ndims} big-endian u32 dimensions)"),
            format!("end of file at byte {}{note}", 4 + n),
        ));
    }
    let dims: Vec<usize> = raw_dims[..4 * ndims]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    // The product of at most three u32 always fits in u128; compare in u128 so no overflow.
    let expected = dims.iter().map(|&d| d as u128).product::<u128>();
    let header_len = header_len as u64;
    let available = bound.saturating_sub(header_len);
    if !gz && expected > available as u128 {
        return Err(DatasetError::format(
            path,
            Some(header_len + available),
            format!(
                "{expected} data bytes for dimensions {dims:?} (a file of {} bytes)",
                header_len as u128 + expected
            ),
            format!("end of file at byte {}", header_len + available),
        ));
    }
    // For gzip the stream cannot hold more than `available` bytes either, so the reservation
    // is bounded by the compressed size even when the header lies.
    let want = expected.min(available as u128) as u64;
    let mut data = Vec::with_capacity(want as usize);
    let mut limited = (&mut r).take(want);
    limited
        .read_to_end(&mut data)
        .map_err(|e| gzip_error(path, header_len + data.len() as u64, &e))?;
    if (data.len() as u128) < expected {
        let end = header_len + data.len() as u64;
        return Err(DatasetError::format(
            path,
            Some(end),
            format!(
                "{expected} data bytes for dimensions {dims:?} (a file of {} bytes)",
                header_len as u128 + expected
            ),
            format!("end of file at byte {end}{note}"),
        ));
    }
    let mut extra = [0u8; 1];
    let end = header_len + expected as u64;
    if fill(path, &mut r, &mut extra, end)? > 0 {
        let trailing = 1 + std::io::copy(&mut r, &mut std::io::sink())
            .map_err(|e| gzip_error(path, end + 1, &e))?;
        return Err(DatasetError::format(
            path,
            Some(end),
            format!("the file to end after {expected} data bytes for dimensions {dims:?}"),
            format!("{trailing} trailing bytes{note}"),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// The image and label file names of a split, without `.gz`:
/// `train-images-idx3-ubyte` / `train-labels-idx1-ubyte` or `t10k-…`.
pub fn idx_file_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// `dir/stem.gz` or `dir/stem`, whichever exists (the gzip one first).
fn find_idx_file(dir: &Path, stem: &str, split: Split) -> Result<PathBuf, DatasetError> {
    for candidate in [format!("{stem}.gz"), stem.to_string()] {
        let path = dir.join(candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(DatasetError::io(
        dir,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no {stem}.gz or {stem} (the {split} split)"),
        ),
    ))
}

/// Loads MNIST from `dir` holding `train-images-idx3-ubyte[.gz]` and
/// `train-labels-idx1-ubyte[.gz]` (or the `t10k-…` files for [`Split::Test`]).
///
/// Images are u8, shape `[1, rows, cols]` from the file (`[1, 28, 28]` for MNIST); labels are
/// checked to lie in 0..=9; class names are `"0"`..`"9"`.
pub fn load_mnist_dir(dir: &Path, split: Split) -> Result<Dataset, DatasetError> {
    load_idx_dir(dir, split, "mnist", &MNIST_CLASSES)
}

/// Loads Fashion-MNIST from `dir`: the same files and layout as [`load_mnist_dir`], with the
/// Fashion-MNIST class names ([`FASHION_MNIST_CLASSES`]).
pub fn load_fashion_mnist_dir(dir: &Path, split: Split) -> Result<Dataset, DatasetError> {
    load_idx_dir(dir, split, "fashion-mnist", &FASHION_MNIST_CLASSES)
}

/// Loads an images + labels pair of IDX files of `split` from `dir` with `classes` as names.
fn load_idx_dir(
    dir: &Path,
    split: Split,
    name: &str,
    classes: &[&str],
) -> Result<Dataset, DatasetError> {
    let (images_stem, labels_stem) = idx_file_names(split);
    let images_path = find_idx_file(dir, images_stem, split)?;
    let labels_path = find_idx_file(dir, labels_stem, split)?;
    let (images, labels) = rayon::join(|| read_idx(&images_path), || read_idx(&labels_path));
    let (images, labels) = (images?, labels?);
    if images.dims.len() != 3 {
        return Err(DatasetError::format(
            &images_path,
            Some(0),
            "magic 0x00000803 (an image file)",
            format!("0x{:08X} (not an image file)", images.magic()),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(DatasetError::format(
            &labels_path,
            Some(0),
            "magic 0x00000801 (a label file)",
            format!("0x{:08X} (not a label file)", labels.magic()),
        ));
    }
    let (count, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if count != labels.dims[0] {
        return Err(DatasetError::Mismatch {
            path: dir.to_path_buf(),
            message: format!(
                "{} holds {count} images but {} holds {} labels",
                images_path.display(),
                labels_path.display(),
                labels.dims[0]
            ),
        });
    }
    if count == 0 {
        return Err(DatasetError::Empty {
            path: images_path,
            message: "the IDX file holds no image".to_string(),
        });
    }
    if let Some(i) = labels
        .data
        .iter()
        .position(|&l| l as usize >= classes.len())
    {
        return Err(DatasetError::format(
            &labels_path,
            Some(8 + i as u64),
            format!("a label in 0..={}", classes.len() - 1),
            format!("label {} for image {i}", labels.data[i]),
        ));
    }
    let labels = labels.data.iter().map(|&l| l as u32).collect();
    Ok(Dataset::new(
        format!("{name}/{split}"),
        [1, rows, cols],
        Pixels::U8(images.data),
        Some(labels),
    )?
    .with_class_names(classes.iter().map(|c| c.to_string()).collect()))
}

/// Test helpers shared by the parsers' fuzz-style property tests.
#[cfg(test)]
pub(crate) mod fuzz {
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Random damage to a valid file: byte flips, a truncation, appended bytes.
    #[derive(Debug, Clone)]
    pub(crate) struct Mutation {
        flips: Vec<(Index, u8)>,
        truncate: Option<Index>,
        append: Vec<u8>,
    }

    /// Strategy for [`Mutation`]s.
    pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
        (
            prop::collection::vec((any::<Index>(), 1u8..), 0..4),
            prop::option::of(any::<Index>()),
            prop::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(flips, truncate, append)| Mutation {
                flips,
                truncate,
                append,
            })
    }

    impl Mutation {
        /// `bytes` with the damage applied.
        pub(crate) fn apply(&self, bytes: &[u8]) -> Vec<u8> {
            let mut out = bytes.to_vec();
            if !out.is_empty() {
                for (at, xor) in &self.flips {
                    let i = at.index(out.len());
                    out[i] ^= xor;
                }
            }
            if let Some(at) = &self.truncate {
                out.truncate(at.index(out.len() + 1));
            }
            out.extend_from_slice(&self.append);
            out
        }
    }

    /// Writes `bytes` to a file named `name` in a fresh temporary directory.
    pub(crate) fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::fuzz::{mutation, temp_file};
    use super::*;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn format_offset(err: &DatasetError) -> Option<u64> {
        match err {
            DatasetError::Format { offset, .. } => *offset,
            other => panic!("expected a Format error, got {other:?}"),
        }
    }

    #[test]
    fn reads_raw_and_gzip_files() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let raw = idx_bytes(&[2, 3, 4], &data);
        for (name, bytes) in [("a", raw.clone()), ("b.gz", raw.clone()), ("c", gzip(&raw))] {
            let (_dir, path) = temp_file(name, &bytes);
            let arr = read_idx(&path).unwrap();
            assert_eq!(arr.dims, vec![2, 3, 4]);
            assert_eq!(arr.data, data);
            assert_eq!(arr.magic(), IDX_MAGIC_IMAGES);
        }
        let labels = parse_idx(Path::new("l"), &idx_bytes(&[3], &[7, 8, 9])).unwrap();
        assert_eq!(labels.dims, vec![3]);
        assert_eq!(labels.magic(), IDX_MAGIC_LABELS);
    }

    #[test]
    fn wrong_magic_names_expected_and_found() {
        let err = parse_idx(Path::new("x"), b"\x89PNG\r\n\x1a\n").unwrap_err();
        assert_eq!(format_offset(&err), Some(0));
        let text = err.to_string();
        assert!(
            text.contains("0x00000803") && text.contains("0x89504E47"),
            "{text}"
        );
        let err = parse_idx(Path::new("x"), &[0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(err.to_string().contains("0x00000802"), "{err}");
    }

    #[test]
    fn unsupported_type_code_is_named() {
        let err = parse_idx(Path::new("x"), &[0, 0, 0x0D, 1, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(format_offset(&err), Some(2));
        assert!(err.to_string().contains("0x0D (float32)"), "{err}");
    }

    #[test]
    fn truncated_and_overlong_files_give_offsets() {
        let full = idx_bytes(&[2, 2, 2], &[1; 8]);
        // Data ends early.
        let err = parse_idx(Path::new("x"), &full[..full.len() - 3]).unwrap_err();
        assert_eq!(format_offset(&err), Some(16 + 5));
        assert!(err.to_string().contains("8 data bytes"), "{err}");
        // Header ends early.
        let err = parse_idx(Path::new("x"), &full[..9]).unwrap_err();
        assert_eq!(format_offset(&err), Some(9));
        // Magic ends early.
        assert_eq!(
            format_offset(&parse_idx(Path::new("x"), &[0, 0]).unwrap_err()),
            Some(2)
        );
        // Trailing bytes.
        let mut long = full.clone();
        long.extend_from_slice(&[0; 5]);
        let err = parse_idx(Path::new("x"), &long).unwrap_err();
        assert_eq!(format_offset(&err), Some(24));
        assert!(err.to_string().contains("5 trailing bytes"), "{err}");
        // The same in gzip: offsets count decompressed bytes.
        let err = parse_idx(Path::new("x"), &gzip(&full[..20])).unwrap_err();
        assert_eq!(format_offset(&err), Some(20));
        let err = parse_idx(Path::new("x"), &gzip(&long)).unwrap_err();
        assert_eq!(format_offset(&err), Some(24));
        // A header that claims far more than the file holds fails before allocating.
        let huge = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[0; 4]);
        assert_eq!(
            format_offset(&parse_idx(Path::new("x"), &huge).unwrap_err()),
            Some(20)
        );
        assert!(parse_idx(Path::new("x"), &gzip(&huge)).is_err());
    }

    #[test]
    fn corrupt_gzip_is_a_format_error() {
        let mut gz = gzip(&idx_bytes(&[4], &[1, 2, 3, 4]));
        let n = gz.len();
        gz[n - 6] ^= 0xff; // the CRC
        let err = parse_idx(Path::new("x"), &gz).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    fn write_mnist(dir: &Path, split: Split, count: u32, labels: &[u8], gz: bool) {
        let (images, label_file) = idx_file_names(split);
        let pixels: Vec<u8> = (0..count * 28 * 28).map(|i| (i % 251) as u8).collect();
        let img = idx_bytes(&[count, 28, 28], &pixels);
        let lab = idx_bytes(&[labels.len() as u32], labels);
        if gz {
            std::fs::write(dir.join(format!("{images}.gz")), gzip(&img)).unwrap();
        } else {
            std::fs::write(dir.join(images), img).unwrap();
        }
        std::fs::write(dir.join(label_file), lab).unwrap();
    }

    #[test]
    fn loads_an_mnist_directory() {
        let dir = tempfile::tempdir().unwrap();
        write_mnist(dir.path(), Split::Train, 5, &[0, 1, 9, 3, 3], true);
        write_mnist(dir.path(), Split::Test, 2, &[4, 2], false);
        let train = load_mnist_dir(dir.path(), Split::Train).unwrap();
        assert_eq!(train.len(), 5);
        assert_eq!(train.shape(), [1, 28, 28]);
        assert_eq!(train.labels().unwrap(), &[0, 1, 9, 3, 3]);
        assert_eq!(train.class_names().unwrap()[9], "9");
        assert_eq!(train.name(), "mnist/train");
        assert!(train.is_u8());
        let test = load_fashion_mnist_dir(dir.path(), Split::Test).unwrap();
        assert_eq!(test.len(), 2);
        assert_eq!(test.class_names().unwrap()[0], "T-shirt/top");
        assert_eq!(test.class_names().unwrap()[9], "Ankle boot");
    }

    #[test]
    fn mnist_directory_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_mnist_dir(dir.path(), Split::Train).unwrap_err();
        assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");

        write_mnist(dir.path(), Split::Train, 3, &[1, 2], false);
        let err = load_mnist_dir(dir.path(), Split::Train).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DatasetError::Mismatch { .. }));
        assert!(
            text.contains("train-images-idx3-ubyte") && text.contains("train-labels-idx1-ubyte"),
            "{text}"
        );
        assert!(
            text.contains("3 images") && text.contains("2 labels"),
            "{text}"
        );

        write_mnist(dir.path(), Split::Train, 2, &[1, 12], false);
        let err = load_mnist_dir(dir.path(), Split::Train).unwrap_err();
        assert_eq!(format_offset(&err), Some(9));
        assert!(err.to_string().contains("label 12"), "{err}");

        // Swapped files.
        let (images, labels) = idx_file_names(Split::Train);
        std::fs::rename(dir.path().join(images), dir.path().join("tmp")).unwrap();
        std::fs::rename(dir.path().join(labels), dir.path().join(images)).unwrap();
        std::fs::rename(dir.path().join("tmp"), dir.path().join(labels)).unwrap();
        let err = load_mnist_dir(dir.path(), Split::Train).unwrap_err();
        assert!(err.to_string().contains("not an image file"), "{err}");
    }

    fn valid_files() -> Vec<Vec<u8>> {
        let data: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
        let images = idx_bytes(&[3, 4, 5], &data);
        let labels = idx_bytes(&[6], &[0, 1, 2, 3, 4, 5]);
        vec![gzip(&images), gzip(&labels), images, labels]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let (_dir, path) = temp_file("f", &bytes);
            let _ = read_idx(&path);
        }

        #[test]
        fn mutated_files_never_panic(which in 0usize..4, m in mutation()) {
            let bytes = m.apply(&valid_files()[which]);
            let (_dir, path) = temp_file("f", &bytes);
            if let Ok(arr) = read_idx(&path) {
                prop_assert_eq!(arr.dims.iter().product::<usize>(), arr.data.len());
            }
        }
    }
}
