//! Batching grouped images into tensors.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use super::groups::GroupItem;
use super::preprocess::InputSpec;
use image::DynamicImage;

/// A grouped batch on one device: `characters × drawings` images, drawing-major (row
/// `j × characters + c` is drawing `j` of character slot `c`), as [`GroupDataset`] yields
/// them.
///
/// [`GroupDataset`]: super::GroupDataset
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GroupBatch {
    /// The images, in `[0, 1]` (Omniglot: ink 1.0, background 0.0).
    pub images: Tensor<4>,
    /// Characters in the batch.
    pub characters: usize,
    /// Drawings of each character.
    pub drawings: usize,
}

/// Turns the [`GroupItem`]s of one grouped batch into a [`GroupBatch`] of a network's
/// inputs, converted with [`InputSpec::to_input`] as evaluation does.
///
/// ```
/// use burn::data::dataloader::batcher::Batcher;
/// use image::GrayImage;
/// use siamese::data::{GroupBatcher, GroupItem, Pose};
///
/// let device = siamese::device::default_device()?;
/// let items = (0..6)
///     .map(|i| GroupItem { image: GrayImage::new(105, 105).into(), index: i, slot: i % 3, pose: Pose::UPRIGHT })
///     .collect();
/// let batch = GroupBatcher::new(52)?.batch(items, &device); // 3 characters × 2 drawings
/// assert_eq!(batch.images.dims(), [6, 1, 52, 52]);
/// assert_eq!((batch.characters, batch.drawings), (3, 2));
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBatcher {
    input: InputSpec,
}

impl GroupBatcher {
    /// A batcher for a grey encoder whose input is `image_size × image_size`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when `image_size` is 0.
    pub fn new(image_size: usize) -> crate::Result<Self> {
        if image_size == 0 {
            return Err(crate::Error::invalid("image_size", "must be positive"));
        }
        Ok(Self::for_input(InputSpec::ink(image_size)?))
    }

    /// A batcher for a network that reads `input`
    /// ([`Siamese::input_spec`](crate::Siamese::input_spec)).
    pub fn for_input(input: InputSpec) -> Self {
        Self { input }
    }
}

impl Batcher<GroupItem, GroupBatch> for GroupBatcher {
    /// # Shapes
    /// - images: `[B, C, S, S]` with `C`, `S` the input's channels and side,
    ///   `B = characters × drawings`
    ///
    /// # Panics
    /// When the items are not one whole grouped batch in order: slots `0, 1, ..., m - 1`
    /// repeated once per drawing.
    fn batch(&self, items: Vec<GroupItem>, device: &Device) -> GroupBatch {
        let b = items.len();
        let characters = items.iter().map(|item| item.slot + 1).max().unwrap_or(0);
        assert!(
            characters > 0
                && b.is_multiple_of(characters)
                && items
                    .iter()
                    .enumerate()
                    .all(|(p, item)| item.slot == p % characters),
            "the items are not one grouped batch in order (drawing-major slots)"
        );
        let images: Vec<&DynamicImage> = items.iter().map(|item| &item.image).collect();
        GroupBatch {
            images: self.input.batch(&images, device),
            characters,
            drawings: b / characters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image_set::tests::toy_set;
    use crate::data::to_input;
    use crate::data::{GroupDatasetConfig, GroupedBatchConfig};

    crate::device_tests! {
        fn a_batch_is_its_items_in_order(device) {
            let groups = GroupDatasetConfig::new(GroupedBatchConfig::new().with_characters(3))
                .with_batches_per_epoch(2)
                .init(toy_set(2, 3, 4))
                .unwrap();
            let items: Vec<GroupItem> = (6..12).map(|i| groups.item(0, i)).collect();
            let batch = GroupBatcher::new(52).unwrap().batch(items.clone(), &device);
            assert_eq!(batch.images.dims(), [6, 1, 52, 52]);
            assert_eq!((batch.characters, batch.drawings), (3, 2));
            let pixels: Vec<f32> = batch.images.into_data().try_into_vec().unwrap();
            for (i, item) in items.iter().enumerate() {
                assert_eq!(&pixels[i * 52 * 52..(i + 1) * 52 * 52], &to_input(item.image.as_luma8().unwrap(), 52)[..]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "not one grouped batch")]
    fn shuffled_items_are_refused() {
        let groups = GroupDatasetConfig::new(GroupedBatchConfig::new().with_characters(3))
            .init(toy_set(2, 3, 4))
            .unwrap();
        let mut items: Vec<GroupItem> = (0..6).map(|i| groups.item(0, i)).collect();
        items.swap(0, 1);
        let _ = GroupBatcher::new(52)
            .unwrap()
            .batch(items, &crate::device::default_device().unwrap());
    }

    #[test]
    fn a_zero_size_is_an_error() {
        assert!(
            GroupBatcher::new(0)
                .unwrap_err()
                .to_string()
                .contains("image_size")
        );
    }
}
