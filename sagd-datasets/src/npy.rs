//! `.npy` files (NumPy's array format).
//!
//! Writing: float32, format version 1.0, little-endian, C order. [`NpyWriter`] streams the
//! values into a temporary file beside the target and renames it into place on
//! [`finish`](NpyWriter::finish), so an interrupted run never leaves a torn file.
//!
//! Reading: [`read_npy`] (format versions 1.0, 2.0 and 3.0, C order, little-endian `u1`, `f4`,
//! `f8` and integer dtypes) and [`load_npy`], which turns an (N, H, W), (N, C, H, W) or
//! (N, H, W, C) image array into a [`Dataset`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rayon::prelude::*;
use sagd_core::files::{AtomicFile, WriteError};
use thiserror::Error;

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;

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
    header("<f4", shape)
}

/// The `.npy` header for a little-endian float64 array of `shape`, padded to 64 bytes.
pub fn header_f64(shape: &[usize]) -> Vec<u8> {
    header("<f8", shape)
}

/// The `.npy` (version 1.0) header for dtype `descr` and `shape`, padded to 64 bytes.
fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + header length (2) + dict + '\n' must be a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Streams a float32 array into `path`, atomically (through a
/// [`sagd_core::files::AtomicFile`]: an unfinished writer, or one stopped by a signal, leaves
/// nothing behind).
#[derive(Debug)]
pub struct NpyWriter {
    out: AtomicFile,
    shape: Vec<usize>,
    written: usize,
}

impl From<WriteError> for NpyError {
    fn from(e: WriteError) -> Self {
        NpyError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl NpyWriter {
    /// Starts writing an array of `shape` to `path` (through a temporary file beside it).
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self, NpyError> {
        let mut out = AtomicFile::create(path)?;
        out.write_all(&header_f32(shape))
            .map_err(|source| NpyError::Io {
                path: out.path().to_path_buf(),
                source,
            })?;
        Ok(Self {
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
            path: self.out.path().to_path_buf(),
            source,
        })?;
        self.written += values.len();
        Ok(())
    }

    /// Checks the count, flushes, syncs and renames the file into place.
    pub fn finish(self) -> Result<(), NpyError> {
        let expected: usize = self.shape.iter().product();
        if self.written != expected {
            return Err(NpyError::Count {
                path: self.out.path().to_path_buf(),
                written: self.written,
                expected,
                shape: self.shape,
            });
        }
        Ok(self.out.commit()?)
    }
}

/// Writes a whole float32 array to `path`, atomically.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<(), NpyError> {
    let mut writer = NpyWriter::create(path, shape)?;
    writer.write(values)?;
    writer.finish()
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// The magic string that opens every `.npy` file.
const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Deepest nesting of tuples and lists accepted in a header (real headers nest at most 2).
const MAX_HEADER_DEPTH: usize = 16;

/// The values of an `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `|u1` (unsigned bytes).
    U8(Vec<u8>),
    /// `<f4`, or `<f8` converted to f32.
    F32(Vec<f32>),
    /// Any other integer dtype (`|i1`, `<i2`, `<i4`, `<i8`, `<u2`, `<u4`, `<u8`), widened to i64:
    /// typically labels.
    I64(Vec<i64>),
}

impl NpyData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            NpyData::U8(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::I64(v) => v.len(),
        }
    }

    /// True when there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An array read from an `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape, C order (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The values as the file's dtype string (`descr`) says, e.g. `|u1`.
    pub descr: String,
    /// The values, row-major; `shape` multiplies to their count.
    pub data: NpyData,
}

/// The element types the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    U8,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    U64,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        Some(match descr {
            "|u1" | "<u1" | "u1" => Dtype::U8,
            "<f4" => Dtype::F32,
            "<f8" => Dtype::F64,
            "|i1" | "<i1" | "i1" => Dtype::I8,
            "<i2" => Dtype::I16,
            "<i4" => Dtype::I32,
            "<i8" => Dtype::I64,
            "<u2" => Dtype::U16,
            "<u4" => Dtype::U32,
            "<u8" => Dtype::U64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }
}

/// A Python literal of an `.npy` header.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Int(u64),
    None,
    Seq(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

/// Parses the Python dict literal of an `.npy` header; offsets count from the file start.
struct HeaderParser<'a> {
    path: &'a Path,
    text: &'a [u8],
    pos: usize,
    base: u64,
}

impl HeaderParser<'_> {
    fn error(&self, expected: &str) -> DatasetError {
        let found = match self.text.get(self.pos) {
            Some(&c) if c.is_ascii_graphic() || c == b' ' => format!("`{}`", c as char),
            Some(&c) => format!("byte 0x{c:02X}"),
            None => "the end of the header".to_string(),
        };
        DatasetError::format(
            self.path,
            Some(self.base + self.pos as u64),
            format!("{expected} in the .npy header"),
            found,
        )
    }

    fn skip_space(&mut self) {
        while self
            .text
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.text.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, DatasetError> {
        if depth > MAX_HEADER_DEPTH {
            return Err(self.error("less deeply nested values"));
        }
        self.skip_space();
        let Some(&c) = self.text.get(self.pos) else {
            return Err(self.error("a value"));
        };
        match c {
            b'\'' | b'"' => {
                self.pos += 1;
                let start = self.pos;
                while self.text.get(self.pos).is_some_and(|&d| d != c) {
                    self.pos += 1;
                }
                if self.pos >= self.text.len() {
                    return Err(self.error("a closing quote"));
                }
                let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                self.pos += 1;
                Ok(PyValue::Str(s))
            }
            b'0'..=b'9' => {
                let start = self.pos;
                let mut v: u64 = 0;
                while let Some(&d) = self.text.get(self.pos).filter(|d| d.is_ascii_digit()) {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add((d - b'0') as u64))
                        .ok_or_else(|| {
                            self.pos = start;
                            self.error("an integer below 2^64")
                        })?;
                    self.pos += 1;
                }
                // Python 2 long suffix, as in old files: (3L, 4L).
                if matches!(self.text.get(self.pos), Some(b'L' | b'l')) {
                    self.pos += 1;
                }
                Ok(PyValue::Int(v))
            }
            b'(' | b'[' => {
                let close = if c == b'(' { b')' } else { b']' };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        return Ok(PyValue::Seq(items));
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            return Ok(PyValue::Seq(items));
                        }
                        return Err(self.error(&format!("`,` or `{}`", close as char)));
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b'}') {
                        return Ok(PyValue::Dict(items));
                    }
                    let key = match self.value(depth + 1)? {
                        PyValue::Str(s) => s,
                        _ => return Err(self.error("a string key")),
                    };
                    if !self.eat(b':') {
                        return Err(self.error("`:`"));
                    }
                    items.push((key, self.value(depth + 1)?));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            return Ok(PyValue::Dict(items));
                        }
                        return Err(self.error("`,` or `}`"));
                    }
                }
            }
            _ => {
                for (word, v) in [
                    (&b"True"[..], PyValue::Bool(true)),
                    (b"False", PyValue::Bool(false)),
                    (b"None", PyValue::None),
                ] {
                    if self.text[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok(v);
                    }
                }
                Err(self.error("a value (string, number, True, False, tuple)"))
            }
        }
    }
}

/// The parsed header: dtype text and type, shape, and where the data starts.
struct NpyHeader {
    descr: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data_start: usize,
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<NpyHeader, DatasetError> {
    let fmt = |offset: usize, expected: &str, found: String| {
        DatasetError::format(path, Some(offset as u64), expected, found)
    };
    if bytes.len() < 6 || &bytes[..6] != NPY_MAGIC {
        let shown: Vec<String> = bytes.iter().take(6).map(|b| format!("{b:02x}")).collect();
        return Err(fmt(
            0,
            "the .npy magic 93 4e 55 4d 50 59 (\\x93NUMPY)",
            format!("{} ({} bytes in the file)", shown.join(" "), bytes.len()),
        ));
    }
    let (len_start, len_size) = match bytes.get(6) {
        Some(1) => (8, 2),
        Some(2) | Some(3) => (8, 4),
        Some(&v) => {
            return Err(fmt(
                6,
                "format version 1.0, 2.0 or 3.0",
                format!("version {v}.{}", bytes.get(7).copied().unwrap_or(0)),
            ));
        }
        None => return Err(fmt(6, "a format version", "the end of the file".into())),
    };
    let header_start = len_start + len_size;
    if bytes.len() < header_start {
        return Err(fmt(
            bytes.len(),
            "the header length",
            "the end of the file".into(),
        ));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(fmt(
            bytes.len(),
            &format!("a {header_len}-byte header ending at byte {data_start}"),
            format!("the end of the file at byte {}", bytes.len()),
        ));
    }
    let mut parser = HeaderParser {
        path,
        text: &bytes[header_start..data_start],
        pos: 0,
        base: header_start as u64,
    };
    let PyValue::Dict(items) = parser.value(0)? else {
        parser.pos = 0;
        return Err(parser.error("a dict `{'descr': ..., 'fortran_order': ..., 'shape': ...}`"));
    };
    parser.skip_space();
    if parser.pos != parser.text.len() {
        return Err(parser.error("spaces and a newline after the dict"));
    }
    let header_err = |expected: &str, found: String| {
        DatasetError::format(
            path,
            Some(header_start as u64),
            format!("{expected} in the .npy header"),
            found,
        )
    };
    let get = |key: &str| items.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(PyValue::Str(s)) => s.clone(),
        Some(other) => {
            return Err(header_err(
                "a simple dtype",
                format!("the structured dtype {other:?}"),
            ));
        }
        None => return Err(header_err("a 'descr' key", "none".into())),
    };
    let dtype = Dtype::parse(&descr).ok_or_else(|| {
        header_err(
            "dtype '|u1', '<f4' or '<f8' (or a little-endian integer dtype)",
            if descr.starts_with('>') {
                format!("'{descr}' (big-endian; save with a little-endian dtype)")
            } else {
                format!("'{descr}'")
            },
        )
    })?;
    match get("fortran_order") {
        Some(PyValue::Bool(false)) => {}
        Some(PyValue::Bool(true)) => {
            return Err(header_err(
                "C order ('fortran_order': False)",
                "'fortran_order': True (save np.ascontiguousarray(a) instead)".into(),
            ));
        }
        other => {
            return Err(header_err(
                "'fortran_order': True or False",
                format!("{other:?}"),
            ));
        }
    }
    let shape = match get("shape") {
        Some(PyValue::Seq(dims)) => dims
            .iter()
            .map(|d| match d {
                PyValue::Int(v) => usize::try_from(*v).ok(),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| header_err("a shape of integers", format!("{dims:?}")))?,
        other => return Err(header_err("a 'shape' tuple", format!("{other:?}"))),
    };
    Ok(NpyHeader {
        descr,
        dtype,
        shape,
        data_start,
    })
}

/// Reads an `.npy` file. See [`parse_npy`].
pub fn read_npy(path: &Path) -> Result<NpyArray, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    parse_npy(path, &bytes)
}

/// Parses the bytes of a float `.npy` file exactly, as float64: `<f8` as it is, `<f4` widened.
/// Returns the shape and the values (C order). Other dtypes, and the malformed files
/// [`parse_npy`] refuses, are [`DatasetError::Format`] errors.
pub fn parse_npy_f64(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), DatasetError> {
    let header = parse_header(path, bytes)?;
    if !matches!(header.dtype, Dtype::F64 | Dtype::F32) {
        return Err(DatasetError::format(
            path,
            None,
            "a float array ('<f8' or '<f4')",
            format!("'{}'", header.descr),
        ));
    }
    let exact = |raw: &[u8]| -> Vec<f64> {
        raw.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect()
    };
    if header.dtype == Dtype::F64 {
        // The size checks of `parse_npy` apply unchanged: reuse them on the same bytes.
        let array = parse_npy_checked_len(path, bytes, &header)?;
        return Ok((header.shape, exact(array)));
    }
    let array = parse_npy(path, bytes)?;
    match array.data {
        NpyData::F32(values) => Ok((array.shape, values.into_iter().map(f64::from).collect())),
        _ => unreachable!("an '<f4' array parses as F32"),
    }
}

/// The data bytes of an array whose header is `header`, after the length checks of
/// [`parse_npy`].
fn parse_npy_checked_len<'a>(
    path: &Path,
    bytes: &'a [u8],
    header: &NpyHeader,
) -> Result<&'a [u8], DatasetError> {
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(header.dtype.size()));
    let available = bytes.len() - header.data_start;
    match count {
        Some(len) if len == available => Ok(&bytes[header.data_start..]),
        Some(len) => Err(DatasetError::format(
            path,
            Some(bytes.len().min(header.data_start + len) as u64),
            format!(
                "{len} data bytes for shape {:?} of '{}'",
                header.shape, header.descr
            ),
            format!("{available} data bytes"),
        )),
        None => Err(DatasetError::format(
            path,
            Some(header.data_start as u64),
            "a shape whose byte size fits in memory",
            format!("shape {:?} of '{}'", header.shape, header.descr),
        )),
    }
}

/// Parses the bytes of an `.npy` file; `path` names the source in errors.
///
/// Accepts format versions 1.0, 2.0 and 3.0, C order, dtypes `|u1`, `<f4`, `<f8` (converted to
/// f32) and little-endian integers (widened to i64). Errors are [`DatasetError::Format`] with
/// the byte offset: bad magic or version, a header that does not parse (at the offending
/// character), an unsupported dtype, `fortran_order` True, data shorter than the shape needs
/// (at the end of the file) or longer (at the end of the expected data).
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray, DatasetError> {
    let header = parse_header(path, bytes)?;
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    let data_len = count.and_then(|c| c.checked_mul(header.dtype.size()));
    let available = bytes.len() - header.data_start;
    let (Some(count), Some(data_len)) = (count, data_len) else {
        return Err(DatasetError::format(
            path,
            Some(header.data_start as u64),
            "a shape whose byte size fits in memory",
            format!("shape {:?} of '{}'", header.shape, header.descr),
        ));
    };
    if available < data_len {
        return Err(DatasetError::format(
            path,
            Some(bytes.len() as u64),
            format!(
                "{data_len} data bytes for shape {:?} of '{}' (a file of {} bytes)",
                header.shape,
                header.descr,
                header.data_start as u128 + data_len as u128
            ),
            format!("the end of the file at byte {}", bytes.len()),
        ));
    }
    if available > data_len {
        return Err(DatasetError::format(
            path,
            Some((header.data_start + data_len) as u64),
            format!(
                "the file to end after {data_len} data bytes for shape {:?} of '{}'",
                header.shape, header.descr
            ),
            format!("{} trailing bytes", available - data_len),
        ));
    }
    let raw = &bytes[header.data_start..];
    fn words<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N)
            .map(|c| c.try_into().expect("chunk of N"))
    }
    let data = match header.dtype {
        Dtype::U8 => NpyData::U8(raw.to_vec()),
        Dtype::F32 => NpyData::F32(words::<4>(raw).map(f32::from_le_bytes).collect()),
        Dtype::F64 => {
            let values: Vec<f64> = words::<8>(raw).map(f64::from_le_bytes).collect();
            // Read as f32: a finite value beyond f32's range would silently become inf.
            if let Some(i) = values
                .iter()
                .position(|v| v.is_finite() && !(*v as f32).is_finite())
            {
                return Err(DatasetError::format(
                    path,
                    Some((header.data_start + 8 * i) as u64),
                    "'<f8' values within float32's range (values are read as float32)",
                    format!(
                        "{:e} at index {:?}",
                        values[i],
                        crate::dataset::unravel(i, &header.shape)
                    ),
                ));
            }
            NpyData::F32(values.into_iter().map(|v| v as f32).collect())
        }
        Dtype::I8 => NpyData::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        Dtype::I16 => NpyData::I64(
            words::<2>(raw)
                .map(|w| i16::from_le_bytes(w) as i64)
                .collect(),
        ),
        Dtype::U16 => NpyData::I64(
            words::<2>(raw)
                .map(|w| u16::from_le_bytes(w) as i64)
                .collect(),
        ),
        Dtype::I32 => NpyData::I64(
            words::<4>(raw)
                .map(|w| i32::from_le_bytes(w) as i64)
                .collect(),
        ),
        Dtype::U32 => NpyData::I64(
            words::<4>(raw)
                .map(|w| u32::from_le_bytes(w) as i64)
                .collect(),
        ),
        Dtype::I64 => NpyData::I64(words::<8>(raw).map(i64::from_le_bytes).collect()),
        Dtype::U64 => {
            let values: Vec<u64> = words::<8>(raw).map(u64::from_le_bytes).collect();
            if let Some(i) = values.iter().position(|&v| v > i64::MAX as u64) {
                return Err(DatasetError::format(
                    path,
                    Some((header.data_start + 8 * i) as u64),
                    "a '<u8' value below 2^63",
                    values[i].to_string(),
                ));
            }
            NpyData::I64(values.into_iter().map(|v| v as i64).collect())
        }
    };
    debug_assert_eq!(data.len(), count);
    Ok(NpyArray {
        shape: header.shape,
        descr: header.descr,
        data,
    })
}

/// Axis order of a 4-D image array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// (N, C, H, W), the layout of [`Dataset`] (PyTorch's).
    #[default]
    Nchw,
    /// (N, H, W, C), as TensorFlow and most image libraries store images; transposed on load.
    Nhwc,
}

impl FromStr for Layout {
    type Err = DatasetError;

    /// Parses `nchw` or `nhwc` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nchw" => Ok(Layout::Nchw),
            "nhwc" => Ok(Layout::Nhwc),
            _ => Err(DatasetError::Spec(sagd_core::SpecError::invalid(
                s,
                "layout",
                s,
                "nchw or nhwc",
            ))),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        })
    }
}

/// (N, H, W, C) → (N, C, H, W), one image per task.
fn nhwc_to_nchw<T: Copy + Default + Send + Sync>(src: &[T], hw: usize, c: usize) -> Vec<T> {
    let mut out = vec![T::default(); src.len()];
    out.par_chunks_mut(hw * c)
        .zip(src.par_chunks(hw * c))
        .for_each(|(o, s)| {
            for (p, px) in s.chunks_exact(c).enumerate() {
                for (ch, &v) in px.iter().enumerate() {
                    o[ch * hw + p] = v;
                }
            }
        });
    out
}

/// Turns an image array into a dataset named `name`: (N, H, W) gives one channel, 4-D arrays
/// are read in `layout`. `path` names the source in errors.
pub(crate) fn images_from_array(
    path: &Path,
    name: String,
    array: NpyArray,
    layout: Layout,
    labels: Option<Vec<u32>>,
) -> Result<Dataset, DatasetError> {
    let shape = &array.shape;
    let (n, chw, nhwc) = match (shape.len(), layout) {
        (3, _) => (shape[0], [1, shape[1], shape[2]], false),
        (4, Layout::Nchw) => (shape[0], [shape[1], shape[2], shape[3]], false),
        (4, Layout::Nhwc) => (shape[0], [shape[3], shape[1], shape[2]], true),
        _ => {
            return Err(DatasetError::format(
                path,
                None,
                format!(
                    "a 3-D (N, H, W) or 4-D ({}) image array",
                    layout_axes(layout)
                ),
                format!("shape {shape:?}"),
            ));
        }
    };
    if n == 0 {
        return Err(DatasetError::Empty {
            path: path.to_path_buf(),
            message: format!("the image array of shape {shape:?} holds no image"),
        });
    }
    if chw.contains(&0) {
        return Err(DatasetError::format(
            path,
            None,
            "image dimensions of at least 1",
            format!("shape {shape:?}"),
        ));
    }
    // Checked here, before any transposition, so that the index is the file's own.
    if let NpyData::F32(values) = &array.data
        && let Some((flat, value)) = crate::dataset::first_non_finite(values)
    {
        let axes = match (shape.len(), layout) {
            (3, _) => "N, H, W",
            _ => layout_axes(layout),
        };
        return Err(DatasetError::NonFinite {
            path: path.to_path_buf(),
            index: crate::dataset::unravel(flat, shape),
            axes: axes.to_string(),
            value,
        });
    }
    let (hw, c) = (chw[1] * chw[2], chw[0]);
    let pixels = match array.data {
        NpyData::U8(v) if nhwc => Pixels::U8(nhwc_to_nchw(&v, hw, c)),
        NpyData::U8(v) => Pixels::U8(v),
        NpyData::F32(v) if nhwc => Pixels::F32(nhwc_to_nchw(&v, hw, c)),
        NpyData::F32(v) => Pixels::F32(v),
        NpyData::I64(_) => {
            return Err(DatasetError::format(
                path,
                None,
                "images of dtype '|u1', '<f4' or '<f8'",
                format!("'{}'", array.descr),
            ));
        }
    };
    Dataset::new(name, chw, pixels, labels)
}

fn layout_axes(layout: Layout) -> &'static str {
    match layout {
        Layout::Nchw => "N, C, H, W",
        Layout::Nhwc => "N, H, W, C",
    }
}

/// Loads an image array from an `.npy` file: 3-D (N, H, W) → one channel, or 4-D in `layout`
/// (NHWC is transposed to the NCHW of [`Dataset`]). dtype `|u1` is stored as u8 (read as
/// `v / 255`), `<f4`/`<f8` as f32 values as they are. No labels.
pub fn load_npy(path: &Path, layout: Layout) -> Result<Dataset, DatasetError> {
    let array = read_npy(path)?;
    images_from_array(path, path.display().to_string(), array, layout, None)
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

    // -- reading --

    use proptest::prelude::*;

    use crate::idx::fuzz::{mutation, temp_file};

    /// An `.npy` file with a hand-written header.
    fn npy_bytes(descr: &str, shape: &str, fortran: bool, version: u8, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        let prefix = if version == 1 { 10 } else { 12 };
        let unpadded = prefix + dict.len() + 1;
        dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        dict.push('\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend_from_slice(&[version, 0]);
        if version == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn offset(err: &DatasetError) -> Option<u64> {
        match err {
            DatasetError::Format { offset, .. } => *offset,
            other => panic!("expected a Format error, got {other:?}"),
        }
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let values: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_f32(&path, &[2, 3, 4], &values).unwrap();
        let a = read_npy(&path).unwrap();
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.descr, "<f4");
        assert_eq!(a.data, NpyData::F32(values));
    }

    #[test]
    fn reads_u1_f8_integers_and_version_2() {
        let p = Path::new("x.npy");
        let a = parse_npy(p, &npy_bytes("|u1", "(2, 2)", false, 1, &[1, 2, 3, 4])).unwrap();
        assert_eq!(a.data, NpyData::U8(vec![1, 2, 3, 4]));
        let f8: Vec<u8> = [1.5f64, -2.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(p, &npy_bytes("<f8", "(2,)", false, 2, &f8)).unwrap();
        assert_eq!(a.shape, vec![2]);
        assert_eq!(a.data, NpyData::F32(vec![1.5, -2.25]));
        let i8s: Vec<u8> = [7i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse_npy(p, &npy_bytes("<i8", "(2L,)", false, 1, &i8s)).unwrap();
        assert_eq!(a.data, NpyData::I64(vec![7, -1]));
        let a = parse_npy(p, &npy_bytes("<f4", "()", false, 1, &[0, 0, 128, 63])).unwrap();
        assert_eq!((a.shape.len(), a.data), (0, NpyData::F32(vec![1.0])));
    }

    #[test]
    fn header_errors_are_clear_and_located() {
        let p = Path::new("x.npy");
        let err = parse_npy(p, b"PK\x03\x04 not npy").unwrap_err();
        assert_eq!(offset(&err), Some(0));
        let err = parse_npy(p, &npy_bytes("<f4", "(1,)", true, 1, &[0; 4])).unwrap_err();
        assert!(err.to_string().contains("fortran_order"), "{err}");
        let err = parse_npy(p, &npy_bytes(">f4", "(1,)", false, 1, &[0; 4])).unwrap_err();
        assert!(err.to_string().contains("big-endian"), "{err}");
        let err = parse_npy(p, &npy_bytes("<c8", "(1,)", false, 1, &[0; 8])).unwrap_err();
        assert!(err.to_string().contains("'<c8'"), "{err}");
        let mut v4 = npy_bytes("<f4", "(1,)", false, 1, &[0; 4]);
        v4[6] = 4;
        assert_eq!(offset(&parse_npy(p, &v4).unwrap_err()), Some(6));
        // A syntax error points at the character: the `x` in the shape.
        let bad = npy_bytes("<f4", "(1, x)", false, 1, &[0; 4]);
        let at = bad.windows(2).position(|w| w == b"x)").unwrap() as u64;
        assert_eq!(offset(&parse_npy(p, &bad).unwrap_err()), Some(at));
        // Header longer than the file.
        let full = npy_bytes("<f4", "(1,)", false, 1, &[]);
        assert_eq!(offset(&parse_npy(p, &full[..40]).unwrap_err()), Some(40));
    }

    #[test]
    fn truncated_and_overlong_data_give_offsets() {
        let p = Path::new("x.npy");
        let good = npy_bytes("<f4", "(2, 3)", false, 1, &[0; 24]);
        let start = good.len() as u64 - 24;
        let err = parse_npy(p, &good[..good.len() - 5]).unwrap_err();
        assert_eq!(offset(&err), Some(start + 19));
        assert!(err.to_string().contains("24 data bytes"), "{err}");
        let mut long = good.clone();
        long.extend_from_slice(&[1, 2, 3]);
        let err = parse_npy(p, &long).unwrap_err();
        assert_eq!(offset(&err), Some(start + 24));
        assert!(err.to_string().contains("3 trailing bytes"), "{err}");
        // Absurd shapes fail on the size check, before any allocation.
        let huge = npy_bytes("<f8", "(4294967296, 4294967296, 4294967296)", false, 1, &[]);
        assert!(parse_npy(p, &huge).is_err());
        let huge = npy_bytes("|u1", "(100000, 100000, 1000)", false, 1, &[0; 8]);
        assert!(parse_npy(p, &huge).is_err());
    }

    #[test]
    fn loads_nchw_nhwc_and_nhw_arrays() {
        let dir = tempfile::tempdir().unwrap();
        // Two 2x3 RGB images in NHWC: pixel p of image n, channel c = 100 n + 10 c + p.
        let mut nhwc = Vec::new();
        for n in 0..2u8 {
            for p in 0..6u8 {
                for c in 0..3u8 {
                    nhwc.push(100 * n + 10 * c + p);
                }
            }
        }
        let path = dir.path().join("nhwc.npy");
        std::fs::write(&path, npy_bytes("|u1", "(2, 2, 3, 3)", false, 1, &nhwc)).unwrap();
        let d = load_npy(&path, Layout::Nhwc).unwrap();
        assert_eq!((d.len(), d.shape()), (2, [3, 2, 3]));
        let Pixels::U8(v) = d.pixels() else {
            panic!("u8")
        };
        let expected: Vec<u8> = (0..2u8)
            .flat_map(|n| (0..3u8).flat_map(move |c| (0..6u8).map(move |p| 100 * n + 10 * c + p)))
            .collect();
        assert_eq!(v, &expected);
        // The same bytes read as NCHW: (2, 2, 3, 3) is C = 2, H = 3, W = 3.
        let d = load_npy(&path, Layout::Nchw).unwrap();
        assert_eq!(d.shape(), [2, 3, 3]);
        // (N, H, W) floats: one channel.
        let path = dir.path().join("nhw.npy");
        write_f32(&path, &[3, 2, 2], &[0.25; 12]).unwrap();
        let d = load_npy(&path, Layout::Nhwc).unwrap();
        assert_eq!((d.len(), d.shape(), d.is_u8()), (3, [1, 2, 2], false));
        // Wrong rank, no image, integer images.
        write_f32(&path, &[4, 4], &[0.0; 16]).unwrap();
        assert!(
            load_npy(&path, Layout::Nchw)
                .unwrap_err()
                .to_string()
                .contains("[4, 4]")
        );
        write_f32(&path, &[0, 1, 2, 2], &[]).unwrap();
        assert!(matches!(
            load_npy(&path, Layout::Nchw),
            Err(DatasetError::Empty { .. })
        ));
        std::fs::write(&path, npy_bytes("<i4", "(1, 1, 1)", false, 1, &[0; 4])).unwrap();
        assert!(load_npy(&path, Layout::Nchw).is_err());
        assert_eq!("NHWC".parse::<Layout>().unwrap(), Layout::Nhwc);
        assert!("hwc".parse::<Layout>().is_err());
    }

    /// A NaN or infinite value is refused at load, naming the file and the value's index in
    /// the file's own axes (f4 and f8, NCHW, NHWC and (N, H, W); an f8 value beyond f32's
    /// range becomes inf and is refused too).
    #[test]
    fn non_finite_values_are_refused_with_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.npy");
        let mut values = vec![0.5f32; 2 * 3 * 4 * 5];
        // Flat index 1·60 + 2·20 + 3·5 + 4 = 119: [1, 2, 3, 4] in a (2, 3, 4, 5) array.
        values[119] = f32::NAN;
        write_f32(&path, &[2, 3, 4, 5], &values).unwrap();
        for (layout, axes) in [(Layout::Nchw, "N, C, H, W"), (Layout::Nhwc, "N, H, W, C")] {
            let err = load_npy(&path, layout).unwrap_err();
            let DatasetError::NonFinite {
                path: p,
                index,
                axes: a,
                value,
            } = &err
            else {
                panic!("{err}")
            };
            assert_eq!(
                (p, index.as_slice(), a.as_str()),
                (&path, &[1, 2, 3, 4][..], axes)
            );
            assert!(value.is_nan());
            let text = err.to_string();
            assert!(
                text.contains("bad.npy") && text.contains("[1, 2, 3, 4]"),
                "{text}"
            );
        }
        // Only the first bad value is named.
        values[7] = f32::NEG_INFINITY;
        write_f32(&path, &[6, 4, 5], &values).unwrap();
        let err = load_npy(&path, Layout::Nchw).unwrap_err();
        assert!(
            matches!(&err, DatasetError::NonFinite { index, axes, value, .. }
                if index == &[0, 1, 2] && axes == "N, H, W" && *value == f32::NEG_INFINITY),
            "{err}"
        );
        // f8: an infinity is refused as such; a finite value too large for f32 is named as it
        // is written, with its byte offset.
        let f8 = |bad: f64| {
            let mut data: Vec<u8> = Vec::new();
            for i in 0..8 {
                let v = if i == 5 { bad } else { 0.25 };
                data.extend_from_slice(&v.to_le_bytes());
            }
            std::fs::write(&path, npy_bytes("<f8", "(2, 1, 2, 2)", false, 1, &data)).unwrap();
            load_npy(&path, Layout::Nchw).unwrap_err()
        };
        let err = f8(f64::INFINITY);
        assert!(
            matches!(&err, DatasetError::NonFinite { index, value, .. }
                if index == &[1, 0, 0, 1] && value.is_infinite()),
            "{err}"
        );
        let err = f8(-1e300);
        let text = err.to_string();
        assert!(matches!(err, DatasetError::Format { .. }), "{text}");
        assert!(
            text.contains("-1e300") && text.contains("[1, 0, 0, 1]") && text.contains("float32"),
            "{text}"
        );
        // Finite values load.
        write_f32(
            &path,
            &[2, 1, 2, 2],
            &[f32::MAX, f32::MIN, 0.0, -0.0, 1e-45, 1.0, 2.0, 3.0],
        )
        .unwrap();
        assert_eq!(load_npy(&path, Layout::Nchw).unwrap().len(), 2);
    }

    fn valid_npy_files() -> Vec<Vec<u8>> {
        let f4: Vec<u8> = (0..24).flat_map(|i| (i as f32).to_le_bytes()).collect();
        vec![
            npy_bytes("|u1", "(2, 3, 4)", false, 1, &[7; 24]),
            npy_bytes("<f4", "(1, 2, 3, 4)", false, 1, &f4),
            npy_bytes("<f8", "(3,)", false, 2, &[0; 24]),
            npy_bytes("<i8", "(3L,)", false, 1, &[0; 24]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let (_dir, path) = temp_file("f.npy", &bytes);
            let _ = read_npy(&path);
        }

        #[test]
        fn random_headers_never_panic(
            version in 1u8..4,
            text in "[{}()\\[\\]':, 0-9LTFaeinrsuxdhpo_<|f148\n]{0,80}",
            data in prop::collection::vec(any::<u8>(), 0..32),
        ) {
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend_from_slice(&[version, 0]);
            if version == 1 {
                bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
            } else {
                bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
            }
            bytes.extend_from_slice(text.as_bytes());
            bytes.extend_from_slice(&data);
            let _ = parse_npy(Path::new("f.npy"), &bytes);
        }

        #[test]
        fn mutated_files_never_panic(which in 0usize..4, m in mutation()) {
            let bytes = m.apply(&valid_npy_files()[which]);
            let (_dir, path) = temp_file("f.npy", &bytes);
            if let Ok(a) = read_npy(&path) {
                prop_assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
                let _ = load_npy(&path, Layout::Nhwc);
            }
        }
    }
}
