//! Experiments (`sagd experiment FILE.toml`): one TOML file names the arms (ordinary run
//! configs), the seeds, and how every trained model is sampled and evaluated; the runner trains,
//! samples and evaluates every arm and seed as ordinary `sagd` subcommands and writes the
//! tables and figures:
//!
//! - [`mod@file`]: the experiment file as written;
//! - [`contrast`]: the paired comparisons (`[[contrast]]`): per-seed differences, t-intervals,
//!   Holm-adjusted p-values and verdicts;
//! - [`plan`]: the file loaded and checked, its jobs (arm-seed pairs) and each stage's command
//!   line and where its output goes;
//! - [`run`]: the orchestration ([`experiment_run`]): the stages as child processes;
//! - [`results`]: the results read back from the stages' own outputs (`metrics.json`,
//!   `emergence.json`, `log.csv`, `summary.json`), so that a table can always be rebuilt from
//!   what is on disk, and the tables and figures.
//!
//! Two kinds:
//! - `sweep`: train → `sagd sample` → `sagd eval` per arm and seed; a table of FID, KID, the
//!   log-spectral distance and (for arms with a `band`) the energy left in that band, and a
//!   figure of a metric against each arm's `x`, one line per `series`, every seed drawn.
//! - `emergence`: train (with log-spaced checkpoints) → `sagd theory emergence` per arm and
//!   seed; a table of the fitted learning-time exponents and how spread the modes' learning
//!   times are.
//!
//! A sweep may also declare floors (`[[floor]]`: data evaluated as samples before any arm, e.g.
//! the train split against the test reference, what a perfect model would score at this N),
//! arms that evaluate another arm's samples (`samples_of`, with `sample_transforms`, after all
//! training) and paired contrasts (`[[contrast]]`, [`contrast`]).
//!
//! Layout under the output folder: `ARM/seed-S/run` (the run), `ARM/seed-S/samples`,
//! `ARM/seed-S/eval`, `ARM/seed-S/emergence`; `floors/NAME/eval`; `reference-features.npz`
//! (the evaluation reference's Inception features, shared by every arm); `results.md`,
//! `results.json` and `figures/`.

pub mod contrast;
pub mod file;
pub mod plan;
pub mod results;
pub mod run;

pub use file::{ExperimentFile, ExperimentKind};
pub use plan::{Experiment, Job, StageCommand, StageKind};
pub use results::{ArmResults, JobResult, collect, write_results};
pub use run::{ExperimentEvent, ExperimentRequest, ExperimentRun, experiment_run};
