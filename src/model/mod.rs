//! The network: [`Encoder`], [`L1DistanceHead`] and the [`Siamese`] pair of them.
//!
//! Two configurations come ready: [`SiameseConfig::koch`], the paper's network on 105 × 105
//! images (39 M parameters, a GPU's work to train), and [`SiameseConfig::compact`], a
//! batch-normalised network on 52 × 52 images that trains on a laptop's CPU (0.5 M
//! parameters, 1/40 of Koch's multiply-adds). Besides the pair [`Siamese::forward`] that
//! training uses, [`Siamese::embed`] and [`Siamese::score_all`] let evaluation encode each
//! image once: an N-way trial costs N + 1 encoder passes, not 2N.
//!
//! [`gemm_conv`] is the convolution the CPU backends train with: the same function as
//! Burn's, with gradients as matrix products.

mod average;
mod blocked_linear;
mod colour;
mod cpu_tensor;
mod encoder;
pub mod gemm_conv;
mod head;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod lanes;
mod norm_relu;
mod siamese;

pub use blocked_linear::{BlockedLinear, BlockedLinearConfig};
pub use encoder::{ConvBlock, ConvBlockConfig, EmbeddingActivation, Encoder, EncoderConfig};
pub use head::{L1DistanceHead, L1DistanceHeadConfig};
pub use siamese::{Siamese, SiameseConfig};
