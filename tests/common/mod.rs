//! Helpers shared by the integration tests that read the real Omniglot data.

// Each test binary uses its own share of these.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use siamese::data::{ImageSet, Omniglot};

/// `$OMNIGLOT_DIR`, or `None` (said once on stderr) so that a test without data skips.
pub fn omniglot_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("OMNIGLOT_DIR").map(PathBuf::from);
    if dir.is_none() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("skipped: OMNIGLOT_DIR not set (tests of real Omniglot data)"));
    }
    dir
}

/// The Omniglot folder of `$OMNIGLOT_DIR`, or `None` when it is not set.
pub fn omniglot() -> Option<Omniglot> {
    let dir = omniglot_dir()?;
    Some(Omniglot::open(dir).expect("OMNIGLOT_DIR must name the Omniglot folder"))
}

/// `images_evaluation`, loaded once for all tests of a binary.
pub fn evaluation_set() -> Option<&'static ImageSet> {
    static SET: OnceLock<ImageSet> = OnceLock::new();
    let omniglot = omniglot()?;
    Some(SET.get_or_init(|| omniglot.evaluation().unwrap()))
}
