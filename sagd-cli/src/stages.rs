//! What `sagd demo` and `sagd experiment` share: their stages are child processes of this
//! binary, shown as command lines, stopped with their parent, and one invocation at a time
//! works in an output folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use sagd_eval::experiment::shell_quote;

use crate::usage;

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
    /// Takes the lock for `sagd command` in `out` (an existing folder), or refuses when a
    /// live one holds it. The file is created exclusively, so of two commands starting at
    /// once only one gets it; a stale lock (its process gone) is taken over.
    pub fn take(out: &Path, command: &str) -> Result<Self> {
        use std::io::Write;
        let path = out.join(format!(".{command}.lock"));
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(std::process::id().to_string().as_bytes())
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if pid != std::process::id() && alive(pid, command) => {
                            return Err(usage(format!(
                                "another sagd {command} (process {pid}) is working in {}; wait \
                                 for it or stop it (or remove {} if that process is not a sagd \
                                 {command})",
                                out.display(),
                                path.display()
                            )));
                        }
                        // A lock being written this instant reads empty: treat it as held.
                        None if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) => {
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                        // Stale: its process is gone (or it is ours). Take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
                    );
                }
            }
        }
        Err(usage(format!(
            "another sagd {command} is taking {} at this moment; try again",
            path.display()
        )))
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
