//! The network: [`Encoder`], [`L1DistanceHead`] and the [`Siamese`] pair of them.

mod blocked_linear;
mod encoder;
pub mod gemm_conv;
mod head;
mod siamese;

pub use blocked_linear::{BlockedLinear, BlockedLinearConfig};
pub use encoder::{ConvBlock, ConvBlockConfig, EmbeddingActivation, Encoder, EncoderConfig};
pub use head::{L1DistanceHead, L1DistanceHeadConfig};
pub use siamese::{Siamese, SiameseConfig};
