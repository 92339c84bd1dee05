//! Seeded parameter initialization.
//!
//! burn's initializers draw from a per-device generator that every thread shares, so two
//! models built at once (as tests do) would interleave their draws. Every sagd layer is instead
//! built from a [`ParamInit`] that owns its own ChaCha8 stream: the same seed gives the same
//! weights whatever else runs. The scheme is PyTorch's default for `nn.Linear` and `nn.Conv2d`
//! (weights and biases uniform in `±1/√fan_in`), which the PyTorch peer benchmark also uses.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded source of initial weights on one device.
pub struct ParamInit {
    rng: ChaCha8Rng,
    device: Device,
}

impl ParamInit {
    /// Weights drawn from `seed`, placed on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
        }
    }

    /// The device parameters are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A tensor of `shape` with entries uniform in `[-bound, bound]`.
    pub fn uniform<const D: usize>(&mut self, shape: [usize; D], bound: f64) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| (self.rng.random::<f64>() * 2.0 - 1.0) * bound)
            .map(|v| v as f32)
            .collect();
        self.tensor(values, shape)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn constant<const D: usize>(&self, shape: [usize; D], value: f32) -> Tensor<D> {
        let n: usize = shape.iter().product();
        self.tensor(vec![value; n], shape)
    }

    /// A tensor from host values.
    pub fn tensor<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }

    /// A trainable parameter from a tensor.
    pub fn param<const D: usize>(&self, tensor: Tensor<D>) -> Param<Tensor<D>> {
        Param::from_tensor(tensor)
    }

    /// A dense layer `d_in → d_out` with PyTorch's default initialization; `zero` makes its
    /// weights and bias zero (output layers that should start as the identity's residual).
    pub fn linear(&mut self, d_in: usize, d_out: usize, zero: bool) -> Linear {
        let mut layer = LinearConfig::new(d_in, d_out).init(&self.device);
        let bound = if zero {
            0.0
        } else {
            1.0 / (d_in as f64).sqrt()
        };
        layer.weight = Param::from_tensor(self.uniform([d_in, d_out], bound));
        layer.bias = Some(Param::from_tensor(self.uniform([d_out], bound)));
        layer
    }

    /// A `k×k` convolution `c_in → c_out` with stride 1 or 2 and "same"-style padding `k/2`.
    pub fn conv2d(
        &mut self,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        zero: bool,
    ) -> Conv2d {
        let pad = k / 2;
        let mut layer = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(&self.device);
        let fan_in = c_in * k * k;
        let bound = if zero {
            0.0
        } else {
            1.0 / (fan_in as f64).sqrt()
        };
        layer.weight = Param::from_tensor(self.uniform([c_out, c_in, k, k], bound));
        layer.bias = Some(Param::from_tensor(self.uniform([c_out], bound)));
        layer
    }

    /// Group normalization over `channels` in `groups` groups (scale 1, shift 0).
    pub fn group_norm(&mut self, groups: usize, channels: usize) -> GroupNorm {
        let mut norm = GroupNormConfig::new(groups, channels).init(&self.device);
        norm.gamma = Some(Param::from_tensor(self.constant([channels], 1.0)));
        norm.beta = Some(Param::from_tensor(self.constant([channels], 0.0)));
        norm
    }

    /// Layer normalization over `width` features (scale 1, shift 0).
    pub fn layer_norm(&mut self, width: usize) -> LayerNorm {
        let mut norm = LayerNormConfig::new(width).init(&self.device);
        norm.gamma = Param::from_tensor(self.constant([width], 1.0));
        norm.beta = Some(Param::from_tensor(self.constant([width], 0.0)));
        norm
    }
}
