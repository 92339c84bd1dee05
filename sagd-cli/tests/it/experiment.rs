//! `sagd experiment` as a user meets it: a small sweep runs every arm and seed, writes its
//! tables and figure from the stages' own outputs, continues where an interrupted invocation
//! stopped without redoing finished stages, and refuses bad experiment files before any work.

use crate::common;
use common::*;

use std::path::Path;

/// A run config of a few seconds: an MLP on a 1×8×8 Gaussian random field.
fn arm_config(spectrum: &str) -> String {
    format!(
        "steps = 6\nbatch = 8\ncheckpoint_every = 3\nlog_every = 3\n\
         [data]\nspec = \"grf:beta=2,size=1x8x8,n=64,seed=3\"\n\
         [noise]\nspectrum = \"{spectrum}\"\n\
         [model]\nkind = \"mlp\"\ndepth = 1\nwidth = 32\nembedding = 16\n\
         [optimizer]\nlr = 1e-2\nwarmup = 1\n"
    )
}

/// An experiment of two arms (isotropic, and a band-pass whose band is `[0.2, 0.3]`), two
/// seeds, spectral metrics only (no Inception weights needed).
fn write_experiment(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("arms")).unwrap();
    std::fs::write(dir.join("arms/iso.toml"), arm_config("isotropic")).unwrap();
    std::fs::write(
        dir.join("arms/pl.toml"),
        arm_config("power-law:alpha=-1,eps=0.05"),
    )
    .unwrap();
    let file = dir.join("tiny.toml");
    std::fs::write(
        &file,
        "title = \"tiny\"\nkind = \"sweep\"\nseeds = [0, 1]\n\
         [sample]\nsteps = 5\ncount = 16\nbatch = 8\n\
         [eval]\nreference = \"grf:beta=2,size=1x8x8,n=64,seed=4,split=test\"\n\
         metrics = \"spectral\"\n\
         [plot]\nx_label = \"alpha\"\n\
         [[arm]]\nname = \"iso\"\nconfig = \"arms/iso.toml\"\nx = 0\nband = [0.2, 0.3]\n\
         [[arm]]\nname = \"pl\"\nconfig = \"arms/pl.toml\"\nx = -1\nband = [0.2, 0.3]\n\
         [[arm]]\nname = \"iso-notched\"\nsamples_of = \"iso\"\n\
         sample_transforms = [\"notch:a=0.2,b=0.3\"]\nx = 0.5\nband = [0.2, 0.3]\n\
         [[arm]]\nname = \"iso-half\"\nrun_of = \"iso\"\nstep = 3\nx = 0.25\n\
         [[floor]]\nname = \"train\"\nsamples = \"grf:beta=2,size=1x8x8,n=64,seed=4\"\n\
         label = \"train split\"\n\
         [[contrast]]\narm = \"pl\"\nbaseline = \"iso\"\nmetric = \"log-spectral-distance\"\n\
         better = \"lower\"\n",
    )
    .unwrap();
    file
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn a_sweep_runs_continues_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path());
    let out = dir.path().join("out");

    // One arm first, as an invocation that stopped part-way would leave it.
    let o = sagd(&[
        "experiment",
        s(&file),
        "--out",
        s(&out),
        "--only",
        "iso",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for seed in [0, 1] {
        let job = out.join(format!("iso/seed-{seed}"));
        assert!(
            job.join("run/checkpoints/step-00000006.safetensors")
                .is_file()
        );
        assert!(job.join("samples/samples.npy").is_file());
        assert!(job.join("eval/metrics.json").is_file());
    }
    assert!(!out.join("pl").exists() && !out.join("iso-notched").exists());
    // The floor ran first, at the arms' N (all 16 samples: [eval] has no count).
    let floor: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("floors/train/eval/metrics.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            floor["sample_count"].as_u64(),
            floor["reference_count"].as_u64()
        ),
        (Some(16), Some(16))
    );
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(table.contains("| iso | 0 | 2/2 | 16, 16 |"), "{table}");
    assert!(table.contains("| pl | -1 | 0/2 | – |"), "{table}");
    let before = std::fs::read(out.join("iso/seed-0/eval/metrics.json")).unwrap();

    // The whole experiment: the finished arm is not redone, the other one runs.
    let o = sagd(&["experiment", s(&file), "--out", s(&out), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("iso seed 0 eval: done earlier"), "{log}");
    assert!(log.contains("pl seed 1 eval:"), "{log}");
    assert_eq!(
        std::fs::read(out.join("iso/seed-0/eval/metrics.json")).unwrap(),
        before
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let arms = results["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 4);
    for arm in &arms[..2] {
        let seeds = arm["seeds"].as_array().unwrap();
        assert_eq!(seeds.len(), 2);
        for (seed, r) in seeds.iter().enumerate() {
            assert_eq!(r["seed"], seed);
            assert_eq!(r["steps"], serde_json::json!([6, 6]));
            // The table's numbers are the evaluation's own.
            let name = arm["arm"]["name"].as_str().unwrap();
            let m: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(out.join(format!("{name}/seed-{seed}/eval/metrics.json")))
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                r["log_spectral_distance"],
                m["spectral"]["log_spectral_distance"]
            );
            assert_eq!(r["band_ratio"], m["spectral"]["bands"][2]["ratio"]);
            assert!(r["band_ratio"].as_f64().unwrap() > 0.0);
        }
    }
    // The contrast pairs the seeds: pl − iso per seed, from the same numbers.
    let contrast = &results["contrasts"][0];
    for seed in [0usize, 1] {
        let lsd = |arm: usize| {
            arms[arm]["seeds"][seed]["log_spectral_distance"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(contrast["differences"][seed][0], seed);
        let d = contrast["differences"][seed][1].as_f64().unwrap();
        assert!((d - (lsd(1) - lsd(0))).abs() < 1e-12, "{contrast}");
    }
    assert_eq!(contrast["stats"]["n"], 2);
    assert!(contrast["p_holm"].as_f64().is_some(), "{contrast}");
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(table.contains("| iso | 0 | 2/2 |"), "{table}");
    assert!(
        table.contains("## Paired contrasts") && table.contains("| pl − iso |"),
        "{table}"
    );
    assert!(table.contains("[0.2, 0.3]: "), "{table}");
    // The notched arm evaluates iso's samples with the band filtered out: no training of its
    // own, far less energy in that band than iso's.
    assert!(!out.join("iso-notched/seed-0/run").exists());
    // The half-way arm samples iso's run at its step-3 checkpoint, training nothing itself.
    assert!(!out.join("iso-half/seed-0/run").exists());
    for seed in 0..2 {
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                out.join(format!("iso-half/seed-{seed}/samples/summary.json")),
            )
            .unwrap(),
        )
        .unwrap();
        let checkpoint = summary["source"]["checkpoint"].as_str().unwrap();
        assert!(
            checkpoint.ends_with("step-00000003.safetensors"),
            "{checkpoint}"
        );
    }
    assert!(
        arms[3]["seeds"][0]["log_spectral_distance"]
            .as_f64()
            .is_some()
    );
    for (iso, notched) in arms[0]["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .zip(arms[2]["seeds"].as_array().unwrap())
    {
        let ratio = |r: &serde_json::Value| r["band_ratio"].as_f64().unwrap();
        assert!(ratio(notched) < 0.5 * ratio(iso), "{notched} vs {iso}");
    }
    assert!(
        table.contains("## The data against the reference")
            && table.contains("| train split | 16, 16 |"),
        "{table}"
    );
    assert!(
        results["floors"][0]["result"]["log_spectral_distance"]
            .as_f64()
            .is_some()
    );
    let figure = image::open(out.join("figures/sweep.png")).unwrap();
    assert!(figure.width() > 400 && figure.height() > 200);

    // Seeds give different runs; the same seed the same run whatever the order of work.
    let a = std::fs::read(out.join("pl/seed-0/samples/samples.npy")).unwrap();
    let b = std::fs::read(out.join("pl/seed-1/samples/samples.npy")).unwrap();
    assert_ne!(a, b);

    // --report-only rebuilds the tables from disk and runs nothing; --json prints only JSON
    // (the stages' own summaries stay off stdout).
    std::fs::remove_file(out.join("results.md")).unwrap();
    let o = sagd(&[
        "experiment",
        s(&file),
        "--out",
        s(&out),
        "--report-only",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(printed, results);
    assert_eq!(
        std::fs::read_to_string(out.join("results.md")).unwrap(),
        table
    );
    let o = sagd(&["experiment", s(&file), "--out", s(&out), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(printed, results);
    // A copy of the folder (another name for it) still shows every finished stage: the
    // stages record their paths relative to the folder.
    let copy = dir.path().join("copy");
    let status = std::process::Command::new("cp")
        .args(["-r", s(&out), s(&copy)])
        .status()
        .unwrap();
    assert!(status.success());
    let o = sagd(&["experiment", s(&file), "--out", s(&copy), "--report-only"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let copied = std::fs::read_to_string(copy.join("results.md")).unwrap();
    assert_eq!(
        copied.replace(s(&copy), "OUT"),
        table.replace(s(&out), "OUT"),
        "the copy's table"
    );
    // Another experiment's folder is not overwritten.
    let other = dir.path().join("other.toml");
    std::fs::copy(&file, &other).unwrap();
    let o = sagd(&["experiment", s(&other), "--out", s(&out), "--report-only"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("holds the results of experiment") && text(&o).contains("tiny.toml"),
        "{}",
        text(&o)
    );
    let typo = dir.path().join("typo");
    let o = sagd(&["experiment", s(&file), "--out", s(&typo), "--report-only"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!typo.exists());

    // Settings changed between invocations: outputs made with the old ones are redone, never
    // mixed into the table (N shows what was compared).
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("count = 16", "count = 12");
    std::fs::write(&file, edited).unwrap();
    let o = sagd(&[
        "experiment",
        s(&file),
        "--out",
        s(&out),
        "--only",
        "pl",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(table.contains("| pl | -1 | 2/2 | 12, 12 |"), "{table}");
    // The arm not rerun shows no numbers made with the old settings.
    assert!(table.contains("| iso | 0 | 0/2 | – |"), "{table}");
    let o = sagd(&["experiment", s(&file), "--out", s(&out), "--only", "iso"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("iso seed 0 sample: its output was made with other settings; redone"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_edited_arm_config_is_refused_on_continuation() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path());
    let out = dir.path().join("out");
    let o = sagd(&[
        "experiment",
        s(&file),
        "--out",
        s(&out),
        "--only",
        "iso",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Another length for a finished run: the trainer refuses it, naming the key.
    std::fs::write(
        dir.path().join("arms/iso.toml"),
        arm_config("isotropic").replace("steps = 6", "steps = 9"),
    )
    .unwrap();
    let o = sagd(&[
        "experiment",
        s(&file),
        "--out",
        s(&out),
        "--only",
        "iso",
        "--quiet",
    ]);
    assert!(!o.status.success());
    let message = text(&o);
    assert!(message.contains("iso seed 0"), "{message}");
    assert!(message.contains("steps"), "{message}");
    assert!(message.contains("once the cause is fixed"), "{message}");
}

#[test]
fn bad_experiment_files_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path());
    let good = std::fs::read_to_string(&file).unwrap();
    let out = dir.path().join("out");
    let cases: [(&str, String, &str); 17] = [
        (
            "a step the run writes no checkpoint at",
            good.replace("step = 3", "step = 4"),
            "writes no checkpoint there",
        ),
        (
            "run_of and samples_of together",
            good.replace("run_of = \"iso\"", "run_of = \"iso\"\nsamples_of = \"iso\""),
            "samples_of and run_of both set",
        ),
        (
            "samples of an unknown arm",
            good.replace("samples_of = \"iso\"", "samples_of = \"isox\""),
            "samples_of = `isox` is no arm",
        ),
        (
            "both config and samples_of",
            good.replace(
                "samples_of = \"iso\"",
                "samples_of = \"iso\"\nconfig = \"arms/iso.toml\"",
            ),
            "exactly one",
        ),
        (
            "a bad sample transform",
            good.replace("notch:a=0.2,b=0.3", "notch:a=0.4,b=0.3"),
            "sample_transforms",
        ),
        (
            "an unsafe floor name",
            good.replace("name = \"train\"", "name = \"../train\""),
            "floor name `../train`",
        ),
        (
            "contrast of an unknown arm",
            good.replace("baseline = \"iso\"", "baseline = \"isotropic\""),
            "names arm `isotropic`; expected one of iso, pl",
        ),
        (
            "contrast of an arm with itself",
            good.replace("baseline = \"iso\"", "baseline = \"pl\""),
            "with itself",
        ),
        (
            "band-ratio contrast without the same band",
            good.replacen("band = [0.2, 0.3]", "band = [0.3, 0.4]", 1)
                .replace(
                    "metric = \"log-spectral-distance\"",
                    "metric = \"band-ratio\"",
                ),
            "both arms need the same `band`",
        ),
        (
            "unknown key",
            good.replace("title =", "titel = \"x\"\ntitle ="),
            "titel",
        ),
        (
            "no seeds",
            good.replace("seeds = [0, 1]", "seeds = []"),
            "seeds",
        ),
        (
            "repeated seed",
            good.replace("seeds = [0, 1]", "seeds = [1, 1]"),
            "seed 1 is listed twice",
        ),
        (
            "missing config",
            good.replace("arms/pl.toml", "arms/nope.toml"),
            "nope.toml is not a file",
        ),
        (
            "band not measured",
            good.replacen("band = [0.2, 0.3]", "band = [0.25, 0.3]", 1),
            "not one of the ten bands",
        ),
        (
            "unsafe name",
            good.replace("name = \"pl\"", "name = \"../pl\""),
            "arm name `../pl`",
        ),
        (
            "no eval section",
            good.replace("[eval]", "[evaluation]"),
            "evaluation",
        ),
        (
            "sample count below eval count",
            good.replace(
                "metrics = \"spectral\"",
                "metrics = \"spectral\"\ncount = 17",
            ),
            "[eval] count",
        ),
    ];
    for (what, text_, expected) in cases {
        std::fs::write(&file, &text_).unwrap();
        let o = sagd(&["experiment", s(&file), "--out", s(&out)]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        let message = text(&o);
        assert!(message.contains(expected), "{what}: {message}");
        assert!(message.contains("tiny.toml"), "{what}: {message}");
        assert!(!out.exists(), "{what}: nothing is written");
    }
    // Settings a later stage would refuse are refused up front, not hours into a sweep.
    let later: [(&str, String, &str); 5] = [
        (
            "unknown metric",
            good.replace("metrics = \"spectral\"", "metrics = \"fidd\""),
            "fidd",
        ),
        (
            "unknown sampler",
            good.replace("steps = 5", "steps = 5\nsampler = \"bogus\""),
            "bogus",
        ),
        (
            "bad reference",
            good.replace("reference = \"grf:", "reference = \"nosuch:"),
            "nosuch",
        ),
        (
            "missing reference data",
            good.replace(
                "reference = \"grf:beta=2,size=1x8x8,n=64,seed=4,split=test\"",
                "reference = \"mnist:no/such/mnist,split=test\"",
            ),
            "no/such/mnist does not exist",
        ),
        (
            "missing training data",
            good.replace("arms/pl.toml", "arms/missing-data.toml"),
            "arm `pl`: [data] spec `npy:no/such.npy`: no/such.npy does not exist",
        ),
    ];
    std::fs::write(
        dir.path().join("arms/missing-data.toml"),
        arm_config("isotropic").replace(
            "spec = \"grf:beta=2,size=1x8x8,n=64,seed=3\"",
            "spec = \"npy:no/such.npy\"",
        ),
    )
    .unwrap();
    for (what, text_, expected) in later {
        std::fs::write(&file, &text_).unwrap();
        let o = sagd(&["experiment", s(&file), "--out", s(&out)]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        assert!(text(&o).contains(expected), "{what}: {}", text(&o));
        assert!(!out.exists(), "{what}: nothing is written");
    }
    std::fs::write(&file, &good).unwrap();
    std::fs::write(
        dir.path().join("arms/pl.toml"),
        arm_config("isotropic").replace("steps = 6", "steps = 6\nbogus_key = 1"),
    )
    .unwrap();
    let o = sagd(&["experiment", s(&file), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("arm `pl`"), "{}", text(&o));
    assert!(text(&o).contains("bogus_key"), "{}", text(&o));
    assert!(!out.exists());
    std::fs::write(
        dir.path().join("arms/pl.toml"),
        arm_config("power-law:alpha=-1,eps=0.05"),
    )
    .unwrap();
    let o = sagd(&["experiment", s(&file), "--out", s(&out), "--only", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such arm; the arms are iso, pl"));
    let o = sagd(&["experiment", s(&file), "--out", s(&out), "--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = sagd(&["experiment", s(&dir.path().join("missing.toml"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read experiment"));
}

/// A second trainer on a run in training is refused (exit 2) naming the process, and a lock
/// left by a process that is gone is taken over.
#[test]
fn one_trainer_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(&config, arm_config("isotropic")).unwrap();
    let run = dir.path().join("run");
    let o = sagd(&[
        "train",
        "--config",
        s(&config),
        "--out",
        s(&run),
        "--stop-at",
        "3",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // A live process whose command line holds `train`, as a running `sagd train` has.
    let mut holder = std::process::Command::new("sh")
        .args(["-c", "sleep 30; true", "train"])
        .spawn()
        .unwrap();
    std::fs::write(run.join(".train.lock"), holder.id().to_string()).unwrap();
    let o = sagd(&["train", "--out", s(&run), "--resume", "--quiet"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(&format!("another sagd train (process {})", holder.id())));
    // The holder is gone: its lock is stale and the resume goes ahead.
    let o = sagd(&["train", "--out", s(&run), "--resume", "--quiet"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run.join("checkpoints/step-00000006.safetensors").is_file());
    assert!(!run.join(".train.lock").exists());
}
