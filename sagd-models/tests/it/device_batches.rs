//! Batches drawn on the device (`[noise] draw = "device"`) against the host path and the
//! forward process, on the CPU backend.

use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor};
use sagd_core::{NoiseLevel, Normalization, Parameterization, Schedule, SpectralCovariance};
use sagd_models::checkpoint::{self, Checkpoint};
use sagd_models::{Batch, BatchSource};
use sagd_models::{RunConfig, TrainOptions, train};

/// The device generator is seeded globally (burn's `Device::seed`): tests that draw hold this.
static DEVICE_RNG: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// A source over `spec` through `transforms`, on the device or not.
fn source(
    spec: &str,
    transforms: &[&str],
    parameterization: Parameterization,
    device: Option<&Device>,
) -> (BatchSource, Vec<NoiseLevel>, Arc<SpectralCovariance>) {
    sagd_ops::link();
    let quoted: Vec<String> = transforms.iter().map(|t| format!("\"{t}\"")).collect();
    let config = RunConfig::from_toml(
        &format!(
            "[data]\nspec = \"{spec}\"\ntransforms = [{}]\n",
            quoted.join(", ")
        ),
        Path::new("test"),
    )
    .unwrap();
    let (data, pipeline) = config.data.load().unwrap();
    let shape = pipeline.output_shape(data.shape()).unwrap();
    let spectrum = sagd_core::parse_spectrum("power-law:alpha=-0.5,eps=0.05").unwrap();
    let cov =
        Arc::new(SpectralCovariance::new(spectrum.as_ref(), shape, Normalization::Energy).unwrap());
    let levels = Schedule::ddpm_linear().levels().unwrap();
    let mut source = BatchSource::new(
        data,
        pipeline,
        3,
        levels.clone(),
        cov.clone(),
        parameterization,
    )
    .unwrap();
    if let Some(device) = device {
        source = source.on_device(device, u64::MAX).unwrap();
    }
    (source, levels, cov)
}

fn batch(source: &mut BatchSource, step: u64) -> Batch {
    source.batch(step, 6, &Device::flex()).unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}: index {i}: {x} against {y}");
    }
}

/// Without random transforms both paths pick the same images: the x0 targets agree exactly,
/// through pad, crop and scale of 8-bit data as well; with `hflip:1` every image is flipped on
/// both paths.
#[test]
fn device_images_are_the_host_images() {
    let _guard = lock();
    let device = Device::flex();
    for (spec, transforms) in [
        ("shapes:n=20,size=3x8x8,seed=2", vec![]),
        ("shapes:n=20,size=1x10x10,seed=4", vec!["pad:1", "crop:8x8"]),
        ("shapes:n=20,size=3x8x8,seed=2", vec!["hflip:1"]),
    ] {
        let (mut on_host, _, _) = source(spec, &transforms, Parameterization::X0, None);
        let (mut on_device, _, _) = source(spec, &transforms, Parameterization::X0, Some(&device));
        assert!(on_device.is_on_device() && !on_host.is_on_device());
        for step in [0, 1, 5] {
            let (a, b) = (batch(&mut on_host, step), batch(&mut on_device, step));
            assert_eq!(
                host(a.target),
                host(b.target),
                "{spec} {transforms:?} step {step}"
            );
        }
    }
}

/// On the device, `x_t = √ᾱ x0 + σ ε` holds image by image with the levels the batch reports,
/// every parameterization's target is the host conversion of the same ε, and the same step
/// draws the same batch twice.
#[test]
fn device_targets_follow_the_forward_process() {
    let _guard = lock();
    let device = Device::flex();
    let spec = "shapes:n=20,size=3x8x8,seed=2";
    let make = |p| source(spec, &["hflip:0.5"], p, Some(&device));
    let (mut eps_source, levels, cov) = make(Parameterization::ColouredEps);
    let (mut x0_source, _, _) = make(Parameterization::X0);
    let dim = 3 * 8 * 8;
    for step in [0u64, 2, 9] {
        let eps_batch = batch(&mut eps_source, step);
        let x0_batch = batch(&mut x0_source, step);
        assert_eq!(eps_batch.cond.index, x0_batch.cond.index, "same levels");
        let x_t = host(eps_batch.x_t.clone());
        assert_eq!(
            x_t,
            host(x0_batch.x_t.clone()),
            "same draws for the same step"
        );
        let eps = host(eps_batch.target.clone());
        let x0 = host(x0_batch.target.clone());
        for (b, &t) in eps_batch.cond.index.iter().enumerate() {
            let (a, s) = (levels[t].scale() as f32, levels[t].sigma as f32);
            let r = b * dim..(b + 1) * dim;
            let expected: Vec<f32> = r.clone().map(|i| a * x0[i] + s * eps[i]).collect();
            assert_close(&x_t[r], &expected, 1e-5, "x_t = a x0 + s eps");
        }
        let again = batch(&mut eps_source, step);
        assert_eq!(host(again.x_t), x_t, "step {step} drawn twice");

        for p in [
            Parameterization::V,
            Parameterization::WhitenedEps,
            Parameterization::Score,
        ] {
            let (mut other, _, _) = make(p);
            let target = host(batch(&mut other, step).target);
            for (b, &t) in eps_batch.cond.index.iter().enumerate() {
                let r = b * dim..(b + 1) * dim;
                let expected = p
                    .from_coloured_eps(&eps[r.clone()], &x_t[r.clone()], levels[t], &cov)
                    .unwrap();
                let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                // f32 DFT products and the V/x0 identities: a few 1e-6 of the largest value.
                assert_close(&target[r], &expected, 2e-5 * scale, &format!("{p:?}"));
            }
        }
    }
}

/// A dataset over the resident limit stays on the host and each step uploads its images: the
/// batches (flips, corruption, noise, targets) are the resident ones, bit for bit, and a limit
/// of exactly the images' size keeps them resident.
#[test]
fn streamed_images_draw_the_resident_batches() {
    let _guard = lock();
    let device = Device::flex();
    let spec = "shapes:n=20,size=1x10x10,seed=4";
    let transforms = ["pad:1", "crop:8x8", "hflip:0.5", "corrupt:a=0.3,b=0.5"];
    let images_bytes = 20 * 8 * 8 * 4;
    let make = |limit: u64| {
        let (source, _, _) = source(spec, &transforms, Parameterization::V, None);
        source.on_device(&device, limit).unwrap()
    };
    let (mut resident, mut streamed) = (make(images_bytes), make(images_bytes - 1));
    assert!(resident.is_resident() && !streamed.is_resident() && streamed.is_on_device());
    for step in [0u64, 3, 7] {
        let (a, b) = (batch(&mut resident, step), batch(&mut streamed, step));
        assert_eq!(a.cond.index, b.cond.index, "step {step}: levels");
        assert_eq!(host(a.x_t), host(b.x_t), "step {step}: x_t");
        assert_eq!(host(a.target), host(b.target), "step {step}: target");
    }
}

/// A random transform before a deterministic one cannot run on the device: refused naming both.
#[test]
fn device_draws_refuse_a_reordered_pipeline() {
    sagd_ops::link();
    let config = RunConfig::from_toml(
        "[data]\nspec = \"shapes:n=8,size=1x8x8\"\ntransforms = [\"hflip:0.5\", \"pad:2\"]\n",
        Path::new("test"),
    )
    .unwrap();
    let (data, pipeline) = config.data.load().unwrap();
    let cov = Arc::new(
        SpectralCovariance::new(
            sagd_core::parse_spectrum("isotropic").unwrap().as_ref(),
            [1, 12, 12],
            Normalization::Energy,
        )
        .unwrap(),
    );
    let err = BatchSource::new(
        data,
        pipeline,
        0,
        Schedule::ddpm_linear().levels().unwrap(),
        cov,
        Parameterization::ColouredEps,
    )
    .unwrap()
    .on_device(&Device::flex(), u64::MAX)
    .err()
    .unwrap()
    .to_string();
    for part in ["noise.draw", "pad:2", "hflip:0.5", "draw = \"host\""] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
}

/// `draw = "device"` trains, and a run stopped and resumed on the device path ends where the
/// uninterrupted one does, bit for bit.
#[test]
fn device_draw_runs_resume_exactly() {
    let _guard = lock();
    sagd_ops::link();
    let config = RunConfig::from_toml(
        "seed = 5\nsteps = 8\nbatch = 4\ncheckpoint_every = 4\nlog_every = 2\n\
         [data]\nspec = \"shapes:n=32,size=1x8x8,seed=2\"\ntransforms = [\"hflip:0.5\", \"corrupt:a=0.5,b=1,gamma=0.1\"]\n\
         [noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\ndraw = \"device\"\n\
         [model]\nkind = \"mlp\"\ndepth = 1\nwidth = 32\nembedding = 16\n\
         [optimizer]\nlr = 1e-3\nwarmup = 2\n[ema]\ndecay = 0.9\n",
        Path::new("test"),
    )
    .unwrap();
    let quiet = |_: &sagd_models::Event| {};
    let straight = tempfile::tempdir().unwrap();
    let s = train(&config, straight.path(), &TrainOptions::default(), &mut {
        quiet
    })
    .unwrap();
    assert!(s.complete() && s.last_loss.is_some_and(f64::is_finite));
    let split = tempfile::tempdir().unwrap();
    let first = TrainOptions {
        resume: false,
        stop_at: Some(3),
    };
    train(&config, split.path(), &first, &mut { quiet }).unwrap();
    let rest = TrainOptions {
        resume: true,
        stop_at: None,
    };
    train(&config, split.path(), &rest, &mut { quiet }).unwrap();
    let read =
        |d: &Path| std::fs::read(d.join("checkpoints").join(checkpoint::file_name(8))).unwrap();
    assert!(
        read(straight.path()) == read(split.path()),
        "checkpoints differ"
    );
    let ckpt = Checkpoint::read(
        &straight
            .path()
            .join("checkpoints")
            .join(checkpoint::file_name(8)),
    )
    .unwrap();
    assert!(ckpt.header.config.contains("draw = \"device\""));
}
