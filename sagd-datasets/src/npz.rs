//! `.npz` files: zip archives of `.npy` arrays (as `np.savez` and `np.savez_compressed` write
//! them, stored or deflated). The member `x.npy` is the array with key `x`.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sagd_core::files::AtomicFile;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::dataset::Dataset;
use crate::error::DatasetError;
use crate::npy::{
    Layout, NpyArray, NpyData, NpyError, header_f64, images_from_array, parse_npy, parse_npy_f64,
};

/// Keys tried, in order, for the images when none is given.
pub const IMAGE_KEYS: [&str; 3] = ["x", "images", "arr_0"];

/// Keys tried, in order, for the (optional) labels.
pub const LABEL_KEYS: [&str; 2] = ["y", "labels"];

/// Upper bound of DEFLATE's expansion ratio, used to bound a member's reservation.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// An open `.npz` archive.
struct Npz {
    path: PathBuf,
    file_len: u64,
    archive: ZipArchive<BufReader<File>>,
}

impl Npz {
    fn open(path: &Path) -> Result<Self, DatasetError> {
        let file = File::open(path).map_err(|e| DatasetError::io(path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| DatasetError::io(path, e))?
            .len();
        let archive = ZipArchive::new(BufReader::new(file)).map_err(|e| {
            DatasetError::format(path, None, "a .npz file (a zip archive)", e.to_string())
        })?;
        // The zip reader keeps one of two members of one name; which one counts is undefined.
        if let Some(name) = duplicated_member(path, archive.central_directory_start()) {
            return Err(DatasetError::format(
                path,
                None,
                "a .npz file naming each member once",
                format!("the member `{name}` twice"),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file_len,
            archive,
        })
    }

    /// The keys: member names ending in `.npy`, without it, in archive order.
    fn keys(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(|n| n.strip_suffix(".npy"))
            .map(str::to_string)
            .collect()
    }

    /// The array under `key`.
    fn read(&mut self, key: &str) -> Result<NpyArray, DatasetError> {
        let (shown, bytes) = self.read_bytes(key)?;
        parse_npy(&shown, &bytes)
    }

    /// The bytes of the member `key.npy`, and the name to show in errors.
    fn read_bytes(&mut self, key: &str) -> Result<(PathBuf, Vec<u8>), DatasetError> {
        let member = format!("{key}.npy");
        let shown = PathBuf::from(format!("{}:{member}", self.path.display()));
        let zip_err = |e: &dyn std::fmt::Display| {
            DatasetError::format(&shown, None, "a readable zip member", e.to_string())
        };
        let mut file = self.archive.by_name(&member).map_err(|e| zip_err(&e))?;
        // Reserve what the member says it holds, but no more than its compressed bytes can
        // expand to, so a lying header cannot ask for absurd memory.
        let bound = file
            .compressed_size()
            .min(self.file_len)
            .saturating_mul(DEFLATE_MAX_RATIO)
            .saturating_add(1024);
        let mut bytes = Vec::with_capacity(file.size().min(bound) as usize);
        file.read_to_end(&mut bytes).map_err(|e| zip_err(&e))?;
        Ok((shown, bytes))
    }
}

/// The keys of the arrays in an `.npz` file, in archive order.
pub fn npz_keys(path: &Path) -> Result<Vec<String>, DatasetError> {
    Ok(Npz::open(path)?.keys())
}

/// Reads the array under `key` from an `.npz` file.
pub fn read_npz_array(path: &Path, key: &str) -> Result<NpyArray, DatasetError> {
    let mut npz = Npz::open(path)?;
    if !npz.keys().iter().any(|k| k == key) {
        return Err(missing_key(path, &format!("an array `{key}`"), &npz.keys()));
    }
    npz.read(key)
}

/// Reads the float array under `key` from an `.npz` file exactly, as float64 (`<f8` as it
/// is, `<f4` widened): the shape and the values in C order. See
/// [`parse_npy_f64`].
pub fn read_npz_f64(path: &Path, key: &str) -> Result<(Vec<usize>, Vec<f64>), DatasetError> {
    let mut npz = Npz::open(path)?;
    if !npz.keys().iter().any(|k| k == key) {
        return Err(missing_key(path, &format!("an array `{key}`"), &npz.keys()));
    }
    let (shown, bytes) = npz.read_bytes(key)?;
    parse_npy_f64(&shown, &bytes)
}

/// The first member name that the zip's central directory (at byte `start` of `path`) lists
/// twice. Each entry is a 46-byte header (signature `PK\x01\x02`; the name, extra field and
/// comment lengths at bytes 28, 30 and 32) followed by the three; the scan stops at the first
/// other signature. A directory that cannot be read gives `None`: the zip reader has read it.
fn duplicated_member(path: &Path, start: u64) -> Option<String> {
    use std::io::{Seek, SeekFrom};
    let mut file = BufReader::new(File::open(path).ok()?);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut seen = std::collections::HashSet::new();
    let mut header = [0u8; 46];
    while file.read_exact(&mut header).is_ok() && header[..4] == *b"PK\x01\x02" {
        let length = |at: usize| usize::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let mut name = vec![0u8; length(28)];
        file.read_exact(&mut name).ok()?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if !seen.insert(name.clone()) {
            return Some(name);
        }
        file.seek_relative((length(30) + length(32)) as i64).ok()?;
    }
    None
}

/// Writes float64 arrays `(key, shape, values)` to an `.npz` file the way `np.savez` does
/// (one stored `key.npy` member each), atomically: a temporary file beside `path`, synced,
/// then renamed into place. NumPy reads it with `np.load(path)["key"]`.
pub fn write_npz_f64(path: &Path, arrays: &[(&str, &[usize], &[f64])]) -> Result<(), NpyError> {
    let io = |p: &Path, source: std::io::Error| NpyError::Io {
        path: p.to_path_buf(),
        source,
    };
    for (key, shape, values) in arrays {
        let expected: usize = shape.iter().product();
        if expected != values.len() {
            return Err(NpyError::Count {
                path: PathBuf::from(format!("{}:{key}.npy", path.display())),
                written: values.len(),
                expected,
                shape: shape.to_vec(),
            });
        }
    }
    let mut out = AtomicFile::create(path)?;
    let zip_err = |e: zip::result::ZipError| io(path, std::io::Error::other(e));
    let mut zip = ZipWriter::new(&mut out);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true);
    for (key, shape, values) in arrays {
        zip.start_file(format!("{key}.npy"), options)
            .map_err(zip_err)?;
        zip.write_all(&header_f64(shape)).map_err(|e| io(path, e))?;
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for v in values.iter() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        zip.write_all(&bytes).map_err(|e| io(path, e))?;
    }
    zip.finish().map_err(zip_err)?;
    Ok(out.commit()?)
}

fn missing_key(path: &Path, expected: &str, keys: &[String]) -> DatasetError {
    DatasetError::format(
        path,
        None,
        expected,
        if keys.is_empty() {
            "no .npy member".to_string()
        } else {
            format!("the arrays {}", keys.join(", "))
        },
    )
}

/// Labels from an integer array: 1-D, values in 0..2^32.
fn labels_from_array(path: &Path, key: &str, array: NpyArray) -> Result<Vec<u32>, DatasetError> {
    let shown = PathBuf::from(format!("{}:{key}.npy", path.display()));
    if array.shape.len() != 1 {
        return Err(DatasetError::format(
            &shown,
            None,
            "1-D labels",
            format!("shape {:?}", array.shape),
        ));
    }
    match array.data {
        NpyData::U8(v) => Ok(v.into_iter().map(u32::from).collect()),
        NpyData::I64(v) => v
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                u32::try_from(l).map_err(|_| {
                    DatasetError::format(
                        &shown,
                        None,
                        "labels in 0..2^32",
                        format!("label {l} at index {i}"),
                    )
                })
            })
            .collect(),
        NpyData::F32(_) => Err(DatasetError::format(
            &shown,
            None,
            "labels of an integer dtype",
            format!("'{}'", array.descr),
        )),
    }
}

/// Loads images (and labels when present) from an `.npz` file.
///
/// Images come from `key`, or by default from the first of [`IMAGE_KEYS`] (`x`, `images`,
/// `arr_0`) present; they must be 3-D (N, H, W) or 4-D in `layout`, dtype `|u1`, `<f4` or
/// `<f8` (see [`load_npy`](crate::npy::load_npy)). Labels come from the first of
/// [`LABEL_KEYS`] (`y`, `labels`) present, if any: 1-D, integer, one per image.
pub fn load_npz(path: &Path, key: Option<&str>, layout: Layout) -> Result<Dataset, DatasetError> {
    let mut npz = Npz::open(path)?;
    let keys = npz.keys();
    let image_key = match key {
        Some(k) => {
            if !keys.iter().any(|have| have == k) {
                return Err(missing_key(path, &format!("an array `{k}`"), &keys));
            }
            k.to_string()
        }
        None => IMAGE_KEYS
            .iter()
            .find(|k| keys.iter().any(|have| have == *k))
            .ok_or_else(|| missing_key(path, "an image array `x`, `images` or `arr_0`", &keys))?
            .to_string(),
    };
    let images = npz.read(&image_key)?;
    let label_key = LABEL_KEYS
        .iter()
        .find(|k| **k != image_key && keys.iter().any(|have| have == *k));
    let labels = match label_key {
        Some(k) => Some(labels_from_array(path, k, npz.read(k)?)?),
        None => None,
    };
    let count = images.shape.first().copied().unwrap_or(0);
    if let (Some(labels), Some(k)) = (&labels, label_key)
        && labels.len() != count
        && matches!(images.shape.len(), 3 | 4)
    {
        return Err(DatasetError::Mismatch {
            path: path.to_path_buf(),
            message: format!(
                "`{image_key}` holds {count} images but `{k}` holds {} labels",
                labels.len()
            ),
        });
    }
    let shown = PathBuf::from(format!("{}:{image_key}.npy", path.display()));
    images_from_array(&shown, path.display().to_string(), images, layout, labels)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::CompressionMethod;
    use zip::write::{SimpleFileOptions, ZipWriter};

    use super::*;
    use crate::dataset::Pixels;
    use crate::npy::header_f32;

    fn npy_u8(shape: &[usize], descr: &str, data: &[u8]) -> Vec<u8> {
        // Reuse the float32 header and swap the dtype (same length).
        let mut h = header_f32(shape);
        let at = h.windows(3).position(|w| w == b"<f4").unwrap();
        h[at..at + 3].copy_from_slice(descr.as_bytes());
        h.extend_from_slice(data);
        h
    }

    fn npz(path: &Path, members: &[(&str, Vec<u8>)], method: CompressionMethod) {
        let mut zip = ZipWriter::new(File::create(path).unwrap());
        for (name, bytes) in members {
            zip.start_file(
                *name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    /// safetensors#401's fault in a zip: a member listed twice is refused by name, not read
    /// as whichever copy the zip reader kept.
    #[test]
    fn a_member_listed_twice_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dup.npz");
        let one = npy_u8(&[1, 1, 1], "|u1", &[1]);
        let two = npy_u8(&[1, 1, 1], "|u1", &[2]);
        npz(
            &path,
            &[("x.npy", one), ("y.npy", two)],
            CompressionMethod::Stored,
        );
        assert!(Npz::open(&path).is_ok());
        // Rename `y.npy` to `x.npy` everywhere (local and central headers; the same length).
        let mut bytes = std::fs::read(&path).unwrap();
        for at in 0..bytes.len() - 4 {
            if &bytes[at..at + 5] == b"y.npy" {
                bytes[at] = b'x';
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let e = Npz::open(&path).err().unwrap().to_string();
        assert!(e.contains("the member `x.npy` twice"), "{e}");
    }

    #[test]
    fn loads_images_and_labels_stored_or_deflated() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<u8> = (0..3 * 2 * 2).collect();
        let labels: Vec<u8> = [2i64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let path = dir.path().join("d.npz");
            npz(
                &path,
                &[
                    ("labels.npy", npy_u8(&[3], "<i8", &labels)),
                    ("images.npy", npy_u8(&[3, 2, 2], "|u1", &images)),
                ],
                method,
            );
            assert_eq!(npz_keys(&path).unwrap(), vec!["labels", "images"]);
            let d = load_npz(&path, None, Layout::Nchw).unwrap();
            assert_eq!((d.len(), d.shape()), (3, [1, 2, 2]));
            assert_eq!(d.labels().unwrap(), &[2, 0, 1]);
            assert_eq!(d.pixels(), &Pixels::U8(images.clone()));
            let a = read_npz_array(&path, "labels").unwrap();
            assert_eq!(a.data, NpyData::I64(vec![2, 0, 1]));
        }
    }

    #[test]
    fn keys_default_and_explicit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npz");
        let f4: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
        npz(
            &path,
            &[
                ("arr_0.npy", npy_u8(&[2, 2, 2, 1], "<f4", &f4)),
                ("other.npy", npy_u8(&[1, 1, 1], "|u1", &[9])),
            ],
            CompressionMethod::Deflated,
        );
        let d = load_npz(&path, None, Layout::Nhwc).unwrap();
        assert_eq!((d.len(), d.shape(), d.labels()), (2, [1, 2, 2], None));
        let d = load_npz(&path, Some("other"), Layout::Nchw).unwrap();
        assert_eq!(d.len(), 1);
        let err = load_npz(&path, Some("x"), Layout::Nchw).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`x`") && text.contains("arr_0, other"),
            "{text}"
        );
        assert!(read_npz_array(&path, "nope").is_err());
    }

    /// A NaN in an `.npz` image array (stored or deflated) is refused at load, naming the
    /// archive, the member and the value's index.
    #[test]
    fn non_finite_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npz");
        let mut values = [0.0f32; 3 * 2 * 2];
        values[6] = f32::NAN;
        let f4: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            npz(&path, &[("x.npy", npy_u8(&[3, 2, 2], "<f4", &f4))], method);
            let err = load_npz(&path, None, Layout::Nchw).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, DatasetError::NonFinite { index, .. } if index == &[1, 1, 0]),
                "{text}"
            );
            assert!(
                text.contains("d.npz:x.npy") && text.contains("NaN"),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_name_keys_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npz");
        npz(
            &path,
            &[
                ("x.npy", npy_u8(&[3, 1, 1], "|u1", &[1, 2, 3])),
                ("y.npy", npy_u8(&[2], "|u1", &[1, 2])),
            ],
            CompressionMethod::Stored,
        );
        let err = load_npz(&path, None, Layout::Nchw).unwrap_err();
        assert!(matches!(err, DatasetError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("3 images") && err.to_string().contains("`y`"));

        npz(
            &path,
            &[("z.npy", npy_u8(&[1], "|u1", &[1]))],
            CompressionMethod::Stored,
        );
        let err = load_npz(&path, None, Layout::Nchw).unwrap_err();
        assert!(err.to_string().contains("`images`"), "{err}");

        npz(
            &path,
            &[("x.npy", npy_u8(&[2, 1, 1], "|u1", &[1]))],
            CompressionMethod::Deflated,
        );
        let err = load_npz(&path, None, Layout::Nchw).unwrap_err();
        assert!(err.to_string().contains("x.npy"), "{err}");

        std::fs::write(&path, b"not a zip").unwrap();
        assert!(matches!(
            load_npz(&path, None, Layout::Nchw),
            Err(DatasetError::Format { .. })
        ));
    }

    #[test]
    fn float64_arrays_round_trip_exactly_and_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.npz");
        let mu = [0.1, -2.5e-300, 3.0];
        let sigma: Vec<f64> = (0..9).map(|i| 1.0 / (i as f64 + 3.0)).collect();
        write_npz_f64(&path, &[("mu", &[3], &mu), ("sigma", &[3, 3], &sigma)]).unwrap();
        assert_eq!(npz_keys(&path).unwrap(), vec!["mu", "sigma"]);
        assert_eq!(read_npz_f64(&path, "mu").unwrap(), (vec![3], mu.to_vec()));
        assert_eq!(
            read_npz_f64(&path, "sigma").unwrap(),
            (vec![3, 3], sigma.clone())
        );
        // The f32 reader sees the same values rounded.
        let a = read_npz_array(&path, "sigma").unwrap();
        assert_eq!(a.descr, "<f8");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        // A count that disagrees with the shape writes nothing.
        let other = dir.path().join("bad.npz");
        assert!(write_npz_f64(&other, &[("mu", &[4], &mu)]).is_err());
        assert!(!other.exists());
        // float32 members widen; integer members are refused.
        npz(
            &other,
            &[
                ("a.npy", npy_u8(&[2], "<f4", &[0, 0, 128, 63, 0, 0, 0, 64])),
                ("b.npy", npy_u8(&[2], "|u1", &[1, 2])),
            ],
            CompressionMethod::Stored,
        );
        assert_eq!(
            read_npz_f64(&other, "a").unwrap(),
            (vec![2], vec![1.0, 2.0])
        );
        let err = read_npz_f64(&other, "b").unwrap_err().to_string();
        assert!(err.contains("float array"), "{err}");
    }
}
