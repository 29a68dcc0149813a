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
