//! Data: labelled picture sets (Omniglot's, or a folder of one's own), how a picture is
//! prepared for a network, pair and grouped sampling, distortions and batching.
//!
//! - [`ImageSet`] is the index every sampler and episode speaks: **groups** (Omniglot's
//!   alphabets), their **classes** (characters) and each class's **instances** (drawers,
//!   vendors), over pictures stored at the size a network reads.
//! - [`Omniglot`] finds the official zips (or their extracted folders) in one folder and
//!   loads each [`Part`] into an [`ImageSet`]: every image decoded once, bit-packed in
//!   memory, with its alphabet, character and drawer.
//! - [`LabeledFolder`] reads your own pictures, a folder or zip laid out
//!   `<group>/<class>/<picture>` or `<class>/<picture>`, in colour or grey, any size, into an
//!   [`ImageSet`] prepared for a network's [`InputSpec`].
//! - [`Preprocess`] is the rule that brings any picture to what a network reads, saved in
//!   the network's configuration: [`Preprocess::Ink`] for handwriting (Omniglot),
//!   [`Preprocess::Picture`] for icons, logos and photos.
//! - [`ImageSet::subset`] keeps some alphabets and drawers: [`KOCH_TRAIN_DRAWERS`] and
//!   friends give Koch's 12 / 4 / 4 drawer split, [`EVALUATION_RUN_ALPHABETS`] and
//!   [`EVALUATION_OTHER_ALPHABETS`] the two halves of the evaluation set.
//! - [`PairDataset`] draws same / different pairs, reproducibly from `(seed, epoch, index)`,
//!   with Koch's affine distortions ([`DistortionConfig`]) in training.
//! - [`PairBatcher`] turns pairs into tensors, resizing with [`to_input`].
//! - [`GroupDataset`] and [`GroupBatcher`] draw grouped batches instead: `m` characters ×
//!   `k` drawings from a few alphabets, for the losses that compare every image of a batch
//!   with every other ([`crate::train::LossConfig`]).
//!
//! ```no_run
//! use siamese::data::{Omniglot, PairBatcher, PairDatasetConfig, KOCH_TRAIN_DRAWERS};
//! use burn::data::dataloader::DataLoaderBuilder;
//!
//! let omniglot = Omniglot::open("../shared/omniglot")?;
//! let train = omniglot.background()?.subset(None, Some(&KOCH_TRAIN_DRAWERS))?;
//! let pairs = PairDatasetConfig::training().with_seed(7).init(train)?;
//! let loader = DataLoaderBuilder::new(PairBatcher::new(52)?)
//!     .batch_size(128)
//!     .num_workers(2)
//!     .build(pairs.clone());
//! for epoch in 0..3 {
//!     pairs.set_epoch(epoch); // the loader's copy follows: clones share the epoch
//!     for batch in loader.iter() {
//!         let batch = batch.expect("pairs are drawn from memory");
//!         assert_eq!(batch.left.dims()[1..], [1, 52, 52]);
//!     }
//! }
//! # Ok::<(), siamese::Error>(())
//! ```
//!
//! # Pixel convention
//!
//! Pictures prepared with [`Preprocess::Picture`] keep their colours (`[0, 1]` in each
//! channel of a `[B, C, S, S]` tensor, `C` = 1 or 3). Ink ([`Preprocess::Ink`], all of
//! Omniglot) follows one convention, the Omniglot PNG inverted: **ink is high,
//! background is 0**.
//!
//! - As an [`image::GrayImage`]: ink 255, background 0, at the native 105 × 105
//!   ([`NATIVE_SIZE`]); distorted images have grey levels in between.
//! - As a tensor: `f32` in `[0, 1]`, ink 1.0, background 0.0, shape `[B, 1, S, S]`.
//!
//! Images come in one way: [`prepare`] brings any decoded image to the first form (grey,
//! ink high, scaled and centred in a 105 × 105 square); [`load_image`],
//! [`decode_image`] and [`ImageInput`] (what the matcher accepts) decode and end in it.
//! Omniglot's own PNGs take the fast path [`decode_png`], with the same result.
//! [`to_input`] is the one conversion from the first form to the second (resizing to `S`
//! with a triangle filter when `S` is not the native size); [`InputSpec::to_input`], which
//! training, evaluation and matching all use, calls it for grey pictures.

mod batcher;
mod budget;
mod canonical;
mod decode;
mod distortion;
#[cfg(feature = "download")]
mod download;
mod folder;
mod group_batcher;
mod groups;
mod image_set;
mod input;
mod jpeg_frame;
mod loader;
mod location;
mod pairs;
mod preprocess;
mod splits;

pub use batcher::{PairBatch, PairBatcher};
pub use budget::PREPARE_BUDGET;
pub use canonical::{
    ImageInput, MAX_DECODED_BYTES, MAX_DECODER_BYTES, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, NATIVE_SIZE,
    decode_image, load_image, prepare,
};
pub(crate) use decode::OMNIGLOT_PNG;
pub use decode::{MAX_PNG_BYTES, decode_png};
pub use distortion::{AffineDistortion, DistortionConfig};
#[cfg(feature = "download")]
pub use download::{DownloadConfig, OFFICIAL_URL, download, download_to_cache};
pub use folder::LabeledFolder;
pub use group_batcher::{GroupBatch, GroupBatcher};
pub use groups::{GroupDataset, GroupDatasetConfig, GroupItem, GroupedBatchConfig, Pose};
#[cfg(test)]
pub(crate) use image_set::tests::toy_set;
pub use image_set::{ImageSet, LabeledImage};
pub use input::to_input;
pub use loader::{Omniglot, Part};
pub use location::{OMNIGLOT_DIR, cache_dir};
pub use pairs::{PairDataset, PairDatasetConfig, PairIndices, PairItem};
pub use preprocess::{InputSpec, Preprocess};
pub use splits::{
    EVALUATION_OTHER_ALPHABETS, EVALUATION_RUN_ALPHABETS, KOCH_TEST_DRAWERS, KOCH_TRAIN_DRAWERS,
    KOCH_VALIDATION_DRAWERS,
};
