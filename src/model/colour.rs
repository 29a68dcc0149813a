//! A trained network made to read other pictures: colour from grey, another preprocessing,
//! to fine-tune trained weights on one's own pictures.

use super::siamese::Siamese;
use crate::data::Preprocess;
use crate::{Error, Result};

impl Siamese {
    /// The same network reading three channels (RGB) prepared by `preprocess`: the first
    /// convolution's kernel is shared out over the three channels (a third each), every
    /// other weight and statistic is kept. On a grey picture given as three equal channels
    /// it computes exactly what the grey network computes on the grey picture, so a colour
    /// network can start from the shipped grey weights rather than from scratch.
    ///
    /// ```
    /// use image::{DynamicImage, GrayImage, Luma};
    /// use siamese::SiameseConfig;
    /// use siamese::data::Preprocess;
    ///
    /// let device = siamese::device::default_device()?;
    /// let grey = SiameseConfig::compact().init(&device);
    /// let colour = grey.clone().to_colour(Preprocess::Ink)?;
    /// assert_eq!(colour.input_spec().channels(), 3);
    /// let picture: DynamicImage = GrayImage::from_fn(105, 105, |x, _| Luma([(x * 2) as u8])).into();
    /// let (a, b) = (grey.embed_images(&[&picture])?, colour.embed_images(&[&picture])?);
    /// let gap: f32 = (a - b).abs().max().into_scalar();
    /// assert!(gap < 1e-5, "{gap}");
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the network already reads three channels or has no
    /// convolution.
    pub fn to_colour(mut self, preprocess: Preprocess) -> Result<Siamese> {
        if self.config.encoder.in_channels() != 1 {
            return Err(Error::invalid(
                "channels",
                format!(
                    "the network reads {} channels already",
                    self.config.encoder.in_channels()
                ),
            ));
        }
        let Some(first) = self.encoder.blocks.first_mut() else {
            return Err(Error::invalid(
                "blocks",
                "a network without convolutions has no kernel to share out",
            ));
        };
        first.conv.weight = first
            .conv
            .weight
            .clone()
            .map(|w| w.repeat_dim(1, 3).div_scalar(3.0));
        self.encoder.channels = 3;
        self.config.encoder.channels = Some(3);
        Ok(self.with_preprocess(preprocess))
    }

    /// The same network, preparing its pictures with `preprocess` from now on: to
    /// fine-tune a network trained on ink for pictures, say. Saved with the network.
    pub fn with_preprocess(mut self, preprocess: Preprocess) -> Siamese {
        self.config.preprocess = Some(preprocess);
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::SiameseConfig;
    use crate::data::Preprocess;
    use burn::prelude::*;
    use burn::tensor::Distribution;

    crate::device_tests! {
        fn a_colour_copy_scores_grey_inputs_as_the_grey_network(device) {
            let grey = SiameseConfig::compact().init(&device).valid();
            let colour = grey.clone().to_colour(Preprocess::picture()).unwrap();
            assert_eq!(colour.input_spec().preprocess(), &Preprocess::picture());
            let images = Tensor::<4>::random([3, 1, 52, 52], Distribution::Default, &device);
            let expected = grey.embed(images.clone());
            let got = colour.embed(images.repeat_dim(1, 3));
            let gap: f32 = (expected - got).abs().max().into_scalar();
            assert!(gap < 1e-5, "{gap}");
            assert!(colour.to_colour(Preprocess::Ink).is_err());
        }
    }
}
