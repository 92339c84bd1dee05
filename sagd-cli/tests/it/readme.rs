//! The README's shell examples run through a real shell: every `sagd` command in a ```bash
//! block reaches the `sagd` binary as the words the README means (no `;` or `|` cut it short)
//! and its flags and flag values parse (each is run with `--help` appended, which checks them
//! and runs nothing). Synopses with `[optional]` parts live in ```text blocks.

use std::path::Path;
use std::process::Command;

/// The logical lines (continuations joined) of the README's ```bash blocks.
fn bash_lines(readme: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_bash = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_bash = line.trim() == "```bash";
            continue;
        }
        if !in_bash {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    lines
}

/// The line with its way of starting `sagd` replaced by `sagd_check`, or `None` when the
/// line runs something else.
fn as_sagd_check(line: &str) -> Option<String> {
    const STARTS: [&str; 3] = [
        "sagd ",
        "target/release/sagd ",
        "cargo run --release -p sagd-cli -- ",
    ];
    let rest = STARTS.iter().find_map(|start| line.strip_prefix(start))?;
    Some(format!("sagd_check {rest}"))
}

/// Runs `command` (a line starting `sagd_check`) through bash in `dir`, where `sagd_check`
/// runs the `sagd` binary with `--help` appended: `None` when it succeeds without a word on
/// standard error, otherwise what bash or `sagd` said.
fn fails_in_bash(command: &str, dir: &Path) -> Option<String> {
    let script =
        format!("set -e\nsagd_check() {{ \"$SAGD\" \"$@\" --help > /dev/null; }}\n{command}\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("SAGD", env!("CARGO_BIN_EXE_sagd"))
        .current_dir(dir)
        .output()
        .expect("bash runs");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    (!out.status.success() || !said.is_empty()).then_some(said)
}

#[test]
fn every_sagd_command_in_the_readme_survives_the_shell_and_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let commands: Vec<String> = bash_lines(&readme)
        .iter()
        .filter_map(|l| as_sagd_check(l))
        .collect();
    assert!(
        commands.len() >= 20,
        "only {} commands found",
        commands.len()
    );
    let dir = tempfile::tempdir().unwrap();
    for command in &commands {
        if let Some(said) = fails_in_bash(command, dir.path()) {
            panic!("README: `{command}` fails in bash: {said}");
        }
    }
}

/// The check itself catches what it is for: an unquoted `;` and a bad flag.
#[test]
fn the_readme_check_catches_an_unquoted_list_and_a_bad_flag() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "sagd verify tabulated:r=0;0.5;1,w=1;0.3;0.1",
        "sagd noise isotropic --count x",
        "sagd sample --no-such-flag",
    ] {
        let command = as_sagd_check(bad).unwrap();
        assert!(
            fails_in_bash(&command, dir.path()).is_some(),
            "{bad} passed"
        );
    }
}
