//! The runs behind `sagd data stats|preview|export`: a dataset spec with its transforms →
//! statistics (and a figure of its power spectrum), an image grid, or a float32 `.npy` in the
//! models' range.
//!
//! The functions take typed requests and return serialisable results; the CLI prints them.
//!
//! ```
//! use sagd_runs::data::{DataRequest, data_stats};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let request = DataRequest::new("grf:beta=2,size=1x8x8,n=50");
//! let stats = data_stats(&request, Default::default(), None, None)?;
//! assert_eq!((stats.count, stats.shape), (50, [1, 8, 8]));
//! assert_eq!(stats.dtype, "f32");
//! assert!(stats.radial_psd[1].power > stats.radial_psd[4].power); // 1/r² power
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use sagd_core::RadiusConvention;
use sagd_datasets::npy::NpyWriter;
use sagd_datasets::spec::DataConfig;
use sagd_datasets::stats::{mean_pixel, pca_spectrum, radial_psd};
use sagd_datasets::{Dataset, Pipeline};
use sagd_models::training_pipeline;
use sagd_plot::{LinePlot, Series, write_image_grid_png, write_line_plot_png};
use serde::Serialize;

use crate::error::RunError;

fn invalid(message: impl Into<String>) -> RunError {
    RunError::Request(message.into())
}

/// A dataset spec, its transforms and the seed of the random ones: what every data command
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// The dataset spec (`mnist:DIR`, `shapes:n=64`, `grf:…`, …).
    pub spec: String,
    /// Transforms in order (`pad:2`, `scale`, …).
    pub transforms: Vec<String>,
    /// Seed of the random transforms (`hflip`, `corrupt`) and of preview's sample.
    pub seed: u64,
}

impl DataRequest {
    /// `spec` with no transforms and seed 0.
    pub fn new(spec: impl Into<String>) -> Self {
        Self {
            spec: spec.into(),
            transforms: Vec::new(),
            seed: 0,
        }
    }

    /// Parses the spec and transforms and loads the data, checking that the transforms fit
    /// the images.
    ///
    /// # Errors
    /// [`RunError::Dataset`] for a bad spec or transform, or the file errors of the source.
    pub fn load(&self) -> Result<(Dataset, Pipeline), RunError> {
        let config = DataConfig {
            spec: self.spec.clone(),
            transforms: self.transforms.clone(),
        };
        Ok(config.load()?)
    }
}

/// One class of a labelled dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// The label.
    pub label: usize,
    /// Its name (the label itself when the source names none).
    pub name: String,
    /// Images with it.
    pub count: usize,
}

/// One bin of a radially averaged power spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PsdBin {
    /// Bin centre, in the stats' radius convention.
    pub radius: f64,
    /// Mean power of the frequencies in the bin.
    pub power: f64,
    /// Frequencies in the bin.
    pub count: usize,
}

/// What `sagd data stats` reports (its `--json` output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataStats {
    /// The dataset spec.
    pub spec: String,
    /// The transforms, as written back.
    pub transforms: Vec<String>,
    /// Images.
    pub count: usize,
    /// `[C, H, W]` of the source.
    pub shape: [usize; 3],
    /// `[C, H, W]` after the transforms.
    pub shape_after_transforms: [usize; 3],
    /// `u8` (read as `v/255`) or `f32`.
    pub dtype: String,
    /// Images per class, for labelled data.
    pub classes: Option<Vec<ClassCount>>,
    /// The mean pixel on the source's own scale ([0, 1] for u8 sources), before transforms.
    pub mean: f64,
    /// The radius convention of the radial PSD.
    pub radius: String,
    /// The radially averaged power spectrum of the mean-subtracted images after the
    /// transforms (unitary DFT, one-frequency-step bins).
    pub radial_psd: Vec<PsdBin>,
    /// The eigenvalues of the data covariance, largest first, when asked.
    pub pca_eigenvalues: Option<Vec<f64>>,
}

/// The statistics of `request`'s data: count, shape, classes, mean pixel (before the
/// transforms) and radial power spectrum in the `radius` convention (after them), using the
/// first `limit` images if given, and the PCA eigenvalues from at most `pca_images` images if
/// asked.
///
/// # Errors
/// Those of [`DataRequest::load`], the transforms and the PCA.
///
/// See the [module docs](self) for an example.
pub fn data_stats(
    request: &DataRequest,
    radius: RadiusConvention,
    limit: Option<usize>,
    pca_images: Option<usize>,
) -> Result<DataStats, RunError> {
    let (dataset, pipeline) = request.load()?;
    let dataset = match limit {
        Some(n) => dataset.take(n),
        None => dataset,
    };
    let source_u8 = dataset.is_u8();
    // The mean pixel is reported on the source's own scale ([0, 1] for u8 sources), before any
    // transform; the spectra describe the data as the transforms leave it.
    let mean = mean_pixel(&dataset);
    let transformed_owned;
    let transformed = if pipeline.transforms.is_empty() {
        &dataset
    } else {
        transformed_owned = pipeline.apply_to(&dataset, dataset.len(), request.seed)?;
        &transformed_owned
    };
    let psd = radial_psd(transformed, radius);
    let pca = match pca_images {
        Some(n) => Some(pca_spectrum(transformed, Some(n))?),
        None => None,
    };
    let classes = dataset.class_counts().map(|counts| {
        let names = dataset.class_names();
        counts
            .iter()
            .enumerate()
            .map(|(i, &count)| ClassCount {
                label: i,
                name: names
                    .and_then(|n| n.get(i))
                    .cloned()
                    .unwrap_or_else(|| i.to_string()),
                count,
            })
            .collect()
    });
    Ok(DataStats {
        spec: request.spec.clone(),
        transforms: pipeline.transforms.iter().map(|t| t.to_string()).collect(),
        count: dataset.len(),
        shape: dataset.shape(),
        shape_after_transforms: transformed.shape(),
        dtype: if source_u8 { "u8" } else { "f32" }.to_string(),
        classes,
        mean,
        radius: radius.name().to_string(),
        radial_psd: psd
            .iter()
            .map(|b| PsdBin {
                radius: b.radius,
                power: b.power,
                count: b.count,
            })
            .collect(),
        pca_eigenvalues: pca,
    })
}

/// Draws the radial power spectrum of `stats` (log-log) to a PNG.
///
/// # Errors
/// [`RunError::Plot`] when the figure cannot be drawn or written.
///
/// ```
/// use sagd_runs::data::{DataRequest, data_stats, write_psd_png};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let stats = data_stats(&DataRequest::new("shapes:n=8,size=1x16x16"), Default::default(), None, None)?;
/// let dir = tempfile::tempdir()?;
/// write_psd_png(&dir.path().join("psd.png"), &stats)?;
/// # Ok(())
/// # }
/// ```
pub fn write_psd_png(path: &Path, stats: &DataStats) -> Result<(), RunError> {
    let x_label = format!("radius ({})", stats.radius);
    let plot = LinePlot {
        title: &format!("radially averaged power spectrum: {}", stats.spec),
        x_label: &x_label,
        y_label: "power",
        series: vec![Series {
            name: "radial PSD",
            points: stats
                .radial_psd
                .iter()
                .map(|b| (b.radius, b.power))
                .collect(),
            markers: true,
        }],
        log_x: true,
        log_y: true,
    };
    Ok(write_line_plot_png(path, &plot)?)
}

/// Draws a seeded random sample of `count` images of `request`'s data, after its transforms,
/// as a PNG grid at `png`, mapped to [0, 1] for display ([-1, 1] after `scale`, min–max for
/// float sources). Returns the number of images drawn.
///
/// # Errors
/// [`RunError::Request`] for a count of 0 or images of other than 1 or 3 channels; those
/// of [`DataRequest::load`] and the transforms; [`RunError::Plot`] writing the figure.
///
/// ```
/// use sagd_runs::data::{DataRequest, data_preview};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let shown = data_preview(&DataRequest::new("shapes:n=20,size=3x16x16"), 9, &dir.path().join("grid.png"))?;
/// assert_eq!(shown, 9);
/// # Ok(())
/// # }
/// ```
pub fn data_preview(request: &DataRequest, count: usize, png: &Path) -> Result<usize, RunError> {
    if count == 0 {
        return Err(invalid("--count: must be at least 1"));
    }
    let (dataset, pipeline) = request.load()?;
    let shown = pipeline.apply_to(&dataset, count, request.seed)?;
    let [c, h, w] = shown.shape();
    if c != 1 && c != 3 {
        return Err(invalid(format!(
            "cannot show {c}-channel images; add --transform channels:1 or channels:3"
        )));
    }
    let mut values = shown.to_f32();
    // Map to [0, 1] for display: [-1, 1] after `scale`, min–max for float sources.
    if pipeline.scales() {
        values.iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0);
    } else if !dataset.is_u8() {
        let (lo, hi) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let span = (hi - lo).max(1e-12);
        values.iter_mut().for_each(|v| *v = (*v - lo) / span);
    }
    let cols = (shown.len() as f64).sqrt().ceil() as usize;
    let scale = (128 / h.max(w)).clamp(1, 4);
    write_image_grid_png(png, &values, shown.len(), c, h, w, cols, scale)?;
    Ok(shown.len())
}

/// What [`data_export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Images written.
    pub count: usize,
    /// `[C, H, W]` of each.
    pub shape: [usize; 3],
    /// The transforms applied (with the `scale` appended for 8-bit sources).
    pub transforms: Vec<String>,
}

/// Writes the first `count` (default: all) images of `request`'s data after its transforms as
/// a float32 `.npy` of shape (N, C, H, W) at `out`, in the models' range: 8-bit sources get
/// `scale` ([0, 1] → [-1, 1]) appended when the transforms lack it.
///
/// # Errors
/// [`RunError::Request`] when nothing would be written; those of [`DataRequest::load`]
/// and the transforms; [`RunError::Npy`] writing the file.
///
/// ```
/// use sagd_runs::data::{DataRequest, data_export};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut request = DataRequest::new("shapes:n=10,size=1x28x28");
/// request.transforms = vec!["pad:2".into()];
/// let done = data_export(&request, Some(4), &dir.path().join("x.npy"))?;
/// assert_eq!((done.count, done.shape), (4, [1, 32, 32]));
/// assert_eq!(done.transforms, ["pad:2", "scale"]);
/// # Ok(())
/// # }
/// ```
pub fn data_export(
    request: &DataRequest,
    count: Option<usize>,
    out: &Path,
) -> Result<ExportSummary, RunError> {
    let (dataset, pipeline) = request.load()?;
    // u8 sources are read in [0, 1]; the models train in [-1, 1].
    let pipeline = training_pipeline(&dataset, pipeline);
    let count = count.unwrap_or(dataset.len()).min(dataset.len());
    if count == 0 {
        return Err(invalid("nothing to export (--count 0 or an empty dataset)"));
    }
    let images = pipeline.apply_to(&dataset, count, request.seed)?;
    let [c, h, w] = images.shape();
    let mut writer = NpyWriter::create(out, &[count, c, h, w])?;
    writer.write(&images.to_f32())?;
    writer.finish()?;
    Ok(ExportSummary {
        count,
        shape: [c, h, w],
        transforms: pipeline.transforms.iter().map(|t| t.to_string()).collect(),
    })
}
