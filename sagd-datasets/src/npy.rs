//! Writing float32 `.npy` files (NumPy format version 1.0, little-endian, C order).
//!
//! [`NpyWriter`] streams the values into a temporary file beside the target and renames it into
//! place on [`finish`](NpyWriter::finish), so an interrupted run never leaves a torn file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors while writing a `.npy` file.
#[derive(Debug, Error)]
pub enum NpyError {
    /// An I/O failure on `path`.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The number of values written differs from the shape.
    #[error("{path}: wrote {written} values but the shape {shape:?} holds {expected}")]
    Count {
        /// The file.
        path: PathBuf,
        /// Values written.
        written: usize,
        /// Values the shape holds.
        expected: usize,
        /// The shape.
        shape: Vec<usize>,
    },
}

/// The `.npy` header for a little-endian float32 array of `shape`, padded to 64 bytes.
pub fn header_f32(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + header length (2) + dict + '\n' must be a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Streams a float32 array into `path`, atomically.
#[derive(Debug)]
pub struct NpyWriter {
    path: PathBuf,
    temp: PathBuf,
    out: BufWriter<File>,
    shape: Vec<usize>,
    written: usize,
}

impl NpyWriter {
    /// Starts writing an array of `shape` to `path` (through a temporary file beside it).
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self, NpyError> {
        let io = |source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file_name = path.file_name().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file path",
            ))
        })?;
        let temp = path.with_file_name(format!(
            ".{}.{}.tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&temp).map_err(io)?;
        let mut out = BufWriter::new(file);
        out.write_all(&header_f32(shape)).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            out,
            shape: shape.to_vec(),
            written: 0,
        })
    }

    /// Appends values (C order).
    pub fn write(&mut self, values: &[f32]) -> Result<(), NpyError> {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.out.write_all(&bytes).map_err(|source| NpyError::Io {
            path: self.temp.clone(),
            source,
        })?;
        self.written += values.len();
        Ok(())
    }

    /// Checks the count, flushes, syncs and renames the file into place.
    pub fn finish(mut self) -> Result<(), NpyError> {
        let expected: usize = self.shape.iter().product();
        if self.written != expected {
            let _ = std::fs::remove_file(&self.temp);
            return Err(NpyError::Count {
                path: self.path.clone(),
                written: self.written,
                expected,
                shape: self.shape.clone(),
            });
        }
        let io = |path: &Path, source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        };
        self.out.flush().map_err(|e| io(&self.temp, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| io(&self.temp, e))?;
        std::fs::rename(&self.temp, &self.path).map_err(|e| io(&self.path, e))?;
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Drop for NpyWriter {
    fn drop(&mut self) {
        // An unfinished writer leaves nothing behind.
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes a whole float32 array to `path`, atomically.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<(), NpyError> {
    let mut writer = NpyWriter::create(path, shape)?;
    writer.write(values)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_parsable() {
        for shape in [vec![3usize], vec![2, 1, 4, 5], vec![100000, 3, 256, 256]] {
            let h = header_f32(&shape);
            assert_eq!(h.len() % 64, 0);
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            let len = u16::from_le_bytes([h[8], h[9]]) as usize;
            assert_eq!(len + 10, h.len());
            let text = std::str::from_utf8(&h[10..]).unwrap();
            assert!(text.contains("'descr': '<f4'"));
            assert!(text.ends_with('\n'));
        }
        let one_dim = header_f32(&[3]);
        assert!(
            std::str::from_utf8(&one_dim[10..])
                .unwrap()
                .contains("(3,)")
        );
    }

    #[test]
    fn writes_values_and_refuses_a_wrong_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_f32(&path, &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let data = &bytes[header_f32(&[2, 2]).len()..];
        assert_eq!(data.len(), 16);
        assert_eq!(f32::from_le_bytes(data[12..16].try_into().unwrap()), 4.0);
        let bad = dir.path().join("b.npy");
        assert!(write_f32(&bad, &[2, 2], &[1.0]).is_err());
        assert!(!bad.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
