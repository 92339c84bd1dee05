//! What `sagd demo` and `sagd experiment` share: their stages are `sagd` subcommands run as
//! child processes of the `sagd` binary, shown as command lines, stopped with their parent,
//! and one invocation at a time works in an output folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::RunError;

/// `arg` quoted for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// `sagd ARGS` as a shell would run it.
pub fn command_line(args: &[String]) -> String {
    std::iter::once("sagd".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a stage's standard output or error goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// To this process's (the stage's progress bars on the terminal).
    Inherit,
    /// Kept, and returned ([`StageOutput`], [`StageFailure`]).
    Capture,
    /// Dropped.
    Discard,
}

impl Stream {
    fn stdio(self) -> Stdio {
        match self {
            Self::Inherit => Stdio::inherit(),
            Self::Capture => Stdio::piped(),
            Self::Discard => Stdio::null(),
        }
    }
}

/// A finished stage: its wall time and its captured standard output.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutput {
    /// Wall time in seconds.
    pub seconds: f64,
    /// Standard output, when captured.
    pub stdout: String,
}

/// A failed stage: how it ended (`exit code 2`, `a signal`) and its captured standard error.
#[derive(Debug, Clone, PartialEq)]
pub struct StageFailure {
    /// `exit code N` or `a signal`.
    pub status: String,
    /// Standard error, when captured.
    pub stderr: String,
}

impl StageFailure {
    /// The last non-blank line of the stage's standard error (its one-line error).
    pub fn last_line(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }
}

/// Runs `EXE ARGS` (stdin closed) with its output streams as asked, dying with this process.
///
/// # Errors
/// `Err(Err(_))` when the binary cannot be started; `Err(Ok(failure))` when the stage ran and
/// failed.
pub fn run_stage(
    exe: &Path,
    args: &[String],
    stdout: Stream,
    stderr: Stream,
) -> Result<StageOutput, Result<StageFailure, RunError>> {
    let started = Instant::now();
    let mut child = Command::new(exe);
    child
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout.stdio())
        .stderr(stderr.stdio());
    die_with_parent(&mut child);
    let output = child.output().map_err(|e| {
        Err(RunError::Stage(format!(
            "cannot run {}: {e}",
            exe.display()
        )))
    })?;
    if !output.status.success() {
        let status = output
            .status
            .code()
            .map_or("a signal".into(), |c| format!("exit code {c}"));
        return Err(Ok(StageFailure {
            status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }));
    }
    Ok(StageOutput {
        seconds: started.elapsed().as_secs_f64(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

/// Asks Linux to send SIGTERM to a stage when its parent dies, so that killing the demo or
/// an experiment never leaves a trainer running on its own (its checkpoints are written
/// atomically, so the kill is safe). Elsewhere a no-op.
pub fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child's own state.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// `DIR/.COMMAND.lock`, holding the PID of the `sagd COMMAND` working in DIR; removed when
/// dropped.
#[derive(Debug)]
pub struct Lock(PathBuf);

impl Lock {
    /// Takes the lock for `sagd command` in `out` (an existing folder), or refuses when a
    /// live one holds it. The file is created exclusively, so of two commands starting at
    /// once only one gets it; a stale lock (its process gone) is taken over.
    ///
    /// # Errors
    /// [`RunError::Request`] while another live `sagd command` holds it; [`RunError::Io`] when
    /// the lock file cannot be created or written.
    pub fn take(out: &Path, command: &str) -> Result<Self, RunError> {
        let path = out.join(format!(".{command}.lock"));
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Self::hold(path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(pid) = live_holder(&path, command) {
                        return Err(RunError::request(format!(
                            "another sagd {command} (process {pid}) is working in {}; wait for \
                             it or stop it (or remove {} if that process is not a sagd \
                             {command})",
                            out.display(),
                            path.display()
                        )));
                    }
                }
                Err(source) => {
                    return Err(RunError::Io {
                        action: "create",
                        path,
                        source,
                    });
                }
            }
        }
        Err(RunError::request(format!(
            "another sagd {command} is taking {} at this moment; try again",
            path.display()
        )))
    }

    /// Writes this process's id into the freshly created lock file.
    fn hold(path: PathBuf, mut file: std::fs::File) -> Result<Self, RunError> {
        use std::io::Write;
        file.write_all(std::process::id().to_string().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| RunError::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
        Ok(Self(path))
    }
}

/// The process holding the lock at `path` when it is a live `sagd command`; otherwise the stale
/// lock is removed (a lock being written this instant reads empty: it gets a moment first).
fn live_holder(path: &Path, command: &str) -> Option<u32> {
    let holder = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    match holder {
        Some(pid) if pid != std::process::id() && alive(pid, command) => return Some(pid),
        None if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) => {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(path);
            }
        }
        // Stale: its process is gone (or it is ours). Take it over.
        _ => {
            let _ = std::fs::remove_file(path);
        }
    }
    None
}

/// Whether process `pid` is a running (not zombie) `sagd COMMAND`, from Linux's `/proc`;
/// elsewhere any lock is taken as stale.
fn alive(pid: u32, command: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name: `PID (comm) S …`.
    let running = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X');
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    running
        && cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == command.as_bytes())
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes the temporary files (`.NAME.PID.tmp`) a killed stage left in `dir`.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
