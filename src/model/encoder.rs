//! The twin encoder: images `[B, 1, H, W]` to embeddings `[B, D]`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use super::blocked_linear::{BlockedLinear, BlockedLinearConfig};

/// Koch's convolution weight initialisation: normal, mean 0, std 1e-2.
pub(crate) const KOCH_CONV_INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 1e-2,
};
/// Koch's bias initialisation (conv and fully connected): normal, mean 0.5, std 1e-2.
pub(crate) const KOCH_BIAS_INIT: Initializer = Initializer::Normal {
    mean: 0.5,
    std: 1e-2,
};
/// Koch's fully connected weight initialisation: normal, mean 0, std 2e-1.
pub(crate) const KOCH_FC_INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 2e-1,
};

/// One convolution block: conv, optional batch norm, ReLU, optional 2×2 max-pool.
#[derive(Config, Debug, PartialEq)]
pub struct ConvBlockConfig {
    /// Output channels.
    pub channels: usize,
    /// Side of the square kernel.
    pub kernel: usize,
    /// Zero padding on every side (0 is a "valid" convolution, as in Koch's net).
    #[config(default = 0)]
    pub padding: usize,
    /// Whether a 2×2 max-pool (stride 2) follows the activation.
    #[config(default = true)]
    pub pool: bool,
}

impl ConvBlockConfig {
    /// Side of the output feature map for an input of side `input`, or `None` when the
    /// kernel does not fit.
    pub fn output_size(&self, input: usize) -> Option<usize> {
        let conv = (input + 2 * self.padding).checked_sub(self.kernel)? + 1;
        let out = if self.pool { conv / 2 } else { conv };
        (out > 0).then_some(out)
    }
}

/// Activation applied to the embedding.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
#[non_exhaustive]
pub enum EmbeddingActivation {
    /// Logistic sigmoid, as Koch's fully connected layer.
    Sigmoid,
    /// Rectified linear unit.
    Relu,
    /// No activation.
    Identity,
}

/// Largest input side an encoder may take.
const MAX_INPUT_SIZE: usize = 1024;

/// Most parameters an encoder (with the head it feeds) may have: the 1 GiB of `f32`s a
/// weights file may hold (Koch's network has 38.9 M).
const MAX_PARAMETERS: usize = 1 << 28;

/// Most bytes one image's feature maps may take (Koch's network: about 7 MiB). A batch
/// multiplies it; a configuration read from a file cannot ask for more at batch 1.
const MAX_ACTIVATION_BYTES: u64 = 256 << 20;

/// Configuration of an [`Encoder`]. Start from [`EncoderConfig::koch`] or
/// [`EncoderConfig::compact`].
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Side of the square input image in pixels.
    pub input_size: usize,
    /// Input channels: 1 (grey) or 3 (RGB); `None`, what a configuration written before
    /// colour existed loads as, is 1.
    pub channels: Option<usize>,
    /// Convolution blocks, input to output.
    pub blocks: Vec<ConvBlockConfig>,
    /// Width of the fully connected embedding layer; `None` uses the flattened conv features.
    pub embedding: Option<usize>,
    /// Activation of the embedding.
    #[config(default = "EmbeddingActivation::Sigmoid")]
    pub activation: EmbeddingActivation,
    /// Batch normalisation after every convolution (not in Koch's net).
    #[config(default = false)]
    pub batch_norm: bool,
    /// Initializer of the convolution weights.
    #[config(default = "KOCH_CONV_INIT")]
    pub conv_initializer: Initializer,
    /// Initializer of the fully connected weights.
    #[config(default = "KOCH_FC_INIT")]
    pub fc_initializer: Initializer,
    /// Initializer of every bias (Burn's `Conv2dConfig` has one initializer for weight and
    /// bias; Koch's biases have their own).
    #[config(default = "KOCH_BIAS_INIT")]
    pub bias_initializer: Initializer,
}

impl EncoderConfig {
    /// The paper's network (Koch et al. 2015, figure 4), exactly: 1×105×105 input;
    /// conv 64@10×10, ReLU, max-pool; conv 128@7×7, ReLU, max-pool; conv 128@4×4, ReLU,
    /// max-pool; conv 256@4×4, ReLU; flatten 9216; fully connected 4096 + sigmoid.
    /// With Koch's initialisation. 38,947,648 parameters (38,951,745 with the head).
    pub fn koch() -> Self {
        Self::new(
            105,
            vec![
                ConvBlockConfig::new(64, 10),
                ConvBlockConfig::new(128, 7),
                ConvBlockConfig::new(128, 4),
                ConvBlockConfig::new(256, 4).with_pool(false),
            ],
        )
        .with_embedding(Some(4096))
    }

    /// A smaller encoder that trains in minutes on a 2-core CPU: 1×52×52 input (Omniglot
    /// resized by half); four blocks of 3×3 convolutions (32, 64, 64, 128 channels, padded)
    /// with batch norm, ReLU and max-pool; fully connected 384 + sigmoid. About 0.5 M
    /// parameters and about 1/40 of Koch's multiply-adds (22.6 M against 908.6 M an image).
    pub fn compact() -> Self {
        Self::new(
            52,
            vec![
                ConvBlockConfig::new(32, 3).with_padding(1),
                ConvBlockConfig::new(64, 3).with_padding(1),
                ConvBlockConfig::new(64, 3).with_padding(1),
                ConvBlockConfig::new(128, 3).with_padding(1),
            ],
        )
        .with_embedding(Some(384))
        .with_batch_norm(true)
        .with_conv_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        })
        .with_fc_initializer(Initializer::XavierNormal { gain: 1.0 })
        .with_bias_initializer(Initializer::Zeros)
    }

    /// Input channels: 1 (grey) or 3 (RGB).
    pub fn in_channels(&self) -> usize {
        self.channels.unwrap_or(1)
    }

    /// Side of the last feature map, channels, and the flattened width.
    fn conv_output(&self) -> Result<(usize, usize), String> {
        let mut side = self.input_size;
        let mut channels = 1;
        for (i, block) in self.blocks.iter().enumerate() {
            side = block.output_size(side).ok_or_else(|| {
                format!(
                    "block {i} (kernel {}, padding {}) does not fit a {side}×{side} feature map",
                    block.kernel, block.padding
                )
            })?;
            channels = block.channels;
        }
        Ok((side, channels))
    }

    /// Width of the flattened convolution features.
    ///
    /// # Panics
    /// When the blocks do not fit the input size (see [`EncoderConfig::validate`]).
    pub fn flattened_size(&self) -> usize {
        let (side, channels) = self.conv_output().unwrap_or_else(|e| panic!("{e}"));
        side * side * channels
    }

    /// Width `D` of the embeddings.
    pub fn output_size(&self) -> usize {
        self.embedding.unwrap_or_else(|| self.flattened_size())
    }

    /// Checks that the blocks fit the input, every size is positive, the input side is at
    /// most 1024 and the encoder has at most 2^28 parameters (the 1 GiB of `f32`s a
    /// weights file may hold): a configuration read from a file cannot ask for more memory
    /// than that.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] naming the offending field.
    pub fn validate(&self) -> crate::Result<()> {
        if self.input_size == 0 {
            return Err(crate::Error::invalid("input_size", "must be positive"));
        }
        if !matches!(self.in_channels(), 1 | 3) {
            return Err(crate::Error::invalid(
                "channels",
                format!(
                    "{}: an encoder reads 1 (grey) or 3 (RGB)",
                    self.in_channels()
                ),
            ));
        }
        if self.blocks.iter().any(|b| b.channels == 0 || b.kernel == 0) {
            return Err(crate::Error::invalid(
                "blocks",
                "every block needs channels > 0 and kernel > 0",
            ));
        }
        if self.embedding == Some(0) {
            return Err(crate::Error::invalid("embedding", "must be positive"));
        }
        if self.input_size > MAX_INPUT_SIZE {
            return Err(crate::Error::invalid(
                "input_size",
                format!("{} is larger than {MAX_INPUT_SIZE}", self.input_size),
            ));
        }
        self.conv_output()
            .map_err(|reason| crate::Error::invalid("blocks", reason))?;
        // The head weighs every embedding feature: count it with the encoder.
        let head = self
            .conv_output()
            .ok()
            .and_then(|(side, channels)| match self.embedding {
                Some(width) => Some(width),
                None => side.checked_mul(side)?.checked_mul(channels),
            });
        match self
            .parameter_count()
            .zip(head)
            .and_then(|(n, head)| n.checked_add(head))
        {
            Some(n) if n <= MAX_PARAMETERS => {}
            count => {
                return Err(crate::Error::invalid(
                    "blocks",
                    format!(
                        "the encoder would have {} parameters, more than the {MAX_PARAMETERS} \
                         that a weights file can hold",
                        count.map_or("over 2^64".to_string(), |n| n.to_string())
                    ),
                ));
            }
        }
        match self.activation_bytes() {
            Some(bytes) if bytes <= MAX_ACTIVATION_BYTES => {}
            bytes => {
                return Err(crate::Error::invalid(
                    "blocks",
                    format!(
                        "one image's feature maps would take {} MiB, more than the {} MiB a \
                         network may ask for",
                        bytes.map_or("over 2^44".to_string(), |b| (b >> 20).to_string()),
                        MAX_ACTIVATION_BYTES >> 20
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Bytes of one image's feature maps, every block's convolution output (and its pooled
    /// copy) in `f32`, `None` past `u64`.
    fn activation_bytes(&self) -> Option<u64> {
        let mut side = self.input_size as u64;
        let mut total = (self.in_channels() as u64).checked_mul(side.checked_pow(2)?)?;
        for block in &self.blocks {
            let padded = side.checked_add((block.padding as u64).checked_mul(2)?)?;
            let conv = padded.checked_sub(block.kernel as u64)? + 1;
            let maps = (block.channels as u64).checked_mul(conv.checked_pow(2)?)?;
            total = total.checked_add(maps.checked_mul(if block.pool { 2 } else { 1 })?)?;
            side = if block.pool { conv / 2 } else { conv };
        }
        total.checked_mul(4)
    }

    /// Parameters and running statistics of the encoder, `None` past `usize`.
    pub(crate) fn parameter_count(&self) -> Option<usize> {
        let mut total = 0usize;
        let mut in_channels = self.in_channels();
        for block in &self.blocks {
            let conv = in_channels
                .checked_mul(block.channels)?
                .checked_mul(block.kernel)?
                .checked_mul(block.kernel)?
                .checked_add(block.channels)?;
            let norm = if self.batch_norm {
                block.channels.checked_mul(4)?
            } else {
                0
            };
            total = total.checked_add(conv)?.checked_add(norm)?;
            in_channels = block.channels;
        }
        if let Some(width) = self.embedding {
            let (side, channels) = self.conv_output().ok()?;
            let features = side.checked_mul(side)?.checked_mul(channels)?;
            total = total.checked_add(features.checked_mul(width)?.checked_add(width)?)?;
        }
        Some(total)
    }

    /// Initialize a new [`Encoder`].
    ///
    /// # Panics
    /// When the configuration is invalid (see [`EncoderConfig::validate`]).
    pub fn init(&self, device: &Device) -> Encoder {
        if let Err(e) = self.validate() {
            panic!("invalid EncoderConfig: {e}");
        }
        let mut in_channels = self.in_channels();
        let blocks = self
            .blocks
            .iter()
            .map(|block| {
                let mut conv = Conv2dConfig::new([in_channels, block.channels], [block.kernel; 2])
                    .with_padding(PaddingConfig2d::Explicit(
                        block.padding,
                        block.padding,
                        block.padding,
                        block.padding,
                    ))
                    .with_initializer(self.conv_initializer.clone())
                    .init(device);
                let fan_in = in_channels * block.kernel * block.kernel;
                conv.bias = Some(self.bias_initializer.init_with(
                    [block.channels],
                    Some(fan_in),
                    Some(block.channels),
                    device,
                ));
                in_channels = block.channels;
                ConvBlock {
                    conv,
                    norm: self
                        .batch_norm
                        .then(|| BatchNormConfig::new(block.channels).init(device)),
                    pool: block
                        .pool
                        .then(|| MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
                }
            })
            .collect();
        let fc = self.embedding.map(|width| {
            BlockedLinearConfig::new(self.flattened_size(), width)
                .with_initializer(self.fc_initializer.clone())
                .with_bias_initializer(self.bias_initializer.clone())
                .init(device)
        });
        Encoder {
            blocks,
            fc,
            activation: self.activation,
            input_size: self.input_size,
            channels: self.in_channels(),
        }
    }
}

/// Conv, optional batch norm, ReLU, optional max-pool.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch normalisation, when configured.
    pub norm: Option<BatchNorm>,
    /// 2×2 max-pool, when configured.
    pub pool: Option<MaxPool2d>,
}

impl ConvBlock {
    /// # Shapes
    /// - input: `[B, C_in, H, W]`
    /// - output: `[B, C_out, H', W']`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = super::gemm_conv::forward(&self.conv, input);
        match (&self.norm, &self.pool) {
            (Some(norm), pool) => super::norm_relu::forward(norm, pool.as_ref(), x),
            (None, Some(pool)) => super::norm_relu::relu_pool(pool, x),
            (None, None) => relu(x),
        }
    }
}

/// The twin encoder. Both images of a pair go through the same `Encoder`: that is what
/// ties the weights.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Convolution blocks, input to output.
    pub blocks: Vec<ConvBlock>,
    /// Fully connected embedding layer, when configured.
    pub fc: Option<BlockedLinear>,
    /// Activation of the embedding.
    #[module(skip)]
    pub activation: EmbeddingActivation,
    /// Side of the square input image.
    pub input_size: usize,
    /// Input channels.
    #[module(skip)]
    pub channels: usize,
}

impl Encoder {
    /// Embeds a batch of images.
    ///
    /// # Shapes
    /// - images: `[B, C, S, S]` with `C`, `S` the configured channels and input size
    /// - output: `[B, D]`
    ///
    /// # Panics
    /// When the images do not have the configured shape; [`crate::Siamese`] checks first.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [_, channels, height, width] = images.dims();
        assert!(
            channels == self.channels && height == self.input_size && width == self.input_size,
            "the encoder takes [B, {c}, {s}, {s}] images, got [B, {channels}, {height}, {width}]",
            c = self.channels,
            s = self.input_size
        );
        let mut x = images;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let mut x: Tensor<2> = x.flatten(1, 3);
        if let Some(fc) = &self.fc {
            x = fc.forward(x);
        }
        match self.activation {
            EmbeddingActivation::Sigmoid => sigmoid(x),
            EmbeddingActivation::Relu => relu(x),
            EmbeddingActivation::Identity => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn koch_sizes_follow_the_paper() {
        let config = EncoderConfig::koch();
        assert_eq!(config.flattened_size(), 9216);
        assert_eq!(config.output_size(), 4096);
        let sides: Vec<usize> = config
            .blocks
            .iter()
            .scan(105, |side, block| {
                *side = block.output_size(*side).unwrap();
                Some(*side)
            })
            .collect();
        assert_eq!(sides, vec![48, 21, 9, 6]);
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field() {
        let config = EncoderConfig::new(8, vec![ConvBlockConfig::new(4, 10)]);
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("invalid blocks") && message.contains("8×8"),
            "{message}"
        );
        let config = EncoderConfig::new(28, vec![]).with_embedding(Some(0));
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("embedding")
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = EncoderConfig::compact();
        let json = serde_json::to_string(&config).unwrap();
        let back: EncoderConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.blocks, config.blocks);
        assert_eq!(back.output_size(), config.output_size());
        assert_eq!(back.conv_initializer, config.conv_initializer);
    }

    #[test]
    fn koch_initialisation_has_koch_statistics() {
        let device = crate::device::default_device().unwrap();
        let encoder = EncoderConfig::koch().init(&device);
        let stats = |t: Tensor<1>| {
            let v: Vec<f32> = t.into_data().try_to_vec::<f32>().unwrap();
            let n = v.len() as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            (mean, var.sqrt())
        };
        let (m, s) = stats(encoder.blocks[1].conv.weight.val().flatten(0, 3));
        assert!(
            m.abs() < 1e-3 && (s - 1e-2).abs() < 1e-3,
            "conv weight {m} {s}"
        );
        let (m, s) = stats(encoder.blocks[1].conv.bias.as_ref().unwrap().val());
        assert!(
            (m - 0.5).abs() < 5e-3 && (s - 1e-2).abs() < 5e-3,
            "conv bias {m} {s}"
        );
        let fc = encoder.fc.as_ref().unwrap();
        let (m, s) = stats(fc.blocks[0].val().narrow(0, 0, 64).flatten(0, 1));
        assert!(
            m.abs() < 1e-2 && (s - 0.2).abs() < 1e-2,
            "fc weight {m} {s}"
        );
    }

    fn assert_embedding_width(config: EncoderConfig, device: &Device) {
        let encoder = config.init(device);
        let s = config.input_size;
        let images = Tensor::<4>::random([2, 1, s, s], Distribution::Default, device);
        let out = encoder.forward(images);
        assert_eq!(out.dims(), [2, config.output_size()]);
        let values: Vec<f32> = out.into_data().try_to_vec::<f32>().unwrap();
        assert!(
            values.iter().all(|v| (0.0..=1.0).contains(v)),
            "sigmoid range"
        );
    }

    /// Koch's encoder on wgpu is compared with flex in `tests/backends.rs`; here it runs
    /// on the default device (software Vulkan spent minutes compiling its kernels).
    #[test]
    fn koch_gives_embeddings_of_the_configured_width() {
        let device = crate::device::default_device().unwrap();
        assert_embedding_width(EncoderConfig::koch(), &device);
    }

    crate::device_tests! {
        fn compact_gives_embeddings_of_the_configured_width(device) {
            assert_embedding_width(EncoderConfig::compact(), &device);
        }

        fn encoder_is_deterministic_in_eval(device) {
            let encoder = EncoderConfig::compact().init(&device).valid();
            let images = Tensor::<4>::random([3, 1, 52, 52], Distribution::Default, &device);
            encoder.forward(images.clone()).into_data().assert_approx_eq::<f32>(
                &encoder.forward(images).into_data(),
                Tolerance::absolute(0.0),
            );
        }
    }

    /// Found by `fuzz_weights_pair` (10-minute run): a configuration file asking for a
    /// 300-billion-channel block made `init` allocate 1.2 TB and abort the process.
    #[test]
    fn configurations_too_large_to_load_are_refused() {
        let huge = EncoderConfig::new(8, vec![ConvBlockConfig::new(299_999_999_999, 3)]);
        let message = huge.validate().unwrap_err().to_string();
        assert!(
            message.contains("parameters, more than the 268435456"),
            "{message}"
        );
        let overflowing = EncoderConfig::new(8, vec![ConvBlockConfig::new(usize::MAX / 2, 3)]);
        assert!(
            overflowing
                .validate()
                .unwrap_err()
                .to_string()
                .contains("over 2^64")
        );
        let wide = EncoderConfig::new(100_000, vec![ConvBlockConfig::new(2, 3)]);
        assert!(
            wide.validate()
                .unwrap_err()
                .to_string()
                .contains("larger than 1024")
        );
        // The hostile-input round of issue 34: 4,096 channels of 1,024² and no embedding
        // passed, and the head's 2^32 weights aborted the process.
        let absurd = EncoderConfig::new(1024, vec![ConvBlockConfig::new(4096, 1).with_pool(false)])
            .with_embedding(None);
        let message = absurd.validate().unwrap_err().to_string();
        assert!(message.contains("parameters"), "{message}");
        // Few parameters, feature maps too large: 64 maps of 1,024² (and their pooled copies)
        // take 384 MiB for one image.
        let wide = EncoderConfig::new(
            1024,
            vec![
                ConvBlockConfig::new(64, 1),
                ConvBlockConfig::new(1, 512).with_pool(false),
            ],
        );
        let message = wide.validate().unwrap_err().to_string();
        assert!(message.contains("feature maps would take"), "{message}");
        assert!(EncoderConfig::koch().validate().is_ok());
        assert!(EncoderConfig::compact().validate().is_ok());
    }
}
