//! What `sagd demo` and `sagd experiment` share: their stages are child processes of this
//! binary, shown as command lines, stopped with their parent, and one invocation at a time
//! works in an output folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::{usage, write_atomic};

/// Quotes `arg` for a POSIX shell when it needs it.
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

/// Asks Linux to send SIGTERM to a stage when its parent dies, so that killing the demo or
/// an experiment never
/// leaves a trainer running on its own (its checkpoints are written atomically, so the kill is
/// safe). Elsewhere a no-op.
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
pub struct Lock(PathBuf);

impl Lock {
    /// Takes the lock for `sagd command` in `out`, or refuses when a live one holds it (a
    /// stale lock, whose process is gone, is taken over).
    pub fn take(out: &Path, command: &str) -> Result<Self> {
        let path = out.join(format!(".{command}.lock"));
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(pid) = text.trim().parse::<u32>()
            && pid != std::process::id()
            && alive(pid, command)
        {
            return Err(usage(format!(
                "another sagd {command} (process {pid}) is working in {}; wait for it or stop \
                 it (or remove {} if that process is not a sagd {command})",
                out.display(),
                path.display()
            )));
        }
        write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(Self(path))
    }
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
