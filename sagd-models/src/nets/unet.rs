//! The `unet` denoiser: a DDPM-style U-Net. Residual blocks (GroupNorm, SiLU, 3×3
//! convolutions, a projection of the time embedding added in the middle), strided-convolution
//! downsampling, nearest-neighbour upsampling followed by a convolution, skip connections from
//! every block of the down path, single-head self-attention at chosen resolutions, and a
//! middle block `res → attention → res`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::activation::silu;
use super::embedding::sinusoidal;
use super::{Conditioning, NetworkConfig};
use crate::error::ModelError;
use crate::init::ParamInit;

/// A U-Net size preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnetPreset {
    /// [`UnetArch::tiny`].
    Tiny,
    /// [`UnetArch::paper`].
    Paper,
}

/// The `[model]` table of `kind = "unet"`: [`UnetDenoiser`], a preset with any of its fields
/// overridden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// `tiny` (the default) or `paper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<UnetPreset>,
    /// Channel widths per level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// Residual blocks per level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// Resolutions with self-attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Vec<usize>>,
    /// GroupNorm groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
}

impl Default for UnetConfig {
    /// The `tiny` preset.
    fn default() -> Self {
        Self::preset(UnetPreset::Tiny)
    }
}

impl UnetConfig {
    /// A preset without overrides.
    pub fn preset(preset: UnetPreset) -> Self {
        Self {
            preset: Some(preset),
            widths: None,
            blocks: None,
            attention: None,
            groups: None,
        }
    }

    /// The architecture: the preset (`tiny` when unset) with the overrides applied.
    pub fn arch(&self) -> UnetArch {
        let mut arch = match self.preset.unwrap_or(UnetPreset::Tiny) {
            UnetPreset::Tiny => UnetArch::tiny(),
            UnetPreset::Paper => UnetArch::paper(),
        };
        if let Some(w) = &self.widths {
            arch.widths = w.clone();
        }
        if let Some(b) = self.blocks {
            arch.blocks = b;
        }
        if let Some(a) = &self.attention {
            arch.attention = a.clone();
        }
        if let Some(g) = self.groups {
            arch.groups = g;
        }
        arch
    }
}

impl NetworkConfig for UnetConfig {
    type Network = UnetDenoiser;

    fn validate(&self, [c, h, w]: [usize; 3], _levels: usize) -> Result<(), ModelError> {
        let arch = self.arch();
        if arch.widths.is_empty() || arch.widths.contains(&0) {
            return Err(ModelError::config(
                "model.widths",
                format!("{:?}", arch.widths),
                "a non-empty list of positive widths",
            ));
        }
        if arch.blocks == 0 {
            return Err(ModelError::config("model.blocks", 0, "at least 1"));
        }
        if arch.groups == 0 || arch.widths.iter().any(|w| w % arch.groups.min(*w) != 0) {
            return Err(ModelError::config(
                "model.groups",
                arch.groups,
                format!("a number of groups dividing every width {:?}", arch.widths),
            ));
        }
        let factor = 1usize << (arch.widths.len() - 1);
        if h != w || h % factor != 0 {
            return Err(ModelError::config(
                "model.widths",
                format!("{:?}", arch.widths),
                format!(
                    "square images whose side divides by 2^(levels-1) = {factor}; the data is \
                     {c}x{h}x{w} (pad or resize it)"
                ),
            ));
        }
        arch.check_group_sizes([c, h, w])
    }

    fn init(&self, [c, h, _]: [usize; 3], _levels: usize, init: &mut ParamInit) -> UnetDenoiser {
        UnetDenoiser::new(c, h, &self.arch(), init)
    }
}

/// The architecture of a U-Net (see [`UnetArch::tiny`] and [`UnetArch::paper`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UnetArch {
    /// Channel width of each resolution level, from the input resolution down.
    pub widths: Vec<usize>,
    /// Residual blocks per level on the down path (the up path has one more).
    pub blocks: usize,
    /// Resolutions (image side in pixels) with self-attention after each residual block.
    pub attention: Vec<usize>,
    /// Groups of every GroupNorm.
    pub groups: usize,
}

impl UnetArch {
    /// About 1.6 M parameters: widths 32/64/64, one block per level, attention at 8×8 for
    /// 32×32 inputs. Fast enough to train on a CPU.
    pub fn tiny() -> Self {
        Self {
            widths: vec![32, 64, 64],
            blocks: 1,
            attention: vec![8],
            groups: 8,
        }
    }

    /// The spectral-bias paper's U-Net: 4 levels of widths 32/64/128/256, two blocks per
    /// level, attention at 8×8 — about 16 M parameters at 32×32.
    pub fn paper() -> Self {
        Self {
            widths: vec![32, 64, 128, 256],
            blocks: 2,
            attention: vec![8],
            groups: 8,
        }
    }

    /// Every GroupNorm of the network on `size`-pixel images, in build order (it mirrors
    /// [`UnetDenoiser::new`]): its level, the side of its feature map and its channels.
    fn group_norms(&self, size: usize) -> Vec<NormSite> {
        let levels = self.widths.len();
        let mut norms = Vec::new();
        let mut skips = vec![self.widths[0]];
        let mut ch = self.widths[0];
        let mut side = size;
        let stage = |norms: &mut Vec<NormSite>, level, side, c_in, width| {
            norms.push(NormSite {
                level,
                side,
                channels: c_in,
            });
            norms.push(NormSite {
                level,
                side,
                channels: width,
            });
            if self.attention.contains(&side) {
                norms.push(NormSite {
                    level,
                    side,
                    channels: width,
                });
            }
        };
        for (level, &width) in self.widths.iter().enumerate() {
            for _ in 0..self.blocks {
                stage(&mut norms, level, side, ch, width);
                ch = width;
                skips.push(ch);
            }
            if level + 1 < levels {
                skips.push(ch);
                side /= 2;
            }
        }
        // The middle: two residual blocks (two norms each) around an attention block.
        let middle = NormSite {
            level: levels - 1,
            side,
            channels: ch,
        };
        norms.extend([middle; 5]);
        for (level, &width) in self.widths.iter().enumerate().rev() {
            for _ in 0..=self.blocks {
                let skip = skips.pop().unwrap_or(0);
                stage(&mut norms, level, side, ch + skip, width);
                ch = width;
            }
            if level > 0 {
                side *= 2;
            }
        }
        norms.push(NormSite {
            level: 0,
            side,
            channels: ch,
        });
        norms
    }

    /// Refuses a GroupNorm whose groups do not divide its channels (burn would panic), and one
    /// whose groups hold fewer than 2 values on `[C, H, W]` images (call after the widths and
    /// the image side are checked): such a group normalises a single value to zero, so
    /// `silu(norm(·))` is a constant and the convolution after it (zero-initialised in every
    /// residual branch) never gets a gradient (pytorch#19250).
    fn check_group_sizes(&self, [c, h, w]: [usize; 3]) -> Result<(), ModelError> {
        for NormSite {
            level,
            side,
            channels,
        } in self.group_norms(h)
        {
            let groups = self.groups.min(channels);
            if channels % groups != 0 {
                return Err(ModelError::config(
                    "model.groups",
                    self.groups,
                    format!(
                        "a number of groups dividing the channels of every GroupNorm: a block \
                         at U-Net level {level} takes in {channels} channels (the up path adds \
                         the skip's width to the level's), which {groups} groups do not divide; \
                         use a number of groups dividing every width and every such sum"
                    ),
                ));
            }
            let values = channels / groups * side * side;
            if values < 2 {
                return Err(ModelError::config(
                    "model.groups",
                    self.groups,
                    format!(
                        "GroupNorm groups of at least 2 values on the {c}×{h}×{w} data: U-Net \
                         level {level} is {side}×{side} with {channels} channels in {groups} \
                         groups: each GroupNorm group holds {values} value (needs ≥ 2), which it \
                         normalises to 0, so the blocks there never learn; use fewer groups, \
                         fewer levels (model.widths) or larger images"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A GroupNorm of the U-Net: its level, the side of its (square) feature map, its channels.
#[derive(Debug, Clone, Copy)]
struct NormSite {
    level: usize,
    side: usize,
    channels: usize,
}

/// `x + conv2(silu(norm2(conv1(silu(norm1(x))) + proj(e))))`, with a 1×1 skip when the
/// width changes.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(c_in: usize, c_out: usize, emb: usize, groups: usize, init: &mut ParamInit) -> Self {
        Self {
            norm1: init.group_norm(groups.min(c_in), c_in),
            conv1: init.conv2d(c_in, c_out, 3, 1, false),
            time: init.linear(emb, c_out, false),
            norm2: init.group_norm(groups.min(c_out), c_out),
            conv2: init.conv2d(c_out, c_out, 3, 1, true),
            skip: (c_in != c_out).then(|| init.conv2d(c_in, c_out, 1, 1, false)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [b, c, _, _] = h.dims();
        let h = h + self.time.forward(silu(emb)).reshape([b, c, 1, 1]);
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        match &self.skip {
            Some(skip) => skip.forward(x) + h,
            None => x + h,
        }
    }
}

/// Single-head self-attention over the pixels, residual.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
}

impl AttentionBlock {
    fn new(c: usize, groups: usize, init: &mut ParamInit) -> Self {
        Self {
            norm: init.group_norm(groups.min(c), c),
            qkv: init.conv2d(c, 3 * c, 1, 1, false),
            proj: init.conv2d(c, c, 1, 1, true),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let qkv = self.qkv.forward(self.norm.forward(x.clone()));
        let mut parts = qkv.reshape([b, 3 * c, n]).chunk(3, 1).into_iter();
        let (q, k, v) = match (parts.next(), parts.next(), parts.next()) {
            (Some(q), Some(k), Some(v)) => (q, k, v),
            _ => unreachable!("chunk(3) of 3c channels gives three parts"),
        };
        // [B, N, C] · [B, C, N] → [B, N, N]
        let scores = q.swap_dims(1, 2).matmul(k).div_scalar((c as f64).sqrt());
        let attn = softmax(scores, 2);
        // [B, N, N] · [B, N, C] → [B, N, C] → [B, C, N]
        let out = attn.matmul(v.swap_dims(1, 2)).swap_dims(1, 2);
        x + self.proj.forward(out.reshape([b, c, h, w]))
    }
}

/// One stage of either path: a residual block and optional attention.
#[derive(Module, Debug)]
pub struct Stage {
    res: ResBlock,
    attn: Option<AttentionBlock>,
}

impl Stage {
    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.res.forward(x, emb);
        match &self.attn {
            Some(attn) => attn.forward(h),
            None => h,
        }
    }
}

/// A DDPM-style U-Net.
#[derive(Module, Debug)]
pub struct UnetDenoiser {
    time1: Linear,
    time2: Linear,
    conv_in: Conv2d,
    down: Vec<Stage>,
    /// After the blocks of each level but the last: a stride-2 convolution.
    downsample: Vec<Conv2d>,
    mid1: ResBlock,
    mid_attn: AttentionBlock,
    mid2: ResBlock,
    up: Vec<Stage>,
    /// After the blocks of each level but the first (input resolution): ×2 upsampling conv.
    upsample: Vec<Conv2d>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    /// Width of the sinusoidal embedding (the first level's width).
    pub embedding: usize,
    /// Residual blocks per level on the down path.
    pub blocks: usize,
    /// Number of resolution levels.
    pub levels: usize,
}

impl UnetDenoiser {
    /// A U-Net for `channels`-channel images of side `size`, the architecture `arch`; the last
    /// convolution of every residual branch and the output convolution start at zero.
    pub fn new(channels: usize, size: usize, arch: &UnetArch, init: &mut ParamInit) -> Self {
        let w0 = arch.widths[0];
        let emb = 4 * w0;
        let g = arch.groups;
        let levels = arch.widths.len();
        let mut skips = vec![w0];
        let mut down = Vec::new();
        let mut downsample = Vec::new();
        let mut ch = w0;
        let mut res = size;
        for (i, &width) in arch.widths.iter().enumerate() {
            for _ in 0..arch.blocks {
                down.push(Stage {
                    res: ResBlock::new(ch, width, emb, g, init),
                    attn: arch
                        .attention
                        .contains(&res)
                        .then(|| AttentionBlock::new(width, g, init)),
                });
                ch = width;
                skips.push(ch);
            }
            if i + 1 < levels {
                downsample.push(init.conv2d(ch, ch, 3, 2, false));
                skips.push(ch);
                res /= 2;
            }
        }
        let mid1 = ResBlock::new(ch, ch, emb, g, init);
        let mid_attn = AttentionBlock::new(ch, g, init);
        let mid2 = ResBlock::new(ch, ch, emb, g, init);
        let mut up = Vec::new();
        let mut upsample = Vec::new();
        for (i, &width) in arch.widths.iter().enumerate().rev() {
            for _ in 0..=arch.blocks {
                let skip = skips.pop().unwrap_or(0);
                up.push(Stage {
                    res: ResBlock::new(ch + skip, width, emb, g, init),
                    attn: arch
                        .attention
                        .contains(&res)
                        .then(|| AttentionBlock::new(width, g, init)),
                });
                ch = width;
            }
            if i > 0 {
                upsample.push(init.conv2d(ch, ch, 3, 1, false));
                res *= 2;
            }
        }
        Self {
            time1: init.linear(w0, emb, false),
            time2: init.linear(emb, emb, false),
            conv_in: init.conv2d(channels, w0, 3, 1, false),
            down,
            downsample,
            mid1,
            mid_attn,
            mid2,
            up,
            upsample,
            norm_out: init.group_norm(g.min(ch), ch),
            conv_out: init.conv2d(ch, channels, 3, 1, true),
            embedding: w0,
            blocks: arch.blocks,
            levels,
        }
    }

    /// The prediction for `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: Tensor<4>, cond: &Conditioning) -> Tensor<4> {
        let device = x.device();
        let emb = sinusoidal(&cond.time, self.embedding, &device);
        let emb = self.time2.forward(silu(self.time1.forward(emb)));
        let mut h = self.conv_in.forward(x);
        let mut skips = vec![h.clone()];
        let mut stages = self.down.iter();
        for level in 0..self.levels {
            for _ in 0..self.blocks {
                if let Some(stage) = stages.next() {
                    h = stage.forward(h, emb.clone());
                    skips.push(h.clone());
                }
            }
            if let Some(down) = self.downsample.get(level) {
                h = down.forward(h);
                skips.push(h.clone());
            }
        }
        h = self.mid1.forward(h, emb.clone());
        h = self.mid_attn.forward(h);
        h = self.mid2.forward(h, emb.clone());
        let mut stages = self.up.iter();
        for level in 0..self.levels {
            for _ in 0..=self.blocks {
                if let (Some(stage), Some(skip)) = (stages.next(), skips.pop()) {
                    h = stage.forward(Tensor::cat(vec![h, skip], 1), emb.clone());
                }
            }
            if let Some(up) = self.upsample.get(level) {
                h = up.forward(upsample2(h));
            }
        }
        self.conv_out.forward(silu(self.norm_out.forward(h)))
    }
}

/// Nearest-neighbour ×2 upsampling by repetition (its gradient sums each 2×2 block).
fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, 2)
        .repeat_dim(5, 2)
        .reshape([b, c, 2 * h, 2 * w])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(widths: &[usize], groups: usize) -> UnetConfig {
        UnetConfig {
            widths: Some(widths.to_vec()),
            attention: Some(Vec::new()),
            groups: Some(groups),
            ..UnetConfig::default()
        }
    }

    /// pytorch#19250: at a 1×1 level every group of 8 channels in 8 groups normalises one
    /// value, so the blocks there never learn; refused naming the level, its size and the fix.
    #[test]
    fn a_groupnorm_group_of_one_value_is_refused_naming_the_level() {
        let e = config(&[8, 8, 8], 8).validate([1, 4, 4], 1000).unwrap_err();
        assert!(e.is_usage());
        let e = e.to_string();
        assert!(
            e.contains("`model.groups` = 8")
                && e.contains("U-Net level 2 is 1×1 with 8 channels in 8 groups")
                && e.contains("holds 1 value (needs ≥ 2)")
                && e.contains("use fewer groups, fewer levels (model.widths) or larger images"),
            "{e}"
        );
        // The same network on 8×8 images has 2×2 at its last level: 4 values per group.
        assert!(config(&[8, 8, 8], 8).validate([1, 8, 8], 1000).is_ok());
        // Fewer groups or fewer levels fix it.
        assert!(config(&[8, 8, 8], 4).validate([1, 4, 4], 1000).is_ok());
        assert!(config(&[8, 8], 8).validate([1, 4, 4], 1000).is_ok());
        // A narrower level above a 1×1 one: its first block takes in the narrower width.
        let e = config(&[8, 16], 8)
            .validate([1, 2, 2], 1000)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("level 1 is 1×1 with 8 channels in 8 groups"),
            "{e}"
        );
        assert!(config(&[16, 16], 8).validate([1, 2, 2], 1000).is_ok());
    }

    /// Widths whose up-path sums (4 + 8 = 12) the groups do not divide: a config error, not
    /// burn's panic in `GroupNorm::new`.
    #[test]
    fn groups_that_do_not_divide_an_up_path_sum_are_refused() {
        for widths in [[4, 8], [8, 4]] {
            let e = config(&widths, 8).validate([1, 8, 8], 1000).unwrap_err();
            assert!(e.is_usage());
            let e = e.to_string();
            assert!(
                e.contains("`model.groups` = 8") && e.contains("takes in 12 channels"),
                "{widths:?}: {e}"
            );
            assert!(config(&widths, 4).validate([1, 8, 8], 1000).is_ok());
        }
    }

    /// The validation's list of GroupNorms is the network's: the same channel counts as the
    /// `gamma` of every norm a built U-Net holds, for several architectures.
    #[test]
    fn the_listed_group_norms_are_the_built_ones() {
        let device = burn::tensor::Device::flex();
        for (widths, blocks, attention) in [
            (vec![8, 16, 16], 1, vec![4]),
            (vec![4, 8], 2, vec![8, 4]),
            (vec![8, 8, 16, 16], 2, vec![2]),
        ] {
            let arch = UnetArch {
                widths,
                blocks,
                attention,
                groups: 4,
            };
            let net = UnetDenoiser::new(1, 8, &arch, &mut ParamInit::new(0, &device));
            let mut built: Vec<usize> = crate::params::param_infos(&net)
                .into_iter()
                .filter(|p| p.name.ends_with(".gamma"))
                .map(|p| p.shape[0])
                .collect();
            let mut listed: Vec<usize> = arch.group_norms(8).iter().map(|n| n.channels).collect();
            built.sort_unstable();
            listed.sort_unstable();
            assert_eq!(built, listed, "{arch:?}");
        }
    }
}
