//! The Siamese network as a scorer: every image embedded once, all pairs scored by the head.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::GrayImage;

use super::scorer::Scorer;
use crate::data::to_input;
use crate::{Result, Siamese};

/// Scores with a [`Siamese`] network the fast way: each distinct image goes through the
/// encoder once ([`Siamese::embed`]), and the head scores every query against every
/// support from the embeddings ([`L1DistanceHead::forward_all`](crate::L1DistanceHead::forward_all)).
/// Scores are the head's logits. [`PairwiseScorer`](super::PairwiseScorer) is the
/// reference it must agree with.
///
/// ```
/// use std::sync::Arc;
/// use image::{GrayImage, Luma};
/// use siamese::SiameseConfig;
/// use siamese::eval::{Episode, EvaluatorConfig, SiameseScorer};
///
/// let device = siamese::device::default_device()?;
/// let scorer = SiameseScorer::new(&SiameseConfig::compact().init(&device));
/// let image = |v: u8| Arc::new(GrayImage::from_pixel(105, 105, Luma([v])));
/// let episode = Episode::new(vec![vec![image(0)], vec![image(255)]], vec![image(9)], vec![0])?;
/// let result = EvaluatorConfig::new().init()?.evaluate(&scorer, &[episode])?;
/// assert_eq!(result.total(), 1);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SiameseScorer {
    model: Siamese,
    device: Device,
}

impl SiameseScorer {
    /// A scorer with `model` in evaluation mode ([`Module::valid`]), on the model's device.
    pub fn new(model: &Siamese) -> Self {
        Self {
            device: model.head.bias.val().device(),
            model: model.valid(),
        }
    }

    /// The network, in evaluation mode.
    pub fn model(&self) -> &Siamese {
        &self.model
    }
}

/// The network inputs of `images`, resized with [`to_input`] to the model's side.
///
/// # Shapes
/// - output: `[images.len(), 1, S, S]`
pub(super) fn input_batch(images: &[&GrayImage], model: &Siamese, device: &Device) -> Tensor<4> {
    let [side, _] = model.input_shape();
    let pixels: Vec<f32> = images
        .iter()
        .flat_map(|image| to_input(image, side))
        .collect();
    Tensor::from_data(
        TensorData::new(pixels, [images.len(), 1, side, side]),
        device,
    )
}

/// `ids` as an index tensor.
pub(super) fn index_tensor(ids: &[usize], device: &Device) -> Tensor<1, Int> {
    let ids: Vec<i32> = ids
        .iter()
        .map(|&i| i32::try_from(i).expect("fewer than 2^31 images"))
        .collect();
    let len = ids.len();
    Tensor::from_ints(TensorData::new(ids, [len]), device)
}

/// Reads a tensor back as `f32`s.
pub(super) fn to_f32s<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor reads back as f32")
}

/// Joins tensors along the batch dimension.
pub(super) fn cat_batches<const D: usize>(mut batches: Vec<Tensor<D>>) -> Tensor<D> {
    if batches.len() == 1 {
        batches.pop().expect("one batch")
    } else {
        Tensor::cat(batches, 0)
    }
}

impl Scorer for SiameseScorer {
    /// Embeddings `[B, D]`, on the model's device.
    type Embeddings = Tensor<2>;

    fn name(&self) -> String {
        "siamese (embed once)".into()
    }

    fn embed(&self, images: &[&GrayImage]) -> Result<Tensor<2>> {
        Ok(self
            .model
            .embed(input_batch(images, &self.model, &self.device)))
    }

    fn concat(&self, batches: Vec<Tensor<2>>) -> Result<Tensor<2>> {
        Ok(cat_batches(batches))
    }

    fn score(
        &self,
        embeddings: &Tensor<2>,
        queries: &[usize],
        supports: &[usize],
    ) -> Result<Vec<f32>> {
        let pick = |ids: &[usize]| {
            embeddings
                .clone()
                .select(0, index_tensor(ids, &self.device))
        };
        Ok(to_f32s(
            self.model.head.forward_all(pick(queries), pick(supports)),
        ))
    }
}
