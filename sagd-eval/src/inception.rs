//! The FID variant of Inception-v3, exactly as pytorch-fid computes its pool3 features
//! (pytorch-fid 0.3.0 `inception.py`: `fid_inception_v3` with `FIDInceptionA/C/E_1/E_2`).
//!
//! What differs from torchvision's Inception-v3, all of it kept here:
//! - BatchNorm with eps = 1e-3 after every (bias-free) convolution, then ReLU;
//! - the pool branch of the A, C and E_1 blocks is a 3×3 average pool, stride 1, pad 1, with
//!   `count_include_pad = false`; Mixed_7c's (E_2) is a 3×3 **max** pool, stride 1, pad 1;
//! - branches are concatenated in the order 1×1, 5×5/7×7/3×3, double, pool;
//! - the input: 8-bit images `/255`, bilinear resize to 299×299 with half-pixel centres and no
//!   antialiasing (`F.interpolate(..., align_corners=False)`, burn's `align_corners = false`),
//!   then `2x − 1`; grey images are copied to 3 channels;
//! - the output is the global average of the final 8×8×2048 map (no `fc`).
//!
//! Each BatchNorm is folded into its convolution at load (`w' = w·γ/√(v + ε)`,
//! `b' = β − m·γ/√(v + ε)`, computed in f64): the same function, one pass less per layer.

use std::path::Path;

use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    AvgPoolOptions, ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions,
};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::EvalError;
use crate::weights::{WeightsFile, WeightsInfo};

/// The dimension of the pool3 features.
pub const FEATURE_DIM: usize = 2048;

/// The side of the network's input, in pixels.
pub const INPUT_SIZE: usize = 299;

/// BatchNorm's ε in the FID network (the TensorFlow graph's 0.001, not PyTorch's 1e-5).
const BN_EPS: f64 = 1e-3;

/// A bias-free convolution, BatchNorm (folded into a weight and a bias) and ReLU.
#[derive(Debug, Clone)]
struct ConvBn {
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
}

impl ConvBn {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        ))
    }
}

/// Reads convolutions from a weights file onto a device.
struct Loader<'a> {
    file: &'a WeightsFile,
    device: &'a Device,
}

impl Loader<'_> {
    /// `name.conv.weight` (`[out, in, kh, kw]`) and `name.bn.{weight, bias, running_mean,
    /// running_var}` (`[out]`), folded.
    fn conv(
        &self,
        name: &str,
        channels: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
    ) -> Result<ConvBn, EvalError> {
        let [c_in, c_out] = channels;
        let weight = self.file.tensor(
            &format!("{name}.conv.weight"),
            &[c_out, c_in, kernel[0], kernel[1]],
        )?;
        let bn = |part: &str| self.file.tensor(&format!("{name}.bn.{part}"), &[c_out]);
        let (gamma, beta, mean, var) = (
            bn("weight")?,
            bn("bias")?,
            bn("running_mean")?,
            bn("running_var")?,
        );
        let per_out = c_in * kernel[0] * kernel[1];
        let mut folded = Vec::with_capacity(weight.len());
        let mut bias = Vec::with_capacity(c_out);
        for o in 0..c_out {
            let variance = f64::from(var[o]) + BN_EPS;
            if variance <= 0.0 {
                return Err(EvalError::Tensor {
                    path: self.file.info().path.clone(),
                    name: format!("{name}.bn.running_var"),
                    message: format!("holds {} at index {o}; a variance is >= 0", var[o]),
                });
            }
            let scale = f64::from(gamma[o]) / variance.sqrt();
            folded.extend(
                weight[o * per_out..(o + 1) * per_out]
                    .iter()
                    .map(|&w| (f64::from(w) * scale) as f32),
            );
            bias.push((f64::from(beta[o]) - f64::from(mean[o]) * scale) as f32);
        }
        Ok(ConvBn {
            weight: Tensor::from_data(
                TensorData::new(folded, [c_out, c_in, kernel[0], kernel[1]]),
                self.device,
            ),
            bias: Tensor::from_data(TensorData::new(bias, [c_out]), self.device),
            options: ConvOptions::new([stride, stride], padding, [1, 1], 1),
        })
    }

    /// A k×k kernel with the same stride and padding on both axes.
    fn square(
        &self,
        name: &str,
        channels: [usize; 2],
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<ConvBn, EvalError> {
        self.conv(name, channels, [k, k], stride, [pad, pad])
    }
}

/// 3×3 average pool, stride 1, pad 1, padding not counted (the A, C and E_1 pool branches).
fn avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    let mut options = AvgPoolOptions::new([3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1]);
    options.count_include_pad = false;
    avg_pool2d(x, options)
}

/// 3×3 max pool, stride 2, no padding (the stem, Mixed_6a and Mixed_7a).
fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

/// `FIDInceptionA`: Mixed_5b/5c/5d.
#[derive(Debug, Clone)]
struct BlockA {
    branch1x1: ConvBn,
    branch5x5: [ConvBn; 2],
    branch3x3dbl: [ConvBn; 3],
    branch_pool: ConvBn,
}

impl BlockA {
    fn load(l: &Loader, name: &str, c_in: usize, pool: usize) -> Result<Self, EvalError> {
        Ok(Self {
            branch1x1: l.square(&format!("{name}.branch1x1"), [c_in, 64], 1, 1, 0)?,
            branch5x5: [
                l.square(&format!("{name}.branch5x5_1"), [c_in, 48], 1, 1, 0)?,
                l.square(&format!("{name}.branch5x5_2"), [48, 64], 5, 1, 2)?,
            ],
            branch3x3dbl: [
                l.square(&format!("{name}.branch3x3dbl_1"), [c_in, 64], 1, 1, 0)?,
                l.square(&format!("{name}.branch3x3dbl_2"), [64, 96], 3, 1, 1)?,
                l.square(&format!("{name}.branch3x3dbl_3"), [96, 96], 3, 1, 1)?,
            ],
            branch_pool: l.square(&format!("{name}.branch_pool"), [c_in, pool], 1, 1, 0)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = chain(&self.branch5x5, x.clone());
        let b3 = chain(&self.branch3x3dbl, x.clone());
        let bp = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

/// `InceptionB`: Mixed_6a (grid reduction 35 → 17).
#[derive(Debug, Clone)]
struct BlockB {
    branch3x3: ConvBn,
    branch3x3dbl: [ConvBn; 3],
}

impl BlockB {
    fn load(l: &Loader, name: &str, c_in: usize) -> Result<Self, EvalError> {
        Ok(Self {
            branch3x3: l.square(&format!("{name}.branch3x3"), [c_in, 384], 3, 2, 0)?,
            branch3x3dbl: [
                l.square(&format!("{name}.branch3x3dbl_1"), [c_in, 64], 1, 1, 0)?,
                l.square(&format!("{name}.branch3x3dbl_2"), [64, 96], 3, 1, 1)?,
                l.square(&format!("{name}.branch3x3dbl_3"), [96, 96], 3, 2, 0)?,
            ],
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let dbl = chain(&self.branch3x3dbl, x.clone());
        Tensor::cat(vec![b3, dbl, max_pool_3x3_s2(x)], 1)
    }
}

/// `FIDInceptionC`: Mixed_6b–6e (factorised 7×7 convolutions of width `c7`).
#[derive(Debug, Clone)]
struct BlockC {
    branch1x1: ConvBn,
    branch7x7: [ConvBn; 3],
    branch7x7dbl: [ConvBn; 5],
    branch_pool: ConvBn,
}

impl BlockC {
    fn load(l: &Loader, name: &str, c_in: usize, c7: usize) -> Result<Self, EvalError> {
        let n = |part: &str| format!("{name}.{part}");
        let (row, col) = (([1, 7], [0, 3]), ([7, 1], [3, 0]));
        Ok(Self {
            branch1x1: l.square(&n("branch1x1"), [c_in, 192], 1, 1, 0)?,
            branch7x7: [
                l.square(&n("branch7x7_1"), [c_in, c7], 1, 1, 0)?,
                l.conv(&n("branch7x7_2"), [c7, c7], row.0, 1, row.1)?,
                l.conv(&n("branch7x7_3"), [c7, 192], col.0, 1, col.1)?,
            ],
            branch7x7dbl: [
                l.square(&n("branch7x7dbl_1"), [c_in, c7], 1, 1, 0)?,
                l.conv(&n("branch7x7dbl_2"), [c7, c7], col.0, 1, col.1)?,
                l.conv(&n("branch7x7dbl_3"), [c7, c7], row.0, 1, row.1)?,
                l.conv(&n("branch7x7dbl_4"), [c7, c7], col.0, 1, col.1)?,
                l.conv(&n("branch7x7dbl_5"), [c7, 192], row.0, 1, row.1)?,
            ],
            branch_pool: l.square(&n("branch_pool"), [c_in, 192], 1, 1, 0)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b7 = chain(&self.branch7x7, x.clone());
        let dbl = chain(&self.branch7x7dbl, x.clone());
        let bp = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![b1, b7, dbl, bp], 1)
    }
}

/// `InceptionD`: Mixed_7a (grid reduction 17 → 8).
#[derive(Debug, Clone)]
struct BlockD {
    branch3x3: [ConvBn; 2],
    branch7x7x3: [ConvBn; 4],
}

impl BlockD {
    fn load(l: &Loader, name: &str, c_in: usize) -> Result<Self, EvalError> {
        let n = |part: &str| format!("{name}.{part}");
        Ok(Self {
            branch3x3: [
                l.square(&n("branch3x3_1"), [c_in, 192], 1, 1, 0)?,
                l.square(&n("branch3x3_2"), [192, 320], 3, 2, 0)?,
            ],
            branch7x7x3: [
                l.square(&n("branch7x7x3_1"), [c_in, 192], 1, 1, 0)?,
                l.conv(&n("branch7x7x3_2"), [192, 192], [1, 7], 1, [0, 3])?,
                l.conv(&n("branch7x7x3_3"), [192, 192], [7, 1], 1, [3, 0])?,
                l.square(&n("branch7x7x3_4"), [192, 192], 3, 2, 0)?,
            ],
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = chain(&self.branch3x3, x.clone());
        let b7 = chain(&self.branch7x7x3, x.clone());
        Tensor::cat(vec![b3, b7, max_pool_3x3_s2(x)], 1)
    }
}

/// The pool of an E block's pool branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolE {
    /// `FIDInceptionE_1` (Mixed_7b): average, padding not counted.
    Average,
    /// `FIDInceptionE_2` (Mixed_7c): max.
    Max,
}

/// `FIDInceptionE_1` / `FIDInceptionE_2`: Mixed_7b / Mixed_7c (expanded filter banks).
#[derive(Debug, Clone)]
struct BlockE {
    branch1x1: ConvBn,
    branch3x3_1: ConvBn,
    branch3x3_2: [ConvBn; 2],
    branch3x3dbl: [ConvBn; 2],
    branch3x3dbl_3: [ConvBn; 2],
    branch_pool: ConvBn,
    pool: PoolE,
}

impl BlockE {
    fn load(l: &Loader, name: &str, c_in: usize, pool: PoolE) -> Result<Self, EvalError> {
        let n = |part: &str| format!("{name}.{part}");
        Ok(Self {
            branch1x1: l.square(&n("branch1x1"), [c_in, 320], 1, 1, 0)?,
            branch3x3_1: l.square(&n("branch3x3_1"), [c_in, 384], 1, 1, 0)?,
            branch3x3_2: [
                l.conv(&n("branch3x3_2a"), [384, 384], [1, 3], 1, [0, 1])?,
                l.conv(&n("branch3x3_2b"), [384, 384], [3, 1], 1, [1, 0])?,
            ],
            branch3x3dbl: [
                l.square(&n("branch3x3dbl_1"), [c_in, 448], 1, 1, 0)?,
                l.square(&n("branch3x3dbl_2"), [448, 384], 3, 1, 1)?,
            ],
            branch3x3dbl_3: [
                l.conv(&n("branch3x3dbl_3a"), [384, 384], [1, 3], 1, [0, 1])?,
                l.conv(&n("branch3x3dbl_3b"), [384, 384], [3, 1], 1, [1, 0])?,
            ],
            branch_pool: l.square(&n("branch_pool"), [c_in, 192], 1, 1, 0)?,
            pool,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2[0].forward(b3.clone()),
                self.branch3x3_2[1].forward(b3),
            ],
            1,
        );
        let dbl = chain(&self.branch3x3dbl, x.clone());
        let dbl = Tensor::cat(
            vec![
                self.branch3x3dbl_3[0].forward(dbl.clone()),
                self.branch3x3dbl_3[1].forward(dbl),
            ],
            1,
        );
        let pooled = match self.pool {
            PoolE::Average => avg_pool_3x3(x),
            PoolE::Max => max_pool2d(
                x,
                MaxPoolOptions::new([3, 3])
                    .with_stride([1, 1])
                    .with_padding([1, 1]),
            ),
        };
        let bp = self.branch_pool.forward(pooled);
        Tensor::cat(vec![b1, b3, dbl, bp], 1)
    }
}

/// Applies convolutions in order.
fn chain(convs: &[ConvBn], x: Tensor<4>) -> Tensor<4> {
    convs.iter().fold(x, |x, c| c.forward(x))
}

/// The FID Inception-v3 network on a device, its weights loaded and BatchNorm folded.
#[derive(Debug, Clone)]
pub struct FidInception {
    stem: [ConvBn; 3],
    stem2: [ConvBn; 2],
    mixed_5: [BlockA; 3],
    mixed_6a: BlockB,
    mixed_6: [BlockC; 4],
    mixed_7a: BlockD,
    mixed_7: [BlockE; 2],
    info: WeightsInfo,
    device: Device,
}

impl FidInception {
    /// Loads the weights at `path` (safetensors or a PyTorch state dict; see
    /// [`WeightsFile::open`]) onto `device`.
    ///
    /// # Errors
    /// Those of [`WeightsFile::open`], and [`EvalError::Tensor`] naming the first tensor the
    /// network needs that is missing or misshapen.
    pub fn load(path: &Path, device: &Device) -> Result<Self, EvalError> {
        Self::from_weights(&WeightsFile::open(path)?, device)
    }

    /// Builds the network from an open weights file.
    ///
    /// # Errors
    /// [`EvalError::Tensor`] naming the first tensor that is missing or misshapen.
    pub fn from_weights(file: &WeightsFile, device: &Device) -> Result<Self, EvalError> {
        let l = Loader { file, device };
        Ok(Self {
            stem: [
                l.square("Conv2d_1a_3x3", [3, 32], 3, 2, 0)?,
                l.square("Conv2d_2a_3x3", [32, 32], 3, 1, 0)?,
                l.square("Conv2d_2b_3x3", [32, 64], 3, 1, 1)?,
            ],
            stem2: [
                l.square("Conv2d_3b_1x1", [64, 80], 1, 1, 0)?,
                l.square("Conv2d_4a_3x3", [80, 192], 3, 1, 0)?,
            ],
            mixed_5: [
                BlockA::load(&l, "Mixed_5b", 192, 32)?,
                BlockA::load(&l, "Mixed_5c", 256, 64)?,
                BlockA::load(&l, "Mixed_5d", 288, 64)?,
            ],
            mixed_6a: BlockB::load(&l, "Mixed_6a", 288)?,
            mixed_6: [
                BlockC::load(&l, "Mixed_6b", 768, 128)?,
                BlockC::load(&l, "Mixed_6c", 768, 160)?,
                BlockC::load(&l, "Mixed_6d", 768, 160)?,
                BlockC::load(&l, "Mixed_6e", 768, 192)?,
            ],
            mixed_7a: BlockD::load(&l, "Mixed_7a", 768)?,
            mixed_7: [
                BlockE::load(&l, "Mixed_7b", 1280, PoolE::Average)?,
                BlockE::load(&l, "Mixed_7c", 2048, PoolE::Max)?,
            ],
            info: file.info().clone(),
            device: device.clone(),
        })
    }

    /// Where the weights came from.
    pub fn info(&self) -> &WeightsInfo {
        &self.info
    }

    /// The device the network runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// pytorch-fid's input normalisation: `[N, C, H, W]` images in `[0, 1]` (C = 1 or 3; grey
    /// is copied to three channels) → bilinear resize to 299×299 with half-pixel centres (skipped
    /// when the images already are 299×299, where it is the identity) → `2x − 1`.
    pub fn preprocess(images: Tensor<4>) -> Tensor<4> {
        let [_, channels, height, width] = images.dims();
        let resized = if [height, width] == [INPUT_SIZE, INPUT_SIZE] {
            images
        } else {
            interpolate(
                images,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size([INPUT_SIZE, INPUT_SIZE]),
            )
        };
        let rgb = if channels == 1 {
            resized.repeat_dim(1, 3)
        } else {
            resized
        };
        rgb.mul_scalar(2.0).sub_scalar(1.0)
    }

    /// The pool3 features `[N, 2048]` of `[N, C, H, W]` images in `[0, 1]` (C = 1 or 3; any
    /// H, W): [`preprocess`](Self::preprocess), then the network. The images should already be
    /// quantised to 8 bits (see [`crate::features`]), as pytorch-fid's are.
    ///
    /// # Panics
    /// When C is neither 1 nor 3 (callers check: [`crate::features::extract`] returns an error).
    pub fn pool3(&self, images: Tensor<4>) -> Tensor<2> {
        let channels = images.dims()[1];
        assert!(
            channels == 1 || channels == 3,
            "FID Inception takes 1 or 3 channels, got {channels}"
        );
        let x = Self::preprocess(images);
        let x = max_pool_3x3_s2(chain(&self.stem, x));
        let x = max_pool_3x3_s2(chain(&self.stem2, x));
        let x = self.mixed_5.iter().fold(x, |x, b| b.forward(x));
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6.iter().fold(x, |x, b| b.forward(x));
        let x = self.mixed_7a.forward(x);
        let x = self.mixed_7.iter().fold(x, |x, b| b.forward(x));
        let [n, c, _, _] = x.dims();
        adaptive_avg_pool2d(x, [1, 1]).reshape([n, c])
    }
}
