//! The metrics of samples, the way the field measures them and in frequency, the way SAGD
//! needs (DESIGN.md §1, Evaluation):
//!
//! - [`inception`]: the FID Inception-v3 in burn, exactly as pytorch-fid computes its pool3
//!   features, loaded from a safetensors file or pytorch-fid's PyTorch state dict
//!   ([`weights`]);
//! - [`features`]: 8-bit quantisation and batched feature extraction; [`feature_cache`]: a
//!   reference's features kept in a file for the next evaluation;
//! - [`fid`](mod@fid), [`kid`](mod@kid), [`precision_recall`](mod@precision_recall): the metrics on
//!   features;
//! - [`spectral`]: radial power spectra, band energies and mode variances of images;
//! - [`evaluate`](mod@evaluate): all of it from two image sets; [`sources`]: images and
//!   references as files, folders, dataset specs or statistics.
//!
//! The whole of `sagd eval` (inputs as the CLI names them, `metrics.json`, `spectra.png`) is
//! `sagd-runs`' `eval` module.
//!
//! ```no_run
//! use std::path::Path;
//! use sagd_eval::{EvalOptions, FidInception, Reference, evaluate};
//! use sagd_datasets::spec::DataSpec;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Default::default();
//! let model = FidInception::load(Path::new("pt_inception-2015-12-05.safetensors"), &device)?;
//! let samples = sagd_datasets::npy::load_npy(Path::new("run/samples/samples.npy"), Default::default())?;
//! let reference: DataSpec = "mnist:data/mnist,split=test".parse()?;
//! let reference = reference.load()?.sample(samples.len(), 0);
//! let report = evaluate::evaluate(
//!     &samples,
//!     &Reference::Images(reference),
//!     Some(&model),
//!     &EvalOptions::default(),
//!     &mut |_, _, _| {},
//! )?;
//! println!("FID {:?}", report.fid);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod bootstrap;
pub mod error;
pub mod evaluate;
pub mod feature_cache;
pub mod features;
pub mod fid;
mod gram;
pub mod inception;
pub mod kid;
pub mod precision_recall;
pub mod sources;
pub mod spectral;
pub mod weights;

pub use error::EvalError;
pub use evaluate::{EvalOptions, EvalReport, Metric, Reference, Stage, evaluate};
pub use features::Features;
pub use fid::{GaussianStats, fid, frechet_distance};
pub use inception::FidInception;
pub use kid::{Kid, KidOptions, kid};
pub use precision_recall::{PrecisionRecall, precision_recall};
pub use sources::{load_images, load_reference};
pub use spectral::SpectralReport;
pub use weights::{WeightsFile, WeightsFormat, WeightsInfo};
