//! Trained networks shipped inside the crate, so that one-shot matching works without
//! training first.
//!
//! The weights are embedded in the library with `include_bytes!` (a few MB), so they load
//! from memory on any device; `weights/README.md` says how they were trained and what
//! each evaluation gives.

use burn::module::Module;
use burn::prelude::*;

use crate::history::{self, EpochRecord};
use crate::{Result, Siamese};

const COMPACT_CONFIG: &str = include_str!("../weights/compact.json");
const COMPACT_WEIGHTS: &[u8] = include_bytes!("../weights/compact.bpk");
const COMPACT_HISTORY: &str = include_str!("../weights/compact-history.csv");
const PICTURES_CONFIG: &str = include_str!("../weights/pictures.json");
const PICTURES_WEIGHTS: &[u8] = include_bytes!("../weights/pictures.bpk");
const PICTURES_HISTORY: &str = include_str!("../weights/pictures-history.csv");

/// The compact network ([`SiameseConfig::compact`](crate::SiameseConfig::compact): 52×52
/// input, 384-d embedding) trained on Omniglot's `images_background` on a 2-core CPU, in
/// evaluation mode on `device`.
///
/// ```
/// let device = siamese::device::default_device()?;
/// let model = siamese::pretrained::compact(&device)?;
/// assert_eq!(model.input_shape(), [52, 52]);
/// assert_eq!(model.embedding_size(), 384);
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Checkpoint`](crate::Error::Checkpoint) only if the embedded files were damaged
/// when the crate was built.
pub fn compact(device: &Device) -> Result<Siamese> {
    Siamese::from_parts(COMPACT_CONFIG, COMPACT_WEIGHTS.to_vec(), device).map(|m| m.valid())
}

/// The training history of [`compact`], one record per epoch (its learning curve).
///
/// ```
/// let history = siamese::pretrained::compact_history()?;
/// assert!(!history.is_empty());
/// assert!(history.iter().all(|r| (0.0..=1.0).contains(&r.val_accuracy)));
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Checkpoint`](crate::Error::Checkpoint) only if the embedded history was damaged.
pub fn compact_history() -> Result<Vec<EpochRecord>> {
    history::parse_csv(COMPACT_HISTORY, "weights/compact-history.csv")
}

/// The compact network for colour pictures
/// ([`SiameseConfig::compact_pictures`](crate::SiameseConfig::compact_pictures): 3 × 52 ×
/// 52, pictures fitted on white, 384-d embedding), fine-tuned from [`compact`] on the
/// Google (Noto, Apache 2.0) and Twitter (Twemoji, CC BY 4.0) pictures of six emoji
/// categories, in evaluation mode on `device`. `weights/NOTICE-pictures.md` gives the
/// attribution; `weights/README.md` how it was trained and what it scores on the emoji
/// categories it never saw.
///
/// ```
/// let device = siamese::device::default_device()?;
/// let model = siamese::pretrained::pictures(&device)?;
/// assert_eq!(model.input_spec().channels(), 3);
/// assert_eq!(model.input_shape(), [52, 52]);
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Checkpoint`](crate::Error::Checkpoint) only if the embedded files were damaged
/// when the crate was built.
pub fn pictures(device: &Device) -> Result<Siamese> {
    Siamese::from_parts(PICTURES_CONFIG, PICTURES_WEIGHTS.to_vec(), device).map(|m| m.valid())
}

/// The training history of [`pictures`], one record per epoch.
///
/// # Errors
/// [`Error::Checkpoint`](crate::Error::Checkpoint) only if the embedded history was damaged.
pub fn pictures_history() -> Result<Vec<EpochRecord>> {
    history::parse_csv(PICTURES_HISTORY, "weights/pictures-history.csv")
}
