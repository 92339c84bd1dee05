//! Writing output files so that an interrupted run never leaves a torn one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A failed [`write_atomic`]: the path that could not be written (the temporary file or the
/// destination) and the I/O error, its [`source`](std::error::Error::source). Error types
/// that write files hold it as it is (`#[error(transparent)] Write(#[from] WriteError)`), so a
/// message reads `cannot write PATH: CAUSE` wherever the write happened.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    /// The file that failed.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically: into a temporary file beside it
/// (`.NAME.PID.tmp`), synced to disk, then renamed over `path`. A reader sees the old file
/// or the new one, never a part; on failure the temporary file is removed.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("summary.json");
/// sagd_core::files::write_atomic(&path, b"{}").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// ```
///
/// # Errors
/// [`WriteError`] naming the temporary file (create, write, sync) or `path` (rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let failed = |at: &Path| {
        let path = at.to_path_buf();
        move |source| WriteError { path, source }
    };
    let result = (|| {
        let mut file = File::create(&temp).map_err(failed(&temp))?;
        file.write_all(bytes).map_err(failed(&temp))?;
        file.sync_all().map_err(failed(&temp))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(failed(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_names_the_path_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way of the rename.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"").unwrap();
        let e = write_atomic(&path, b"data").unwrap_err();
        assert_eq!(e.path, path);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
