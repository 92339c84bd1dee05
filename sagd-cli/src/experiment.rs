//! `sagd experiment FILE.toml`: every arm and seed of an experiment trained, sampled and
//! evaluated (or measured for learning curves), then the tables and figures. The file, the
//! plan and the results are [`sagd_eval::experiment`]'s; this runs the stages as child
//! processes of this binary (`--jobs` at a time), skipping what an earlier invocation finished,
//! so a long experiment spans several invocations and a killed one continues where it stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use sagd_eval::experiment::{Experiment, Job, StageKind, collect, write_results};

use crate::stages::{Lock, command_line, die_with_parent};
use crate::{print_stdout, usage};

/// Arguments of `sagd experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The experiment file (TOML: title, kind, seeds, [sample], [eval] or [emergence], and
    /// [[arm]] entries naming run configs), e.g. experiments/alpha-sweep.toml.
    file: PathBuf,
    /// Output folder (default: the file's `out`, else runs/<file stem>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Arm-seed pairs worked on at once (training uses about one core each on the CPU).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Only these arms (comma-separated names); the tables still show every arm.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run nothing: rebuild results.md, results.json and the figures from what is on disk.
    #[arg(long)]
    report_only: bool,
    /// No progress bars or stage lines (failures are still printed).
    #[arg(long)]
    quiet: bool,
    /// Print results.json's content.
    #[arg(long)]
    json: bool,
}

/// Removes the temporary files (`.NAME.PID.tmp`) a killed stage left in `dir`.
fn remove_leftovers(dir: &Path) {
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

/// Runs one stage: `sagd ARGS`, its progress bars on this terminal when it is the only job
/// (`show`); its standard output (summaries) only then, and never under `--json`, whose
/// output is the experiment's.
fn run_stage(exe: &PathBuf, args: &[String], show: bool, stdout: bool) -> Result<f64> {
    let started = Instant::now();
    let mut full = args.to_vec();
    if !show {
        full.push("--quiet".into());
    }
    let mut child = Command::new(exe);
    child
        .args(&full)
        .stdin(Stdio::null())
        .stdout(if show && stdout {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(if show {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    die_with_parent(&mut child);
    let output = child
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if !output.status.success() {
        let code = output
            .status
            .code()
            .map_or("a signal".into(), |c| format!("exit code {c}"));
        let error = String::from_utf8_lossy(&output.stderr);
        let last = error
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(anyhow!(
            "{code}: {}{}{last}",
            command_line(args),
            if last.is_empty() { "" } else { ": " }
        ));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Runs `sagd experiment`.
pub fn run(args: &ExperimentArgs) -> Result<ExitCode> {
    if args.jobs == 0 {
        return Err(usage("--jobs 0: expected at least 1"));
    }
    let experiment = Experiment::load(&args.file, args.out.as_deref()).map_err(usage)?;
    let jobs = experiment.jobs(&args.only).map_err(usage)?;
    let out = &experiment.out;
    if out.exists() && !out.is_dir() {
        return Err(usage(format!(
            "--out {} is a file; expected a folder (new or existing)",
            out.display()
        )));
    }
    // Another experiment's folder would have its tables replaced by this one's.
    if let Ok(text) = std::fs::read_to_string(out.join("results.json"))
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(recorded) = value.get("experiment").and_then(|v| v.as_str())
        && Path::new(recorded).file_name() != args.file.file_name()
    {
        return Err(usage(format!(
            "--out {} holds the results of experiment {recorded}, not {}: choose another \
             --out (or remove its results.json to reuse the folder)",
            out.display(),
            args.file.display()
        )));
    }
    if args.report_only {
        // Reading only: allowed beside a running experiment (the files are written atomically).
        if !out.is_dir() {
            return Err(usage(format!(
                "--report-only: {} does not exist; nothing has been run there",
                out.display()
            )));
        }
    } else {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }
    let _lock = if args.report_only {
        None
    } else {
        Some(Lock::take(out, "experiment")?)
    };
    // The tables are rewritten after every finished pair, so a long invocation shows its progress.
    let report_lock = Mutex::new(());
    let write_report = || -> Result<PathBuf> {
        let _guard = report_lock.lock().map_err(|_| anyhow!("a job panicked"))?;
        write_results(&experiment, &collect(&experiment))
            .with_context(|| format!("cannot write the results into {}", out.display()))
    };
    if args.report_only && !args.quiet {
        let stale = jobs
            .iter()
            .flat_map(|job| experiment.stages(job))
            .filter(|stage| stage.stale)
            .count();
        if stale > 0 {
            eprintln!(
                "warning: {stale} stage output(s) in {} were made with other settings than {} \
                 now gives; they are left out of the tables until the experiment is run again",
                out.display(),
                args.file.display()
            );
        }
    }
    let started = Instant::now();
    let mut failures = Vec::new();
    if !args.report_only {
        let exe = std::env::current_exe().context("cannot find the sagd binary")?;
        let show = !args.quiet && args.jobs == 1;
        let total = jobs.len();
        let queue: Mutex<Vec<(usize, Job)>> =
            Mutex::new(jobs.iter().cloned().enumerate().rev().collect());
        let failed: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let say = |line: String| {
            if !args.quiet {
                eprintln!("{line}");
            }
        };
        std::thread::scope(|scope| {
            for _ in 0..args.jobs.min(total.max(1)) {
                scope.spawn(|| {
                    loop {
                        // Stop taking work after a failure; running jobs finish.
                        if !failed.lock().map(|f| f.is_empty()).unwrap_or(false) {
                            return;
                        }
                        let Some((i, job)) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                            return;
                        };
                        let arm = &experiment.file.arms[job.arm].name;
                        for stage in experiment.stages(&job) {
                            let what = format!(
                                "[{}/{total}] {arm} seed {} {}",
                                i + 1,
                                job.seed,
                                stage.kind.name()
                            );
                            if stage.done {
                                say(format!("{what}: done earlier"));
                                continue;
                            }
                            if stage.stale {
                                say(format!(
                                    "{what}: its output was made with other settings; redone"
                                ));
                            }
                            if show || stage.kind == StageKind::Train {
                                say(format!("{what}: {}", command_line(&stage.args)));
                            }
                            if let Some(dir) = &stage.out {
                                remove_leftovers(dir);
                            }
                            let result = run_stage(&exe, &stage.args, show, !args.json).and_then(
                                |seconds| {
                                    stage.record_done()?;
                                    Ok(seconds)
                                },
                            );
                            match result {
                                Ok(seconds) => say(format!("{what}: {seconds:.0} s")),
                                Err(e) => {
                                    say(format!("{what}: failed"));
                                    if let Ok(mut f) = failed.lock() {
                                        f.push(format!("{arm} seed {}: {e:#}", job.seed));
                                    }
                                    break;
                                }
                            }
                        }
                        if let Err(e) = write_report() {
                            say(format!("warning: {e:#}"));
                        }
                    }
                });
            }
        });
        failures = failed.into_inner().unwrap_or_default();
    }
    let report = write_report()?;
    if args.json {
        let text = std::fs::read_to_string(out.join("results.json"))
            .with_context(|| format!("cannot read {}", out.join("results.json").display()))?;
        print_stdout(&text)?;
    }
    if !failures.is_empty() {
        return Err(anyhow!(
            "{} (the finished stages are kept: once the cause is fixed, the same command \
             continues; the tables in {} show what is done)",
            failures.join("; "),
            report.display()
        ));
    }
    if args.report_only {
        if !args.quiet {
            eprintln!("results rebuilt from what is on disk: {}", report.display());
        }
    } else if !args.quiet {
        eprintln!(
            "{} arm-seed pairs in {:.1} min; results in {}",
            jobs.len(),
            started.elapsed().as_secs_f64() / 60.0,
            report.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
