//! The plan of an experiment: the file loaded and checked, its arm-seed pairs (jobs), and each
//! stage's command line and where its output goes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RunError;

use super::file::{
    Arm, EmergenceSettings, EvalSettings, ExperimentFile, ExperimentKind, Floor, SampleSettings,
};

fn invalid(message: impl Into<String>) -> RunError {
    RunError::Request(message.into())
}

/// An experiment file read and checked, with its paths resolved.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The file's contents.
    pub file: ExperimentFile,
    /// The file itself.
    pub path: PathBuf,
    /// Each arm's config path, as the runner passes it (the experiment file's folder joined);
    /// `None` for an arm that evaluates another arm's samples.
    pub configs: Vec<Option<PathBuf>>,
    /// The output folder.
    pub out: PathBuf,
}

/// One arm trained with one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Index into the arms.
    pub arm: usize,
    /// The seed.
    pub seed: u64,
    /// `OUT/ARM/seed-S`.
    pub dir: PathBuf,
}

/// The stages of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// `sagd train` (resumed when the run exists; a complete run returns at once).
    Train,
    /// `sagd sample`.
    Sample,
    /// `sagd eval`.
    Eval,
    /// `sagd theory emergence`.
    Emergence,
}

impl StageKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Sample => "sample",
            Self::Eval => "eval",
            Self::Emergence => "emergence",
        }
    }
}

/// One stage of a job: the `sagd` arguments that do it and whether its output is already there.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCommand {
    /// Which stage.
    pub kind: StageKind,
    /// `sagd`'s arguments (without the program).
    pub args: Vec<String>,
    /// Its output exists and was made by exactly these arguments (a finished stage is not run
    /// again; one made with other settings is redone).
    pub done: bool,
    /// Its output exists but was made with other arguments (or by an unrecorded run).
    pub stale: bool,
    /// Its output folder, which holds the record of the arguments that made it
    /// ([`MARKER`]); `None` for training (the trainer checks its own config).
    pub out: Option<PathBuf>,
    /// The arguments as [`MARKER`] records them: paths inside the experiment's output folder
    /// written relative to it (`$OUT/…`), so that the folder's record still matches when it is
    /// named another way (`./runs/x/`, an absolute path) or copied elsewhere.
    pub record: String,
}

/// The file in a stage's output folder recording the arguments that made it, one per line.
pub const MARKER: &str = ".experiment-stage";

impl StageCommand {
    fn with_output(
        kind: StageKind,
        args: Vec<String>,
        out: PathBuf,
        present: bool,
        root: &Path,
    ) -> Self {
        let record = args
            .iter()
            .map(|arg| match Path::new(arg).strip_prefix(root) {
                Ok(rel) if !root.as_os_str().is_empty() => format!("$OUT/{}", rel.display()),
                _ => arg.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let recorded = std::fs::read_to_string(out.join(MARKER)).ok();
        // Records written before paths were made relative hold the arguments verbatim.
        let same = recorded
            .as_deref()
            .is_some_and(|r| r == record || r == args.join("\n"));
        Self {
            kind,
            done: present && same,
            stale: present && !same,
            args,
            out: Some(out),
            record,
        }
    }

    /// Records that the stage finished with its arguments (atomically).
    ///
    /// # Errors
    /// [`RunError::Write`] when the record cannot be written.
    pub fn record_done(&self) -> Result<(), RunError> {
        match &self.out {
            Some(out) => crate::output::write_text(&out.join(MARKER), &self.record),
            None => Ok(()),
        }
    }
}

/// Parses a dataset spec and checks that the file or folder it reads exists (relative paths
/// from the working directory), so that a typo is refused before hours of training.
fn check_data_spec(spec: &str) -> Result<(), String> {
    let parsed = spec
        .parse::<sagd_datasets::spec::DataSpec>()
        .map_err(|e| format!("`{spec}`: {e}"))?;
    match parsed.missing_path() {
        Some(path) => Err(format!(
            "`{spec}`: {} does not exist (relative paths are read from the working directory, \
             {})",
            path.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "unknown".into())
        )),
        None => Ok(()),
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

impl Experiment {
    /// Reads and checks the experiment file at `path`; `out` replaces the file's output folder.
    ///
    /// # Errors
    /// [`RunError::Request`] naming the file and what is wrong: unreadable, not TOML, an
    /// unknown key, no arms or seeds, a repeated or unsafe arm name, a missing arm config, a
    /// section the kind needs missing (or one it does not use present), a zero count, a band
    /// that is not one of `sagd eval`'s ten.
    pub fn load(path: &Path, out: Option<&Path>) -> Result<Self, RunError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read experiment {shown}: {e}")))?;
        let file: ExperimentFile = toml::from_str(&text)
            .map_err(|e| invalid(format!("experiment {shown}: {}", one_line(&e.to_string()))))?;
        let bad = |message: String| invalid(format!("experiment {shown}: {message}"));
        if file.arms.is_empty() {
            return Err(bad("no [[arm]]; expected at least one".into()));
        }
        if file.seeds.is_empty() {
            return Err(bad("`seeds` is empty; expected at least one seed".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &file.seeds {
            if !seen.insert(*s) {
                return Err(bad(format!("seed {s} is listed twice in `seeds`")));
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let mut names = std::collections::BTreeSet::new();
        let mut configs = Vec::new();
        for arm in &file.arms {
            check_folder_name("arm", &arm.name).map_err(&bad)?;
            if !names.insert(arm.name.clone()) {
                return Err(bad(format!("two arms are named `{}`", arm.name)));
            }
            configs.push(arm_config(&file, arm, base).map_err(&bad)?);
            sagd_datasets::transform::Pipeline::parse(&arm.sample_transforms)
                .map_err(|e| bad(format!("arm `{}`: sample_transforms: {e}", arm.name)))?;
            if let Some(x) = arm.x
                && !x.is_finite()
            {
                return Err(bad(format!(
                    "arm `{}`: x = {x}; expected a number",
                    arm.name
                )));
            }
            if let Some(band) = arm.band {
                band_index(band)
                    .ok_or_else(|| bad(format!("arm `{}`: {}", arm.name, band_help(band))))?;
            }
        }
        check_floors(&file).map_err(&bad)?;
        check_contrasts(&file).map_err(bad)?;
        match file.kind {
            ExperimentKind::Sweep => {
                let (Some(sample), Some(eval)) = (&file.sample, &file.eval) else {
                    return Err(bad(
                        "kind = \"sweep\" needs [sample] and [eval] sections".into()
                    ));
                };
                if file.emergence.is_some() {
                    return Err(bad("[emergence] belongs to kind = \"emergence\"".into()));
                }
                if sample.count < 2 || sample.steps == 0 || sample.batch == 0 {
                    return Err(bad(
                        "[sample] count must be at least 2, steps and batch at least 1".into(),
                    ));
                }
                sample
                    .sampler
                    .parse::<sagd_samplers::Method>()
                    .map_err(|e| bad(format!("[sample] {e}")))?;
                sagd_eval::evaluate::parse_metrics(&eval.metrics)
                    .map_err(|e| bad(format!("[eval] {e}")))?;
                sagd_datasets::transform::Pipeline::parse(&eval.transforms)
                    .map_err(|e| bad(format!("[eval] transforms: {e}")))?;
                if !Path::new(&eval.reference).exists() {
                    check_data_spec(&eval.reference).map_err(|e| {
                        bad(format!(
                            "[eval] reference {e}; expected a file, a folder or a dataset spec"
                        ))
                    })?;
                }
                if let Some(n) = &eval.reference_count {
                    n.parse::<crate::eval::ReferenceCount>()
                        .map_err(|e| bad(format!("[eval] reference_count {e}")))?;
                }
                if eval.bootstrap == 1 {
                    return Err(bad(
                        "[eval] bootstrap = 1: a spread needs at least 2 resamples (0: none)"
                            .into(),
                    ));
                }
                if let Some(count) = eval.count
                    && (count == 0 || count > sample.count)
                {
                    return Err(bad(format!(
                        "[eval] count = {count}: expected 1 ..= [sample] count ({})",
                        sample.count
                    )));
                }
            }
            ExperimentKind::Emergence => {
                let Some(settings) = &file.emergence else {
                    return Err(bad(
                        "kind = \"emergence\" needs an [emergence] section".into()
                    ));
                };
                if file.sample.is_some() || file.eval.is_some() {
                    return Err(bad("[sample] and [eval] belong to kind = \"sweep\"".into()));
                }
                settings
                    .sampler
                    .parse::<sagd_samplers::Method>()
                    .map_err(|e| bad(format!("[emergence] {e}")))?;
                if settings.samples < 2 || settings.steps == 0 {
                    return Err(bad(
                        "[emergence] samples must be at least 2 and steps at least 1".into(),
                    ));
                }
                if !(settings.exclude.is_finite() && settings.exclude >= 1.0) {
                    return Err(bad(format!(
                        "[emergence] exclude = {}; expected a factor >= 1",
                        settings.exclude
                    )));
                }
            }
        }
        let out = match (out, &file.out) {
            (Some(o), _) => o.to_path_buf(),
            (None, Some(o)) => o.clone(),
            (None, None) => {
                let stem = path
                    .file_stem()
                    .map_or("experiment".into(), |s| s.to_string_lossy().into_owned());
                Path::new("runs").join(stem)
            }
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            configs,
            out,
        })
    }

    /// Every (arm, seed), arms in order, seeds in order within an arm; `only` keeps the arms
    /// named there (all when empty).
    ///
    /// # Errors
    /// [`RunError::Request`] for a name in `only` that is no arm.
    pub fn jobs(&self, only: &[String]) -> Result<Vec<Job>, RunError> {
        for name in only {
            if !self.file.arms.iter().any(|a| &a.name == name) {
                let names: Vec<&str> = self.file.arms.iter().map(|a| a.name.as_str()).collect();
                return Err(invalid(format!(
                    "--only {name}: no such arm; the arms are {}",
                    names.join(", ")
                )));
            }
        }
        let mut jobs = Vec::new();
        for (i, arm) in self.file.arms.iter().enumerate() {
            if !only.is_empty() && !only.contains(&arm.name) {
                continue;
            }
            for &seed in &self.file.seeds {
                jobs.push(Job {
                    arm: i,
                    seed,
                    dir: self.out.join(&arm.name).join(format!("seed-{seed}")),
                });
            }
        }
        Ok(jobs)
    }

    /// The reference's Inception-feature cache, shared by every arm.
    pub fn feature_cache(&self) -> PathBuf {
        self.out.join("reference-features.npz")
    }

    /// The stages of `job`, in order, as `sagd` argument lists.
    pub fn stages(&self, job: &Job) -> Vec<StageCommand> {
        let arm = &self.file.arms[job.arm];
        if let (Some(source), Some(eval)) = (&arm.samples_of, &self.file.eval) {
            // Another arm's samples: nothing to train or sample here.
            let samples = self.out.join(source).join(format!("seed-{}", job.seed));
            let samples = path_arg(&samples.join("samples"));
            return vec![self.eval_stage(
                &job.dir.join("eval"),
                &samples,
                &arm.sample_transforms,
                eval,
                eval.count,
            )];
        }
        // Another arm's run (same seed), sampled here: nothing to train.
        let (run, mut stages) = match &arm.run_of {
            Some(source) => {
                let run = self.out.join(source).join(format!("seed-{}", job.seed));
                (run.join("run"), Vec::new())
            }
            None => {
                let run = job.dir.join("run");
                let train = self.train_stage(job, &run);
                (run, vec![train])
            }
        };
        match self.file.kind {
            ExperimentKind::Sweep => {
                let (Some(sample), Some(eval)) = (&self.file.sample, &self.file.eval) else {
                    return stages;
                };
                let samples = job.dir.join("samples");
                let checkpoint = match arm.step {
                    Some(step) => run
                        .join("checkpoints")
                        .join(sagd_models::checkpoint::file_name(step)),
                    None => run.clone(),
                };
                stages.push(self.sample_stage(job, &checkpoint, &samples, sample));
                stages.push(self.eval_stage(
                    &job.dir.join("eval"),
                    &path_arg(&samples),
                    &arm.sample_transforms,
                    eval,
                    eval.count,
                ));
            }
            ExperimentKind::Emergence => {
                let Some(settings) = &self.file.emergence else {
                    return stages;
                };
                stages.push(self.emergence_stage(job, &run, settings));
            }
        }
        // A stage reads the one before it: after one that must run, every later one runs too
        // (training always "runs": it returns at once for a complete run).
        let mut upstream_done = true;
        let trains = usize::from(arm.run_of.is_none());
        for stage in stages.iter_mut().skip(trains) {
            if !upstream_done && stage.done {
                stage.done = false;
                stage.stale = true;
            }
            upstream_done = stage.done;
        }
        stages
    }

    /// `sagd train` of the job's arm and seed into `run`.
    fn train_stage(&self, job: &Job, run: &Path) -> StageCommand {
        let mut train = vec![
            "train".to_string(),
            "--config".into(),
            self.configs[job.arm]
                .as_deref()
                .map(path_arg)
                .unwrap_or_default(),
            "--seed".into(),
            job.seed.to_string(),
            "--out".into(),
            path_arg(run),
        ];
        if run.join("config.toml").is_file() {
            // Continues a run an earlier invocation began; a complete run returns at once, and a
            // config edited since is refused naming the key.
            train.push("--resume".into());
        }
        StageCommand {
            kind: StageKind::Train,
            args: train,
            done: false,
            stale: false,
            out: None,
            record: String::new(),
        }
    }

    /// `sagd sample` of `checkpoint` (a run folder: its last checkpoint; or one checkpoint
    /// file) into `samples`, as `[sample]` says.
    fn sample_stage(
        &self,
        job: &Job,
        checkpoint: &Path,
        samples: &Path,
        sample: &SampleSettings,
    ) -> StageCommand {
        let mut args = vec![
            "sample".to_string(),
            "--checkpoint".into(),
            path_arg(checkpoint),
            "--sampler".into(),
            sample.sampler.clone(),
            "--steps".into(),
            sample.steps.to_string(),
            "--count".into(),
            sample.count.to_string(),
            "--batch".into(),
            sample.batch.to_string(),
            "--seed".into(),
            job.seed.to_string(),
            "--out".into(),
            path_arg(samples),
            // Only reached when no summary is there: whatever a killed sampler left.
            "--overwrite".into(),
        ];
        if sample.ema {
            args.insert(3, "--ema".into());
        }
        let present =
            samples.join("summary.json").is_file() && samples.join("samples.npy").is_file();
        StageCommand::with_output(
            StageKind::Sample,
            args,
            samples.to_path_buf(),
            present,
            &self.out,
        )
    }

    /// The stages of the file's floors (`[[floor]]`), in order: each `sagd eval` of data
    /// against the reference, into `floors/NAME/eval`.
    pub fn floor_stages(&self) -> Vec<(Floor, StageCommand)> {
        let Some(eval) = &self.file.eval else {
            return Vec::new();
        };
        self.file
            .floors
            .iter()
            .map(|floor| {
                let out = self.floor_dir(floor).join("eval");
                // As many images as the arms' evaluations compare (the floor depends on N).
                let count = eval.count.or(self.file.sample.as_ref().map(|s| s.count));
                let stage = self.eval_stage(&out, &floor.samples, &floor.transforms, eval, count);
                (floor.clone(), stage)
            })
            .collect()
    }

    /// `floors/NAME`.
    pub fn floor_dir(&self, floor: &Floor) -> PathBuf {
        self.out.join("floors").join(&floor.name)
    }

    /// `sagd eval` of `samples` (transformed by `sample_transforms`) into `out`, as `[eval]`
    /// says (with the shared feature cache for the Inception metrics).
    fn eval_stage(
        &self,
        out: &Path,
        samples: &str,
        sample_transforms: &[String],
        eval: &EvalSettings,
        count: Option<usize>,
    ) -> StageCommand {
        let out = out.to_path_buf();
        let mut args = vec![
            "eval".to_string(),
            "--samples".into(),
            samples.to_string(),
            "--reference".into(),
            eval.reference.clone(),
        ];
        for t in &eval.transforms {
            args.push("--transform".into());
            args.push(t.clone());
        }
        for t in sample_transforms {
            args.push("--sample-transform".into());
            args.push(t.clone());
        }
        if let Some(count) = count {
            args.push("--count".into());
            args.push(count.to_string());
        }
        if let Some(size) = eval.kid_subset_size {
            args.push("--kid-subset-size".into());
            args.push(size.to_string());
        }
        if let Some(n) = &eval.reference_count {
            args.push("--reference-count".into());
            args.push(n.clone());
        }
        if eval.bootstrap > 0 {
            args.push("--bootstrap".into());
            args.push(eval.bootstrap.to_string());
        }
        args.extend([
            "--metrics".into(),
            eval.metrics.clone(),
            "--seed".into(),
            eval.seed.to_string(),
        ]);
        if eval
            .metrics
            .split(',')
            .any(|m| ["fid", "kid", "pr"].contains(&m.trim()))
        {
            args.push("--feature-cache".into());
            args.push(path_arg(&self.feature_cache()));
        }
        args.extend(["--out".into(), path_arg(&out), "--overwrite".into()]);
        let present = out.join("metrics.json").is_file();
        StageCommand::with_output(StageKind::Eval, args, out, present, &self.out)
    }

    /// `sagd theory emergence` of the run, as `[emergence]` says.
    fn emergence_stage(&self, job: &Job, run: &Path, settings: &EmergenceSettings) -> StageCommand {
        let out = job.dir.join("emergence");
        let mut args = vec![
            "theory".to_string(),
            "emergence".into(),
            "--run".into(),
            path_arg(run),
            "--samples".into(),
            settings.samples.to_string(),
            "--sampler".into(),
            settings.sampler.clone(),
            "--steps".into(),
            settings.steps.to_string(),
            "--exclude".into(),
            settings.exclude.to_string(),
            "--seed".into(),
            job.seed.to_string(),
        ];
        if settings.ema {
            args.push("--ema".into());
        }
        if let Some(images) = settings.images {
            args.push("--images".into());
            args.push(images.to_string());
        }
        args.extend(["--out".into(), path_arg(&out), "--overwrite".into()]);
        let present = out.join("emergence.json").is_file();
        StageCommand::with_output(StageKind::Emergence, args, out, present, &self.out)
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Refuses a name that is not a safe folder name.
fn check_folder_name(what: &str, name: &str) -> Result<(), String> {
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if safe {
        Ok(())
    } else {
        Err(format!(
            "{what} name `{name}`: expected letters, digits, `.`, `_` and `-` (it names a folder)"
        ))
    }
}

/// The config of an arm that trains (read and checked now: the trainer would refuse a bad
/// config only when the arm's turn comes, hours in), or `None` for one that evaluates another
/// arm's samples (which must train, in a sweep).
fn arm_config(file: &ExperimentFile, arm: &Arm, base: &Path) -> Result<Option<PathBuf>, String> {
    let name = &arm.name;
    let source = match (&arm.samples_of, &arm.run_of) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "arm `{name}`: samples_of and run_of both set; expected one of them"
            ));
        }
        (a, b) => a.as_ref().or(b.as_ref()),
    };
    if arm.step.is_some() && arm.samples_of.is_some() {
        return Err(format!(
            "arm `{name}`: step picks the checkpoint an arm samples; this arm samples nothing \
             (samples_of)"
        ));
    }
    match (&arm.config, source) {
        (Some(config), None) => {
            let config = base.join(config);
            if !config.is_file() {
                return Err(format!(
                    "arm `{name}`: config {} is not a file",
                    config.display()
                ));
            }
            let run = sagd_models::RunConfig::from_file(&config)
                .map_err(|e| format!("arm `{name}`: {e}"))?;
            check_data_spec(&run.data.spec)
                .map_err(|e| format!("arm `{name}`: [data] spec {e}"))?;
            if let Some(step) = arm.step {
                check_step_kept(&run, step).map_err(|e| format!("arm `{name}`: {e}"))?;
            }
            Ok(Some(config))
        }
        (None, Some(source)) => {
            let key = if arm.samples_of.is_some() {
                "samples_of"
            } else {
                "run_of"
            };
            if file.kind != ExperimentKind::Sweep {
                return Err(format!("arm `{name}`: {key} belongs to a sweep"));
            }
            let Some(a) = file.arms.iter().find(|a| &a.name == source) else {
                return Err(format!(
                    "arm `{name}`: {key} = `{source}` is no arm of this file"
                ));
            };
            let trains = a.samples_of.is_none() && a.run_of.is_none();
            let Some(config) = a.config.as_ref().filter(|_| trains) else {
                return Err(format!(
                    "arm `{name}`: {key} = `{source}`, an arm that trains no model itself; \
                     expected an arm with a config"
                ));
            };
            if let Some(step) = arm.step {
                let run = sagd_models::RunConfig::from_file(&base.join(config))
                    .map_err(|e| format!("arm `{source}`: {e}"))?;
                check_step_kept(&run, step).map_err(|e| format!("arm `{name}`: {e}"))?;
            }
            Ok(None)
        }
        _ => Err(format!(
            "arm `{name}`: expected `config` (a model to train), `samples_of` (another arm's \
             samples to evaluate) or `run_of` (another arm's run to sample), exactly one"
        )),
    }
}

/// Refuses a `step` that the run writes no checkpoint at, or whose checkpoint the run deletes
/// before it ends (only its `keep_checkpoints` newest stay).
fn check_step_kept(run: &sagd_models::RunConfig, step: u64) -> Result<(), String> {
    let written = |s: u64| {
        s == run.steps
            || (run.checkpoint_every > 0 && s.is_multiple_of(run.checkpoint_every))
            || run.checkpoint_at.contains(&s)
    };
    if step == 0 || step > run.steps || !written(step) {
        return Err(format!(
            "step = {step}: the run writes no checkpoint there (steps = {}, checkpoint_every = \
             {}, checkpoint_at = {:?})",
            run.steps, run.checkpoint_every, run.checkpoint_at
        ));
    }
    let later = (step + 1..=run.steps).filter(|&s| written(s)).count();
    if later >= run.keep_checkpoints {
        return Err(format!(
            "step = {step}: {later} newer checkpoints follow it and the run keeps only its \
             {} newest (raise keep_checkpoints above {later})",
            run.keep_checkpoints
        ));
    }
    Ok(())
}

/// The floors have safe, distinct names, belong to a sweep, and their transforms parse.
fn check_floors(file: &ExperimentFile) -> Result<(), String> {
    if !file.floors.is_empty() && file.kind != ExperimentKind::Sweep {
        return Err(
            "[[floor]] evaluates data against a sweep's reference; this is not a sweep".into(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for floor in &file.floors {
        check_folder_name("floor", &floor.name)?;
        if !names.insert(&floor.name) {
            return Err(format!("two floors are named `{}`", floor.name));
        }
        check_data_spec(&floor.samples)
            .map_err(|e| format!("floor `{}`: samples {e}", floor.name))?;
        sagd_datasets::transform::Pipeline::parse(&floor.transforms)
            .map_err(|e| format!("floor `{}`: transforms: {e}", floor.name))?;
    }
    Ok(())
}

/// The contrasts name two different arms of the file, belong to a sweep, and compare band
/// ratios only between arms with the same `band`.
fn check_contrasts(file: &ExperimentFile) -> Result<(), String> {
    if !file.contrasts.is_empty() && file.kind != ExperimentKind::Sweep {
        return Err("[[contrast]] compares a sweep's metrics; this is not a sweep".into());
    }
    let arm = |name: &str| {
        file.arms.iter().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = file.arms.iter().map(|a| a.name.as_str()).collect();
            format!(
                "[[contrast]] names arm `{name}`; expected one of {}",
                names.join(", ")
            )
        })
    };
    for c in &file.contrasts {
        let (a, b) = (arm(&c.arm)?, arm(&c.baseline)?);
        if a.name == b.name {
            return Err(format!(
                "[[contrast]] compares arm `{}` with itself; expected two arms",
                a.name
            ));
        }
        let band_metric = matches!(
            c.metric,
            super::file::ContrastMetric::BandRatio | super::file::ContrastMetric::RawBandRatio
        );
        if band_metric && (a.band.is_none() || a.band != b.band) {
            return Err(format!(
                "[[contrast]] `{}` vs `{}` on {}: both arms need the same `band`",
                a.name,
                b.name,
                c.metric.name()
            ));
        }
    }
    Ok(())
}

/// The index of `band` among `sagd eval`'s ten unit-radius bands `[0.1k, 0.1(k+1)]`, when it is
/// one of them (to 1e-9).
pub fn band_index(band: [f64; 2]) -> Option<usize> {
    let k = (band[0] * 10.0).round();
    let exact = (band[0] - k / 10.0).abs() < 1e-9 && (band[1] - (k + 1.0) / 10.0).abs() < 1e-9;
    (exact && (0.0..10.0).contains(&k)).then_some(k as usize)
}

fn band_help(band: [f64; 2]) -> String {
    format!(
        "band [{}, {}] is not one of the ten bands sagd eval measures ([0, 0.1], [0.1, 0.2], …, \
         [0.9, 1])",
        band[0], band[1]
    )
}
