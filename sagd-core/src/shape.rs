//! Image shapes whose dimensions are known at compile time ([`Const`]) or at run time
//! (`usize`), and [`Images`], a batch of images over a burn tensor that carries its shape type.
//!
//! A pipeline written for `Const` shapes fails to compile when its parts disagree:
//!
//! ```compile_fail,E0308
//! use sagd_core::prelude::*;
//! fn pipeline<S: ImageShape>(noise: &impl NoiseOperator<S>, data: &Images<S>) {}
//! fn demo(noise: SpectralNoise<ConstShape<1, 8, 8>>, data: Images<ConstShape<1, 16, 16>>) {
//!     pipeline(&noise, &data); // 8×8 noise for 16×16 images: a type error
//! }
//! ```
//!
//! while matching shapes compile:
//!
//! ```
//! use sagd_core::prelude::*;
//! fn pipeline<S: ImageShape>(noise: &impl NoiseOperator<S>, data: &Images<S>) {}
//! fn demo(noise: SpectralNoise<ConstShape<1, 8, 8>>, data: Images<ConstShape<1, 8, 8>>) {
//!     pipeline(&noise, &data);
//! }
//! ```

use std::fmt::Debug;
use std::str::FromStr;

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::CoreError;

/// One dimension of an image shape: a compile-time [`Const`] or a run-time `usize`.
pub trait Dim: Copy + Debug + PartialEq + Send + Sync + 'static {
    /// Its value.
    fn value(&self) -> usize;
    /// The dimension of value `n`, or `None` when a `Const` dimension differs from `n`.
    fn from_value(n: usize) -> Option<Self>;
}

/// A dimension known at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Const<const N: usize>;

impl<const N: usize> Dim for Const<N> {
    fn value(&self) -> usize {
        N
    }
    fn from_value(n: usize) -> Option<Self> {
        (n == N).then_some(Const)
    }
}

impl Dim for usize {
    fn value(&self) -> usize {
        *self
    }
    fn from_value(n: usize) -> Option<Self> {
        Some(n)
    }
}

/// The shape (C, H, W) of one image.
pub trait ImageShape: Copy + Debug + PartialEq + Send + Sync + 'static {
    /// Channels.
    fn channels(&self) -> usize;
    /// Height.
    fn height(&self) -> usize;
    /// Width.
    fn width(&self) -> usize;
    /// `[C, H, W]`.
    fn dims(&self) -> [usize; 3] {
        [self.channels(), self.height(), self.width()]
    }
    /// Values per image, `C·H·W`.
    fn numel(&self) -> usize {
        self.channels() * self.height() * self.width()
    }
    /// The shape with these dims, or an error when a compile-time dim disagrees.
    fn from_dims(dims: [usize; 3]) -> Result<Self, CoreError>;
}

/// An image shape built from three dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Shape3<C: Dim, H: Dim, W: Dim> {
    /// Channels.
    pub c: C,
    /// Height.
    pub h: H,
    /// Width.
    pub w: W,
}

/// A shape fixed at compile time, e.g. `ConstShape<3, 32, 32>`.
pub type ConstShape<const C: usize, const H: usize, const W: usize> =
    Shape3<Const<C>, Const<H>, Const<W>>;

/// A shape known at run time (what the CLI uses).
pub type DynShape = Shape3<usize, usize, usize>;

impl DynShape {
    /// A run-time shape.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Shape3 {
            c: channels,
            h: height,
            w: width,
        }
    }
}

impl<C: Dim, H: Dim, W: Dim> ImageShape for Shape3<C, H, W> {
    fn channels(&self) -> usize {
        self.c.value()
    }
    fn height(&self) -> usize {
        self.h.value()
    }
    fn width(&self) -> usize {
        self.w.value()
    }
    fn from_dims(dims: [usize; 3]) -> Result<Self, CoreError> {
        let mismatch = || CoreError::ShapeMismatch {
            context: "image shape".to_string(),
            expected: format!("{:?}", std::any::type_name::<Self>()),
            got: format!("{}x{}x{}", dims[0], dims[1], dims[2]),
        };
        Ok(Shape3 {
            c: C::from_value(dims[0]).ok_or_else(mismatch)?,
            h: H::from_value(dims[1]).ok_or_else(mismatch)?,
            w: W::from_value(dims[2]).ok_or_else(mismatch)?,
        })
    }
}

impl FromStr for DynShape {
    type Err = CoreError;
    /// Parses `CxHxW`, e.g. `3x32x32`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| CoreError::InvalidSize {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.trim().split(['x', 'X']).collect();
        if parts.len() != 3 {
            return Err(err("expected CxHxW, e.g. 3x32x32"));
        }
        let mut dims = [0usize; 3];
        for (d, p) in dims.iter_mut().zip(&parts) {
            *d = p
                .trim()
                .parse()
                .map_err(|_| err(&format!("`{p}` is not a positive integer")))?;
            if *d == 0 {
                return Err(err("every dimension must be at least 1"));
            }
        }
        Ok(DynShape::new(dims[0], dims[1], dims[2]))
    }
}

/// A batch of images `(N, C, H, W)` on a burn device, tagged with its shape type.
#[derive(Debug, Clone)]
pub struct Images<S: ImageShape> {
    tensor: Tensor<4>,
    shape: S,
}

impl<S: ImageShape> Images<S> {
    /// Wraps a tensor, checking that its trailing dims are `shape`.
    pub fn new(tensor: Tensor<4>, shape: S) -> Result<Self, CoreError> {
        let [_, c, h, w] = tensor.dims();
        if [c, h, w] != shape.dims() {
            return Err(CoreError::ShapeMismatch {
                context: "image batch".to_string(),
                expected: format!(
                    "(N, {}, {}, {})",
                    shape.channels(),
                    shape.height(),
                    shape.width()
                ),
                got: format!("{:?}", tensor.dims()),
            });
        }
        Ok(Self { tensor, shape })
    }

    /// A batch from host values laid out (N, C, H, W).
    pub fn from_host(values: Vec<f32>, shape: S, device: &Device) -> Result<Self, CoreError> {
        let numel = shape.numel();
        if values.is_empty() || !values.len().is_multiple_of(numel) {
            return Err(CoreError::ShapeMismatch {
                context: "image batch from host values".to_string(),
                expected: format!("a positive multiple of {numel} values"),
                got: format!("{} values", values.len()),
            });
        }
        let count = values.len() / numel;
        let [c, h, w] = shape.dims();
        let tensor = Tensor::<4>::from_data(TensorData::new(values, [count, c, h, w]), device);
        Ok(Self { tensor, shape })
    }

    /// The values, (N, C, H, W) row-major, copied to the host.
    pub fn to_host(&self) -> Vec<f32> {
        self.tensor
            .to_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("converted to f32")
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.tensor.dims()[0]
    }

    /// The shape of one image.
    pub fn shape(&self) -> S {
        self.shape
    }

    /// The underlying tensor.
    pub fn tensor(&self) -> &Tensor<4> {
        &self.tensor
    }

    /// Unwraps the tensor.
    pub fn into_tensor(self) -> Tensor<4> {
        self.tensor
    }

    /// The device the batch lives on.
    pub fn device(&self) -> Device {
        self.tensor.device()
    }

    /// Applies a tensor map that keeps the shape.
    pub fn map(self, f: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Result<Self, CoreError> {
        let shape = self.shape;
        Self::new(f(self.tensor), shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_rejects_bad_ones() {
        let s: DynShape = "3x32x16".parse().unwrap();
        assert_eq!(s.dims(), [3, 32, 16]);
        assert!("3x32".parse::<DynShape>().is_err());
        assert!("3x0x4".parse::<DynShape>().is_err());
        assert!("axbxc".parse::<DynShape>().is_err());
    }

    #[test]
    fn const_shapes_check_their_dims() {
        assert!(ConstShape::<1, 8, 8>::from_dims([1, 8, 8]).is_ok());
        assert!(ConstShape::<1, 8, 8>::from_dims([1, 8, 9]).is_err());
        assert_eq!(ConstShape::<3, 4, 5>::default().numel(), 60);
    }

    #[test]
    fn images_round_trip_through_the_device() {
        let device = Device::flex();
        let values: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let images = Images::from_host(values.clone(), DynShape::new(1, 3, 4), &device).unwrap();
        assert_eq!(images.count(), 2);
        assert_eq!(images.to_host(), values);
        assert!(Images::from_host(vec![0.0; 5], DynShape::new(1, 3, 4), &device).is_err());
    }
}
