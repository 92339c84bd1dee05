//! Interrupted writes leave no temporary file: Ctrl-C (SIGINT) or a kill (SIGTERM) during a
//! write removes it, and a later run removes those of its output that a dead process left.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::sagd;

/// The files in `dir` whose name ends in `.tmp`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// `sagd noise` writing a large array (1.2 GB when finished; it is stopped well before).
fn start_large_noise(out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sagd"))
        .args([
            "noise",
            "isotropic",
            "--size",
            "3x32x32",
            "--count",
            "100000",
        ])
        .args(["--seed", "1", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sagd binary starts")
}

/// Waits until the child's temporary file is in `dir` and holds some data.
fn wait_for_temporary(child: &mut Child, dir: &Path) {
    let start = Instant::now();
    loop {
        let growing = std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".tmp")
                && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
        });
        if growing {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "sagd noise ended before it was interrupted"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(unix)]
#[test]
fn a_signal_during_a_write_removes_the_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    for (signal, number) in [("-INT", 2), ("-TERM", 15)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("n.npy");
        let mut child = start_large_noise(&out);
        wait_for_temporary(&mut child, dir.path());
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        // It ends as the signal would have ended it (a shell shows 130 for Ctrl-C).
        assert_eq!(status.signal(), Some(number), "{signal}: {status:?}");
        assert!(
            temporaries(dir.path()).is_empty(),
            "{signal}: {:?}",
            temporaries(dir.path())
        );
        assert!(!out.exists(), "{signal}: a torn output");
    }
}

#[test]
fn a_later_run_removes_what_a_dead_process_left() {
    let dir = tempfile::tempdir().unwrap();
    // Process 999999999 cannot exist (Linux ids stop at 4194304): its writes were cut off.
    let stale = [".n.npy.999999999.tmp", ".n.npy.999999999-4.tmp"];
    for name in stale {
        std::fs::write(dir.path().join(name), vec![0u8; 4096]).unwrap();
    }
    // Another output's temporary, and one of a live process (this test), stay.
    let other = ".m.npy.999999999-0.tmp".to_string();
    let live = format!(".n.npy.{}-0.tmp", std::process::id());
    for name in [&other, &live] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let out = dir.path().join("n.npy");
    let out_text = out.to_str().unwrap();
    let run = sagd(&[
        "noise",
        "isotropic",
        "--size",
        "1x4x4",
        "--count",
        "2",
        "--out",
        out_text,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut left = temporaries(dir.path());
    left.sort();
    let mut kept = [live, other];
    kept.sort();
    assert_eq!(left, kept);
}
