//! Helpers shared by the integration tests that read the real Omniglot data.

// Each test binary uses its own share of these.
#![allow(dead_code)]

use std::sync::OnceLock;

use siamese::data::{ImageSet, Omniglot};

/// The Omniglot data folder by the crate's rule (`$OMNIGLOT_DIR`, then the download cache).
/// Without one the test fails with the message that says how to get the data set: a test
/// of real data never passes by skipping.
pub fn omniglot() -> Omniglot {
    Omniglot::find(None).unwrap_or_else(|e| panic!("{e}"))
}

/// `images_evaluation`, loaded once for all tests of a binary.
pub fn evaluation_set() -> &'static ImageSet {
    static SET: OnceLock<ImageSet> = OnceLock::new();
    SET.get_or_init(|| omniglot().evaluation().unwrap())
}
