//! End-to-end checks of the denoisers and the training loop.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use sagd_core::{Normalization, SpectralCovariance};
use sagd_models::checkpoint::{self, Checkpoint, Group};
use sagd_models::fullbatch::{FullBatchProblem, affine_map};
use sagd_models::nets::{
    CirculantConfig, Conditioning, LinearConfig, MlpConfig, ModelConfig, Net, UnetArch, UnetConfig,
};
use sagd_models::optim::{OptimizerConfig, OptimizerKind};
use sagd_models::{Batch, BatchSource, TrainState};
use sagd_models::{RunConfig, TrainOptions, train};

fn tiny_unet() -> ModelConfig {
    ModelConfig::Unet(UnetConfig::preset(sagd_models::nets::UnetPreset::Tiny))
}

/// A tiny U-Net fitted to one fixed batch of 8 images (fixed levels and noise, the classic
/// overfitting check of capacity, gradients and optimizer together): the loss falls at least
/// tenfold.
#[test]
fn tiny_unet_overfits_eight_images() {
    sagd_ops::link();
    let device = Device::flex();
    let shape = [3, 16, 16];
    let levels = sagd_core::Schedule::ddpm_linear().levels().unwrap();
    let net = Net::build(
        &tiny_unet(),
        shape,
        levels.len(),
        0,
        &device.clone().autodiff(),
    )
    .unwrap();
    if let Net::Unet(_) = &net {
    } else {
        panic!("expected a U-Net");
    }
    let config = RunConfig::from_toml(
        "[data]\nspec = \"shapes:n=8,size=3x16x16,seed=1\"\n",
        Path::new("test"),
    )
    .unwrap();
    let (data, pipeline) = config.data.load().unwrap();
    let spectrum = sagd_core::parse_spectrum("power-law:alpha=-0.5,eps=0.05").unwrap();
    let cov = std::sync::Arc::new(
        SpectralCovariance::new(spectrum.as_ref(), shape, Normalization::Energy).unwrap(),
    );
    let mut source = BatchSource::new(
        data,
        pipeline,
        1,
        levels,
        cov,
        sagd_core::Parameterization::ColouredEps,
    )
    .unwrap();
    let batch: Batch = source.batch(0, 8, &device).unwrap();
    let optimizer = OptimizerConfig {
        lr: 2e-3,
        ..OptimizerConfig::default()
    };
    let mut state = TrainState::new(net, optimizer, 0.99);
    let first = state.step(&batch, 2e-3).unwrap().loss;
    let mut last = first;
    for _ in 0..150 {
        last = state.step(&batch, 2e-3).unwrap().loss;
    }
    assert!(
        last < first / 10.0,
        "loss fell from {first} to {last}, less than tenfold"
    );
}

fn run_config(steps: u64, checkpoint_every: u64) -> RunConfig {
    let text = format!(
        "seed = 5\nsteps = {steps}\nbatch = 4\ncheckpoint_every = {checkpoint_every}\nlog_every = 5\n\
         [data]\nspec = \"shapes:n=32,size=1x8x8,seed=2\"\n\
         [noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
         [model]\nkind = \"mlp\"\ndepth = 2\nwidth = 32\nembedding = 16\n\
         [optimizer]\nlr = 1e-3\nwarmup = 3\n[ema]\ndecay = 0.9\n"
    );
    RunConfig::from_toml(&text, Path::new("test")).unwrap()
}

fn quiet() -> impl FnMut(&sagd_models::Event) {
    |_| {}
}

fn fresh(stop_at: Option<u64>) -> TrainOptions {
    TrainOptions {
        resume: false,
        stop_at,
    }
}

fn resumed(stop_at: Option<u64>) -> TrainOptions {
    TrainOptions {
        resume: true,
        stop_at,
    }
}

/// The rows of `log.csv` without the measured `images_per_sec`.
fn log_rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

fn checkpoint_at(dir: &Path, step: u64) -> Checkpoint {
    Checkpoint::read(&dir.join("checkpoints").join(checkpoint::file_name(step))).unwrap()
}

/// `b` ends where `a` does: the final checkpoint equal in every tensor of every group (weights,
/// Adam's moments, EMA) bit for bit and in its header (step counters, last loss, open log
/// window), the file itself byte for byte, and the same log rows.
fn assert_same_run(a: &Path, b: &Path, step: u64, what: &str) {
    let (x, y) = (checkpoint_at(a, step), checkpoint_at(b, step));
    for group in [Group::Model, Group::AdamM, Group::AdamV, Group::Ema] {
        let (u, v) = (x.group(group), y.group(group));
        assert!(!u.is_empty() && u.len() == v.len(), "{what}: {group:?}");
        for (i, (p, q)) in u.iter().zip(&v).enumerate() {
            let first = p
                .iter()
                .zip(q.iter())
                .position(|(s, t)| s.to_bits() != t.to_bits());
            assert_eq!(first, None, "{what}: {group:?} tensor {i} differs");
        }
    }
    assert_eq!(x.header, y.header, "{what}: headers differ");
    let file = |d: &Path| std::fs::read(d.join("checkpoints").join(checkpoint::file_name(step)));
    assert!(
        file(a).unwrap() == file(b).unwrap(),
        "{what}: checkpoint bytes differ"
    );
    assert_eq!(log_rows(a), log_rows(b), "{what}: log rows differ");
}

/// A run stopped anywhere (in the warm-up, on and off checkpoint and log boundaries, after the
/// warm-up, several times in a row) and resumed ends exactly where the uninterrupted run
/// ends, log rows included; so does one killed after a checkpoint, with rows written past it.
/// The extra checkpoints of `checkpoint_at` change nothing of that.
#[test]
fn stop_anywhere_and_resume_is_the_uninterrupted_run() {
    sagd_ops::link();
    let mut config = run_config(14, 4);
    config.checkpoint_at = vec![6, 1, 13];
    config.keep_checkpoints = 20;
    let straight = tempfile::tempdir().unwrap();
    let summary = train(&config, straight.path(), &fresh(None), &mut quiet()).unwrap();
    assert_eq!((summary.step, summary.total, summary.ran), (14, 14, 14));
    assert!(summary.complete() && summary.last_loss.is_some());
    // log_every = 5 and the last step: rows at 5, 10, 14.
    let steps: Vec<String> = log_rows(straight.path())
        .iter()
        .skip(1)
        .map(|r| r.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["5", "10", "14"]);

    for stops in [
        &[1][..],
        &[3],
        &[4],
        &[5],
        &[6],
        &[9],
        &[13],
        &[2, 7, 11],
        &[5, 8, 10],
    ] {
        let split = tempfile::tempdir().unwrap();
        for (i, &stop) in stops.iter().enumerate() {
            let options = if i == 0 {
                fresh(Some(stop))
            } else {
                resumed(Some(stop))
            };
            let s = train(&config, split.path(), &options, &mut quiet()).unwrap();
            assert_eq!((s.step, s.complete()), (stop, false), "{stops:?}");
            assert_eq!(
                s.ran,
                stop - if i == 0 { 0 } else { stops[i - 1] },
                "{stops:?}"
            );
        }
        let s = train(&config, split.path(), &resumed(None), &mut quiet()).unwrap();
        assert_eq!((s.step, s.ran), (14, 14 - stops[stops.len() - 1]));
        assert_same_run(
            straight.path(),
            split.path(),
            14,
            &format!("stops {stops:?}"),
        );
    }

    // A kill after step 11 leaves the checkpoint of step 8 (its log window holds steps 6–8)
    // and a log with the row of step 10 past it: the uninterrupted run's config and log (rows
    // 5, 10, 14) beside its step-8 checkpoint stand in for that.
    let killed = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.join("checkpoints")).unwrap();
        for name in ["config.toml", "log.csv"] {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    };
    copy(straight.path(), killed.path());
    let eight = checkpoint::file_name(8);
    std::fs::copy(
        straight.path().join("checkpoints").join(&eight),
        killed.path().join("checkpoints").join(&eight),
    )
    .unwrap();
    let s = train(&config, killed.path(), &resumed(None), &mut quiet()).unwrap();
    assert_eq!((s.step, s.ran), (14, 6));
    assert_same_run(
        straight.path(),
        killed.path(),
        14,
        "kill after a checkpoint",
    );

    // Resuming a complete run runs nothing and reports the run as it is.
    let s = train(&config, straight.path(), &resumed(None), &mut quiet()).unwrap();
    assert_eq!((s.step, s.ran, s.last_loss), (14, 0, summary.last_loss));
}

/// `checkpoint_at` adds checkpoints at its steps (a set) to those every `checkpoint_every`
/// steps and at the last, `keep_checkpoints` still prunes them, an entry outside `1..=steps`
/// is refused naming the key, the value and the range, and the key may change on resume
/// without changing the trajectory.
#[test]
fn checkpoint_at_adds_checkpoints() {
    sagd_ops::link();
    let kept = |dir: &Path| -> Vec<u64> {
        checkpoint::list(&dir.join("checkpoints"))
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };
    let mut config = run_config(14, 10);
    config.checkpoint_at = vec![3, 1, 3, 12, 10];
    config.keep_checkpoints = 50;
    let all = tempfile::tempdir().unwrap();
    train(&config, all.path(), &fresh(None), &mut quiet()).unwrap();
    assert_eq!(kept(all.path()), [1, 3, 10, 12, 14]);
    // Pruning still keeps the newest `keep_checkpoints`.
    let mut pruned = config.clone();
    pruned.keep_checkpoints = 2;
    let few = tempfile::tempdir().unwrap();
    train(&pruned, few.path(), &fresh(None), &mut quiet()).unwrap();
    assert_eq!(kept(few.path()), [12, 14]);
    // Out of range: refused by the config's own check, naming the key, value and range.
    for bad in [0, 15] {
        let text = format!(
            "steps = 14\ncheckpoint_at = [1, {bad}]\n[data]\nspec = \"shapes:n=8,size=1x8x8\"\n"
        );
        let e = RunConfig::from_toml(&text, Path::new("run.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("checkpoint_at") && e.contains(&bad.to_string()) && e.contains("1..=14"),
            "{e}"
        );
    }
    // A reporting key: a resume may change it, and the weights end the same.
    let split = tempfile::tempdir().unwrap();
    train(&config, split.path(), &fresh(Some(5)), &mut quiet()).unwrap();
    let mut other = config.clone();
    other.checkpoint_at = vec![7];
    train(&other, split.path(), &resumed(None), &mut quiet()).unwrap();
    assert_eq!(kept(split.path()), [1, 3, 5, 7, 10, 14]);
    let (x, y) = (
        checkpoint_at(all.path(), 14),
        checkpoint_at(split.path(), 14),
    );
    for group in [Group::Model, Group::AdamM, Group::AdamV, Group::Ema] {
        let bits = |c: &Checkpoint| -> Vec<u32> {
            c.group(group)
                .iter()
                .flat_map(|v| v.iter().map(|f| f.to_bits()))
                .collect()
        };
        assert_eq!(bits(&x), bits(&y), "{group:?}");
    }
}

/// The learning rates a run logs follow the configured total whatever the stops: lr at the
/// first step, in the warm-up, in the middle and at the last step against the closed form.
#[test]
fn logged_learning_rates_follow_the_configured_total() {
    sagd_ops::link();
    let mut config = run_config(12, 4);
    config.log_every = 1;
    let dir = tempfile::tempdir().unwrap();
    // A stop after the middle of the decay: the steps before it must not see it.
    train(&config, dir.path(), &fresh(Some(9)), &mut quiet()).unwrap();
    train(&config, dir.path(), &resumed(None), &mut quiet()).unwrap();
    let lr: Vec<f64> = log_rows(dir.path())
        .iter()
        .skip(1)
        .map(|r| r.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lr.len(), 12);
    // lr 1e-3, warm-up 3, min_lr 0: 1e-3·(s+1)/3 for s < 3, then ½·1e-3·(1 + cos(π(s−3)/8)).
    let closed = |s: usize| {
        if s < 3 {
            1e-3 * (s + 1) as f64 / 3.0
        } else {
            0.5e-3 * (1.0 + (std::f64::consts::PI * (s - 3) as f64 / 8.0).cos())
        }
    };
    for s in [0, 1, 3, 5, 7, 11] {
        // The log prints 7 significant digits.
        assert!(
            (lr[s] - closed(s)).abs() <= 1e-6 * closed(s).max(1e-12),
            "step {}: {} vs {}",
            s + 1,
            lr[s],
            closed(s)
        );
    }
    assert_eq!(
        lr[11], 0.0,
        "the cosine ends at min_lr = 0 at the last step"
    );
}

/// What a resume may not do is refused before anything in the run directory changes: a stop
/// at or before the checkpoint, a stop past the run's end, a new length, a changed setting,
/// a fresh start over an existing run. Resuming a complete run changes nothing either.
#[test]
fn refused_resumes_leave_every_file_unchanged() {
    sagd_ops::link();
    let config = run_config(8, 4);
    let dir = tempfile::tempdir().unwrap();
    train(&config, dir.path(), &fresh(Some(6)), &mut quiet()).unwrap();
    // What a kill in the middle of a checkpoint write leaves: a torn temporary file of a
    // process that is gone (a refusal must leave it too; a real resume clears it).
    let torn = dir
        .path()
        .join("checkpoints")
        .join(".step-00000007.safetensors.999999999-0.tmp");
    std::fs::write(&torn, b"SAGDCKPT torn").unwrap();
    let snapshot = |d: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for sub in [d.to_path_buf(), d.join("checkpoints")] {
            for e in std::fs::read_dir(sub).unwrap().flatten() {
                if e.path().is_file() {
                    files.push((
                        e.path().display().to_string(),
                        std::fs::read(e.path()).unwrap(),
                    ));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(dir.path());
    let mut longer = config.clone();
    longer.steps = 10;
    let mut other_lr = config.clone();
    other_lr.optimizer.lr = 5e-3;
    for (c, options, needle) in [
        (&config, resumed(Some(6)), "--stop-at 6"),
        (&config, resumed(Some(3)), "--stop-at 3"),
        (&config, resumed(Some(9)), "steps = 8"),
        (&longer, resumed(None), "`steps` = 10"),
        (&other_lr, resumed(None), "optimizer.lr"),
        (&config, fresh(None), "--resume"),
    ] {
        let e = train(c, dir.path(), &options, &mut quiet()).unwrap_err();
        assert!(e.is_usage(), "{e}");
        let e = e.to_string();
        assert!(e.contains(needle), "{needle}: {e}");
        assert!(
            snapshot(dir.path()) == before,
            "{needle}: the run directory changed"
        );
    }
    // The run completes, then a resume has nothing to do and writes nothing.
    train(&config, dir.path(), &resumed(None), &mut quiet()).unwrap();
    assert!(
        !torn.exists(),
        "the torn temporary file is cleared on a real resume"
    );
    let done = snapshot(dir.path());
    let s = train(&config, dir.path(), &resumed(None), &mut quiet()).unwrap();
    assert_eq!((s.step, s.ran), (8, 0));
    assert!(snapshot(dir.path()) == done);
    // A new run refused for its stop leaves no directory behind.
    let none = dir.path().join("never");
    assert!(train(&config, &none, &fresh(Some(0)), &mut quiet()).is_err());
    assert!(!none.exists());
}

/// A truncated checkpoint stops `--resume` with a message naming the file and the problem; a
/// checkpoint of another architecture is refused tensor by tensor.
#[test]
fn bad_checkpoints_are_refused() {
    sagd_ops::link();
    let dir = tempfile::tempdir().unwrap();
    let quiet = &mut |_: &sagd_models::Event| {};
    train(
        &run_config(10, 10),
        dir.path(),
        &TrainOptions::default(),
        quiet,
    )
    .unwrap();
    let path = dir
        .path()
        .join("checkpoints")
        .join(checkpoint::file_name(10));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = train(
        &run_config(20, 10),
        dir.path(),
        &TrainOptions {
            resume: true,
            stop_at: None,
        },
        quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("truncated") && e.contains("step-00000010.safetensors"),
        "{e}"
    );

    std::fs::write(&path, &bytes).unwrap();
    let ckpt = Checkpoint::read(&path).unwrap();
    let other = Net::build(
        &ModelConfig::Mlp(MlpConfig {
            depth: 3,
            width: 32,
            embedding: 16,
        }),
        [1, 8, 8],
        1000,
        0,
        &Device::flex(),
    )
    .unwrap();
    let e = ckpt
        .check_group(
            &path,
            Group::Model,
            &sagd_models::params::param_infos(&other),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit the model"), "{e}");

    // A checkpoint renamed to another step, or one copied in from another run, is refused
    // naming the file, not blamed on the config.
    let renamed = dir
        .path()
        .join("checkpoints")
        .join(checkpoint::file_name(12));
    std::fs::rename(&path, &renamed).unwrap();
    let e = train(&run_config(20, 10), dir.path(), &resumed(None), quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("step-00000012.safetensors") && e.contains("records step 10"),
        "{e}"
    );
    std::fs::remove_file(&renamed).unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut seed9 = run_config(10, 10);
    seed9.seed = 9;
    train(&seed9, other.path(), &TrainOptions::default(), quiet).unwrap();
    std::fs::copy(
        other
            .path()
            .join("checkpoints")
            .join(checkpoint::file_name(10)),
        &path,
    )
    .unwrap();
    let e = train(&run_config(20, 10), dir.path(), &resumed(None), quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("step-00000010.safetensors")
            && e.contains("does not belong to the run")
            && e.contains("`seed` = 9"),
        "{e}"
    );
}

/// The Fourier-mode gains `ψ_k = Re(u_kᴴ W u_k)` of a 1-channel `h×w` map.
fn mode_gains(w: &[f32], h: usize, wd: usize) -> Vec<f64> {
    let n = h * wd;
    let mut gains = Vec::with_capacity(n);
    for ky in 0..h {
        for kx in 0..wd {
            let phase = |p: usize| {
                let (y, x) = (p / wd, p % wd);
                2.0 * std::f64::consts::PI
                    * ((ky * y) as f64 / h as f64 + (kx * x) as f64 / wd as f64)
            };
            let mut re = 0.0;
            for i in 0..n {
                let pi = phase(i);
                for j in 0..n {
                    // u_kᴴ W u_k = (1/N) Σ_ij e^{-iφ_i} W_ij e^{iφ_j}
                    re += w[i * n + j] as f64 * (phase(j) - pi).cos();
                }
            }
            gains.push(re / n as f64);
        }
    }
    gains
}

/// Trains the per-level `kind` map by full-batch gradient descent at one σ on GRF data and
/// returns (trained gains, ψ* from the true mode variances).
fn full_batch_gains(kind: ModelConfig, spectrum: &str, sigma: f64) -> (Vec<f64>, Vec<f64>) {
    sagd_ops::link();
    let (h, w) = (8, 8);
    let n = 1 << 18;
    let grf = sagd_datasets::synthetic::grf::GrfConfig {
        beta: 2.0,
        r0: 0.05,
        scale: 1.0,
        size: [1, h, w],
        n,
        seed: 11,
    };
    let data = grf.generate().unwrap();
    let lambda = grf.mode_variances();
    let values = data.to_f32();
    let spec = sagd_core::parse_spectrum(spectrum).unwrap();
    let cov = SpectralCovariance::new(spec.as_ref(), [1, h, w], Normalization::Energy).unwrap();
    let power = cov.power();
    let device = Device::flex();
    let problem = FullBatchProblem::new(&values, n, &cov, &device).unwrap();
    let target: Vec<f64> = lambda
        .iter()
        .zip(&power)
        .map(|(l, p)| l / (l + sigma * sigma * p))
        .collect();
    // Gradient descent contracts mode k by 1 - 2η(λ_k + σ²w_k) per step: take η at 0.9 of
    // the stability limit and enough steps for the slowest mode to shrink its error by 1e6.
    let rates: Vec<f64> = lambda
        .iter()
        .zip(&power)
        .map(|(l, p)| l + sigma * sigma * p)
        .collect();
    let fastest = rates.iter().cloned().fold(0.0, f64::max);
    let slowest = rates.iter().cloned().fold(f64::INFINITY, f64::min);
    // A circulant map's gains move N times faster than its kernel entries (DESIGN.md §1).
    let speedup = match kind {
        ModelConfig::Circulant(_) => (h * w) as f64,
        _ => 1.0,
    };
    let lr = 0.45 / (fastest * speedup);
    let steps = ((1e6f64).ln() / (2.0 * lr * speedup * slowest)).ceil() as usize;
    assert!(
        steps < 20_000,
        "{steps} steps: the problem is too ill-conditioned for a test"
    );
    let net = Net::build(&kind, [1, h, w], 1, 0, &device.clone().autodiff()).unwrap();
    let config = OptimizerConfig {
        kind: OptimizerKind::Sgd,
        lr,
        grad_clip: 0.0,
        ..OptimizerConfig::default()
    };
    let mut state = TrainState::new(net, config.clone(), 0.0);
    for _ in 0..steps {
        let loss = problem.loss(&state.net, 0, sigma).unwrap();
        let grads = loss.backward();
        let g = sagd_models::optim::collect_grads(&state.net, &grads);
        let net = state.net.clone();
        state.net =
            sagd_models::optim::apply_update(net, g, &config, &mut state.optimizer, lr, 1.0);
    }
    let (wm, _) = affine_map(&state.net, 0, &device).unwrap();
    let wv = wm.into_data().try_into_vec::<f32>().unwrap();
    (mode_gains(&wv, h, w), target)
}

fn assert_within(gains: &[f64], target: &[f64], tol: f64, what: &str) {
    for (k, (g, t)) in gains.iter().zip(target).enumerate() {
        let rel = (g - t).abs() / t;
        assert!(
            rel < tol,
            "{what}: mode {k}: ψ = {g}, ψ* = {t} ({:.3}% off)",
            100.0 * rel
        );
    }
}

/// The `linear` denoiser trained by full-batch gradient descent at fixed σ converges, per
/// Fourier mode, to ψ* = λ/(λ + σ²w) within 1% — isotropic and power-law noise. With 2^18
/// images the sample mode variances are within ~0.3% (one sd) of λ, and ψ inherits at most
/// (1-ψ) of that, so 1% is four standard deviations for the worst of the 64 modes.
#[test]
fn linear_full_batch_converges_to_psi_star() {
    for spectrum in ["isotropic", "power-law:alpha=-1,eps=0.1"] {
        let (gains, target) = full_batch_gains(
            ModelConfig::Linear(LinearConfig { init_gain: 0.0 }),
            spectrum,
            1.0,
        );
        assert_within(&gains, &target, 0.01, spectrum);
    }
}

/// The same for the `circulant` denoiser, whose gains are exactly per mode.
#[test]
fn circulant_full_batch_converges_to_psi_star() {
    let (gains, target) = full_batch_gains(
        ModelConfig::Circulant(CirculantConfig { init_gain: 0.0 }),
        "power-law:alpha=1",
        0.5,
    );
    assert_within(&gains, &target, 0.01, "circulant");
}

/// The linear and circulant networks compute their maps: a forward pass equals `W x + b`
/// from [`affine_map`].
#[test]
fn forward_matches_the_affine_map() {
    let device = Device::flex();
    let shape = [2, 4, 4];
    for kind in [
        ModelConfig::Linear(LinearConfig { init_gain: 0.3 }),
        ModelConfig::Circulant(CirculantConfig { init_gain: 0.3 }),
    ] {
        let net = Net::build(&kind, shape, 3, 0, &device).unwrap();
        // Perturb the parameters so the map is not diagonal.
        let infos = sagd_models::params::param_infos(&net);
        let values: Vec<Tensor<1>> = infos
            .iter()
            .enumerate()
            .map(|(p, i)| {
                let v: Vec<f32> = (0..i.len())
                    .map(|k| ((k * 7 + p * 3) % 11) as f32 / 11.0 - 0.4)
                    .collect();
                Tensor::from_data(TensorData::new(v, [i.len()]), &device)
            })
            .collect();
        let net = sagd_models::params::replace_params(net, &values, false);
        let x: Vec<f32> = (0..2 * 32)
            .map(|k| ((k * 5) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 2, 4, 4]), &device);
        let out = net
            .forward(xt, &Conditioning::new(vec![2, 1], 3))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for (b, level) in [(0usize, 2usize), (1, 1)] {
            let (w, bias) = affine_map(&net, level, &device).unwrap();
            let w = w.into_data().try_into_vec::<f32>().unwrap();
            let bias = bias.into_data().try_into_vec::<f32>().unwrap();
            for i in 0..32 {
                let expect: f32 =
                    (0..32).map(|j| w[i * 32 + j] * x[b * 32 + j]).sum::<f32>() + bias[i];
                assert!(
                    (out[b * 32 + i] - expect).abs() < 1e-4,
                    "{kind:?} sample {b} pixel {i}"
                );
            }
        }
    }
}

/// The paper preset has about 16 M parameters and the tiny one 1–2 M (at 32×32, RGB).
#[test]
fn unet_presets_have_the_documented_sizes() {
    let device = Device::flex();
    for (arch, lo, hi) in [
        (UnetArch::tiny(), 1.0e6, 2.0e6),
        (UnetArch::paper(), 14e6, 18e6),
    ] {
        let config = ModelConfig::Unet(UnetConfig {
            preset: None,
            widths: Some(arch.widths.clone()),
            blocks: Some(arch.blocks),
            attention: Some(arch.attention.clone()),
            groups: Some(arch.groups),
        });
        let net = Net::build(&config, [3, 32, 32], 1000, 0, &device).unwrap();
        let n: usize = sagd_models::params::param_infos(&net)
            .iter()
            .map(|i| i.len())
            .sum();
        assert!((lo..hi).contains(&(n as f64)), "{arch:?}: {n} parameters");
    }
}

/// A diverging run (an absurd learning rate, no clipping) stops at the first non-finite loss,
/// naming the first bad step and the weights behind it. The checkpoint of step 1 holds finite
/// weights, but they already give the infinite loss of step 2: it is not called good, and with
/// no good checkpoint the message says so and suggests a lower learning rate.
#[test]
fn non_finite_loss_names_the_first_bad_step_and_calls_no_bad_checkpoint_good() {
    sagd_ops::link();
    let dir = tempfile::tempdir().unwrap();
    let mut config = run_config(50, 1);
    config.optimizer.lr = 1e30;
    config.optimizer.warmup = 0;
    config.optimizer.grad_clip = 0.0;
    let quiet = &mut |_: &sagd_models::Event| {};
    let e = train(&config, dir.path(), &TrainOptions::default(), quiet).unwrap_err();
    let message = e.to_string();
    let sagd_models::ModelError::NonFinite(stop) = e else {
        panic!("expected a non-finite stop, got: {message}");
    };
    let step1 = checkpoint_at(dir.path(), 1);
    assert!(
        step1
            .group(Group::Model)
            .iter()
            .all(|v| v.iter().all(|x| x.is_finite()))
    );
    assert_eq!(
        (stop.step, stop.what, stop.first_bad_step()),
        (2, "loss", 2),
        "{message}"
    );
    assert_eq!(stop.last_good, None, "{message}");
    assert!(
        message.starts_with(
            "training stopped at step 2: the loss is inf, computed with the weights of step 1, \
             which are finite but reach |w| = "
        ) && message.contains("step 2 is the first bad step")
            && message.ends_with(
                "there is no good checkpoint (none was saved before step 1, and the weights of \
                 step 1 already give a loss of inf); try a lower learning rate than \
                 optimizer.lr = 1e30"
            ),
        "{message}"
    );
}

/// The full config example in README.md parses and validates, so the documentation cannot drift
/// from the schema.
#[test]
fn readme_config_example_is_valid() {
    sagd_ops::link();
    let readme = include_str!("../../../README.md");
    let section = &readme[readme.find("### Training").expect("a Training section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &section[start..];
    let block = &block[..block.find("```").expect("the block ends")];
    let config = RunConfig::from_toml(block, Path::new("README.md")).unwrap();
    assert_eq!(config.model.kind(), "unet");
    assert_eq!(
        config.noise.spectrum.text(),
        "power-law:alpha=-0.5,eps=0.05"
    );
    // And every ready config in experiments/.
    for name in [
        "shapes-tiny-isotropic",
        "shapes-tiny-powerlaw",
        "mnist32-unet",
        "grf-mlp-emergence",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../experiments")
            .join(format!("{name}.toml"));
        RunConfig::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// With a band gap in `Σ_w`, the denoiser's `ε̂^(w)` is the network's prediction (converted)
/// projected onto the support: nothing off it (the gap holds < 1e-6 of the energy of an
/// unprojected untrained prediction, which spreads over every mode), the support part
/// unchanged (to f32 round-off of two FFTs), and for a full-support spectrum nothing changes.
#[test]
fn predictions_are_projected_onto_the_support_of_a_band_gap() {
    use sagd_core::{DynShape, Images, NoiseLevel, Parameterized, ScoreParameterization};
    use sagd_models::{Denoiser, TrainedDenoiser};
    sagd_ops::link();
    let device = Device::flex();
    let toml = |spectrum: &str| {
        format!(
            "parameterization = \"v\"\n[data]\nspec = \"shapes:n=8,size=1x16x16\"\n\
             [noise]\nspectrum = \"{spectrum}\"\n\
             [model]\nkind = \"unet\"\nwidths = [8, 16]\nblocks = 1\nattention = []\ngroups = 4\n"
        )
    };
    let shape = DynShape::new(1, 16, 16);
    let x: Vec<f32> = (0..4 * 256)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let x_t = Images::from_host(x, shape, &device).unwrap();
    let t = 500;
    for (spectrum, gap) in [
        ("two-band:a_l=0,b_l=0.3,a_h=0.4,b_h=1", true),
        ("isotropic", false),
    ] {
        let config = RunConfig::from_toml(&toml(spectrum), Path::new("test")).unwrap();
        let levels = config.schedule.levels().unwrap();
        let net = Net::build(&config.model, [1, 16, 16], levels.len(), 3, &device).unwrap();
        let denoiser = TrainedDenoiser::new(net, config, shape).unwrap();
        let eps = denoiser.predict_eps(&x_t, t).unwrap().to_host();
        // The same conversion without the projection, by hand.
        let raw = denoiser.predict(&x_t, &[t; 4]).unwrap();
        let level: NoiseLevel = levels[t];
        let cov = denoiser.covariance().clone();
        let bound = Parameterized::new(
            denoiser.parameterization(),
            denoiser.noise().covariance_arc(),
        );
        let unprojected = bound.to_coloured_eps(&raw, &x_t, level).unwrap().to_host();
        let energy = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>();
        if gap {
            let mut off = eps.clone();
            cov.project_complement(&mut off).unwrap();
            let mut raw_off = unprojected.clone();
            cov.project_complement(&mut raw_off).unwrap();
            assert!(
                energy(&raw_off) > 1e-3 * energy(&unprojected),
                "the test needs off-support content"
            );
            assert!(
                energy(&off) < 1e-6 * energy(&raw_off),
                "{} left off the support",
                energy(&off)
            );
            let mut on = unprojected.clone();
            cov.project(&mut on).unwrap();
            let worst = on
                .iter()
                .zip(&eps)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-5, "support part changed by {worst}");
        } else {
            assert_eq!(eps, unprojected, "a full support is left alone");
        }
    }
}
