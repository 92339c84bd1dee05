//! A file cache of a reference set's Inception features (`sagd eval --feature-cache`), so that
//! an experiment comparing many sample sets with the same reference extracts the reference's
//! features once (at about 6 images/s on two CPU cores that is most of an evaluation).
//!
//! The file is an `.npz` (NumPy reads it) holding `features` (N, 2048) and `fingerprint` (32,):
//! the SHA-256 of the reference images as the network sees them (the 8-bit quantised pixels,
//! see [`quantize_u8`]), their shape and count, and the weights' SHA-256, one byte per entry,
//! all float64. A cache is used only when its fingerprint is the one of the images and weights
//! at hand; any other file (other images, other weights, a damaged file) is recomputed and
//! replaced, with a warning saying why.

use std::path::Path;

use sagd_datasets::Dataset;
use sagd_datasets::npz::{read_npz_f64, write_npz_f64};
use sha2::{Digest, Sha256};

use crate::error::EvalError;
use crate::features::{Features, quantize_u8};

/// The SHA-256 of `images` as the Inception network sees them (8-bit quantised pixels, with
/// their count and shape) and of the weights (`weights_sha256`, hex).
pub fn fingerprint(images: &Dataset, weights_sha256: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"sagd-feature-cache-v1");
    hash.update((images.len() as u64).to_le_bytes());
    for d in images.shape() {
        hash.update((d as u64).to_le_bytes());
    }
    let mut image = vec![0f32; images.image_len()];
    let mut bytes = vec![0u8; images.image_len()];
    for i in 0..images.len() {
        images.write_image(i, &mut image);
        for (b, v) in bytes.iter_mut().zip(&image) {
            *b = quantize_u8(*v);
        }
        hash.update(&bytes);
    }
    hash.update(weights_sha256.as_bytes());
    hash.finalize().into()
}

/// Reads the cached features at `path` when their fingerprint is `expected`.
///
/// `Ok(None)` when there is no file; `Err(why)` when there is one that cannot be used (another
/// fingerprint, a damaged file, features of another shape): the caller recomputes and says why.
pub fn load(path: &Path, expected: &[u8; 32], dim: usize) -> Result<Option<Features>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let (shape, stored) = read_npz_f64(path, "fingerprint").map_err(|e| e.to_string())?;
    let matches = shape == [32]
        && stored
            .iter()
            .zip(expected)
            .all(|(s, e)| *s == f64::from(*e));
    if !matches {
        return Err("it was made from other reference images or other weights".to_string());
    }
    let (shape, values) = read_npz_f64(path, "features").map_err(|e| e.to_string())?;
    if shape.len() != 2 || shape[1] != dim {
        return Err(format!(
            "its features have shape {shape:?}; expected (N, {dim})"
        ));
    }
    let values = values.into_iter().map(|v| v as f32).collect();
    Features::new(shape[0], dim, values)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Writes `features` with their `fingerprint` to `path`, atomically.
///
/// # Errors
/// [`EvalError::Write`] (naming the file) when it cannot be written.
pub fn save(path: &Path, features: &Features, fingerprint: &[u8; 32]) -> Result<(), EvalError> {
    let values: Vec<f64> = features.values.iter().map(|v| f64::from(*v)).collect();
    let print: Vec<f64> = fingerprint.iter().map(|b| f64::from(*b)).collect();
    write_npz_f64(
        path,
        &[
            ("features", &[features.count, features.dim], &values),
            ("fingerprint", &[32], &print),
        ],
    )
    .map_err(EvalError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagd_datasets::Pixels;

    fn images(values: Vec<f32>) -> Dataset {
        let n = values.len() / 4;
        Dataset::new("t", [1, 2, 2], Pixels::F32(values), None).unwrap_or_else(|_| {
            panic!("{n} images of 1x2x2");
        })
    }

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.npz");
        let set = images(vec![0.0, 0.25, 0.5, 1.0, 0.1, 0.2, 0.3, 0.4]);
        let print = fingerprint(&set, "abc");
        assert_eq!(load(&path, &print, 3), Ok(None));
        let features = Features::new(2, 3, vec![1.0, -2.5, 3.25, 0.0, 1e-7, 4.0]).unwrap();
        save(&path, &features, &print).unwrap();
        // f32 → f64 → f32 is exact.
        assert_eq!(load(&path, &print, 3), Ok(Some(features)));
        // Other weights, other images, a pixel change within half an 8-bit step (the same
        // quantised image: the same features), and one beyond it.
        assert!(load(&path, &fingerprint(&set, "abd"), 3).is_err());
        let other = images(vec![0.0, 0.25, 0.5, 1.0, 0.1, 0.2, 0.3, 0.5]);
        assert!(load(&path, &fingerprint(&other, "abc"), 3).is_err());
        let within = images(vec![
            0.0,
            0.25,
            0.5,
            1.0,
            0.1,
            0.2,
            0.3,
            0.4 + 0.5 / 255.0 * 0.9,
        ]);
        assert_eq!(fingerprint(&within, "abc"), print);
        let beyond = images(vec![0.0, 0.25, 0.5, 1.0, 0.1, 0.2, 0.3, 0.4 + 1.5 / 255.0]);
        assert_ne!(fingerprint(&beyond, "abc"), print);
        // Fewer images: another fingerprint.
        let fewer = images(vec![0.0, 0.25, 0.5, 1.0]);
        assert_ne!(fingerprint(&fewer, "abc"), print);
        // Another feature dimension, and a damaged file.
        assert!(load(&path, &print, 4).unwrap_err().contains("shape"));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load(&path, &print, 3).is_err());
    }
}
