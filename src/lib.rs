#![warn(missing_docs)]
//! # siamese
//!
//! Siamese neural networks for one-shot image recognition (Koch, Zemel and Salakhutdinov,
//! 2015) on [Burn](https://burn.dev): twin convolutional encoders with tied weights map two
//! images to feature vectors `h1`, `h2`, and a weighted L1 head scores
//! `p = sigmoid(sum_j alpha_j |h1_j - h2_j| + b)`, the probability that both show the
//! same class.
//!
//! ```
//! use burn::prelude::*;
//! use siamese::SiameseConfig;
//!
//! let device = siamese::device::by_name("flex")?;
//! let model = SiameseConfig::compact().init(&device);
//! let [s, _] = model.input_shape();
//! let left = Tensor::<4>::zeros([2, 1, s, s], &device);
//! let right = Tensor::<4>::ones([2, 1, s, s], &device);
//! let logits = model.forward(left, right); // [2, 1]
//! assert_eq!(logits.dims(), [2, 1]);
//! # Ok::<(), siamese::Error>(())
//! ```
//!
//! ## Backends
//!
//! The code is written once for any Burn [`Device`](burn::tensor::Device); cargo features
//! choose which backends are compiled in ([`device`] turns a name into a device):
//!
//! | feature   | backend                        | notes                                        |
//! |-----------|--------------------------------|----------------------------------------------|
//! | `flex`    | Burn's pure-Rust CPU backend   | default; the fastest CPU training            |
//! | `ndarray` | burn-ndarray                   | deprecated upstream; inference and training (0.55–0.85× flex) |
//! | `wgpu`    | Vulkan / Metal / DX12          | GPUs; software Vulkan (lavapipe) works too   |

pub mod data;
pub mod device;
mod error;
pub mod eval;
mod history;
mod io;
pub mod matcher;
pub mod model;
pub mod pretrained;
mod tensors;
mod testing;
pub mod train;

pub use error::{Error, Result};
pub use model::{
    Encoder, EncoderConfig, L1DistanceHead, L1DistanceHeadConfig, Siamese, SiameseConfig,
};

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
