//! Grouped batches: `m` characters × `k` drawings each, drawn reproducibly from
//! `(seed, epoch, batch)`, for losses that compare every image of a batch with every other.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;
use image::DynamicImage;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::distortion::DistortionConfig;
use super::image_set::ImageSet;
use super::pairs::keyed_rng;
use crate::{Error, Result};

/// What one grouped batch holds: `characters` characters, `drawings` drawings of each,
/// the characters taken from `alphabets` alphabets so that most of the batch's
/// different-character comparisons are within one alphabet, as in a one-shot trial.
#[derive(Config, Debug, PartialEq)]
pub struct GroupedBatchConfig {
    /// Characters in one batch, `m`: the `N` of the batch's N-way episodes.
    #[config(default = 32)]
    pub characters: usize,
    /// Drawings of each character, `k` (at least 2: a query and its support).
    #[config(default = 2)]
    pub drawings: usize,
    /// Alphabets the characters of one batch are drawn from, shared out evenly. An
    /// alphabet with fewer characters than its share gives all it has and the next alphabet
    /// drawn makes up the rest.
    #[config(default = 2)]
    pub alphabets: usize,
    /// Also draw every character turned by a quarter, a half and three quarters, each as a
    /// character of its own (as Vinyals et al. 2016 and Snell et al. 2017 augment
    /// Omniglot): four times the characters to tell apart, with the same drawers. Both
    /// drawings of a slot get its turn, before the distortions. `None`: upright only.
    pub quarter_turns: Option<bool>,
    /// Also draw every character mirrored left to right, as a character of its own: twice
    /// the characters (with [`Self::quarter_turns`], the 8 symmetries of a square). Both
    /// drawings of a slot are mirrored alike, before the turn. `None`: as drawn.
    pub mirrors: Option<bool>,
    /// Mirror each drawing left to right at random, one in two, as another view of the
    /// same character (not a character of its own, unlike [`Self::mirrors`]): for pictures
    /// whose instances show a subject facing either way, as emoji vendors draw animals.
    /// Drawn from the item's own generator, after the pose. `None`: as drawn.
    pub flips: Option<bool>,
}

impl GroupedBatchConfig {
    /// Images in one batch: `characters × drawings`.
    pub fn images(&self) -> usize {
        self.characters * self.drawings
    }

    /// Turns of each character drawn: 4 with [`Self::quarter_turns`], else 1.
    pub fn turns(&self) -> usize {
        if self.quarter_turns == Some(true) {
            4
        } else {
            1
        }
    }

    /// Poses of each character drawn, each a character of its own: [`Self::turns`], twice
    /// that with [`Self::mirrors`].
    pub fn poses(&self) -> usize {
        self.turns() * if self.mirrors == Some(true) { 2 } else { 1 }
    }

    /// Pose `p` of [`Self::poses`]: the turns vary fastest, so that without mirrors pose
    /// `p` is `p` quarter turns, as before mirrors existed.
    fn pose(&self, p: usize) -> Pose {
        let turns = self.turns();
        Pose {
            turns: (p % turns) as u8,
            mirrored: p >= turns,
        }
    }

    /// Checks the sizes on their own (the data is checked by [`GroupDatasetConfig::init`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.characters < 2 {
            return Err(Error::invalid(
                "characters",
                format!(
                    "{} is fewer than 2: a batch needs negatives",
                    self.characters
                ),
            ));
        }
        if self.drawings < 2 {
            return Err(Error::invalid(
                "drawings",
                format!(
                    "{} is fewer than 2: every character needs a query and a support",
                    self.drawings
                ),
            ));
        }
        if self.alphabets == 0 {
            return Err(Error::invalid("alphabets", "must be positive"));
        }
        Ok(())
    }
}

/// Configuration of a [`GroupDataset`].
#[derive(Config, Debug)]
pub struct GroupDatasetConfig {
    /// What each batch holds.
    pub batch: GroupedBatchConfig,
    /// Batches in one epoch.
    #[config(default = 500)]
    pub batches_per_epoch: usize,
    /// Affine distortions applied to every image independently, at the native resolution;
    /// `None` leaves the images as drawn.
    pub distortion: Option<DistortionConfig>,
    /// Seed; with the epoch and the index it fixes an item completely.
    #[config(default = 0)]
    pub seed: u64,
}

impl GroupDatasetConfig {
    /// Builds the dataset over `images`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a size is out of range, when a batch asks for more
    /// characters or alphabets than `images` has, or when a character has fewer drawings
    /// than a batch takes (named).
    pub fn init(&self, images: impl Into<Arc<ImageSet>>) -> Result<GroupDataset> {
        let images = images.into();
        self.batch.validate()?;
        if self.batches_per_epoch == 0 {
            return Err(Error::invalid("batches_per_epoch", "must be positive"));
        }
        if let Some(distortion) = &self.distortion {
            distortion.validate()?;
        }
        let GroupedBatchConfig {
            characters,
            drawings,
            alphabets,
            ..
        } = self.batch;
        if characters > images.num_classes() * self.batch.poses() {
            let turned = match (
                self.batch.turns() > 1,
                self.batch.poses() > self.batch.turns(),
            ) {
                (false, false) => "",
                (true, false) => " (× 4 turns)",
                (false, true) => " (× 2 mirrored)",
                (true, true) => " (× 4 turns × 2 mirrored)",
            };
            return Err(Error::invalid(
                "characters",
                format!(
                    "{characters} per batch, but {} has {} characters{turned}",
                    images.name(),
                    images.num_classes()
                ),
            ));
        }
        if alphabets > images.num_groups() {
            return Err(Error::invalid(
                "alphabets",
                format!(
                    "{alphabets} per batch, but {} has {} alphabets",
                    images.name(),
                    images.num_groups()
                ),
            ));
        }
        if let Some(class) =
            (0..images.num_classes()).find(|&c| images.images_of_class(c).len() < drawings)
        {
            return Err(Error::invalid(
                "drawings",
                format!(
                    "{drawings} per character, but character {} of {} has {}",
                    images.class_name(class),
                    images.name(),
                    images.images_of_class(class).len()
                ),
            ));
        }
        Ok(GroupDataset {
            images,
            config: self.clone(),
            epoch: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// How a character of a grouped batch is shown: mirrored left to right or not, then turned
/// clockwise by `turns` quarters ([`GroupedBatchConfig::quarter_turns`],
/// [`GroupedBatchConfig::mirrors`]). Each pose of a class is a character of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pose {
    /// Quarter turns clockwise, 0 to 3.
    pub turns: u8,
    /// Mirrored left to right (before the turn).
    pub mirrored: bool,
}

impl Pose {
    /// As drawn.
    pub const UPRIGHT: Pose = Pose {
        turns: 0,
        mirrored: false,
    };

    /// `image` in this pose.
    pub fn apply(self, image: DynamicImage) -> DynamicImage {
        let image = if self.mirrored { image.fliph() } else { image };
        match self.turns % 4 {
            0 => image,
            1 => image.rotate90(),
            2 => image.rotate180(),
            _ => image.rotate270(),
        }
    }
}

/// One image of a grouped batch.
#[derive(Clone, Debug)]
pub struct GroupItem {
    /// The picture as the set stores it (Omniglot: ink-high at the native 105 × 105),
    /// posed and distorted when configured.
    pub image: DynamicImage,
    /// Its index in the [`ImageSet`].
    pub index: usize,
    /// Its character's slot in the batch, in `0..characters`: the label the losses use.
    pub slot: usize,
    /// The pose the image was given before its distortions: part of its character with
    /// [`GroupedBatchConfig::quarter_turns`] or [`GroupedBatchConfig::mirrors`], else
    /// [`Pose::UPRIGHT`].
    pub pose: Pose,
}

/// Grouped batches of an [`ImageSet`], as a Burn [`Dataset`] of images.
///
/// Items come batch by batch: item `i` is image `i % B` of batch `i / B`, with
/// `B = characters × drawings`, and within a batch drawing `j` of character slot `c` is
/// image `j × characters + c` (all first drawings, then all second drawings, ...), so that
/// a data loader with batch size `B` and no shuffling yields whole batches. Batch `b` of
/// epoch `e` is a pure function of `(seed, e, b)`: a ChaCha8 generator keyed by the three
/// draws its alphabets, its characters (distinct, uniformly within each alphabet) and each
/// character's drawings (distinct); the distortions are keyed by the item. An item costs
/// O(characters + drawings) draws, whatever the size of the set.
///
/// ```
/// # use image::{GrayImage, Luma};
/// # use siamese::data::{ImageSet, LabeledImage};
/// use burn::data::dataset::Dataset;
/// use siamese::data::{GroupDatasetConfig, GroupedBatchConfig};
///
/// # let images = ImageSet::from_images("toy", (0..3u8).flat_map(|a| (0..6u8).flat_map(move |c| (1..=4).map(move |d| LabeledImage {
/// #     group: format!("A{a}"), class: format!("c{c}"), instance: d,
/// #     image: GrayImage::from_pixel(105, 105, Luma([0])).into(),
/// # }))))?;
/// // 3 alphabets × 6 characters × 4 drawings; batches of 8 characters × 2 drawings.
/// let batch = GroupedBatchConfig::new().with_characters(8).with_drawings(2);
/// let groups = GroupDatasetConfig::new(batch)
///     .with_batches_per_epoch(10)
///     .with_seed(42)
///     .init(images)?;
/// assert_eq!(groups.len(), 10 * 16);
/// let first = groups.batch_indices(0, 0);
/// let set = groups.images();
/// for c in 0..8 {
///     // The two drawings of slot c show one character, by two drawers.
///     assert_eq!(set.class_of(first[c]), set.class_of(first[8 + c]));
///     assert_ne!(first[c], first[8 + c]);
/// }
/// assert_eq!(groups.get(9).unwrap().slot, 1);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GroupDataset {
    images: Arc<ImageSet>,
    config: GroupDatasetConfig,
    epoch: Arc<AtomicUsize>,
}

/// Generator streams of one batch: its characters, then one per character slot.
const CHARACTERS: u64 = 0;
const DISTORTION: u64 = u64::MAX;
const FLIP: u64 = u64::MAX - 1;

impl GroupDataset {
    /// The images batches are drawn from.
    pub fn images(&self) -> &ImageSet {
        &self.images
    }

    /// The configuration.
    pub fn config(&self) -> &GroupDatasetConfig {
        &self.config
    }

    /// Images in one batch.
    pub fn batch_len(&self) -> usize {
        self.config.batch.images()
    }

    /// The epoch whose items [`Dataset::get`] returns.
    pub fn epoch(&self) -> usize {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Makes [`Dataset::get`] return the items of `epoch`, here and in every clone.
    pub fn set_epoch(&self, epoch: usize) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    fn rng(&self, epoch: usize, index: usize, stream: u64) -> ChaCha8Rng {
        keyed_rng(self.config.seed, epoch, index, stream)
    }

    /// The classes of batch `batch` of `epoch`, slot by slot (a class may fill two slots
    /// in different poses with [`GroupedBatchConfig::quarter_turns`] or
    /// [`GroupedBatchConfig::mirrors`]).
    pub fn batch_classes(&self, epoch: usize, batch: usize) -> Vec<usize> {
        let characters = self.batch_characters(epoch, batch);
        characters.into_iter().map(|(class, _)| class).collect()
    }

    /// The characters of batch `batch` of `epoch`, slot by slot: a class of the set and its
    /// pose.
    pub fn batch_characters(&self, epoch: usize, batch: usize) -> Vec<(usize, Pose)> {
        let set = &*self.images;
        let GroupedBatchConfig {
            characters,
            alphabets,
            ..
        } = self.config.batch;
        let poses = self.config.batch.poses();
        let mut rng = self.rng(epoch, batch, CHARACTERS);
        let mut order: Vec<usize> = (0..set.num_groups()).collect();
        let mut chosen = Vec::with_capacity(characters);
        let mut owed = 0;
        for t in 0..order.len() {
            if chosen.len() == characters {
                break;
            }
            let pick = t + rng.random_range(0..order.len() - t);
            order.swap(t, pick);
            let range = set.classes_of_group(order[t]);
            let share = if t < alphabets {
                characters / alphabets + usize::from(t < characters % alphabets)
            } else {
                0
            };
            let want = (share + owed).min(characters - chosen.len());
            // Character `v` of the pool is class `v / poses` in pose `v % poses`.
            let mut pool: Vec<usize> = (range.start * poses..range.end * poses).collect();
            let take = want.min(pool.len());
            owed = want - take;
            for i in 0..take {
                let j = i + rng.random_range(0..pool.len() - i);
                pool.swap(i, j);
                let pose = self.config.batch.pose(pool[i] % poses);
                chosen.push((pool[i] / poses, pose));
            }
        }
        debug_assert_eq!(chosen.len(), characters, "checked by init");
        chosen
    }

    /// The image indices of batch `batch` of `epoch`, in batch order (drawing-major).
    pub fn batch_indices(&self, epoch: usize, batch: usize) -> Vec<usize> {
        self.indices_of(epoch, batch, &self.batch_characters(epoch, batch))
    }

    /// The image indices of batch `batch` of `epoch`, whose characters are `characters`.
    fn indices_of(&self, epoch: usize, batch: usize, characters: &[(usize, Pose)]) -> Vec<usize> {
        let drawings = self.config.batch.drawings;
        let per_slot: Vec<Vec<usize>> = characters
            .iter()
            .enumerate()
            .map(|(slot, &(class, _))| self.drawings_of(epoch, batch, slot, class, drawings))
            .collect();
        (0..drawings)
            .flat_map(|j| per_slot.iter().map(move |images| images[j]))
            .collect()
    }

    /// `drawings` distinct images of `class`, for `slot` of a batch.
    fn drawings_of(
        &self,
        epoch: usize,
        batch: usize,
        slot: usize,
        class: usize,
        drawings: usize,
    ) -> Vec<usize> {
        let mut rng = self.rng(epoch, batch, 1 + slot as u64);
        let mut pool: Vec<usize> = self.images.images_of_class(class).collect();
        for i in 0..drawings {
            let j = i + rng.random_range(0..pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(drawings);
        pool
    }

    /// Item `index` of `epoch`: image `index % B` of batch `index / B`.
    pub fn item(&self, epoch: usize, index: usize) -> GroupItem {
        let b = self.batch_len();
        let (batch, position) = (index / b, index % b);
        let characters = self.config.batch.characters;
        let (drawing, slot) = (position / characters, position % characters);
        let (class, pose) = self.batch_characters(epoch, batch)[slot];
        let image = self.drawings_of(epoch, batch, slot, class, drawing + 1)[drawing];
        self.load(epoch, index, image, slot, pose)
    }

    /// The items of batch `batch` of `epoch`, in order: what `item` gives for each of its
    /// indices, with the batch's characters and drawings drawn once rather than per item,
    /// and the images decoded and distorted in parallel.
    pub fn batch(&self, epoch: usize, batch: usize) -> Vec<GroupItem> {
        let (b, characters) = (self.batch_len(), self.config.batch.characters);
        let chosen = self.batch_characters(epoch, batch);
        self.indices_of(epoch, batch, &chosen)
            .into_par_iter()
            .enumerate()
            .map(|(p, image)| {
                let slot = p % characters;
                self.load(epoch, batch * b + p, image, slot, chosen[slot].1)
            })
            .collect()
    }

    /// Item `index`: `image` of the set in `pose`, flipped at random when configured, then
    /// distorted with the item's own generator.
    fn load(&self, epoch: usize, index: usize, image: usize, slot: usize, pose: Pose) -> GroupItem {
        let pixels = pose.apply(self.images.picture(image));
        let pixels = match self.config.batch.flips {
            Some(true) if self.rng(epoch, index, FLIP).random_bool(0.5) => pixels.fliph(),
            _ => pixels,
        };
        let pixels = match &self.config.distortion {
            Some(distortion) => distortion.distort_picture(
                &pixels,
                self.images.preprocess().background(),
                &mut self.rng(epoch, index, DISTORTION),
            ),
            None => pixels,
        };
        GroupItem {
            image: pixels,
            index: image,
            slot,
            pose,
        }
    }
}

impl Dataset<GroupItem> for GroupDataset {
    /// Item `index` of the current epoch.
    ///
    /// # Panics
    /// When `index >= len()`, as Burn's datasets do.
    fn get(&self, index: usize) -> Result<GroupItem, DatasetError> {
        assert!(
            index < self.len(),
            "item {index} is out of range for an epoch of {} images",
            self.len()
        );
        Ok(self.item(self.epoch(), index))
    }

    fn len(&self) -> usize {
        self.config.batches_per_epoch * self.batch_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image_set::tests::toy_set;
    use std::collections::HashSet;

    fn config(characters: usize, drawings: usize, alphabets: usize) -> GroupDatasetConfig {
        GroupDatasetConfig::new(
            GroupedBatchConfig::new()
                .with_characters(characters)
                .with_drawings(drawings)
                .with_alphabets(alphabets),
        )
        .with_batches_per_epoch(20)
        .with_seed(3)
    }

    fn with_turns(mut config: GroupDatasetConfig, turns: Option<bool>) -> GroupDatasetConfig {
        config.batch.quarter_turns = turns;
        config
    }

    #[test]
    fn every_batch_holds_k_distinct_drawings_of_m_distinct_characters() {
        // 5 alphabets of 6 characters, 5 drawers each.
        let groups = config(8, 3, 2).init(toy_set(5, 6, 5)).unwrap();
        let set = groups.images().clone();
        for epoch in 0..3 {
            for batch in 0..20 {
                let indices = groups.batch_indices(epoch, batch);
                assert_eq!(indices.len(), 24);
                let classes = groups.batch_classes(epoch, batch);
                assert_eq!(classes.iter().collect::<HashSet<_>>().len(), 8, "distinct");
                for (c, &class) in classes.iter().enumerate() {
                    let drawings: HashSet<usize> = (0..3).map(|j| indices[j * 8 + c]).collect();
                    assert_eq!(drawings.len(), 3, "distinct drawings");
                    assert!(drawings.iter().all(|&i| set.class_of(i) == class));
                }
                // 8 characters from 2 alphabets of 6: 4 each.
                let alphabets: HashSet<usize> =
                    classes.iter().map(|&c| set.group_of_class(c)).collect();
                assert_eq!(alphabets.len(), 2, "epoch {epoch} batch {batch}");
                // The items are the batch, in order.
                let whole = groups.batch(epoch, batch);
                for (p, &index) in indices.iter().enumerate() {
                    let item = groups.item(epoch, batch * 24 + p);
                    assert_eq!(item.index, index);
                    assert_eq!(item.slot, p % 8);
                    assert_eq!((whole[p].index, whole[p].slot), (index, p % 8));
                }
            }
        }
    }

    #[test]
    fn quarter_turns_make_four_characters_of_each_class() {
        // 2 alphabets × 3 characters: 6 classes, 24 characters with their turns.
        let turned = with_turns(config(20, 2, 2), Some(true))
            .init(toy_set(2, 3, 3))
            .unwrap();
        let set = turned.images().clone();
        let mut turns_seen = HashSet::new();
        for batch in 0..20 {
            let chosen = turned.batch_characters(1, batch);
            assert_eq!(chosen.iter().collect::<HashSet<_>>().len(), 20, "distinct");
            let items = turned.batch(1, batch);
            for (p, item) in items.iter().enumerate() {
                let (class, pose) = chosen[p % 20];
                assert_eq!((set.class_of(item.index), item.pose), (class, pose));
                assert_eq!(item.image, pose.apply(set.picture(item.index)));
                assert!(!pose.mirrored);
                turns_seen.insert(pose.turns);
            }
        }
        assert_eq!(turns_seen.len(), 4);
        // 25 characters are more than 6 classes in 4 turns make; upright, 7 are.
        let m = with_turns(config(25, 2, 2), Some(true))
            .init(toy_set(2, 3, 3))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("25 per batch") && m.contains("6 characters (× 4 turns)"),
            "{m}"
        );
        assert!(config(7, 2, 2).init(toy_set(2, 3, 3)).is_err());
        // Off, every item is upright and the batches are those of `None`.
        let upright = config(6, 2, 2).init(toy_set(2, 3, 3)).unwrap();
        let off = with_turns(config(6, 2, 2), Some(false))
            .init(toy_set(2, 3, 3))
            .unwrap();
        assert_eq!(upright.batch_indices(0, 3), off.batch_indices(0, 3));
        assert!(
            upright
                .batch(0, 3)
                .iter()
                .all(|item| item.pose == Pose::UPRIGHT)
        );
    }

    #[test]
    fn mirrors_double_the_characters_and_keep_the_turns_batches() {
        let set = Arc::new(toy_set(2, 3, 3));
        let mirrored = |turns, mirrors| {
            let mut config = with_turns(config(20, 2, 2), turns);
            config.batch.mirrors = mirrors;
            config.init(set.clone())
        };
        // 6 classes × 4 turns × 2 mirrors: 48 characters, all 8 poses drawn.
        let both = mirrored(Some(true), Some(true)).unwrap();
        let mut poses = HashSet::new();
        for batch in 0..20 {
            let chosen = both.batch_characters(0, batch);
            assert_eq!(chosen.iter().collect::<HashSet<_>>().len(), 20, "distinct");
            for (p, item) in both.batch(0, batch).iter().enumerate() {
                assert_eq!((set.class_of(item.index), item.pose), chosen[p % 20]);
                assert_eq!(item.image, item.pose.apply(set.picture(item.index)));
                poses.insert(item.pose);
            }
        }
        assert_eq!(poses.len(), 8);
        // Mirrors alone: 12 characters (20 are too many), each class as drawn and
        // mirrored.
        let m = mirrored(None, Some(true)).unwrap_err().to_string();
        assert!(m.contains("6 characters (× 2 mirrored)"), "{m}");
        let mut mirrors_only = config(12, 2, 2);
        mirrors_only.batch.mirrors = Some(true);
        let alone = mirrors_only.init(set.clone()).unwrap();
        let seen: HashSet<Pose> = (0..20)
            .flat_map(|b| alone.batch_characters(0, b))
            .map(|(_, pose)| pose)
            .collect();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|pose| pose.turns == 0));
        // Turned without mirrors, batches are those drawn before mirrors existed.
        let turned = mirrored(Some(true), None).unwrap();
        let off = mirrored(Some(true), Some(false)).unwrap();
        for batch in 0..5 {
            assert_eq!(
                turned.batch_characters(2, batch),
                off.batch_characters(2, batch)
            );
        }
        let mut too_many = with_turns(config(49, 2, 2), Some(true));
        too_many.batch.mirrors = Some(true);
        let m = too_many.init(set).unwrap_err().to_string();
        assert!(m.contains("6 characters (× 4 turns × 2 mirrored)"), "{m}");
    }

    #[test]
    fn a_quarter_turn_is_clockwise_after_the_mirror() {
        let mut image = image::GrayImage::new(105, 105);
        image.put_pixel(0, 0, image::Luma([255]));
        let pose = |turns, mirrored| {
            Pose { turns, mirrored }
                .apply(image.clone().into())
                .into_luma8()
        };
        assert_eq!(pose(1, false).get_pixel(104, 0).0, [255]);
        assert_eq!(pose(2, false).get_pixel(104, 104).0, [255]);
        assert_eq!(pose(3, false).get_pixel(0, 104).0, [255]);
        assert_eq!(pose(4, false), image);
        // Mirrored, the top-left pixel goes top-right, and a quarter turn takes it on
        // to the bottom right.
        assert_eq!(pose(0, true).get_pixel(104, 0).0, [255]);
        assert_eq!(pose(1, true).get_pixel(104, 104).0, [255]);
        assert_eq!(Pose::default(), Pose::UPRIGHT);
    }

    #[test]
    fn flips_mirror_about_half_the_drawings_and_keep_the_characters() {
        let set = Arc::new(toy_set(4, 6, 4));
        let plain = config(6, 2, 2).init(set.clone()).unwrap();
        let mut flipped = config(6, 2, 2);
        flipped.batch.flips = Some(true);
        let flipped = flipped.init(set.clone()).unwrap();
        let (mut mirrored, mut total) = (0, 0);
        for batch in 0..20 {
            // The same characters and drawings, the same slots; no new poses.
            assert_eq!(
                plain.batch_indices(1, batch),
                flipped.batch_indices(1, batch)
            );
            for (a, b) in plain.batch(1, batch).iter().zip(flipped.batch(1, batch)) {
                assert_eq!((a.slot, a.pose), (b.slot, b.pose));
                if b.image != a.image {
                    assert_eq!(b.image, a.image.fliph(), "item {}", a.index);
                    mirrored += 1;
                }
                total += 1;
            }
        }
        // 240 fair coins: 120 ± 8 expected, and the draw is seeded.
        assert!((90..150).contains(&mirrored), "{mirrored} of {total}");
        assert_eq!(flipped.item(1, 7).image, flipped.batch(1, 0)[7].image);
    }

    #[test]
    fn small_alphabets_are_made_up_from_the_next() {
        // 10 characters from 1 alphabet of 6: every batch spills into a second alphabet.
        let groups = config(10, 2, 1).init(toy_set(4, 6, 2)).unwrap();
        let set = groups.images();
        for batch in 0..20 {
            let classes = groups.batch_classes(0, batch);
            assert_eq!(classes.iter().collect::<HashSet<_>>().len(), 10);
            let mut per_alphabet = [0; 4];
            for &c in &classes {
                per_alphabet[set.group_of_class(c)] += 1;
            }
            per_alphabet.sort();
            assert_eq!(per_alphabet, [0, 0, 4, 6], "batch {batch}");
        }
    }

    #[test]
    fn every_alphabet_and_character_is_drawn() {
        let groups = config(4, 2, 2).init(toy_set(5, 6, 3)).unwrap();
        let seen: HashSet<usize> = (0..20).flat_map(|b| groups.batch_classes(0, b)).collect();
        assert!(
            seen.len() > 25,
            "{} of 30 characters in 20 batches",
            seen.len()
        );
    }

    #[test]
    fn seeds_and_epochs_change_the_batches_and_nothing_else_does() {
        let set = Arc::new(toy_set(4, 6, 4));
        let a = config(6, 2, 2).init(set.clone()).unwrap();
        let b = config(6, 2, 2).init(set.clone()).unwrap();
        let other = config(6, 2, 2).with_seed(4).init(set).unwrap();
        let batches =
            |g: &GroupDataset, e| (0..5).map(|b| g.batch_indices(e, b)).collect::<Vec<_>>();
        assert_eq!(batches(&a, 0), batches(&b, 0));
        assert_ne!(batches(&a, 0), batches(&a, 1));
        assert_ne!(batches(&a, 0), batches(&other, 0));
        let distorted = config(6, 2, 2)
            .with_distortion(Some(DistortionConfig::koch()))
            .init(toy_set(4, 6, 4))
            .unwrap();
        assert_eq!(distorted.item(2, 7).image, distorted.item(2, 7).image);
        assert_eq!(distorted.batch(2, 0)[7].image, distorted.item(2, 7).image);
        let copy = a.clone();
        a.set_epoch(5);
        assert_eq!(copy.get(3).unwrap().index, a.item(5, 3).index);
        assert_eq!(a.len(), 20 * 12);
    }

    #[test]
    fn impossible_batches_are_named_errors() {
        let message = |c: GroupDatasetConfig| c.init(toy_set(2, 3, 2)).unwrap_err().to_string();
        assert!(message(config(4, 1, 1)).contains("drawings"));
        assert!(message(config(1, 2, 1)).contains("characters"));
        assert!(message(config(4, 2, 0)).contains("alphabets"));
        let m = message(config(7, 2, 1));
        assert!(
            m.contains("7 per batch") && m.contains("6 characters"),
            "{m}"
        );
        let m = message(config(4, 2, 3));
        assert!(
            m.contains("3 per batch") && m.contains("2 alphabets"),
            "{m}"
        );
        let m = message(config(4, 3, 1));
        assert!(
            m.contains("alphabet00/character01") && m.contains("has 2"),
            "{m}"
        );
        assert!(message(config(4, 2, 1).with_batches_per_epoch(0)).contains("batches_per_epoch"));
    }
}
