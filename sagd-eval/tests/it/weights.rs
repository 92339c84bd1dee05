//! Reading the weights from both containers (fixtures written by `fixtures/make_fixtures.py`
//! with torch: a PyTorch state dict and the same tensors as safetensors).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sagd_eval::{EvalError, FidInception, WeightsFile, WeightsFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn a_pytorch_state_dict_and_a_safetensors_file_give_the_same_tensors() {
    let pth = WeightsFile::open(&fixture("stem.pth")).unwrap();
    let safe = WeightsFile::open(&fixture("stem.safetensors")).unwrap();
    assert_eq!(pth.info().format, WeightsFormat::Pytorch);
    assert_eq!(safe.info().format, WeightsFormat::Safetensors);
    assert_eq!(pth.info().sha256.len(), 64);
    // Fixtures are not the published weights.
    assert!(!pth.info().is_published());
    for (name, shape) in [
        ("Conv2d_1a_3x3.conv.weight", vec![32, 3, 3, 3]),
        ("Conv2d_1a_3x3.bn.running_var", vec![32]),
    ] {
        let a = pth.tensor(name, &shape).unwrap();
        let b = safe.tensor(name, &shape).unwrap();
        assert_eq!(a, b, "{name}");
    }
    // The values make_fixtures.py wrote: arange / 100 − 4, and (1..=32) / 20.
    let w = pth
        .tensor("Conv2d_1a_3x3.conv.weight", &[32, 3, 3, 3])
        .unwrap();
    assert_eq!(w[0], -4.0);
    assert_eq!(w[7], 0.07f32 - 4.0);
    let var = pth.tensor("Conv2d_1a_3x3.bn.running_var", &[32]).unwrap();
    assert_eq!(var[31], 32.0 / 20.0);
    // num_batches_tracked (int64) is in the state dict, and not a float tensor.
    assert!(
        pth.names()
            .iter()
            .any(|n| n.ends_with("num_batches_tracked"))
    );
    let err = pth
        .tensor("Conv2d_1a_3x3.bn.num_batches_tracked", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("float type"), "{err}");
}

#[test]
fn the_network_names_the_first_tensor_a_file_lacks_or_misshapes() {
    let device = Device::default();
    for file in ["stem.pth", "stem.safetensors"] {
        let err = FidInception::load(&fixture(file), &device).unwrap_err();
        let EvalError::Tensor { name, message, .. } = &err else {
            panic!("{file}: {err}");
        };
        // The stem's first convolution is there; the second is not.
        assert_eq!(name, "Conv2d_2a_3x3.conv.weight", "{file}");
        assert!(
            message.contains("missing") && message.contains("[32, 32, 3, 3]"),
            "{message}"
        );
    }
    let safe = WeightsFile::open(&fixture("stem.safetensors")).unwrap();
    let err = safe
        .tensor("Conv2d_1a_3x3.conv.weight", &[32, 3, 3, 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[32, 3, 3, 3]") && err.contains("[32, 3, 3, 2]"),
        "{err}"
    );
}

#[test]
fn files_that_are_not_weights_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not weights at all").unwrap();
    let err = WeightsFile::open(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.bin") && err.contains("neither"), "{err}");
    // A truncated PyTorch file.
    let bytes = std::fs::read(fixture("stem.pth")).unwrap();
    let cut = dir.path().join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = WeightsFile::open(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.pth") && err.contains("PyTorch"), "{err}");
    let missing = dir.path().join("missing.safetensors");
    let err = WeightsFile::open(&missing).unwrap_err();
    assert!(matches!(err, EvalError::Io { .. }), "{err}");
}
