//! Balanced same / different pairs, drawn reproducibly from `(seed, epoch, index)`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;
use image::DynamicImage;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::distortion::DistortionConfig;
use super::image_set::ImageSet;
use crate::{Error, Result};

/// Configuration of a [`PairDataset`]. Start from [`PairDatasetConfig::training`] (with
/// Koch's distortions) or [`PairDatasetConfig::evaluation`] (without).
#[derive(Config, Debug)]
pub struct PairDatasetConfig {
    /// Pairs in one epoch: the dataset's `len()`. Koch drew 30,000 to 150,000.
    #[config(default = 30_000)]
    pub pairs_per_epoch: usize,
    /// Share of same-character pairs. Over any run of `n` consecutive indices, the number
    /// of same pairs is within 1 of `n × same_fraction`, so every batch is balanced.
    #[config(default = 0.5)]
    pub same_fraction: f64,
    /// Whether different pairs come from one alphabet: harder negatives.
    #[config(default = false)]
    pub same_alphabet_negatives: bool,
    /// Affine distortions applied to each image of a pair independently, at the native
    /// resolution; `None` leaves the images as drawn.
    pub distortion: Option<DistortionConfig>,
    /// Seed; with the epoch and the index it fixes a pair completely.
    #[config(default = 0)]
    pub seed: u64,
}

impl PairDatasetConfig {
    /// Training pairs: balanced, with Koch's distortions.
    pub fn training() -> Self {
        Self::new().with_distortion(Some(DistortionConfig::koch()))
    }

    /// Evaluation pairs: balanced, undistorted.
    pub fn evaluation() -> Self {
        Self::new()
    }

    /// Builds the dataset over `images`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a field is out of range, when same pairs are asked
    /// for and a character has fewer than two images (named), when different pairs are
    /// asked for and there are fewer than two characters, or, with
    /// `same_alphabet_negatives`, an alphabet has only one character (named).
    pub fn init(&self, images: impl Into<Arc<ImageSet>>) -> Result<PairDataset> {
        let images = images.into();
        if self.pairs_per_epoch == 0 {
            return Err(Error::invalid("pairs_per_epoch", "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.same_fraction) {
            return Err(Error::invalid(
                "same_fraction",
                format!("{} is not in [0, 1]", self.same_fraction),
            ));
        }
        if let Some(distortion) = &self.distortion {
            distortion.validate()?;
        }
        if self.same_fraction > 0.0
            && let Some(class) =
                (0..images.num_classes()).find(|&c| images.images_of_class(c).len() < 2)
        {
            return Err(Error::invalid(
                "split",
                format!(
                    "character {} of {} has {} image(s); same pairs need at least 2 per character",
                    images.class_name(class),
                    images.name(),
                    images.images_of_class(class).len()
                ),
            ));
        }
        if self.same_fraction < 1.0 {
            if images.num_classes() < 2 {
                return Err(Error::invalid(
                    "split",
                    format!(
                        "{} has one character; different pairs need two",
                        images.name()
                    ),
                ));
            }
            if self.same_alphabet_negatives
                && let Some(a) =
                    (0..images.num_groups()).find(|&a| images.classes_of_group(a).len() < 2)
            {
                return Err(Error::invalid(
                    "split",
                    format!(
                        "alphabet {} has one character; same-alphabet different pairs need two",
                        images.group_names()[a]
                    ),
                ));
            }
        }
        Ok(PairDataset {
            images,
            config: self.clone(),
            epoch: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// Which images a pair holds, before any pixel is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairIndices {
    /// Index of the left image in the [`ImageSet`].
    pub left: usize,
    /// Index of the right image in the [`ImageSet`].
    pub right: usize,
    /// Whether both show the same character.
    pub same: bool,
}

/// One pair of prepared pictures as the set stores them (Omniglot: ink-high at the native
/// 105 × 105), distorted when configured.
#[derive(Clone, Debug)]
pub struct PairItem {
    /// The left image.
    pub left: DynamicImage,
    /// The right image.
    pub right: DynamicImage,
    /// Which images of the set these are, and whether they match.
    pub indices: PairIndices,
}

/// Same / different pairs of an [`ImageSet`], as a Burn [`Dataset`].
///
/// Pair `i` of epoch `e` is a pure function of `(seed, e, i)`: a ChaCha8 generator keyed by
/// the three draws the characters, the images and the distortions, in O(1). Same pairs
/// take two different images of a uniformly drawn character; different pairs take two
/// uniformly drawn distinct characters (of one alphabet with `same_alphabet_negatives`).
///
/// [`Dataset::get`] returns pairs of the current epoch ([`PairDataset::set_epoch`]); clones
/// share it, so that a copy given to a data loader follows the original.
///
/// ```
/// # use image::{GrayImage, Luma};
/// # use siamese::data::{ImageSet, LabeledImage};
/// use burn::data::dataset::Dataset;
/// use siamese::data::PairDatasetConfig;
///
/// # let images = ImageSet::from_images("toy", (0..4u8).flat_map(|c| (1..=3).map(move |d| LabeledImage {
/// #     group: "A".into(), class: format!("c{c}"), instance: d,
/// #     image: GrayImage::from_pixel(105, 105, Luma([0])).into(),
/// # })))?;
/// let pairs = PairDatasetConfig::evaluation()
///     .with_pairs_per_epoch(100)
///     .with_seed(42)
///     .init(images)?; // 4 characters, 3 drawings each
/// assert_eq!(pairs.len(), 100);
/// let item = pairs.get(7).unwrap();
/// assert_eq!(item.indices, pairs.indices(0, 7)); // epoch 0
/// pairs.set_epoch(1);
/// assert_eq!(pairs.get(7).unwrap().indices, pairs.indices(1, 7));
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PairDataset {
    images: Arc<ImageSet>,
    config: PairDatasetConfig,
    epoch: Arc<AtomicUsize>,
}

impl PairDataset {
    /// The images pairs are drawn from.
    pub fn images(&self) -> &ImageSet {
        &self.images
    }

    /// The configuration.
    pub fn config(&self) -> &PairDatasetConfig {
        &self.config
    }

    /// The epoch whose pairs [`Dataset::get`] returns.
    pub fn epoch(&self) -> usize {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Makes [`Dataset::get`] return the pairs of `epoch`, here and in every clone.
    pub fn set_epoch(&self, epoch: usize) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The generator of pair `index` of `epoch`.
    fn rng(&self, epoch: usize, index: usize, stream: u64) -> ChaCha8Rng {
        keyed_rng(self.config.seed, epoch, index, stream)
    }

    /// Whether pair `index` of `epoch` is a same pair: a stratified draw, so that any
    /// `n` consecutive indices hold `n × same_fraction` same pairs, give or take one.
    fn is_same(&self, epoch: usize, index: usize) -> bool {
        let p = self.config.same_fraction;
        let phase: f64 = self.rng(epoch, 0, u64::MAX).random();
        let at = |i: usize| (i as f64 * p + phase).floor();
        at(index + 1) > at(index)
    }

    /// The images of pair `index` of `epoch`, without decoding or distorting anything.
    pub fn indices(&self, epoch: usize, index: usize) -> PairIndices {
        self.indices_with(epoch, index, &mut self.rng(epoch, index, 0))
    }

    fn indices_with(&self, epoch: usize, index: usize, rng: &mut ChaCha8Rng) -> PairIndices {
        let set = &*self.images;
        let n_classes = set.num_classes();
        let same = self.is_same(epoch, index);
        if same {
            let images = set.images_of_class(rng.random_range(0..n_classes));
            let n = images.len();
            let first = rng.random_range(0..n);
            let second = (first + rng.random_range(1..n)) % n;
            return PairIndices {
                left: images.start + first,
                right: images.start + second,
                same,
            };
        }
        let first = rng.random_range(0..n_classes);
        let pool = if self.config.same_alphabet_negatives {
            set.classes_of_group(set.group_of_class(first))
        } else {
            0..n_classes
        };
        let offset = first - pool.start;
        let second = pool.start + (offset + rng.random_range(1..pool.len())) % pool.len();
        let pick = |class: usize, rng: &mut ChaCha8Rng| {
            let images = set.images_of_class(class);
            images.start + rng.random_range(0..images.len())
        };
        PairIndices {
            left: pick(first, rng),
            right: pick(second, rng),
            same,
        }
    }

    /// Pair `index` of `epoch`: its images, distorted when configured.
    pub fn pair(&self, epoch: usize, index: usize) -> PairItem {
        let mut rng = self.rng(epoch, index, 0);
        let indices = self.indices_with(epoch, index, &mut rng);
        let load = |image: usize, rng: &mut ChaCha8Rng| {
            let image = self.images.picture(image);
            match &self.config.distortion {
                Some(distortion) => {
                    distortion.distort_picture(&image, self.images.preprocess().background(), rng)
                }
                None => image,
            }
        };
        let left = load(indices.left, &mut rng);
        let right = load(indices.right, &mut rng);
        PairItem {
            left,
            right,
            indices,
        }
    }
}

/// A generator keyed by `(seed, epoch, index, stream)`: what makes every sampler's items
/// pure functions of their position, drawable in any order and on any thread.
pub(crate) fn keyed_rng(seed: u64, epoch: usize, index: usize, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
    key[24..].copy_from_slice(&stream.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

impl Dataset<PairItem> for PairDataset {
    /// Pair `index` of the current epoch.
    ///
    /// # Panics
    /// When `index >= len()`, as Burn's datasets do.
    fn get(&self, index: usize) -> Result<PairItem, DatasetError> {
        assert!(
            index < self.len(),
            "pair index {index} is out of range for an epoch of {} pairs",
            self.len()
        );
        Ok(self.pair(self.epoch(), index))
    }

    fn len(&self) -> usize {
        self.config.pairs_per_epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image_set::tests::toy_set;

    fn dataset(config: PairDatasetConfig) -> PairDataset {
        config.init(toy_set(3, 4, 5)).unwrap()
    }

    #[test]
    fn pairs_follow_their_labels() {
        let pairs = dataset(PairDatasetConfig::evaluation().with_pairs_per_epoch(2000));
        let set = pairs.images();
        for i in 0..pairs.len() {
            let p = pairs.indices(0, i);
            assert_ne!(p.left, p.right);
            assert_eq!(
                set.class_of(p.left) == set.class_of(p.right),
                p.same,
                "pair {i}"
            );
        }
    }

    #[test]
    fn every_window_is_balanced() {
        for fraction in [0.5, 0.3, 0.0, 1.0] {
            let pairs = dataset(
                PairDatasetConfig::evaluation()
                    .with_same_fraction(fraction)
                    .with_pairs_per_epoch(1000),
            );
            let same: Vec<bool> = (0..1000).map(|i| pairs.indices(3, i).same).collect();
            for window in [1, 7, 128, 1000] {
                for start in (0..=1000 - window).step_by(13) {
                    let n = same[start..start + window].iter().filter(|&&s| s).count() as f64;
                    assert!(
                        (n - window as f64 * fraction).abs() <= 1.0,
                        "{fraction} {window} {start}: {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_alphabet_negatives_stay_in_the_alphabet() {
        let pairs = dataset(
            PairDatasetConfig::evaluation()
                .with_same_alphabet_negatives(true)
                .with_pairs_per_epoch(500),
        );
        let set = pairs.images();
        let mut across = 0;
        for i in 0..500 {
            let p = pairs.indices(0, i);
            assert_eq!(set.group_of(p.left), set.group_of(p.right));
            across += usize::from(!p.same);
        }
        assert!(across > 200);
        // Without the option, some negatives cross alphabets.
        let free = dataset(PairDatasetConfig::evaluation().with_pairs_per_epoch(500));
        assert!((0..500).any(|i| {
            let p = free.indices(0, i);
            free.images().group_of(p.left) != free.images().group_of(p.right)
        }));
    }

    #[test]
    fn epochs_and_seeds_change_the_pairs_and_nothing_else_does() {
        let pairs = dataset(
            PairDatasetConfig::training()
                .with_seed(5)
                .with_pairs_per_epoch(64),
        );
        let again = dataset(
            PairDatasetConfig::training()
                .with_seed(5)
                .with_pairs_per_epoch(64),
        );
        let other = dataset(
            PairDatasetConfig::training()
                .with_seed(6)
                .with_pairs_per_epoch(64),
        );
        let epoch0: Vec<_> = (0..64).map(|i| pairs.indices(0, i)).collect();
        assert_eq!(
            epoch0,
            (0..64).map(|i| again.indices(0, i)).collect::<Vec<_>>()
        );
        assert_ne!(
            epoch0,
            (0..64).map(|i| pairs.indices(1, i)).collect::<Vec<_>>()
        );
        assert_ne!(
            epoch0,
            (0..64).map(|i| other.indices(0, i)).collect::<Vec<_>>()
        );
        let a = pairs.pair(0, 9);
        let b = again.pair(0, 9);
        assert_eq!((a.left, a.right), (b.left, b.right));
    }

    #[test]
    fn get_follows_the_shared_epoch() {
        let pairs = dataset(PairDatasetConfig::evaluation().with_pairs_per_epoch(10));
        let copy = pairs.clone();
        pairs.set_epoch(4);
        assert_eq!(copy.epoch(), 4);
        assert_eq!(copy.get(3).unwrap().indices, pairs.indices(4, 3));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn get_past_the_end_panics() {
        let _ = dataset(PairDatasetConfig::evaluation().with_pairs_per_epoch(10)).get(10);
    }

    #[test]
    fn impossible_splits_are_refused() {
        let one_drawer = toy_set(2, 3, 1);
        let message = PairDatasetConfig::evaluation()
            .init(one_drawer.clone())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("alphabet00/character01") && message.contains("1 image"),
            "{message}"
        );
        // Only different pairs: fine.
        assert!(
            PairDatasetConfig::evaluation()
                .with_same_fraction(0.0)
                .init(one_drawer)
                .is_ok()
        );

        let one_character = toy_set(2, 1, 3);
        let message = PairDatasetConfig::evaluation()
            .with_same_alphabet_negatives(true)
            .init(one_character.clone())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("alphabet alphabet00 has one character"),
            "{message}"
        );
        assert!(PairDatasetConfig::evaluation().init(one_character).is_ok());

        assert!(
            PairDatasetConfig::evaluation()
                .with_same_fraction(1.5)
                .init(toy_set(1, 2, 2))
                .is_err()
        );
        assert!(
            PairDatasetConfig::evaluation()
                .with_pairs_per_epoch(0)
                .init(toy_set(1, 2, 2))
                .is_err()
        );
        assert!(
            PairDatasetConfig::training()
                .with_distortion(Some(DistortionConfig::new().with_max_scale(0.5)))
                .init(toy_set(1, 2, 2))
                .is_err()
        );
    }
}
