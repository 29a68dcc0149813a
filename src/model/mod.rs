//! The network: [`Encoder`], [`L1DistanceHead`] and the [`Siamese`] pair of them.

mod blocked_linear;
mod encoder;
pub mod gemm_conv;
mod head;
mod siamese;

pub use blocked_linear::{BlockedLinear, BlockedLinearConfig, MAX_BLOCK_ELEMENTS};
pub use encoder::{
    ConvBlock, ConvBlockConfig, EmbeddingActivation, Encoder, EncoderConfig, KOCH_BIAS_INIT,
    KOCH_CONV_INIT, KOCH_FC_INIT,
};
pub use head::{ALL_PAIRS_BUDGET, L1DistanceHead, L1DistanceHeadConfig};
#[allow(unused_imports)] // for the trainer's checkpoints
pub use siamese::{Siamese, SiameseConfig, config_path};
