//! Dataset specs: parsing, loading, splits and errors.

use sagd_datasets::spec::Source;
use sagd_datasets::{DataSpec, DatasetError, Pipeline, Split};

#[test]
fn parses_every_kind() {
    let s: DataSpec = "mnist:/data/mnist,split=test".parse().unwrap();
    assert_eq!(s.split, Split::Test);
    assert!(matches!(s.source, Source::Mnist(ref p) if p.to_str() == Some("/data/mnist")));
    assert!(matches!(
        "cifar10:d".parse::<DataSpec>().unwrap().source,
        Source::Cifar10(_)
    ));
    assert!(matches!(
        "fashion-mnist:d".parse::<DataSpec>().unwrap().source,
        Source::FashionMnist(_)
    ));
    let f: DataSpec = "folder:imgs,channels=1,resize=16x20".parse().unwrap();
    assert!(matches!(
        f.source,
        Source::Folder {
            channels: Some(1),
            resize: Some((16, 20)),
            ..
        }
    ));
    assert!(matches!(
        "npy:a.npy,layout=nhwc".parse::<DataSpec>().unwrap().source,
        Source::Npy { .. }
    ));
    assert!(matches!(
        "npz:a.npz,key=x".parse::<DataSpec>().unwrap().source,
        Source::Npz { .. }
    ));
    match "grf:beta=2,size=1x16x16,n=10,seed=3"
        .parse::<DataSpec>()
        .unwrap()
        .source
    {
        Source::Grf(c) => {
            assert_eq!((c.beta, c.size, c.n, c.seed), (2.0, [1, 16, 16], 10, 3));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        "gmm:components=3,size=1x4x4,n=5"
            .parse::<DataSpec>()
            .unwrap()
            .source,
        Source::Gmm(_)
    ));
    assert!(matches!(
        "shapes:n=5".parse::<DataSpec>().unwrap().source,
        Source::Shapes(_)
    ));
}

#[test]
fn synthetic_splits_are_seeded_and_disjoint() {
    let train = "shapes:n=20,size=1x16x16,seed=4"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap();
    let again = "shapes:n=20,size=1x16x16,seed=4"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap();
    let test = "shapes:n=20,size=1x16x16,seed=4,split=test"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(train.to_f32(), again.to_f32());
    assert_ne!(train.to_f32(), test.to_f32());
    assert_eq!(train.shape(), [1, 16, 16]);
    let grf = "grf:beta=1,size=2x8x8,n=7"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap();
    assert_eq!((grf.len(), grf.shape()), (7, [2, 8, 8]));
}

#[test]
fn bad_specs_name_the_problem() {
    let cases = [
        ("mnist", "`mnist` needs a path: mnist:PATH"),
        ("pictures:x", "unknown kind `pictures`"),
        ("mnist:", "needs a path"),
        ("mnist:d,split=validation", "split"),
        ("shapes:n=ten", "`n`"),
        ("shapes:n=5,colour=red", "unknown key `colour`"),
        ("grf:beta=2,size=1x0x4", "size"),
        ("folder:d,channels=2", "channels"),
        ("folder:d,resize=0x4", "resize"),
        ("npy:a,layout=hwcn", "layout"),
        ("shapes:somewhere", "only key=value"),
        ("shapes:n=1,n=2", "twice"),
    ];
    for (spec, needle) in cases {
        let err = spec.parse::<DataSpec>().unwrap_err().to_string();
        assert!(err.contains(needle), "{spec}: {err}");
    }
    // Invalid generator parameters surface when loading, naming the parameter.
    let err = "grf:beta=-1"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap_err();
    assert!(
        matches!(err, DatasetError::InvalidParam { ref param, .. } if param == "beta"),
        "{err}"
    );
    let err = "mnist:/nonexistent-sagd-dir"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("nonexistent-sagd-dir"), "{err}");
}

#[test]
fn pipelines_apply_to_datasets_deterministically() {
    let data = "shapes:n=50,size=1x28x28"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap();
    let p = Pipeline::parse(&[
        "pad:2",
        "hflip:0.5",
        "corrupt:a=0.2,b=0.4,gamma=0.1",
        "scale",
    ])
    .unwrap();
    let a = p.apply_to(&data, 50, 9).unwrap();
    let b = p.apply_to(&data, 50, 9).unwrap();
    let c = p.apply_to(&data, 50, 10).unwrap();
    assert_eq!(a.shape(), [1, 32, 32]);
    assert_eq!(a.to_f32(), b.to_f32());
    assert_ne!(a.to_f32(), c.to_f32());
    assert_eq!(a.labels(), data.labels());
}

#[test]
fn data_config_reads_from_toml_and_refuses_unknown_keys() {
    let config: sagd_datasets::spec::DataConfig =
        toml::from_str("spec = \"shapes:n=8,size=1x28x28\"\ntransforms = [\"pad:2\", \"scale\"]")
            .unwrap();
    let (data, pipeline) = config.load().unwrap();
    assert_eq!(pipeline.output_shape(data.shape()).unwrap(), [1, 32, 32]);
    let err =
        toml::from_str::<sagd_datasets::spec::DataConfig>("spec = \"shapes:n=8\"\ntransform = []")
            .unwrap_err();
    assert!(err.to_string().contains("transform"), "{err}");
    let bad = sagd_datasets::spec::DataConfig {
        spec: "shapes:n=8".into(),
        transforms: vec!["crop:99x99".into()],
    };
    assert!(bad.load().is_err());
}
