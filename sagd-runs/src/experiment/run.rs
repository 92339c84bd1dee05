//! `sagd experiment FILE.toml`'s orchestration: every arm and seed of an experiment trained,
//! sampled and evaluated (or measured for learning curves) as child processes of the `sagd`
//! binary (`jobs` at a time), skipping what an earlier invocation finished, so a long experiment
//! spans several invocations and a killed one continues where it stopped; then the tables and
//! figures.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use super::plan::{Experiment, Job, StageCommand, StageKind};
use super::results::{collect, write_results};
use crate::error::RunError;
use crate::output::create_dir;
use crate::stages::{Lock, Stream, command_line, remove_leftovers, run_stage};

/// What `sagd experiment` is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRequest {
    /// The experiment file.
    pub file: PathBuf,
    /// Output folder (`None`: the file's `out`, else `runs/<file stem>`).
    pub out: Option<PathBuf>,
    /// Arm-seed pairs worked on at once (at least 1).
    pub jobs: usize,
    /// Only these arms; the tables still show every arm.
    pub only: Vec<String>,
    /// Run nothing: rebuild the tables and figures from what is on disk.
    pub report_only: bool,
    /// No progress bars or stage lines (failures are still reported).
    pub quiet: bool,
    /// Let a single job's stages print their summaries on standard output.
    pub stage_stdout: bool,
    /// The `sagd` binary the stages run (the CLI passes itself).
    pub exe: PathBuf,
}

/// What a running experiment reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ExperimentEvent {
    /// A line for the user (a stage started, finished, failed or was done earlier; a
    /// warning), printed by the CLI unless `--quiet`.
    Line(String),
    /// The tables were written (last of all, also when a stage failed).
    Written {
        /// `results.md`.
        report: PathBuf,
        /// `results.json`.
        json: PathBuf,
    },
}

/// The outcome of [`experiment_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRun {
    /// `results.md`.
    pub report: PathBuf,
    /// `results.json`.
    pub json: PathBuf,
    /// Arm-seed pairs of this invocation.
    pub pairs: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs (or, with `report_only`, only tabulates) the experiment in `req.file`. `observer` is
/// called from the worker threads.
///
/// # Errors
/// [`RunError::Request`] before any work for a file the runner or a later stage would refuse,
/// `jobs = 0`, an `out` that is a file or holds another experiment's results, or a folder
/// another experiment is working in; [`RunError::Stage`] naming the failing stages (the pairs
/// in progress finish, new work stops, the tables show what is done).
pub fn experiment_run(
    req: &ExperimentRequest,
    observer: &(dyn Fn(ExperimentEvent) + Sync),
) -> Result<ExperimentRun, RunError> {
    if req.jobs == 0 {
        return Err(RunError::request("--jobs 0: expected at least 1"));
    }
    let experiment = Experiment::load(&req.file, req.out.as_deref()).map_err(|e| usage_of(&e))?;
    let jobs = experiment.jobs(&req.only).map_err(|e| usage_of(&e))?;
    check_out(req, &experiment)?;
    let _lock = if req.report_only {
        None
    } else {
        Some(Lock::take(&experiment.out, "experiment")?)
    };
    if req.report_only {
        warn_stale(req, &experiment, &jobs, observer);
    }
    let started = Instant::now();
    let failures = if req.report_only {
        Vec::new()
    } else {
        run_phases(req, &experiment, &jobs, observer)
    };
    let report = write_report(&experiment, &Mutex::new(()))?;
    let json = experiment.out.join("results.json");
    observer(ExperimentEvent::Written {
        report: report.clone(),
        json: json.clone(),
    });
    if !failures.is_empty() {
        return Err(RunError::Stage(format!(
            "{} (the finished stages are kept: once the cause is fixed, the same command \
             continues; the tables in {} show what is done)",
            failures.join("; "),
            report.display()
        )));
    }
    Ok(ExperimentRun {
        report,
        json,
        pairs: jobs.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The file's own refusals are the user's to fix.
fn usage_of(error: &RunError) -> RunError {
    RunError::request(error.to_string())
}

/// Refuses an `out` that is a file or holds another experiment's results; creates it (reading
/// only, `report_only` needs it to exist).
fn check_out(req: &ExperimentRequest, experiment: &Experiment) -> Result<(), RunError> {
    let out = &experiment.out;
    if out.exists() && !out.is_dir() {
        return Err(RunError::request(format!(
            "--out {} is a file; expected a folder (new or existing)",
            out.display()
        )));
    }
    // Another experiment's folder would have its tables replaced by this one's.
    if let Ok(text) = std::fs::read_to_string(out.join("results.json"))
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(recorded) = value.get("experiment").and_then(|v| v.as_str())
        && Path::new(recorded).file_name() != req.file.file_name()
    {
        return Err(RunError::request(format!(
            "--out {} holds the results of experiment {recorded}, not {}: choose another --out \
             (or remove its results.json to reuse the folder)",
            out.display(),
            req.file.display()
        )));
    }
    if !req.report_only {
        return create_dir(out);
    }
    // Reading only: allowed beside a running experiment (the files are written atomically).
    if !out.is_dir() {
        return Err(RunError::request(format!(
            "--report-only: {} does not exist; nothing has been run there",
            out.display()
        )));
    }
    Ok(())
}

/// `--report-only` leaves out the stages made with other settings: say how many.
fn warn_stale(
    req: &ExperimentRequest,
    experiment: &Experiment,
    jobs: &[Job],
    observer: &(dyn Fn(ExperimentEvent) + Sync),
) {
    if req.quiet {
        return;
    }
    let stale = jobs
        .iter()
        .flat_map(|job| experiment.stages(job))
        .filter(|stage| stage.stale)
        .count();
    if stale > 0 {
        observer(ExperimentEvent::Line(format!(
            "warning: {stale} stage output(s) in {} were made with other settings than {} now \
             gives; they are left out of the tables until the experiment is run again",
            experiment.out.display(),
            req.file.display()
        )));
    }
}

/// Rewrites the tables (one writer at a time).
fn write_report(experiment: &Experiment, lock: &Mutex<()>) -> Result<PathBuf, RunError> {
    let _guard = lock
        .lock()
        .map_err(|_| RunError::Stage("a job panicked".to_string()))?;
    write_results(experiment, &collect(experiment)).map_err(|e| {
        RunError::Stage(format!(
            "cannot write the results into {}: {e}",
            experiment.out.display()
        ))
    })
}

/// The floors first, one at a time (the first extracts the reference's features into the
/// shared cache, which every later evaluation reads); then the arms that train; then those
/// that evaluate another arm's samples (which must exist). A failure stops the later phases.
fn run_phases(
    req: &ExperimentRequest,
    experiment: &Experiment,
    jobs: &[Job],
    observer: &(dyn Fn(ExperimentEvent) + Sync),
) -> Vec<String> {
    let worker = Worker {
        req,
        experiment,
        total: jobs.len(),
        show: !req.quiet && req.jobs == 1,
        observer,
    };
    for (floor, stage) in experiment.floor_stages() {
        if let Err(failure) = worker.run(&format!("floor {}", floor.name), &stage) {
            return vec![format!("floor {}: {failure}", floor.name)];
        }
    }
    let derived = |j: &Job| {
        let arm = &experiment.file.arms[j.arm];
        arm.samples_of.is_some() || arm.run_of.is_some()
    };
    let (second, first): (Vec<Job>, Vec<Job>) = jobs.iter().cloned().partition(derived);
    let failures = run_jobs(req, experiment, &first, observer);
    if !failures.is_empty() || second.is_empty() {
        return failures;
    }
    run_jobs(req, experiment, &second, observer)
}

/// Works on the jobs, `req.jobs` at a time; the tables are rewritten after every finished
/// pair, so a long invocation shows its progress. Returns the failures.
fn run_jobs(
    req: &ExperimentRequest,
    experiment: &Experiment,
    jobs: &[Job],
    observer: &(dyn Fn(ExperimentEvent) + Sync),
) -> Vec<String> {
    let total = jobs.len();
    let queue: Mutex<Vec<(usize, Job)>> =
        Mutex::new(jobs.iter().cloned().enumerate().rev().collect());
    let failed: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let report_lock = Mutex::new(());
    let worker = Worker {
        req,
        experiment,
        total,
        show: !req.quiet && req.jobs == 1,
        observer,
    };
    std::thread::scope(|scope| {
        for _ in 0..req.jobs.min(total.max(1)) {
            scope.spawn(|| {
                loop {
                    // Stop taking work after a failure; running jobs finish.
                    if !failed.lock().map(|f| f.is_empty()).unwrap_or(false) {
                        return;
                    }
                    let Some((i, job)) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return;
                    };
                    if let Err(failure) = worker.job(i, &job)
                        && let Ok(mut f) = failed.lock()
                    {
                        f.push(failure);
                    }
                    if let Err(e) = write_report(experiment, &report_lock) {
                        worker.say(format!("warning: {e}"));
                    }
                }
            });
        }
    });
    failed.into_inner().unwrap_or_default()
}

/// What every worker thread shares.
struct Worker<'a> {
    req: &'a ExperimentRequest,
    experiment: &'a Experiment,
    total: usize,
    /// One job at a time, not quiet: the stages' progress bars on the terminal.
    show: bool,
    observer: &'a (dyn Fn(ExperimentEvent) + Sync),
}

impl Worker<'_> {
    fn say(&self, line: String) {
        if !self.req.quiet {
            (self.observer)(ExperimentEvent::Line(line));
        }
    }

    /// The stages of job `i` not done yet, in order; the first failure ends it.
    fn job(&self, i: usize, job: &Job) -> Result<(), String> {
        let arm = &self.experiment.file.arms[job.arm].name;
        for stage in self.experiment.stages(job) {
            let what = format!(
                "[{}/{}] {arm} seed {} {}",
                i + 1,
                self.total,
                job.seed,
                stage.kind.name()
            );
            self.run(&what, &stage)
                .map_err(|e| format!("{arm} seed {}: {e}", job.seed))?;
        }
        Ok(())
    }

    /// Runs `stage` unless it is done, saying so as `what`.
    fn run(&self, what: &str, stage: &StageCommand) -> Result<(), String> {
        if stage.done {
            self.say(format!("{what}: done earlier"));
            return Ok(());
        }
        if stage.stale {
            self.say(format!(
                "{what}: its output was made with other settings; redone"
            ));
        }
        if self.show || stage.kind == StageKind::Train {
            self.say(format!("{what}: {}", command_line(&stage.args)));
        }
        if let Some(dir) = &stage.out {
            remove_leftovers(dir);
        }
        match self.stage(&stage.args).and_then(|seconds| {
            stage.record_done().map_err(|e| e.to_string())?;
            Ok(seconds)
        }) {
            Ok(seconds) => {
                self.say(format!("{what}: {seconds:.0} s"));
                Ok(())
            }
            Err(e) => {
                self.say(format!("{what}: failed"));
                Err(e)
            }
        }
    }

    /// Runs one stage: its progress bars on this terminal when it is the only job; its
    /// standard output (summaries) only then, and only where asked. Returns its wall time or
    /// `CODE: COMMAND: LAST ERROR LINE`.
    fn stage(&self, args: &[String]) -> Result<f64, String> {
        let mut full = args.to_vec();
        if !self.show {
            full.push("--quiet".into());
        }
        let stdout = if self.show && self.req.stage_stdout {
            Stream::Inherit
        } else {
            Stream::Discard
        };
        let stderr = if self.show {
            Stream::Inherit
        } else {
            Stream::Capture
        };
        match run_stage(&self.req.exe, &full, stdout, stderr) {
            Ok(output) => Ok(output.seconds),
            Err(Err(e)) => Err(e.to_string()),
            Err(Ok(failure)) => {
                let last = failure.last_line();
                Err(format!(
                    "{}: {}{}{last}",
                    failure.status,
                    command_line(args),
                    if last.is_empty() { "" } else { ": " }
                ))
            }
        }
    }
}
