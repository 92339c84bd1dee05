//! What a run refuses or warns about before it trains, and what it refuses to load: a U-Net
//! whose GroupNorm groups hold one value, data far from the noise's scale, a checkpoint with
//! non-finite weights.

use std::path::Path;

use burn::tensor::Device;
use sagd_core::Schedule;
use sagd_models::checkpoint::{self, Checkpoint, Group};
use sagd_models::train::data_scale_warning;
use sagd_models::{Event, ModelError, RunConfig, TrainOptions, TrainedDenoiser, train};

fn config(data: &str, model: &str) -> RunConfig {
    sagd_ops::link();
    let text = format!(
        "seed = 1\nsteps = 4\nbatch = 4\ncheckpoint_every = 2\nlog_every = 2\n\
         [data]\nspec = \"{data}\"\n\
         [noise]\nspectrum = \"power-law:alpha=-0.5,eps=0.05\"\n\
         [model]\n{model}\n\
         [optimizer]\nlr = 1e-3\nwarmup = 1\n"
    );
    RunConfig::from_toml(&text, Path::new("test")).unwrap()
}

const MLP: &str = "kind = \"mlp\"\ndepth = 1\nwidth = 16\nembedding = 8";

/// The warnings of a run of `config` stopped after its first step (its outcome aside).
fn warnings(config: &RunConfig) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let options = TrainOptions {
        resume: false,
        stop_at: Some(1),
    };
    let _ = train(config, dir.path(), &options, &mut |e: &Event| {
        if let Event::Warning(w) = e {
            seen.push(w.clone());
        }
    });
    seen
}

/// pytorch#19250 through the trainer: a U-Net of widths [8, 8, 8] in 8 groups on 1×4×4 images
/// has a 1×1 level where every GroupNorm group normalises one value; the run is refused as a
/// config error naming the level before anything is written. On 8×8 images it trains.
#[test]
fn a_unet_with_single_value_groupnorm_groups_is_refused_before_training() {
    let unet = "kind = \"unet\"\nwidths = [8, 8, 8]\ngroups = 8\nattention = []";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bad = config("shapes:n=16,size=1x4x4,seed=2", unet);
    let e = train(&bad, &out, &TrainOptions::default(), &mut |_| {}).unwrap_err();
    assert!(e.is_usage(), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("U-Net level 2 is 1×1 with 8 channels in 8 groups: each GroupNorm group holds 1 value (needs ≥ 2)")
            && e.contains("use fewer groups, fewer levels (model.widths) or larger images"),
        "{e}"
    );
    assert!(!out.exists(), "a refused run wrote {}", out.display());
    let good = config("shapes:n=16,size=1x8x8,seed=2", unet);
    let options = TrainOptions {
        resume: false,
        stop_at: Some(1),
    };
    train(&good, &out, &options, &mut |_| {}).unwrap();
}

/// A `.npy` file in `dir` of 16 images 1×8×8 with values `amplitude·sin(i)`; its data spec.
fn npy_data(dir: &Path, amplitude: f32) -> String {
    let values: Vec<f32> = (0..16 * 64).map(|i| amplitude * (i as f32).sin()).collect();
    let path = dir.join(format!("data-{amplitude}.npy"));
    sagd_datasets::npy::write_f32(&path, &[16, 1, 8, 8], &values).unwrap();
    format!("npy:{}", path.display())
}

/// Data of magnitude 1e30 are flagged (the terminal-SNR check refuses them too, but with
/// `allow_low_terminal_noise` they would train at a loss of about 1, learning nothing); data of
/// unit scale are not.
#[test]
fn data_far_from_the_noise_scale_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let scale = |w: &String| w.contains("training data have RMS");
    let mut huge = config(&npy_data(dir.path(), 1e30), MLP);
    huge.allow_low_terminal_noise = true;
    let seen = warnings(&huge);
    let warning = seen.iter().find(|w| scale(w));
    let warning = warning.unwrap_or_else(|| panic!("no scale warning in {seen:?}"));
    assert!(
        warning.starts_with("the training data have RMS 7.")
            && warning.contains("e29 per pixel (largest |x| = 1.000e30")
            && warning.contains("the data outweigh the noise at every level")
            && warning.contains("expects data of about unit scale"),
        "{warning}"
    );
    // Refused by the terminal-SNR check, the run still says why first.
    huge.allow_low_terminal_noise = false;
    assert!(warnings(&huge).iter().any(scale));
    for data in [
        npy_data(dir.path(), 1.0),
        "shapes:n=16,size=1x8x8,seed=2".into(),
    ] {
        let seen = warnings(&config(&data, MLP));
        assert!(!seen.iter().any(scale), "{data}: {seen:?}");
    }
}

/// The rule's bounds for `ddpm-linear` with unit noise: the least and most noise it adds,
/// `σ_t/√ᾱ_t` = 0.01 and about 157.
#[test]
fn the_scale_rule_follows_the_schedule() {
    let levels = Schedule::ddpm_linear().levels().unwrap();
    let warn = |x: f32| data_scale_warning(&[x, -x], 1.0, &levels);
    for fine in [0.011, 1.0, 150.0] {
        assert_eq!(warn(fine), None, "{fine}");
    }
    let high = warn(160.0).unwrap();
    assert!(
        high.contains("outside [1.000e-2, 1.574e2]") && high.contains("the data outweigh"),
        "{high}"
    );
    let low = warn(0.009).unwrap();
    assert!(low.contains("the noise hides the data"), "{low}");
    assert!(high.contains("rescale them") && low.contains("rescale them"));
    // Unit-scale data against an unnormalized spectrum of RMS 400: the fix is the noise's.
    let off = data_scale_warning(&[1.0, -1.0], 400.0, &levels).unwrap();
    assert!(
        off.contains("the noise's RMS per pixel is 4.000e2") && off.contains("\"energy\""),
        "{off}"
    );
}

/// A checkpoint whose weights hold a NaN is refused for sampling, naming the first such
/// tensor; its finite model weights still load.
#[test]
fn a_checkpoint_with_non_finite_weights_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let run = config("shapes:n=16,size=1x8x8,seed=2", MLP);
    train(&run, dir.path(), &TrainOptions::default(), &mut |_| {}).unwrap();
    let path = dir
        .path()
        .join("checkpoints")
        .join(checkpoint::file_name(4));
    let mut ckpt = Checkpoint::read(&path).unwrap();
    let (k, name) = ckpt
        .header
        .tensors
        .iter()
        .enumerate()
        .find(|(_, e)| e.group == Group::Ema)
        .map(|(k, e)| (k, e.info.name.clone()))
        .unwrap();
    ckpt.values[k][0] = f32::NAN;
    ckpt.write(&path).unwrap();
    let device = Device::flex();
    let e = TrainedDenoiser::load_any(&path, true, &device).unwrap_err();
    assert!(matches!(e, ModelError::Checkpoint { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains(&format!(
            "`ema.{name}` holds NaN (the first tensor with a non-finite value)"
        )) && e.contains("step 4"),
        "{e}"
    );
    assert!(TrainedDenoiser::load_any(&path, false, &device).is_ok());
}
