//! Batching pairs into tensors.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use super::pairs::PairItem;
use super::preprocess::InputSpec;
use image::DynamicImage;

/// A batch of pairs, on one device.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PairBatch {
    /// Left images, in `[0, 1]` (Omniglot: ink 1.0, background 0.0).
    pub left: Tensor<4>,
    /// Right images.
    pub right: Tensor<4>,
    /// 1.0 where both images show the same character, 0.0 otherwise.
    pub targets: Tensor<1>,
}

/// Turns [`PairItem`]s into a [`PairBatch`] of a network's inputs, converted with
/// [`InputSpec::to_input`], the conversion evaluation uses too.
///
/// ```
/// use burn::data::dataloader::batcher::Batcher;
/// use image::{GrayImage, Luma};
/// use siamese::data::{PairBatcher, PairIndices, PairItem};
///
/// let device = siamese::device::default_device()?;
/// let item = PairItem {
///     left: GrayImage::from_pixel(105, 105, Luma([255])).into(),
///     right: GrayImage::new(105, 105).into(),
///     indices: PairIndices { left: 0, right: 1, same: true },
/// };
/// let batch = PairBatcher::new(52)?.batch(vec![item.clone(), item], &device);
/// assert_eq!(batch.left.dims(), [2, 1, 52, 52]);
/// assert_eq!(batch.targets.into_data().try_into_vec::<f32>().unwrap(), [1.0, 1.0]);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairBatcher {
    input: InputSpec,
}

impl PairBatcher {
    /// A batcher for a grey encoder whose input is `image_size × image_size`
    /// (105 for Koch's network, 52 for the compact one).
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

    /// Side of the images in the batches.
    pub fn image_size(&self) -> usize {
        self.input.side()
    }
}

impl Batcher<PairItem, PairBatch> for PairBatcher {
    /// # Shapes
    /// - left, right: `[B, C, S, S]` with `C`, `S` the input's channels and side
    /// - targets: `[B]`
    fn batch(&self, items: Vec<PairItem>, device: &Device) -> PairBatch {
        let left: Vec<&DynamicImage> = items.iter().map(|item| &item.left).collect();
        let right: Vec<&DynamicImage> = items.iter().map(|item| &item.right).collect();
        let targets: Vec<f32> = items
            .iter()
            .map(|item| if item.indices.same { 1.0 } else { 0.0 })
            .collect();
        PairBatch {
            left: self.input.batch(&left, device),
            right: self.input.batch(&right, device),
            targets: Tensor::from_data(TensorData::new(targets, [items.len()]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::to_input;
    use crate::data::{PairDatasetConfig, image_set::tests::toy_set};
    use burn::data::dataset::Dataset;

    #[test]
    fn a_zero_size_is_a_named_error() {
        let message = PairBatcher::new(0).unwrap_err().to_string();
        assert!(message.contains("image_size"), "{message}");
    }

    crate::device_tests! {
        fn batches_match_items(device) {
            let pairs = PairDatasetConfig::evaluation()
                .with_pairs_per_epoch(6)
                .init(toy_set(2, 3, 4))
                .unwrap();
            let items: Vec<PairItem> = (0..6).map(|i| pairs.get(i).unwrap()).collect();
            for size in [105, 52] {
                let batch = PairBatcher::new(size).unwrap().batch(items.clone(), &device);
                assert_eq!(batch.left.dims(), [6, 1, size, size]);
                assert_eq!(batch.right.dims(), [6, 1, size, size]);
                let targets: Vec<f32> = batch.targets.into_data().try_into_vec().unwrap();
                let left: Vec<f32> = batch.left.into_data().try_into_vec().unwrap();
                for (i, item) in items.iter().enumerate() {
                    assert_eq!(targets[i], if item.indices.same { 1.0 } else { 0.0 });
                    let expected = to_input(item.left.as_luma8().unwrap(), size);
                    assert_eq!(&left[i * size * size..(i + 1) * size * size], &expected[..]);
                }
                assert!(left.iter().all(|v| (0.0..=1.0).contains(v)));
                assert!(left.iter().any(|&v| v > 0.25), "ink is high");
            }
        }
    }
}
