//! Koch's way of scoring: each (query, support) pair through the whole network.

use burn::prelude::*;
use image::DynamicImage;

use super::scorer::Scorer;
use crate::tensors::{cat_batches, index_tensor, to_f32s};
use crate::{Result, Siamese};

/// Scores with a [`Siamese`] network as Koch et al. describe it: every (query, support)
/// pair goes through [`Siamese::forward`], so each image is encoded once per pair it is
/// in. It gives the same logits as [`SiameseScorer`](super::SiameseScorer) at many times
/// the cost: it is the reference for that scorer, and the baseline of its speed-up.
#[derive(Clone, Debug)]
pub struct PairwiseScorer {
    model: Siamese,
    device: Device,
    batch_size: usize,
}

impl PairwiseScorer {
    /// A scorer with `model` in evaluation mode ([`Module::valid`]), on the model's device,
    /// 32 pairs per forward pass.
    pub fn new(model: &Siamese) -> Self {
        Self {
            device: model.device(),
            model: model.valid(),
            batch_size: 32,
        }
    }

    /// Sets the pairs per forward pass (each pass encodes twice as many images).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when `batch_size` is 0.
    pub fn with_batch_size(mut self, batch_size: usize) -> crate::Result<Self> {
        if batch_size == 0 {
            return Err(crate::Error::invalid("batch_size", "must be positive"));
        }
        self.batch_size = batch_size;
        Ok(self)
    }
}

impl Scorer for PairwiseScorer {
    /// Network inputs `[B, C, S, S]`, on the model's device.
    type Embeddings = Tensor<4>;

    fn name(&self) -> String {
        "siamese (pairwise)".into()
    }

    fn embed(&self, images: &[&DynamicImage]) -> Result<Tensor<4>> {
        Ok(self.model.input_spec().batch(images, &self.device))
    }

    fn concat(&self, batches: Vec<Tensor<4>>) -> Result<Tensor<4>> {
        Ok(cat_batches(batches))
    }

    fn score(&self, inputs: &Tensor<4>, queries: &[usize], supports: &[usize]) -> Result<Vec<f32>> {
        let (left, right): (Vec<usize>, Vec<usize>) = queries
            .iter()
            .flat_map(|&q| supports.iter().map(move |&s| (q, s)))
            .unzip();
        let mut scores = Vec::with_capacity(left.len());
        for (l, r) in left
            .chunks(self.batch_size)
            .zip(right.chunks(self.batch_size))
        {
            let pick = |ids: &[usize]| inputs.clone().select(0, index_tensor(ids, &self.device));
            scores.extend(to_f32s(self.model.forward(pick(l), pick(r))));
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_batch_size_is_a_named_error() {
        let device = crate::device::default_device().unwrap();
        let model = crate::testing::tiny_siamese().init(&device);
        let message = PairwiseScorer::new(&model)
            .with_batch_size(0)
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("batch_size"), "{message}");
    }
}
