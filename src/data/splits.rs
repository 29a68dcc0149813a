//! Named alphabet and drawer lists for the usual Omniglot splits.
//!
//! - **Koch's split**: train on the 30 background alphabets with [`KOCH_TRAIN_DRAWERS`];
//!   validate and test with [`KOCH_VALIDATION_DRAWERS`] and [`KOCH_TEST_DRAWERS`]
//!   (12 / 4 / 4 of the 20 drawers).
//! - **Lake's split**: train on all of `images_background`, test on the 20 official runs,
//!   which come from [`EVALUATION_RUN_ALPHABETS`].
//! - The two halves of `images_evaluation`: [`EVALUATION_RUN_ALPHABETS`] and
//!   [`EVALUATION_OTHER_ALPHABETS`], for example one for validation and one for test.
//!
//! ```no_run
//! use siamese::data::{Omniglot, EVALUATION_OTHER_ALPHABETS, KOCH_VALIDATION_DRAWERS};
//!
//! let evaluation = Omniglot::open("../shared/omniglot")?.evaluation()?;
//! let validation = evaluation.subset(
//!     Some(&EVALUATION_OTHER_ALPHABETS),
//!     Some(&KOCH_VALIDATION_DRAWERS),
//! )?;
//! assert_eq!(validation.num_groups(), 10);
//! # Ok::<(), siamese::Error>(())
//! ```

/// The 10 evaluation alphabets that the official 20 one-shot runs (`all_runs.zip`) use.
pub const EVALUATION_RUN_ALPHABETS: [&str; 10] = [
    "Atlantean",
    "Ge_ez",
    "Glagolitic",
    "Gurmukhi",
    "Kannada",
    "Malayalam",
    "Manipuri",
    "Old_Church_Slavonic_(Cyrillic)",
    "Tengwar",
    "Tibetan",
];

/// The other 10 evaluation alphabets, which no official run uses.
pub const EVALUATION_OTHER_ALPHABETS: [&str; 10] = [
    "Angelic",
    "Atemayar_Qelisayer",
    "Aurek-Besh",
    "Avesta",
    "Keble",
    "Mongolian",
    "Oriya",
    "Sylheti",
    "Syriac_(Serto)",
    "ULOG",
];

/// Koch's training drawers: 12 of the 20 (here the first 12).
pub const KOCH_TRAIN_DRAWERS: [u32; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// Koch's validation drawers: 4 of the 20, disjoint from the others.
pub const KOCH_VALIDATION_DRAWERS: [u32; 4] = [13, 14, 15, 16];

/// Koch's test drawers: the last 4 of the 20.
pub const KOCH_TEST_DRAWERS: [u32; 4] = [17, 18, 19, 20];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lists_are_disjoint_and_complete() {
        let runs: HashSet<_> = EVALUATION_RUN_ALPHABETS.iter().collect();
        let other: HashSet<_> = EVALUATION_OTHER_ALPHABETS.iter().collect();
        assert_eq!(runs.len(), 10);
        assert_eq!(other.len(), 10);
        assert!(runs.is_disjoint(&other));

        let drawers: Vec<u32> = KOCH_TRAIN_DRAWERS
            .iter()
            .chain(&KOCH_VALIDATION_DRAWERS)
            .chain(&KOCH_TEST_DRAWERS)
            .copied()
            .collect();
        assert_eq!(drawers, (1..=20).collect::<Vec<u32>>());
    }
}
