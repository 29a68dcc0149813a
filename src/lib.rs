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
//! ## A tour
//!
//! Data flows one way through the modules, in this order; each imports only from those
//! above it.
//!
//! 1. [`data`]: labelled pictures as an [`ImageSet`](data::ImageSet) of groups, classes
//!    and instances: Omniglot from its official zips or their folders, your own from a
//!    [`LabeledFolder`](data::LabeledFolder) (colour or grey, any size); same / different
//!    pairs and grouped batches to train on, with Koch's distortions; the
//!    [`Preprocess`](data::Preprocess) rule a network is trained with, which brings any
//!    picture to what it reads.
//! 2. [`model`]: the [`Encoder`], the [`L1DistanceHead`] and the [`Siamese`] network,
//!    each a Burn `XConfig` + `init` + `forward`, for any device.
//! 3. [`eval`]: one-shot [`Episode`](eval::Episode)s (the official runs, Koch's protocol,
//!    random N-way K-shot), scorers, and the [`Evaluator`](eval::Evaluator) with its
//!    confidence interval.
//! 4. [`train`]: the [`Trainer`](train::Trainer), with checkpoints to resume from, a CSV
//!    history and a learning curve.
//! 5. [`pretrained`]: a compact network that `train` made, shipped in the crate.
//! 6. [`matcher`]: the API for your own images: register labelled examples once,
//!    classify or verify queries, each picture prepared as the network says.
//!
//! [`device`] turns a backend's name into a Burn device; [`Error`] is the crate's one
//! error type, and every error names the file, entry or value at fault.
//!
//! The shipped network on the official 20-way one-shot runs, with no data folder:
//!
//! ```
//! use siamese::eval::{EvaluatorConfig, LakeRuns, SiameseScorer};
//!
//! let device = siamese::device::by_name("flex")?;
//! let model = siamese::pretrained::compact(&device)?;
//! let runs = LakeRuns::official()?; // all_runs.zip, built into the crate
//! let result = EvaluatorConfig::new()
//!     .init()?
//!     .evaluate(&SiameseScorer::new(&model), runs.episodes())?;
//! assert_eq!(result.total(), 400);
//! assert!(result.accuracy() > 0.85, "{result}"); // 96.2% (README, "Results")
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
