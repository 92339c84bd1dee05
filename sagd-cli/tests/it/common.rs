//! Helpers shared by the CLI's integration tests (each test file is its own crate, so they
//! live in a module that every file includes; not every file uses every helper).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `sagd` binary built for these tests and waits for it.
pub fn sagd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagd"))
        .args(args)
        .output()
        .expect("the sagd binary runs")
}

/// Standard output then standard error, for assertion messages and text checks.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `sagd`, requires success, and parses its standard output as JSON.
pub fn stdout_json(args: &[&str]) -> serde_json::Value {
    let out = sagd(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// The shared data folder of the data-backed tests: `SAGD_DATA_DIR`, a relative path taken
/// from the workspace root (the tests run in the crate's folder, `.ci/run` in the root).
pub fn data_dir() -> PathBuf {
    shared_dir("SAGD_DATA_DIR", "the shared data folder (holding mnist/)")
}

/// The folder environment variable `var` names, relative paths taken from the workspace root.
fn shared_dir(var: &str, what: &str) -> PathBuf {
    let dir = std::env::var_os(var).unwrap_or_else(|| panic!("{var} is set to {what}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    assert!(dir.is_dir(), "{var}={} is not a folder", dir.display());
    dir
}

/// Runs `sagd` with environment variables set (`Some`) or removed (`None`).
pub fn sagd_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sagd"));
    command.args(args);
    for (key, value) in env {
        match value {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    command.output().expect("the sagd binary runs")
}

/// The shared models folder of the data-backed tests (`SAGD_MODELS_DIR`, resolved as
/// [`data_dir`] is).
pub fn models_dir() -> PathBuf {
    shared_dir(
        "SAGD_MODELS_DIR",
        "the shared models folder (holding fid-inception/)",
    )
}
