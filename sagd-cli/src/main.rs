//! `sagd`: the command-line tool of the sagd framework.
//!
//! Exit codes: 0 success, 1 runtime failure (or a failed verification), 2 bad input.
//!
//! The commands parse their flags into the library's typed requests, call one library
//! function, draw its progress and print its result; a library error whose kind is the user's
//! (a bad value, a missing file named on the command line) exits 2. The work lives in
//! `sagd-runs`, one module per subcommand (`sagd_runs::sample`, `eval`, `train`, `data`,
//! `noise`, `verify`, `spectra`, `theory`, `demo`, `experiment`), and in
//! `sagd_core::verify` (the property suite of `verify`).

mod data;
mod demo;
mod eval;
mod experiment;
mod noise;
mod parse;
mod progress;
mod sample;
mod spectra;
mod theory;
mod train;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sagd_runs::RunError;

/// Spectrally anisotropic Gaussian diffusion: spectra, noise, verification, data, training,
/// sampling and evaluation.
#[derive(Debug, Parser)]
#[command(name = "sagd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The demonstration: isotropic vs SAGD selective omission on corrupted `shapes`, trained,
    /// sampled and evaluated in minutes, with a report (DIR/report.md).
    Demo(demo::DemoArgs),
    /// Run an experiment file: every arm and seed trained, sampled and evaluated (or measured
    /// for learning curves), continuing where an earlier invocation stopped; tables and figures in
    /// OUT/results.md.
    Experiment(experiment::ExperimentArgs),
    /// Inspect the registered noise spectra.
    Spectra {
        #[command(subcommand)]
        command: SpectraCommand,
    },
    /// Draw coloured noise into a float32 .npy file of shape (N, C, H, W).
    Noise(noise::NoiseArgs),
    /// Run the property suite (P1–P6) on a spectrum.
    Verify(verify::VerifyArgs),
    /// Inspect, preview and export datasets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Train a denoiser from a run config (TOML) into an output directory.
    Train(train::TrainArgs),
    /// Draw images from a checkpoint or from the exact oracle of grf/gmm data.
    Sample(sample::SampleArgs),
    /// FID, KID, precision/recall and spectral metrics of samples against a reference.
    Eval(eval::EvalArgs),
    /// The analytic theory of spectral bias: how fast each mode is learned.
    Theory {
        #[command(subcommand)]
        command: theory::TheoryCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SpectraCommand {
    /// Every registered spectrum, its doc and parameters.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A spectrum on a grid: support, rank, power table, radial profile.
    Show(spectra::ShowArgs),
}

/// An error whose exit code is 2: the user's input was wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error (exit 2) with `message`.
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.to_string()))
}

/// Writes `text` to stdout; a closed pipe (`sagd … --json | head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The command line parsed into [`Cli`]. Every flag's value may look like a negative number
/// (`--eta -0.5`), so a value out of range gets its own error rather than clap's "unexpected
/// argument '-0'".
fn parse_arguments() -> Result<Cli, clap::Error> {
    let matches = with_negative_numbers(Cli::command()).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// `command` with negative numbers allowed as the value of each of its flags and those of its
/// subcommands. A flag whose value is a number takes any value starting with `-` (clap's own
/// test misses `-1e-3`, `-.5` and `-inf`); the others take what clap reads as a number.
fn with_negative_numbers(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if !arg.get_action().takes_values() {
                arg
            } else if takes_a_number(&arg) {
                arg.allow_hyphen_values(true)
            } else {
                arg.allow_negative_numbers(true)
            }
        })
        .mut_subcommands(with_negative_numbers)
}

/// Whether `arg`'s value parser yields a number.
fn takes_a_number(arg: &clap::Arg) -> bool {
    use std::any::TypeId;
    let parsed = arg.get_value_parser().type_id();
    [
        TypeId::of::<f64>(),
        TypeId::of::<f32>(),
        TypeId::of::<i64>(),
        TypeId::of::<i32>(),
        TypeId::of::<u64>(),
        TypeId::of::<u32>(),
        TypeId::of::<usize>(),
    ]
    .into_iter()
    .any(|number| parsed == number)
}

fn main() -> ExitCode {
    // `cuda:N` numbers GPUs as nvidia-smi does (CUDA's default order puts the fastest first).
    if std::env::var_os("CUDA_DEVICE_ORDER").is_none() {
        // SAFETY: first thing in main, before any thread exists to read the environment.
        unsafe { std::env::set_var("CUDA_DEVICE_ORDER", "PCI_BUS_ID") };
    }
    sagd_ops::link();
    let cli = match parse_arguments() {
        Ok(cli) => cli,
        // Help and version go out as clap writes them; a usage error is one line (exit 2).
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            let text = e.to_string();
            let mut line = text
                .lines()
                .next()
                .unwrap_or("error: invalid arguments")
                .to_string();
            if line.trim_end().ends_with(':') {
                // "the following required arguments were not provided:" lists them below.
                let listed: Vec<&str> = text
                    .lines()
                    .skip(1)
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                line = format!("{} {}", line.trim_end(), listed.join(", "));
            }
            if let Some(tip) = text.lines().find_map(|l| l.trim().strip_prefix("tip: ")) {
                line.push_str(&format!("; {tip}"));
            }
            eprintln!("{line} (see --help)");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C or a kill removes the temporary files of unfinished outputs before the process
    // ends; without the handler (it failed to start) a signal only leaves them behind.
    if let Err(e) = sagd_core::files::remove_temporaries_on_signal() {
        eprintln!(
            "warning: cannot watch for Ctrl-C ({e}); an interrupted write may leave a temporary file"
        );
    }
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Experiment(args) => experiment::run(&args),
        Command::Spectra {
            command: SpectraCommand::List { json },
        } => spectra::spectra_list(json),
        Command::Spectra {
            command: SpectraCommand::Show(args),
        } => spectra::spectra_show(&args),
        Command::Noise(args) => noise::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Data { command } => data::run(&command),
        Command::Train(args) => train::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Theory { command } => theory::run(&command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // The user's mistake (exit 2): a flag refused here, or a library error of that kind.
            let usage = error.chain().any(|e| {
                e.downcast_ref::<UsageError>().is_some()
                    || e.downcast_ref::<RunError>().is_some_and(RunError::is_usage)
            });
            // One line: the context chain joined with ": ".
            eprintln!("error: {error:#}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
