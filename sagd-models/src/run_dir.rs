//! A run directory: `config.toml`, `log.csv` and `checkpoints/`, and the checks a new or
//! resumed invocation makes against what is already there (nothing is written by them).

use std::fs;
use std::path::{Path, PathBuf};

use sagd_core::files::write_atomic;

use crate::checkpoint::{self, Checkpoint};
use crate::config::RunConfig;
use crate::error::ModelError;

/// The checkpoints directory of a run directory.
pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

pub(crate) const LOG_HEADER: &str = "step,loss,lr,grad_norm,images_per_sec";

/// Keeps the rows of `log.csv` that an uninterrupted run has at `step`, creating the file
/// with its header if needed: rows after `step` go (a resumed run rewrites them), and so does
/// a row at `step` itself when `open_window` says it was written by an early stop between two
/// `log_every` boundaries (the uninterrupted run has no row there).
pub(crate) fn prepare_log(path: &Path, step: u64, open_window: bool) -> Result<(), ModelError> {
    let mut text = format!("{LOG_HEADER}\n");
    if let Ok(old) = fs::read_to_string(path) {
        for line in old.lines().skip(1) {
            let row_step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
            if row_step.is_some_and(|s| s < step || (s == step && !open_window)) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    Ok(write_atomic(path, text.as_bytes())?)
}

/// The newest checkpoint of a run that is being resumed, and the config it was trained with.
pub(crate) struct ResumePoint {
    pub(crate) path: PathBuf,
    pub(crate) checkpoint: Checkpoint,
}

/// Checks a resume against the run in `out` and reads its newest checkpoint; nothing is
/// written. The run's own config is the one in its newest checkpoint (or `config.toml` when
/// it has none yet).
pub(crate) fn resume_point(
    config: &RunConfig,
    out: &Path,
    existing: &[(u64, PathBuf)],
) -> Result<Option<ResumePoint>, ModelError> {
    let point = match existing.last() {
        Some((step, path)) => {
            let checkpoint = Checkpoint::read(path)?;
            if checkpoint.header.step != *step {
                return Err(ModelError::checkpoint(
                    path,
                    format!(
                        "is named for step {step} but records step {}",
                        checkpoint.header.step
                    ),
                ));
            }
            let started = RunConfig::from_checkpoint(&checkpoint.header.config, path)?;
            // A checkpoint copied in from another run: say so, rather than blame the config.
            let saved_config = out.join("config.toml");
            if saved_config.exists() {
                let run = RunConfig::from_file(&saved_config)?;
                if let Some(c) = run.resume_conflict(&started) {
                    return Err(ModelError::checkpoint(
                        path,
                        format!(
                            "does not belong to the run in {}: it records `{}` = {} where the \
                             run's config.toml has {}",
                            out.display(),
                            c.key,
                            c.requested,
                            c.started
                        ),
                    ));
                }
            }
            started.check_resume(config, out)?;
            Some(ResumePoint {
                path: path.clone(),
                checkpoint,
            })
        }
        None => None,
    };
    let saved_config = out.join("config.toml");
    if point.is_none() && saved_config.exists() {
        RunConfig::from_file(&saved_config)?.check_resume(config, out)?;
    }
    Ok(point)
}

/// Refuses to start a new run in `out` when it already holds one (a checkpoint,
/// `config.toml` or `log.csv`): that takes `--resume`.
pub(crate) fn refuse_existing_run(
    out: &Path,
    existing: &[(u64, PathBuf)],
) -> Result<(), ModelError> {
    let held = match existing.last() {
        Some((step, _)) => Some(format!("a run at step {step}")),
        None => ["config.toml", "log.csv"]
            .iter()
            .find(|f| out.join(f).exists())
            .map(|f| format!("a run with no checkpoint yet ({f})")),
    };
    match held {
        Some(held) => Err(ModelError::invocation(
            "--out",
            out.display(),
            format!("already holds {held}; pass --resume to continue it or choose another --out"),
        )),
        None => Ok(()),
    }
}

/// Removes what a kill during a checkpoint write leaves: its temporary file
/// (`.step-N.safetensors.PID-K.tmp` of a process that is gone, or the `step-N.safetensors.tmp`
/// of older versions).
pub(crate) fn clear_temporary_checkpoints(dir: &Path) {
    let checkpoint = format!(".{}", checkpoint::EXTENSION);
    sagd_core::files::remove_stale_temporaries_in(dir, |name| name.ends_with(&checkpoint));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let older = format!("{checkpoint}.tmp");
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(&older) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
