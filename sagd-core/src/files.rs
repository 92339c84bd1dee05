//! Writing output files so that an interrupted run never leaves a torn file, nor a stray
//! temporary one.
//!
//! Every output is written into a temporary file beside it, `.NAME.PID-N.tmp` (`PID` the
//! writing process, `N` a counter within it), synced, then renamed over `NAME`: a reader sees
//! the old file or the new one, never a part. The temporary file is removed
//!
//! - when the write fails or the [`AtomicFile`] is dropped unfinished;
//! - on SIGINT, SIGTERM or SIGHUP, once [`remove_temporaries_on_signal`] is installed (the
//!   `sagd` binary installs it first thing);
//! - by the next write of the same `NAME`, when the process that left it is gone (a kill -9 or
//!   a power cut): [`AtomicFile::create`] removes those stale temporaries.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A failed write: the output that could not be written (never its temporary file, which
/// is removed) and the I/O error, its [`source`](std::error::Error::source). Error types
/// that write files hold it as it is (`#[error(transparent)] Write(#[from] WriteError)`), so a
/// message reads `cannot write PATH: CAUSE` wherever the write happened.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    /// The output that failed.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl WriteError {
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The temporary files this process is writing now; the signal handler removes them.
struct Live {
    temporaries: Vec<PathBuf>,
    /// Set by the signal handler: no new temporary file may be created.
    closing: bool,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    temporaries: Vec::new(),
    closing: false,
});

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn live() -> MutexGuard<'static, Live> {
    // A panic while holding the lock leaves the list valid: keep using it.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An output file being written: bytes go to its temporary file (buffered; `Write` and
/// `Seek`), and [`commit`](Self::commit) syncs it and renames it into place. Dropped without
/// a commit (an error, a panic), the temporary file is removed.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("samples.bin");
/// let mut file = sagd_core::files::AtomicFile::create(&path).unwrap();
/// file.write_all(b"part one, ").unwrap();
/// file.write_all(b"part two").unwrap();
/// assert!(!path.exists());
/// file.commit().unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"part one, part two");
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    temp: PathBuf,
    out: BufWriter<File>,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file for `path` (whose folder must exist), after removing the
    /// stale temporaries of `path` that dead processes left.
    ///
    /// # Errors
    /// [`WriteError`] naming `path` (every error names the output, not its temporary file,
    /// which is gone by then): the temporary file cannot be created, `path` has no file name,
    /// or the process is being stopped by a signal.
    pub fn create(path: &Path) -> Result<Self, WriteError> {
        let Some(name) = path.file_name() else {
            return Err(WriteError::at(path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file path",
            )));
        };
        let name = name.to_string_lossy().into_owned();
        remove_stale_temporaries(path, &name);
        let temp = path.with_file_name(format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = {
            // Created and listed under one lock, so the signal handler sees every file it
            // must remove.
            let mut live = live();
            if live.closing {
                return Err(WriteError::at(path)(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "the process is stopping on a signal",
                )));
            }
            let file = File::create(&temp).map_err(WriteError::at(path))?;
            live.temporaries.push(temp.clone());
            file
        };
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            out: BufWriter::new(file),
            committed: false,
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file the bytes go to until [`commit`](Self::commit).
    pub fn temporary_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes and syncs the temporary file, then renames it over the destination (and syncs
    /// the folder where the platform allows).
    ///
    /// # Errors
    /// [`WriteError`] naming the destination (flush, sync, rename); the temporary file is
    /// removed.
    pub fn commit(mut self) -> Result<(), WriteError> {
        self.out.flush().map_err(WriteError::at(&self.path))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(WriteError::at(&self.path))?;
        {
            // Renamed and unlisted under one lock: the handler never removes a file that has
            // become the output.
            let mut live = live();
            std::fs::rename(&self.temp, &self.path).map_err(WriteError::at(&self.path))?;
            live.temporaries.retain(|t| t != &self.temp);
            self.committed = true;
        }
        if let Some(dir) = self.path.parent() {
            // Persist the rename itself; not every platform can open a folder.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.out.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.out.seek(to)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let mut live = live();
            let _ = std::fs::remove_file(&self.temp);
            live.temporaries.retain(|t| t != &self.temp);
        }
    }
}

/// Writes `bytes` to `path` atomically through an [`AtomicFile`].
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("summary.json");
/// sagd_core::files::write_atomic(&path, b"{}").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// ```
///
/// # Errors
/// [`WriteError`] naming `path` (create, write, sync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(WriteError::at(&file.path))?;
    file.commit()
}

/// Removes the temporaries of `path` (`.NAME.PID-N.tmp`, or the older `.NAME.PID.tmp`) whose
/// process is gone.
fn remove_stale_temporaries(path: &Path, name: &str) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    remove_stale_temporaries_in(dir, |file| file == name);
}

/// Removes from `dir` the temporary files (`.NAME.PID-N.tmp`) of outputs whose `NAME`
/// satisfies `output`, left by processes that are gone. A folder that cannot be read is left
/// alone: the write that follows reports the real problem.
pub fn remove_stale_temporaries_in(dir: &Path, output: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some((name, pid)) = file.to_str().and_then(temporary_of) else {
            continue;
        };
        if output(name) && is_stale(&entry.path(), pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether the temporary file at `path`, named for process `pid`, belongs to no live write:
/// its process is gone, or (on Linux, where start times are known) the process with that id
/// started after the file was last written, so the id was reused (a reboot, a container whose
/// every run is process 1). This process's own are stale unless it is writing them now.
fn is_stale(path: &Path, pid: u32) -> bool {
    if pid == std::process::id() {
        return !live().temporaries.iter().any(|t| t == path);
    }
    if !process_alive(pid) {
        return true;
    }
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    match (modified, process_start(pid)) {
        // A second of slack: the clocks behind the two times tick differently.
        (Ok(modified), Some(started)) => modified + std::time::Duration::from_secs(1) < started,
        _ => false,
    }
}

/// When process `pid` started, from Linux's `/proc` (its start in clock ticks after boot,
/// and the boot time); `None` elsewhere or when it cannot be read.
fn process_start(pid: u32) -> Option<std::time::SystemTime> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `PID (comm) S ppid …`: field 22 (starttime) is the 20th after the command name.
        let after_name = stat.rsplit_once(')')?.1;
        let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
        let boot: u64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: sysconf reads a constant of the system.
        let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        let since_boot =
            std::time::Duration::from_secs_f64(ticks as f64 / per_second.max(1) as f64);
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(boot) + since_boot)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Splits a temporary file's name `.NAME.PID-N.tmp` (or `.NAME.PID.tmp`) into `NAME` and
/// `PID`.
fn temporary_of(file: &str) -> Option<(&str, u32)> {
    let inner = file.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, tag) = inner.rsplit_once('.')?;
    let pid = tag.split_once('-').map_or(tag, |(pid, _)| pid);
    Some((name, pid.parse().ok()?))
}

/// Whether a process with this id exists. Where that cannot be told, it is taken as alive
/// (its files are kept).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // Signal 0 checks existence only; EPERM means it exists under another user.
        // SAFETY: kill with signal 0 sends nothing and touches no memory.
        let status = unsafe { libc::kill(pid, 0) };
        status == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Installs a handler (once per process; later calls do nothing) that, on SIGINT, SIGTERM or
/// SIGHUP, removes the temporary files being written and then ends the process as the signal
/// would have (the shell sees `130` for Ctrl-C). Elsewhere than Unix it does nothing.
///
/// # Errors
/// The I/O error when the handler or its thread cannot be set up.
pub fn remove_temporaries_on_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        if INSTALLED.get().is_some() {
            return Ok(());
        }
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        std::thread::Builder::new()
            .name("sagd-signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    remove_live_temporaries_and_stop(signal);
                }
            })?;
        let _ = INSTALLED.set(());
    }
    Ok(())
}

#[cfg(unix)]
fn remove_live_temporaries_and_stop(signal: i32) {
    // The lock is held to the end: no writer creates or renames a file meanwhile.
    let mut live = live();
    live.closing = true;
    for temp in live.temporaries.drain(..) {
        let _ = std::fs::remove_file(temp);
    }
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    // emulate_default_handler ends the process for these signals; in case it returned:
    std::process::exit(128 + signal);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["a.txt"]);
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
        assert_eq!(names(dir.path()), ["taken"]);
    }

    #[test]
    fn an_unfinished_file_is_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npy");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(&[7; 1000]).unwrap();
        let temp = file.temporary_path().to_path_buf();
        assert!(live().temporaries.contains(&temp));
        drop(file);
        assert!(names(dir.path()).is_empty());
        assert!(!live().temporaries.contains(&temp));
    }

    /// A process id that no process has: past Linux's largest (4194304).
    const DEAD: u32 = 999_999_999;

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Process 1 is alive and started before these files were written: its are kept.
        for name in [
            format!(".n.npy.{DEAD}.tmp"),
            format!(".n.npy.{DEAD}-3.tmp"),
            ".n.npy.1-7.tmp".to_string(),
            format!(".other.npy.{DEAD}.tmp"),
            ".n.npy.notapid.tmp".to_string(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        write_atomic(&dir.path().join("n.npy"), b"new").unwrap();
        assert_eq!(
            names(dir.path()),
            [
                ".n.npy.1-7.tmp".to_string(),
                ".n.npy.notapid.tmp".to_string(),
                format!(".other.npy.{DEAD}.tmp"),
                "n.npy".to_string(),
            ]
        );
        remove_stale_temporaries_in(dir.path(), |_| true);
        assert!(!dir.path().join(format!(".other.npy.{DEAD}.tmp")).exists());
    }

    /// A temporary named for a live process that started after it was written (an id reused
    /// after a reboot, or process 1 of every container run) is stale; so is one of this
    /// process that it is not writing.
    #[cfg(target_os = "linux")]
    #[test]
    fn temporaries_of_reused_process_ids_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        // Process 1 (init) started at boot: a file last written at the epoch predates it.
        let reused = dir.path().join(".n.npy.1-0.tmp");
        let mine = dir.path().join(format!(".n.npy.{me}-999999.tmp"));
        for path in [&reused, &mine] {
            let file = File::create(path).unwrap();
            file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1))
                .unwrap();
        }
        assert!(process_start(1).is_some());
        assert!(is_stale(&reused, 1));
        assert!(is_stale(&mine, me));
        // A file written after process 1 started is kept.
        let recent = dir.path().join(".n.npy.1-1.tmp");
        File::create(&recent).unwrap();
        assert!(!is_stale(&recent, 1));
    }

    #[test]
    fn temporary_names_split_into_output_and_process() {
        assert_eq!(temporary_of(".a.b.12-3.tmp"), Some(("a.b", 12)));
        assert_eq!(temporary_of(".a.12.tmp"), Some(("a", 12)));
        assert_eq!(temporary_of("a.12.tmp"), None);
        assert_eq!(temporary_of(".a.x-1.tmp"), None);
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(DEAD) || cfg!(not(unix)));
    }
}
