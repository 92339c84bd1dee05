//! Image transforms, applied to batches of float images (N, C, H, W) with a seeded generator:
//! pad, centre-crop, bilinear resize, scale to [-1, 1], random horizontal flip, channel
//! conversion, the band-limited corruption `x' = x + γ·ε_[a,b]` of the selective-omission
//! setting, the notch filter that removes that band, and a clamp to a pixel range.
//!
//! Written in configs and on the command line as `pad:2`, `crop:28x28`, `resize:32x32`,
//! `scale`, `hflip:0.5`, `channels:3`, `corrupt:a=0.1,b=0.2,gamma=1`, `notch:a=0.1,b=0.2`,
//! `clamp` (to [0, 1]) or `clamp:lo=-1,hi=1`.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sagd_core::spec::{SpecError, SpecReader, SpecText};
use sagd_core::{Normalization, RadiusConvention, SpectralCovariance};

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;

/// One transform.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Zero padding of `pixels` on every side (MNIST 28 → 32 is `pad:2`).
    Pad {
        /// Pixels added on each side.
        pixels: usize,
    },
    /// The central `height × width` window.
    CenterCrop {
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// Bilinear resize (pixel centres aligned, edges clamped).
    Resize {
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// `x ↦ 2x − 1`: [0, 1] to the models' range [-1, 1].
    Scale,
    /// Flips each image left–right with probability `p`.
    HFlip {
        /// Flip probability.
        p: f64,
    },
    /// Converts to `to` channels: 1 → 3 replicates, 3 → 1 takes the luma
    /// `0.299 R + 0.587 G + 0.114 B`.
    Channels {
        /// Target channel count (1 or 3).
        to: usize,
    },
    /// `x' = x + γ·ε_[a,b]`: white noise restricted to the band `a ≤ r ≤ b` (`unit` radius
    /// convention), i.e. `ε_[a,b] = Π_band ε`, whose per-pixel variance is the band's share of
    /// the frequencies; with `energy = true` it is rescaled to per-pixel variance 1.
    Corrupt {
        /// Inner band edge (unit convention).
        a: f64,
        /// Outer band edge (unit convention).
        b: f64,
        /// Amplitude γ.
        gamma: f64,
        /// Rescale the band noise to unit per-pixel variance.
        energy: bool,
    },
    /// `x' = x − Π_[a,b] x`: the band `a ≤ r ≤ b` (`unit` radius convention, the band that
    /// `corrupt` noises) removed from each image by a Fourier notch filter; deterministic.
    Notch {
        /// Inner band edge (unit convention).
        a: f64,
        /// Outer band edge (unit convention).
        b: f64,
    },
    /// `x ↦ min(max(x, lo), hi)`: what `sagd sample` does to a model's output, applied to an
    /// image a filter took out of the pixel range (a notch-filtered image rings below 0 and
    /// above 1; as an image again it is clamped, as a model's sample would be).
    Clamp {
        /// Lower bound (0 by default).
        lo: f64,
        /// Upper bound (1 by default).
        hi: f64,
    },
}

impl Transform {
    /// True for the transforms that draw random numbers (`hflip`, `corrupt`); the others are
    /// functions of the image alone.
    pub fn is_random(&self) -> bool {
        matches!(self, Transform::HFlip { .. } | Transform::Corrupt { .. })
    }

    /// The covariance of `corrupt`'s band noise `ε_[a,b]` on `shape` images (`None` for the
    /// other transforms), as its [`apply`](Self::apply) draws it.
    pub fn band_noise(
        &self,
        shape: [usize; 3],
    ) -> Result<Option<SpectralCovariance>, DatasetError> {
        let Transform::Corrupt { a, b, energy, .. } = *self else {
            return Ok(None);
        };
        let spectrum = check_band(&self.to_string(), a, b).map_err(DatasetError::Transform)?;
        let normalization = if energy {
            Normalization::Energy
        } else {
            Normalization::None
        };
        let table = band_table("corrupt", &spectrum, shape[1], shape[2])?;
        Ok(Some(SpectralCovariance::from_amplitudes(
            "band-pass",
            table,
            shape,
            normalization,
        )?))
    }

    /// The shape after this transform.
    pub fn output_shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], DatasetError> {
        Ok(match *self {
            Transform::Pad { pixels } => [c, h + 2 * pixels, w + 2 * pixels],
            Transform::CenterCrop { height, width } => {
                if height > h || width > w || height == 0 || width == 0 {
                    return Err(DatasetError::param(
                        "crop",
                        "size",
                        format!("{height}x{width}"),
                        &format!("a non-empty window no larger than the {h}x{w} image"),
                    ));
                }
                [c, height, width]
            }
            Transform::Resize { height, width } => [c, height, width],
            Transform::Channels { to } => {
                if !(c == to || (c == 1 && to == 3) || (c == 3 && to == 1)) {
                    return Err(DatasetError::param(
                        "channels",
                        "to",
                        to,
                        &format!("1 or 3 from {c} channels"),
                    ));
                }
                [to, h, w]
            }
            Transform::Scale
            | Transform::HFlip { .. }
            | Transform::Corrupt { .. }
            | Transform::Notch { .. }
            | Transform::Clamp { .. } => [c, h, w],
        })
    }

    /// Applies the transform to `values` holding whole images of `shape`.
    pub fn apply(
        &self,
        values: Vec<f32>,
        shape: [usize; 3],
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f32>, [usize; 3]), DatasetError> {
        let out_shape = self.output_shape(shape)?;
        let [c, h, w] = shape;
        let n = values.len() / (c * h * w);
        let out = match *self {
            Transform::Pad { pixels } => {
                let [_, oh, ow] = out_shape;
                let mut out = vec![0.0; n * c * oh * ow];
                for plane in 0..n * c {
                    for y in 0..h {
                        let src = &values[(plane * h + y) * w..(plane * h + y + 1) * w];
                        let dst = (plane * oh + y + pixels) * ow + pixels;
                        out[dst..dst + w].copy_from_slice(src);
                    }
                }
                out
            }
            Transform::CenterCrop { height, width } => {
                let (top, left) = ((h - height) / 2, (w - width) / 2);
                let mut out = Vec::with_capacity(n * c * height * width);
                for plane in 0..n * c {
                    for y in top..top + height {
                        let row = (plane * h + y) * w;
                        out.extend_from_slice(&values[row + left..row + left + width]);
                    }
                }
                out
            }
            Transform::Resize { height, width } => {
                if height == 0 || width == 0 {
                    return Err(DatasetError::param(
                        "resize",
                        "size",
                        format!("{height}x{width}"),
                        "at least 1x1",
                    ));
                }
                let mut out = vec![0.0; n * c * height * width];
                for plane in 0..n * c {
                    let src = &values[plane * h * w..(plane + 1) * h * w];
                    let dst = &mut out[plane * height * width..(plane + 1) * height * width];
                    bilinear(src, h, w, dst, height, width);
                }
                out
            }
            Transform::Scale => values.into_iter().map(|v| 2.0 * v - 1.0).collect(),
            Transform::HFlip { p } => {
                let mut values = values;
                for image in values.chunks_mut(c * h * w) {
                    if rng.random_bool(p) {
                        for row in image.chunks_mut(w) {
                            row.reverse();
                        }
                    }
                }
                values
            }
            Transform::Channels { to } => {
                if to == c {
                    values
                } else if to == 3 {
                    let mut out = Vec::with_capacity(n * 3 * h * w);
                    for image in values.chunks(h * w) {
                        for _ in 0..3 {
                            out.extend_from_slice(image);
                        }
                    }
                    out
                } else {
                    let mut out = Vec::with_capacity(n * h * w);
                    for image in values.chunks(3 * h * w) {
                        let (r, rest) = image.split_at(h * w);
                        let (g, b) = rest.split_at(h * w);
                        out.extend(
                            r.iter()
                                .zip(g)
                                .zip(b)
                                .map(|((r, g), b)| 0.299 * r + 0.587 * g + 0.114 * b),
                        );
                    }
                    out
                }
            }
            Transform::Corrupt { gamma, .. } => {
                let cov = self
                    .band_noise(shape)?
                    .expect("corrupt has a band-noise covariance");
                let noise = cov.sample::<f32>(n, rng);
                values
                    .iter()
                    .zip(&noise)
                    .map(|(x, e)| x + gamma as f32 * e)
                    .collect()
            }
            Transform::Notch { a, b } => {
                let band = check_band(&self.to_string(), a, b).map_err(DatasetError::Transform)?;
                let table = band_table("notch", &band, h, w)?;
                let cov = SpectralCovariance::from_amplitudes(
                    "band-pass",
                    table,
                    shape,
                    Normalization::None,
                )?;
                let mut values = values;
                cov.project_complement(&mut values)?;
                values
            }
            Transform::Clamp { lo, hi } => {
                let (lo, hi) = (lo as f32, hi as f32);
                values.into_iter().map(|v| v.clamp(lo, hi)).collect()
            }
        };
        Ok((out, out_shape))
    }
}

/// The band `[a, b]` (unit convention) of the transform written `input`, validated.
fn check_band(input: &str, a: f64, b: f64) -> Result<(f64, f64), SpecError> {
    for (name, v) in [("a", a), ("b", b)] {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(SpecError::invalid(
                input,
                name,
                v,
                "a radius in [0, 1] (unit convention)",
            ));
        }
    }
    if a > b {
        return Err(SpecError::invalid(
            input,
            "a",
            a,
            format!("a value <= b = {b}"),
        ));
    }
    Ok((a, b))
}

fn band_table(
    transform: &str,
    &(a, b): &(f64, f64),
    h: usize,
    w: usize,
) -> Result<Vec<f64>, DatasetError> {
    let grid = sagd_core::FrequencyGrid::new(h, w);
    let table: Vec<f64> = grid
        .frequencies()
        .map(|f| {
            let r = f.radius(RadiusConvention::Unit);
            if r >= a - 1e-12 && r <= b + 1e-12 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    if table.iter().all(|&v| v == 0.0) {
        return Err(DatasetError::param(
            transform,
            "band",
            format!("[{a}, {b}]"),
            &format!("a band containing a frequency of the {h}x{w} grid"),
        ));
    }
    Ok(table)
}

/// Bilinear interpolation with aligned pixel centres (`x_src = (x + ½)·w/W − ½`), clamped.
fn bilinear(src: &[f32], h: usize, w: usize, dst: &mut [f32], oh: usize, ow: usize) {
    let coord = |i: usize, from: usize, to: usize| {
        let x = ((i as f64 + 0.5) * from as f64 / to as f64 - 0.5).clamp(0.0, (from - 1) as f64);
        let i0 = x.floor() as usize;
        let i1 = (i0 + 1).min(from - 1);
        (i0, i1, (x - i0 as f64) as f32)
    };
    for y in 0..oh {
        let (y0, y1, ty) = coord(y, h, oh);
        for x in 0..ow {
            let (x0, x1, tx) = coord(x, w, ow);
            let top = src[y0 * w + x0] * (1.0 - tx) + src[y0 * w + x1] * tx;
            let bottom = src[y1 * w + x0] * (1.0 - tx) + src[y1 * w + x1] * tx;
            dst[y * ow + x] = top * (1.0 - ty) + bottom * ty;
        }
    }
}

/// The transforms there are.
const TRANSFORMS: [&str; 9] = [
    "pad", "crop", "resize", "scale", "hflip", "channels", "corrupt", "notch", "clamp",
];

/// `HxW` with positive sides, the argument of `crop` and `resize`.
fn size_argument(r: &mut SpecReader<'_>) -> Result<(usize, usize), SpecError> {
    let name = r.spec().name();
    let text = r.required_argument(&format!("a size, e.g. {name}:32x32"))?;
    let side = |t: &str| t.trim().parse::<usize>().ok().filter(|n| *n > 0);
    text.split_once(['x', 'X'])
        .and_then(|(h, w)| Some((side(h)?, side(w)?)))
        .ok_or_else(|| r.spec().invalid("size", text, "HxW, e.g. 32x32"))
}

/// `corrupt:a=…,b=…[,gamma=…][,energy=…]`.
fn corrupt(r: &mut SpecReader<'_>) -> Result<Transform, SpecError> {
    let spec = r.spec();
    let missing = |key: &str| {
        spec.syntax_error(format!(
            "`corrupt` needs `{key}`: a band, e.g. corrupt:a=0.1,b=0.2,gamma=1"
        ))
    };
    let a = r.number("a", "a number")?.ok_or_else(|| missing("a"))?;
    let b = r.number("b", "a number")?.ok_or_else(|| missing("b"))?;
    let gamma = r.number("gamma", "a number")?.unwrap_or(1.0);
    let energy = r.parse("energy", "true or false")?.unwrap_or(false);
    check_band(spec.input(), a, b)?;
    if gamma < 0.0 {
        return Err(spec.invalid("gamma", gamma, "a number >= 0"));
    }
    Ok(Transform::Corrupt {
        a,
        b,
        gamma,
        energy,
    })
}

/// The transform a spec names, its argument and keys read from `r`.
fn transform(r: &mut SpecReader<'_>) -> Result<Transform, SpecError> {
    let spec = r.spec();
    Ok(match spec.name() {
        "pad" => {
            let v = r.required_argument("a pixel count, e.g. pad:2")?;
            Transform::Pad {
                pixels: v
                    .parse()
                    .map_err(|_| spec.invalid("pixels", v, "a non-negative integer"))?,
            }
        }
        "crop" => {
            let (height, width) = size_argument(r)?;
            Transform::CenterCrop { height, width }
        }
        "resize" => {
            let (height, width) = size_argument(r)?;
            Transform::Resize { height, width }
        }
        "scale" => Transform::Scale,
        "hflip" => {
            let p = match r.argument() {
                None => 0.5,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| spec.invalid("p", v, "a probability in [0, 1]"))?,
            };
            Transform::HFlip { p }
        }
        "channels" => {
            let v = r.required_argument("a channel count, e.g. channels:3")?;
            let to = v.parse().ok().filter(|c| *c == 1 || *c == 3);
            Transform::Channels {
                to: to.ok_or_else(|| spec.invalid("to", v, "1 or 3"))?,
            }
        }
        "corrupt" => corrupt(r)?,
        "notch" => {
            let missing = |key: &str| {
                spec.syntax_error(format!(
                    "`notch` needs `{key}`: a band, e.g. notch:a=0.1,b=0.2"
                ))
            };
            let a = r.number("a", "a number")?.ok_or_else(|| missing("a"))?;
            let b = r.number("b", "a number")?.ok_or_else(|| missing("b"))?;
            check_band(spec.input(), a, b)?;
            Transform::Notch { a, b }
        }
        "clamp" => {
            let lo = r.number("lo", "a number")?.unwrap_or(0.0);
            let hi = r.number("hi", "a number")?.unwrap_or(1.0);
            for (key, v) in [("lo", lo), ("hi", hi)] {
                if !v.is_finite() {
                    return Err(spec.invalid(key, v, "a finite number"));
                }
            }
            if lo >= hi {
                return Err(spec.invalid("lo", lo, format!("a value < hi = {hi}")));
            }
            Transform::Clamp { lo, hi }
        }
        other => {
            return Err(SpecError::unknown_name(
                spec.input(),
                "transform",
                other,
                &TRANSFORMS,
            ));
        }
    })
}

impl FromStr for Transform {
    type Err = DatasetError;

    /// Parses one transform (`pad:2`, `corrupt:a=0.1,b=0.2`), in the syntax of
    /// [`sagd_core::spec`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = SpecText::parse(s).map_err(DatasetError::Transform)?;
        let keys: &[&str] = match spec.name() {
            "corrupt" => &["a", "b", "gamma", "energy"],
            "notch" => &["a", "b"],
            "clamp" => &["lo", "hi"],
            _ => &[],
        };
        let mut reader = spec.reader(keys);
        let transform = transform(&mut reader).map_err(DatasetError::Transform)?;
        reader.finish().map_err(DatasetError::Transform)?;
        Ok(transform)
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Pad { pixels } => write!(f, "pad:{pixels}"),
            Transform::CenterCrop { height, width } => write!(f, "crop:{height}x{width}"),
            Transform::Resize { height, width } => write!(f, "resize:{height}x{width}"),
            Transform::Scale => write!(f, "scale"),
            Transform::HFlip { p } => write!(f, "hflip:{p}"),
            Transform::Channels { to } => write!(f, "channels:{to}"),
            Transform::Corrupt {
                a,
                b,
                gamma,
                energy,
            } => write!(f, "corrupt:a={a},b={b},gamma={gamma},energy={energy}"),
            Transform::Notch { a, b } => write!(f, "notch:a={a},b={b}"),
            Transform::Clamp { lo, hi } => write!(f, "clamp:lo={lo},hi={hi}"),
        }
    }
}

/// A chain of transforms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pipeline {
    /// The transforms, applied in order.
    pub transforms: Vec<Transform>,
}

impl Pipeline {
    /// Parses each transform.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, DatasetError> {
        Ok(Self {
            transforms: items
                .iter()
                .map(|s| s.as_ref().parse())
                .collect::<Result<_, _>>()?,
        })
    }

    /// The shape after the whole chain.
    pub fn output_shape(&self, shape: [usize; 3]) -> Result<[usize; 3], DatasetError> {
        self.transforms
            .iter()
            .try_fold(shape, |s, t| t.output_shape(s))
    }

    /// True when the chain contains `scale`.
    pub fn scales(&self) -> bool {
        self.transforms.contains(&Transform::Scale)
    }

    /// Applies the chain to a batch. Images are finite when loaded (see [`Dataset::new`]), so
    /// a NaN or infinite value after a transform comes from its parameters (an overflowing
    /// `corrupt` γ, say): it is refused with [`DatasetError::InvalidParam`] naming the
    /// transform.
    pub fn apply(
        &self,
        values: Vec<f32>,
        shape: [usize; 3],
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f32>, [usize; 3]), DatasetError> {
        self.transforms
            .iter()
            .try_fold((values, shape), |(v, s), t| {
                let (out, out_shape) = t.apply(v, s, rng)?;
                if let Some((_, value)) = crate::dataset::first_non_finite(&out) {
                    return Err(DatasetError::param(
                        &format!("transform `{t}`"),
                        "output",
                        value,
                        "finite values (its parameters make finite images overflow)",
                    ));
                }
                Ok((out, out_shape))
            })
    }

    /// Applies the chain to the first `count` images of `dataset` in chunks of 1024, each with
    /// its own generator seeded from `seed` and the chunk index (so the result is the same
    /// whatever the chunking of later callers), giving a float dataset with the same labels.
    pub fn apply_to(
        &self,
        dataset: &Dataset,
        count: usize,
        seed: u64,
    ) -> Result<Dataset, DatasetError> {
        let count = count.min(dataset.len());
        let out_shape = self.output_shape(dataset.shape())?;
        let mut out = Vec::with_capacity(count * out_shape.iter().product::<usize>());
        let mut buffer = Vec::new();
        for (chunk, start) in (0..count).step_by(1024).enumerate() {
            let indices: Vec<usize> = (start..(start + 1024).min(count)).collect();
            dataset.gather(&indices, &mut buffer);
            let mut rng = ChaCha8Rng::seed_from_u64(
                seed ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let (values, _) = self.apply(std::mem::take(&mut buffer), dataset.shape(), &mut rng)?;
            out.extend_from_slice(&values);
        }
        let labels = dataset.labels().map(|l| l[..count].to_vec());
        let mut result = Dataset::new(dataset.name(), out_shape, Pixels::F32(out), labels)?;
        if let Some(names) = dataset.class_names() {
            result = result.with_class_names(names.to_vec());
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    #[test]
    fn pad_crop_round_trip() {
        let x: Vec<f32> = (0..2 * 28 * 28).map(|i| i as f32).collect();
        let (padded, s) = Transform::Pad { pixels: 2 }
            .apply(x.clone(), [2, 28, 28], &mut rng())
            .unwrap();
        assert_eq!(s, [2, 32, 32]);
        assert_eq!(padded[0], 0.0);
        assert_eq!(padded[2 * 32 + 2], 0.0 + x[0]);
        let (back, s) = Transform::CenterCrop {
            height: 28,
            width: 28,
        }
        .apply(padded, s, &mut rng())
        .unwrap();
        assert_eq!(s, [2, 28, 28]);
        assert_eq!(back, x);
    }

    #[test]
    fn bilinear_resize_is_exact_on_linear_ramps_and_identity_at_same_size() {
        // A linear ramp stays linear under bilinear interpolation away from the clamped edges.
        let ramp: Vec<f32> = (0..8 * 8).map(|i| (i % 8) as f32).collect();
        let (up, _) = Transform::Resize {
            height: 16,
            width: 16,
        }
        .apply(ramp.clone(), [1, 8, 8], &mut rng())
        .unwrap();
        for x in 1..15 {
            let expected = ((x as f64 + 0.5) * 0.5 - 0.5) as f32;
            assert!((up[3 * 16 + x] - expected).abs() < 1e-5);
        }
        let (same, _) = Transform::Resize {
            height: 8,
            width: 8,
        }
        .apply(ramp.clone(), [1, 8, 8], &mut rng())
        .unwrap();
        assert_eq!(same, ramp);
    }

    #[test]
    fn flip_channels_scale() {
        let x = vec![0.0, 1.0, 2.0, 3.0];
        let (f, _) = Transform::HFlip { p: 1.0 }
            .apply(x.clone(), [1, 2, 2], &mut rng())
            .unwrap();
        assert_eq!(f, vec![1.0, 0.0, 3.0, 2.0]);
        let (c3, s) = Transform::Channels { to: 3 }
            .apply(x.clone(), [1, 2, 2], &mut rng())
            .unwrap();
        assert_eq!(s, [3, 2, 2]);
        let (c1, _) = Transform::Channels { to: 1 }
            .apply(c3, s, &mut rng())
            .unwrap();
        for (a, b) in c1.iter().zip(&x) {
            assert!((a - b).abs() < 1e-5);
        }
        let (sc, _) = Transform::Scale
            .apply(vec![0.0, 0.5, 1.0], [1, 1, 3], &mut rng())
            .unwrap();
        assert_eq!(sc, vec![-1.0, 0.0, 1.0]);
    }

    #[test]
    fn corruption_lives_in_its_band() {
        let t: Transform = "corrupt:a=0.3,b=0.5,gamma=2".parse().unwrap();
        let (y, _) = t
            .apply(vec![0.0; 4 * 16 * 16], [1, 16, 16], &mut rng())
            .unwrap();
        // Projecting the corruption onto the complement of the band leaves nothing.
        let table = band_table("corrupt", &(0.3, 0.5), 16, 16).unwrap();
        let complement: Vec<f64> = table.iter().map(|v| 1.0 - v).collect();
        let cov = SpectralCovariance::from_amplitudes(
            "complement",
            complement,
            [1, 16, 16],
            Normalization::None,
        )
        .unwrap();
        let mut outside: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        cov.colour(&mut outside).unwrap();
        let energy: f64 = y.iter().map(|v| (*v as f64).powi(2)).sum();
        let leaked: f64 = outside.iter().map(|v| v * v).sum();
        assert!(energy > 1.0 && leaked < 1e-8 * energy);
    }

    /// A transform whose parameters overflow finite images is refused, naming it.
    #[test]
    fn overflowing_transforms_are_refused_by_name() {
        let p = Pipeline::parse(&["corrupt:a=0.1,b=0.9,gamma=1e39"]).unwrap();
        let e = p
            .apply(vec![0.5; 2 * 8 * 8], [1, 8, 8], &mut rng())
            .unwrap_err();
        assert!(matches!(e, DatasetError::InvalidParam { .. }), "{e}");
        assert!(e.to_string().contains("transform `corrupt"), "{e}");
        let fine = Pipeline::parse(&["corrupt:a=0.1,b=0.9,gamma=2", "scale"]).unwrap();
        assert!(
            fine.apply(vec![0.5; 2 * 8 * 8], [1, 8, 8], &mut rng())
                .is_ok()
        );
    }

    #[test]
    fn parses_and_rejects() {
        let p =
            Pipeline::parse(&["pad:2", "resize:16x16", "hflip", "channels:3", "scale"]).unwrap();
        assert_eq!(p.output_shape([1, 28, 28]).unwrap(), [3, 16, 16]);
        for bad in [
            "pad",
            "pad:-1",
            "crop:0x3",
            "hflip:2",
            "channels:2",
            "corrupt:a=0.5,b=0.1",
            "corrupt:a=0.1",
            "blur:3",
            "corrupt:a=0.1,b=0.2,x=1",
            "notch:a=0.3",
            "notch:a=0.3,b=0.2",
            "notch:a=0.1,b=0.2,gamma=1",
            "clamp:lo=1,hi=0",
            "clamp:lo=nan",
            "clamp:hi=inf",
            "clamp:3",
        ] {
            assert!(bad.parse::<Transform>().is_err(), "{bad}");
        }
        assert!(
            Transform::CenterCrop {
                height: 40,
                width: 40
            }
            .output_shape([1, 32, 32])
            .is_err()
        );
        let text = "corrupt:a=0.1,b=0.2,gamma=0.5,energy=true";
        assert_eq!(text.parse::<Transform>().unwrap().to_string(), text);
        let text = "notch:a=0.1,b=0.2";
        assert_eq!(text.parse::<Transform>().unwrap().to_string(), text);
        let text = "clamp:lo=-1,hi=1";
        assert_eq!(text.parse::<Transform>().unwrap().to_string(), text);
        assert_eq!(
            "clamp".parse::<Transform>().unwrap(),
            Transform::Clamp { lo: 0.0, hi: 1.0 }
        );
    }

    /// The clamp against the values written out: inside values kept bit for bit, outside
    /// ones set to the nearer bound.
    #[test]
    fn clamp_keeps_the_range_and_sets_the_rest_to_its_bounds() {
        let x = vec![-0.5, 0.0, 0.25, 1.0, 1.5, -0.0];
        let (y, shape) = "clamp"
            .parse::<Transform>()
            .unwrap()
            .apply(x, [1, 2, 3], &mut rng())
            .unwrap();
        assert_eq!(shape, [1, 2, 3]);
        assert_eq!(y, vec![0.0, 0.0, 0.25, 1.0, 1.0, -0.0]);
        let (y, _) = "clamp:lo=-1,hi=0.5"
            .parse::<Transform>()
            .unwrap()
            .apply(vec![-2.0, 0.75], [1, 1, 2], &mut rng())
            .unwrap();
        assert_eq!(y, vec![-1.0, 0.5]);
    }

    /// The notch removes exactly the band `corrupt` noises: against a DFT written out (sums of
    /// cosines and sines over the pixels), the notched image has no energy on the band's
    /// modes and keeps every other mode's coefficient; notching a corruption of a clean image
    /// gives back the clean image notched.
    #[test]
    fn notch_removes_the_corrupted_band_and_nothing_else() {
        let (h, w) = (8, 6);
        let x: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0)
            .collect();
        let notch: Transform = "notch:a=0.3,b=0.6".parse().unwrap();
        let (y, shape) = notch.apply(x.clone(), [1, h, w], &mut rng()).unwrap();
        assert_eq!(shape, [1, h, w]);
        let table = band_table("notch", &(0.3, 0.6), h, w).unwrap();
        let dft = |img: &[f32], k: usize, l: usize| {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for yy in 0..h {
                for xx in 0..w {
                    let phase = -2.0
                        * std::f64::consts::PI
                        * ((k * yy) as f64 / h as f64 + (l * xx) as f64 / w as f64);
                    re += f64::from(img[yy * w + xx]) * phase.cos();
                    im += f64::from(img[yy * w + xx]) * phase.sin();
                }
            }
            (re, im)
        };
        for image in 0..2 {
            let (xi, yi) = (&x[image * h * w..][..h * w], &y[image * h * w..][..h * w]);
            for k in 0..h {
                for l in 0..w {
                    let (a, b) = (dft(xi, k, l), dft(yi, k, l));
                    let expected = if table[k * w + l] > 0.0 {
                        (0.0, 0.0)
                    } else {
                        a
                    };
                    assert!(
                        (b.0 - expected.0).abs() < 1e-4 && (b.1 - expected.1).abs() < 1e-4,
                        "mode ({k}, {l}): {b:?} vs {expected:?}"
                    );
                }
            }
        }
        let corrupt: Transform = "corrupt:a=0.3,b=0.6,gamma=3".parse().unwrap();
        let (dirty, _) = corrupt.apply(x.clone(), [1, h, w], &mut rng()).unwrap();
        let (cleaned, _) = notch.apply(dirty, [1, h, w], &mut rng()).unwrap();
        for (c, e) in cleaned.iter().zip(&y) {
            assert!((c - e).abs() < 1e-5);
        }
    }
}
