//! How `sagd eval` reads the images a user names.

use sagd_datasets::npy::write_f32;
use sagd_eval::EvalError;
use sagd_eval::sources::{load_images, subset};

#[test]
fn nhwc_arrays_are_recognised_and_read_like_nchw_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (n, h, w) = (2, 5, 4);
    // Image i, pixel (y, x), channel c holds i·100 + c·10 + y + x/10.
    let value =
        |i: usize, c: usize, y: usize, x: usize| (i * 100 + c * 10 + y) as f32 + x as f32 / 10.0;
    let mut nchw = Vec::new();
    let mut nhwc = Vec::new();
    for i in 0..n {
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    nchw.push(value(i, c, y, x));
                }
            }
        }
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    nhwc.push(value(i, c, y, x));
                }
            }
        }
    }
    let a = dir.path().join("nchw.npy");
    let b = dir.path().join("nhwc.npy");
    write_f32(&a, &[n, 3, h, w], &nchw).unwrap();
    write_f32(&b, &[n, h, w, 3], &nhwc).unwrap();
    let (a, b) = (
        load_images(a.to_str().unwrap()).unwrap(),
        load_images(b.to_str().unwrap()).unwrap(),
    );
    assert_eq!(a.shape(), [3, h, w]);
    assert_eq!(b.shape(), [3, h, w]);
    assert_eq!(a.pixels(), b.pixels());
}

#[test]
fn a_missing_path_is_named_and_subsets_are_seeded() {
    let err = load_images("no/such/samples.npy").unwrap_err();
    assert!(matches!(err, EvalError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/samples.npy"), "{err}");
    let data = load_images("shapes:n=50,size=1x8x8").unwrap();
    let labels = |d: &sagd_datasets::Dataset| d.labels().unwrap().to_vec();
    let a = subset(data.clone(), 20, 1);
    assert_eq!(a.len(), 20);
    assert_eq!(labels(&a), labels(&subset(data.clone(), 20, 1)));
    assert_eq!(
        subset(data.clone(), 50, 1).pixels(),
        data.pixels(),
        "all of a set is the set itself"
    );
}
