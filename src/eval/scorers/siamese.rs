//! The Siamese network as a scorer: every image embedded once, all pairs scored by the head.

use burn::prelude::*;
use image::DynamicImage;

use super::scorer::Scorer;
use crate::data::AffineDistortion;
use crate::tensors::{cat_batches, index_tensor, to_f32s};
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
/// let image = |v: u8| Arc::new(GrayImage::from_pixel(105, 105, Luma([v])).into());
/// let episode = Episode::new(vec![vec![image(0)], vec![image(255)]], vec![image(9)], vec![0])?;
/// let result = EvaluatorConfig::new().init()?.evaluate(&scorer, &[episode])?;
/// assert_eq!(result.total(), 1);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SiameseScorer {
    model: Siamese,
    device: Device,
    views: Vec<AffineDistortion>,
}

impl SiameseScorer {
    /// A scorer with `model` in evaluation mode ([`Module::valid`]), on the model's device.
    pub fn new(model: &Siamese) -> Self {
        Self {
            device: model.device(),
            model: model.valid(),
            views: Vec::new(),
        }
    }

    /// Test-time augmentation: each image's embedding becomes the mean of the embeddings of
    /// the image and of its `views` (distortions of it, e.g. drawn from
    /// [`DistortionConfig::koch`](crate::data::DistortionConfig::koch)), so that a
    /// drawing's exact placement matters less. Costs `views.len() + 1` encoder passes an
    /// image; no views (the default) is the plain network.
    ///
    /// ```
    /// use siamese::SiameseConfig;
    /// use siamese::data::DistortionConfig;
    /// use siamese::eval::SiameseScorer;
    ///
    /// let device = siamese::device::default_device()?;
    /// let views = DistortionConfig::koch().views(4, 7);
    /// let scorer = SiameseScorer::new(&SiameseConfig::compact().init(&device)).with_views(views);
    /// assert_eq!(scorer.views().len(), 4);
    /// # Ok::<(), siamese::Error>(())
    /// ```
    pub fn with_views(mut self, views: Vec<AffineDistortion>) -> Self {
        self.views = views;
        self
    }

    /// The distortions each embedding is averaged over, besides the image itself.
    pub fn views(&self) -> &[AffineDistortion] {
        &self.views
    }

    /// The network, in evaluation mode.
    pub fn model(&self) -> &Siamese {
        &self.model
    }
}

impl Scorer for SiameseScorer {
    /// Embeddings `[B, D]`, on the model's device.
    type Embeddings = Tensor<2>;

    fn name(&self) -> String {
        match self.views.len() {
            0 => "siamese (embed once)".into(),
            n => format!("siamese (embed once, mean of {} views)", n + 1),
        }
    }

    fn embed(&self, images: &[&DynamicImage]) -> Result<Tensor<2>> {
        let mut sum = self.model.embed_images(images)?;
        let background = self.model.input_spec().preprocess().background();
        for view in &self.views {
            let distorted: Vec<DynamicImage> = images
                .iter()
                .map(|image| view.apply_picture(image, background))
                .collect();
            sum = sum
                + self
                    .model
                    .embed_images(&distorted.iter().collect::<Vec<_>>())?;
        }
        Ok(sum.div_scalar((self.views.len() + 1) as f32))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SiameseConfig;
    use crate::device_tests;
    use burn::tensor::Tolerance;
    use image::{GrayImage, Luma};

    /// Ink-high 105 × 105 strokes, each in its own place.
    fn drawings(n: u32) -> Vec<DynamicImage> {
        (0..n)
            .map(|i| {
                GrayImage::from_fn(105, 105, |x, y| {
                    let on =
                        (x as i32 - 30 - 10 * i as i32).abs() < 3 || (y == 40 + 5 * i && x > 20);
                    Luma([if on { 255 } else { 0 }])
                })
                .into()
            })
            .collect()
    }

    fn shift(x: f32) -> AffineDistortion {
        AffineDistortion {
            translate_x: x,
            ..AffineDistortion::IDENTITY
        }
    }

    device_tests! {
        fn identity_views_change_nothing(device) {
            let model = SiameseConfig::compact().init(&device);
            let images = drawings(3);
            let images: Vec<&DynamicImage> = images.iter().collect();
            let plain = SiameseScorer::new(&model).embed(&images).unwrap();
            let views = SiameseScorer::new(&model)
                .with_views(vec![AffineDistortion::IDENTITY; 3])
                .embed(&images)
                .unwrap();
            plain.into_data().assert_approx_eq::<f32>(&views.into_data(), Tolerance::absolute(1e-6));
        }

        fn views_average_the_distorted_embeddings(device) {
            let model = SiameseConfig::compact().init(&device);
            let images = drawings(2);
            let refs: Vec<&DynamicImage> = images.iter().collect();
            let plain = SiameseScorer::new(&model);
            let shifted: Vec<DynamicImage> = images.iter().map(|i| shift(6.0).apply_picture(i, [0; 3])).collect();
            let expected = (plain.embed(&refs).unwrap()
                + plain.embed(&shifted.iter().collect::<Vec<_>>()).unwrap())
                .div_scalar(2.0);
            let averaged = plain.clone().with_views(vec![shift(6.0)]).embed(&refs).unwrap();
            averaged
                .clone()
                .into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
            // A real distortion moves the embedding: the test above compares something.
            let moved: f32 = (averaged - plain.embed(&refs).unwrap()).abs().sum().into_scalar();
            assert!(moved > 1e-4, "the shifted view left the embedding unchanged: {moved}");
        }
    }

    #[test]
    fn the_name_counts_the_views() {
        let device = crate::device::default_device().unwrap();
        let scorer = SiameseScorer::new(&SiameseConfig::compact().init(&device));
        assert_eq!(scorer.name(), "siamese (embed once)");
        assert_eq!(
            scorer.with_views(vec![shift(1.0); 7]).name(),
            "siamese (embed once, mean of 8 views)"
        );
    }
}
